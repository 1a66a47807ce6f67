"""Python modules a model needs imported before TensorFlow can load it.

A SavedModel may call ops that stock TensorFlow does not register: a TF-DF
tree ensemble calls `SimpleMLInferenceOpWithHandle`, registered when
`tensorflow_decision_forests` is imported. Every process that loads such a
model (the Distiller, the Evaluator when it is the baseline, each its own
container on Kubeflow) imports the modules named by its `teacher_imports` /
`model_imports` setting first. The distilled student needs none of them.
"""

import importlib
import re
from typing import Iterable, List, Optional

# The setting that names the modules, as a user writes it (flag and YAML key).
SETTING = "teacher_imports"
# Modules known to register the ops of well-known model libraries, by the
# prefix of their op names: the hint in the error below.
KNOWN_OP_MODULES = {"SimpleML": "tensorflow_decision_forests"}

_NOT_REGISTERED = re.compile(r"Op type not registered '([^']+)'")


class CustomOpsError(ValueError):
  """A model's ops are not registered, or a module named to register them fails."""


def import_modules(names: Optional[Iterable[str]]) -> List[str]:
  """Imports each module in `names`; returns them. Raises CustomOpsError."""
  imported = []
  for name in names or ():
    try:
      importlib.import_module(name)
    except ImportError as e:
      raise CustomOpsError(
          f"{SETTING} names the module {name!r}, which cannot be imported here: "
          f"{e}. Install it in this environment (and in the pipeline's image) "
          f"or remove it from {SETTING}.") from e
    imported.append(name)
  return imported


class Importing:
  """A function that imports `modules` before it runs: a model loader that
  Beam pickles to its workers (other processes, other machines) loads there
  only once the modules registering the model's ops are imported there too."""

  def __init__(self, modules: Iterable[str], fn):
    self.modules = list(modules)
    self.fn = fn

  def __call__(self, *args, **kwargs):
    import_modules(self.modules)
    return self.fn(*args, **kwargs)


def unregistered_op(error: BaseException) -> Optional[str]:
  """The op TensorFlow could not find, if `error` says one is not registered."""
  found = _NOT_REGISTERED.search(str(error))
  return found.group(1) if found else None


def missing_ops_error(error: BaseException, what: str,
                      imported: Iterable[str] = ()) -> Optional[CustomOpsError]:
  """A CustomOpsError naming the op and the setting, for an unregistered op."""
  op = unregistered_op(error)
  if op is None:
    return None
  module = next((m for prefix, m in KNOWN_OP_MODULES.items() if op.startswith(prefix)),
                None)
  hint = (f" ({op} is {module}'s: {SETTING}: [{module}])" if module else "")
  have = sorted(imported)
  return CustomOpsError(
      f"{what} uses the TensorFlow op {op!r}, which no module imported in this "
      f"process registers (imported by {SETTING}: {have or 'none'}). Name the "
      f"Python module that registers it in the {SETTING} setting{hint}; on the "
      f"command line, --teacher-imports.")
