"""The `custom_config` keys the generic (zero-code) modules read.

Transform passes `custom_config` to `preprocessing_fn(inputs, custom_config)`;
the Trainer and the Distiller pass it as `fn_args.custom_config`. All three
generic modules read the same dict:

- LABEL ("label"): the raw CSV column holding the label. Required.
- LABEL_KEY ("label_key"): the transformed label's name; the generic
  preprocessing writes the label under it. Default: LABEL.
- RAW_LABEL_KEYS ("raw_label_keys"): raw columns that are not features and
  that serving requests lack (the label, maybe more). Default: [LABEL].
- TASK ("task"): "binary" | "multiclass" | "regression".
- NUM_CLASSES ("num_classes"): classes of a classification label (binary: 2).
  Multiclass default: len(LABEL_VALUES), else the transformed label's domain.
- LABEL_VALUES ("label_values"): optional raw label values, as strings, in
  class-id order (class id = index). A numeric raw label matches them
  numerically ("1" matches 1 and 1.0). Unset: a string label goes through a
  vocabulary (ids by descending frequency; the vocabulary file is
  LABEL_VOCABULARY), an integer label is used as the class id as it is.
- BATCH_SIZE ("batch_size"), LEARNING_RATE ("learning_rate"): the teacher's
  training; defaults DEFAULT_BATCH_SIZE, DEFAULT_LEARNING_RATE.
- SEED ("seed"): optional random seed of the tree teacher (TF-DF's
  random_seed; the MLP teacher follows the process's Keras seed).
- TEACHER_FOLDS ("teacher_folds"): k >= 2 makes the tree teacher also fit k
  out-of-fold models, each without one fold of the train rows, for the
  Distiller's soft labels (distill_components.distiller.folds); 0 or unset:
  none.
- VALIDATION_FRACTION ("validation_fraction"), CHOICE_METRIC
  ("choice_metric"): the auto teacher fits its candidates on the train rows
  outside the validation cut (distill_components.distiller.choice) and keeps
  the one best on it by that metric; defaults: the cut's default fraction,
  the task's first metric.
- TEACHER_HIDDEN_UNITS ("teacher_hidden_units"), STUDENT_HIDDEN_UNITS
  ("student_hidden_units"): optional layer widths overriding the defaults
  (the student's 10x size margin is guaranteed for the defaults only).

Pure Python: no TensorFlow, so settings and the command line can import it.
"""

import dataclasses
import re
from typing import Any, Mapping, Optional, Tuple

from distill_components.distiller import tasks

LABEL = "label"
LABEL_KEY = "label_key"
RAW_LABEL_KEYS = "raw_label_keys"
TASK = "task"
NUM_CLASSES = "num_classes"
LABEL_VALUES = "label_values"
BATCH_SIZE = "batch_size"
LEARNING_RATE = "learning_rate"
TEACHER_HIDDEN_UNITS = "teacher_hidden_units"
STUDENT_HIDDEN_UNITS = "student_hidden_units"
SEED = "seed"
TEACHER_FOLDS = "teacher_folds"
VALIDATION_FRACTION = "validation_fraction"
CHOICE_METRIC = "choice_metric"

DEFAULT_BATCH_SIZE = 256
DEFAULT_LEARNING_RATE = 1e-3

# Transformed feature name of raw column `c`: c + FEATURE_SUFFIX (see
# transformed_name).
FEATURE_SUFFIX = "_xf"
# The vocabulary (a Transform asset) of a string label without label_values:
# line i is the raw value of class i.
LABEL_VOCABULARY = "label_vocabulary"


def transformed_name(column: str) -> str:
  """The feature of raw column `column`: `<column>_xf`.

  Characters other than ASCII letters, digits and '_' become '_', and a name
  not starting with a letter gets an 'f' in front ('trip miles' ->
  'trip_miles_xf', '2nd' -> 'f2nd_xf'): the features are keyword arguments of
  the models' `transformed_logits` signature, which needs such names.
  """
  name = re.sub(r"[^A-Za-z0-9_]", "_", column)
  if not re.match(r"[A-Za-z]", name):
    name = "f" + name
  return name + FEATURE_SUFFIX


@dataclasses.dataclass(frozen=True)
class Config:
  """`custom_config`, parsed and checked, with the defaults filled in."""
  label: str
  label_key: str
  raw_label_keys: Tuple[str, ...]
  task: tasks.Task
  num_classes: Optional[int]
  label_values: Optional[Tuple[str, ...]]
  batch_size: int
  learning_rate: float
  teacher_hidden_units: Optional[Tuple[int, ...]]
  student_hidden_units: Optional[Tuple[int, ...]]


def _units(value) -> Optional[Tuple[int, ...]]:
  return None if value is None else tuple(int(u) for u in value)


def parse(custom_config: Optional[Mapping[str, Any]]) -> Config:
  """A Config from a custom_config dict; ValueError naming what is wrong."""
  values = dict(custom_config or {})
  label = values.get(LABEL)
  if not label:
    raise ValueError(
        f"The generic modules need custom_config[{LABEL!r}], the raw label "
        f"column; got keys {sorted(values)}.")
  if values.get(TASK) is None:
    raise ValueError(f"The generic modules need custom_config[{TASK!r}]: one "
                     f"of {[t.value for t in tasks.Task]}.")
  task = tasks.Task.parse(values[TASK])
  label_values = values.get(LABEL_VALUES)
  if label_values is not None:
    if isinstance(label_values, str):
      raise ValueError(f"{LABEL_VALUES} must be a list of strings, not the "
                       f"string {label_values!r}.")
    label_values = tuple(str(v) for v in label_values)
    if len(set(label_values)) != len(label_values):
      raise ValueError(f"{LABEL_VALUES} repeats a value: {list(label_values)}")
  num_classes = values.get(NUM_CLASSES)
  num_classes = None if num_classes is None else int(num_classes)
  if label_values:
    if num_classes not in (None, len(label_values)):
      raise ValueError(f"{NUM_CLASSES} is {num_classes} but {LABEL_VALUES} lists "
                       f"{len(label_values)} values: {list(label_values)}.")
    num_classes = len(label_values)
  task.check_classes(num_classes)
  num_classes = task.fixed_classes or num_classes
  raw_label_keys = values.get(RAW_LABEL_KEYS)
  raw_label_keys = (label,) if raw_label_keys is None else tuple(raw_label_keys)
  if label not in raw_label_keys:
    raw_label_keys = (label,) + raw_label_keys
  return Config(
      label=label,
      label_key=values.get(LABEL_KEY) or label,
      raw_label_keys=raw_label_keys,
      task=task,
      num_classes=num_classes,
      label_values=label_values,
      batch_size=int(values.get(BATCH_SIZE) or DEFAULT_BATCH_SIZE),
      learning_rate=float(values.get(LEARNING_RATE) or DEFAULT_LEARNING_RATE),
      teacher_hidden_units=_units(values.get(TEACHER_HIDDEN_UNITS)),
      student_hidden_units=_units(values.get(STUDENT_HIDDEN_UNITS)))
