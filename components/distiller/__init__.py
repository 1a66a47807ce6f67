"""The Distiller: a TFX component that trains a small student on a teacher.

    from distill_components.distiller import Distiller

`Distiller` is imported on first use (PEP 562), so the pure modules of this
package (`losses`, `tasks`) import without loading TFX.
"""

__all__ = ["Distiller"]


def __getattr__(name):
  if name == "Distiller":
    from distill_components.distiller.component import Distiller  # pylint: disable=g-import-not-at-top
    return Distiller
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
