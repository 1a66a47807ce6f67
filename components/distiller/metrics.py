"""The metrics the Evaluator computes for each task: one table.

What a person reads in the summary, which direction is better, and which one
gates by default (the first of each task). Plain data: the gates turn it into
TFMA's EvalConfig, the summary and the report read the same names back.
"""

import dataclasses
from typing import Dict, Optional, Tuple

from distill_components.distiller.tasks import Task


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


# The first metric of each task gates by default.
TASK_METRICS: Dict[Task, Tuple[Metric, ...]] = {
    Task.BINARY: (
        Metric("auc", "AUC", "AUC", True),
        Metric("binary_accuracy", "BinaryAccuracy", "accuracy", True),
        Metric("binary_crossentropy", "BinaryCrossentropy", "log loss", False,
               bounded=False),
        # Mean prediction / mean label: 1 is calibrated on average.
        Metric("calibration", "Calibration", "calibration", True, bounded=False,
               gateable=False),
    ),
    Task.MULTICLASS: (
        Metric("sparse_categorical_accuracy", "SparseCategoricalAccuracy",
               "accuracy", True),
        Metric("sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy",
               "top-2 accuracy", True, config={"k": 2}),
        Metric("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
               "log loss", False, bounded=False),
    ),
    Task.REGRESSION: (
        Metric("mean_squared_error", "MeanSquaredError", "MSE", False, bounded=False),
        Metric("root_mean_squared_error", "RootMeanSquaredError", "RMSE", False,
               bounded=False),
        Metric("mean_absolute_error", "MeanAbsoluteError", "MAE", False,
               bounded=False),
    ),
}


class GateError(ValueError):
  """A gate that cannot be built for the task; the message says why."""


def gate_metric(task: Task, gate) -> Metric:
  """The metric a `settings.Gate` holds the student to."""
  metrics = TASK_METRICS[task]
  if gate.metric is None:
    return metrics[0]
  gateable = [m for m in metrics if m.gateable]
  for metric in gateable:
    if gate.metric in (metric.name, metric.class_name):
      return metric
  raise GateError(
      f"The gate metric {gate.metric!r} cannot gate the {task.value} task; "
      f"choose one of {[m.name for m in gateable]}.")
