"""What a learning task is: binary, multi-class or regression.

The one place that knows how a task shapes a model and its labels: how many
classes it has, how many outputs the model emits, what serving returns, which
labels are valid. The rest of the code asks a `Task` value instead of
branching on its name; a task's name is parsed (`Task.parse`) once, where it
arrives as a string: the Distiller's arguments and exec_properties, the
pipeline's settings, a module's custom_config, MLMD.
Pure Python and NumPy: no TensorFlow, no TFX, so the command line can use it
before anything heavy is imported.
"""

import dataclasses
import enum
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Metric:
  """One TFMA metric as this project uses it."""
  name: str  # TFMA's output name, e.g. "auc"
  class_name: str  # TFMA (or Keras) metric class
  title: str  # what a person reads
  higher_is_better: bool
  bounded: bool = True  # in [0, 1]: a change is measured in its units
  config: Optional[dict] = None
  gateable: bool = True  # False: best at a target (calibration: 1), not an end


# Each task's TFMA metrics, what a person reads, which direction is better;
# the first of each task gates by default. The gates turn them into TFMA's
# EvalConfig, the summary and the report read the same names back.
_METRICS = {
    "binary": (
        Metric("auc", "AUC", "AUC", True),
        Metric("binary_accuracy", "BinaryAccuracy", "accuracy", True),
        Metric("binary_crossentropy", "BinaryCrossentropy", "log loss", False,
               bounded=False),
        # Mean prediction / mean label: 1 is calibrated on average.
        Metric("calibration", "Calibration", "calibration", True, bounded=False,
               gateable=False),
    ),
    "multiclass": (
        Metric("sparse_categorical_accuracy", "SparseCategoricalAccuracy",
               "accuracy", True),
        Metric("sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy",
               "top-2 accuracy", True, config={"k": 2}),
        Metric("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
               "log loss", False, bounded=False),
    ),
    "regression": (
        Metric("mean_squared_error", "MeanSquaredError", "MSE", False, bounded=False),
        Metric("root_mean_squared_error", "RootMeanSquaredError", "RMSE", False,
               bounded=False),
        Metric("mean_absolute_error", "MeanAbsoluteError", "MAE", False,
               bounded=False),
    ),
}

# TFMA's plots each task's report draws.
_PLOTS = {"binary": ("CalibrationPlot",),
          "multiclass": ("MultiClassConfusionMatrixPlot",),
          "regression": ()}


class LabelError(ValueError):
  """The label's values do not fit the task; the message says how."""


class Task(str, enum.Enum):
  """The three tasks the Distiller distils."""

  BINARY = "binary"
  MULTICLASS = "multiclass"
  REGRESSION = "regression"

  @classmethod
  def parse(cls, value) -> "Task":
    """A Task from its name; ValueError naming the choices otherwise."""
    if isinstance(value, Task):
      return value
    try:
      return cls(str(value).strip().lower())
    except ValueError:
      raise ValueError(f"task must be one of {[t.value for t in cls]}; got "
                       f"{value!r}.") from None

  @property
  def metrics(self) -> Tuple[Metric, ...]:
    """The task's metrics; the first gates unless a gate names another."""
    return _METRICS[self.value]

  def metric(self, name: str) -> Optional[Metric]:
    """The task's metric of that TFMA name (None: the task has none)."""
    return next((m for m in self.metrics if m.name == name), None)

  @property
  def plots(self) -> Tuple[str, ...]:
    """TFMA plot classes the report draws for the task."""
    return _PLOTS[self.value]

  @property
  def per_class(self) -> bool:
    """Whether each class also gets its own precision and recall."""
    return self is Task.MULTICLASS

  @property
  def fixed_classes(self) -> Optional[int]:
    """The number of classes every label of the task has (binary: 2), else None."""
    return 2 if self is Task.BINARY else None

  @property
  def is_classification(self) -> bool:
    return self is not Task.REGRESSION

  @property
  def serving_output(self) -> str:
    """The key of `serving_default`'s one output."""
    return "predictions" if self is Task.REGRESSION else "probabilities"

  def check_classes(self, classes: Optional[int]) -> None:
    """Raises ValueError unless a label of `classes` classes fits the task.

    The one statement of the rule: binary has exactly 2 classes, multiclass
    3 or more, regression none; None (not known yet) fits every task. The
    message (lower case, no full stop: callers put it in their own) says
    which task to use instead.
    """
    if classes is None:
      return
    if self is Task.REGRESSION:
      raise ValueError(f"a regression label has no classes (got {classes}); leave "
                       "them unset, or use task binary (2 classes) or multiclass "
                       "(3 or more)")
    if classes < 2:
      raise ValueError(f"a classifier needs at least 2 classes, not {classes}")
    if self is Task.BINARY and classes != 2:
      raise ValueError(f"the binary task has 2 classes, not {classes}; use "
                       "task multiclass")
    if self is Task.MULTICLASS and classes < 3:
      raise ValueError(f"the multiclass task needs >= 3 classes, not {classes}; "
                       "use task binary")

  def output_width(self, num_classes: Optional[int] = None) -> int:
    """Outputs per example: one logit (binary), K logits, one prediction."""
    self.check_classes(num_classes)
    if self is not Task.MULTICLASS:
      return 1
    if num_classes is None:
      raise ValueError("A multiclass model needs the number of classes (>= 3); "
                       "got None.")
    return int(num_classes)

  def num_classes(self, output_width: int) -> Optional[int]:
    """The number of classes a model of this width predicts (None: regression)."""
    if self is Task.REGRESSION:
      return None
    return 2 if output_width == 1 else int(output_width)

  def check_width(self, width: int) -> None:
    """Raises ValueError unless a model emitting `width` outputs fits the task."""
    if self is Task.MULTICLASS:
      try:
        self.check_classes(self.num_classes(width))
      except ValueError as e:
        raise ValueError(f"The model emits {width} per example "
                         f"({self.num_classes(width)} classes): {e}.") from None
    elif width != 1:
      raise ValueError(
          f"The {self.value} task needs a model emitting one value per example; "
          f"this one emits {width}.")

  def check_labels(self, labels: Sequence, output_width: int,
                   where: str = "the label") -> None:
    """Raises LabelError unless every label fits a model of `output_width`.

    Classification labels must be whole numbers in [0, K) (K = 2 for one
    logit): a float label with a fractional part is a regression label.
    Regression labels must be finite numbers.
    """
    self.check_label_chunks([labels], output_width, where)

  def check_label_chunks(self, chunks: Iterable[Sequence], output_width: int,
                         where: str = "the label") -> int:
    """`check_labels` over every chunk of a stream of labels (a split read
    batch by batch), in memory of one chunk; the labels' count."""
    count, first, varied = 0, None, False
    for chunk in chunks:
      values = np.asarray(chunk).ravel()
      if not values.size:
        continue
      self._check_values(values, output_width, where)
      count += values.size
      if not varied:
        distinct = np.unique(values)
        first = distinct[0] if first is None else first
        varied = distinct.size > 1 or distinct[0] != first
    if not count:
      raise LabelError(f"{where} has no values to learn from.")
    if not varied:
      raise LabelError(
          f"{where} has one value ({first!r}) in all {count:,} "
          "examples: there is nothing to learn, and a student trained on it "
          "answers the same for every request. Check how the label is computed.")
    return count

  def _check_values(self, values: np.ndarray, output_width: int, where: str) -> None:
    if values.dtype.kind not in "biuf":
      raise LabelError(
          f"{where} holds {values.dtype} values (e.g. {values[0]!r}); the "
          f"{self.value} task needs numbers. Encode it in the preprocessing_fn.")
    if not np.all(np.isfinite(values.astype(np.float64))):
      bad = values[~np.isfinite(values.astype(np.float64))][0]
      raise LabelError(f"{where} holds {bad!r}; labels must be finite numbers.")
    if self is Task.REGRESSION:
      return
    classes = self.num_classes(output_width)
    fractional = values[np.mod(values, 1) != 0]
    if fractional.size:
      raise LabelError(
          f"{where} holds {fractional.size} fractional values (e.g. "
          f"{fractional[0]!r}): that is a regression label, but the task is "
          f"{self.value}. Use task 'regression', or compute class ids in the "
          "preprocessing_fn.")
    outside = values[(values < 0) | (values >= classes)]
    if outside.size:
      raise LabelError(
          f"{where} holds class id {outside[0]!r} but the {self.value} model "
          f"predicts {classes} classes (ids 0 to {classes - 1}). "
          + ("Use task 'multiclass' for more than two classes."
             if self is Task.BINARY else
             "The student must emit one logit per class."))
