"""An app's side of the LiteRT student: no TFX, no TFMA, no TF-DF.

    python litert_client.py MODEL.tflite ROWS.npz

ROWS.npz holds transformed features (one array per input) and `expected`,
the float32 student's outputs on them. Prints one JSON line: the rows run,
the largest and mean gap to `expected`, and which of the forbidden packages
the process loaded (none, or it exits 3).
"""
import importlib.abc
import json
import sys

FORBIDDEN = ("tensorflow_decision_forests", "tfx", "tensorflow_model_analysis")


class _Refuse(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in FORBIDDEN:
      raise ImportError(f"{name} may not be imported by a LiteRT client")
    return None


sys.meta_path.insert(0, _Refuse())

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(model_path, rows_path):
  data = dict(np.load(rows_path))
  expected = data.pop("expected")
  interpreter = tf.lite.Interpreter(model_path=model_path)
  for detail in interpreter.get_input_details():  # one batch of every row
    interpreter.resize_tensor_input(detail["index"], [len(expected), *detail["shape"][1:]])
  interpreter.allocate_tensors()
  runner = interpreter.get_signature_runner()
  [output] = runner(**{k: data[k] for k in runner.get_input_details()}).values()
  gap = np.abs(output - expected)
  loaded = sorted(m for m in FORBIDDEN if m in sys.modules)
  print(json.dumps({"rows": int(len(output)), "max_gap": float(gap.max()),
                    "mean_gap": float(gap.mean()), "forbidden_loaded": loaded}))
  return 3 if loaded else 0


if __name__ == "__main__":
  sys.exit(main(*sys.argv[1:3]))
