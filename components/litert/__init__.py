"""The student for other runtimes: LiteRT (TFLite) float32 and int8.

    from distill_components.litert.component import LiteRTExport, Pusher

`convert.py` (TensorFlow only) does the conversion; importing this package
loads nothing.
"""
