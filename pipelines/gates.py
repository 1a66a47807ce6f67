"""When the Evaluator blesses the student: TFMA's EvalConfig for a task.

`eval_config` turns the task's metrics (`metrics.TASK_METRICS`) and the gate
settings into TFMA's `EvalConfig`: the student (candidate) against the teacher
(baseline), the gate metric thresholded on its value and on its change.
"""

import json
from typing import List, Optional

import tensorflow_model_analysis as tfma

from distill_components.distiller.tasks import Task
from distill_pipelines import names
from distill_pipelines.metrics import TASK_METRICS, Metric, gate_metric
from distill_pipelines.settings import Gate


# Allowed worsening against the teacher when the settings give none: 0.01 of
# AUC or accuracy; 10% of an unbounded metric such as MSE.
DEFAULT_MAX_DROP_BOUNDED = 0.01
DEFAULT_MAX_DROP_RELATIVE = 0.10


def threshold(metric: Metric, gate: Gate) -> tfma.MetricThreshold:
  """The gate as TFMA's threshold: an absolute bound and a change bound."""
  direction = (tfma.MetricDirection.HIGHER_IS_BETTER if metric.higher_is_better
               else tfma.MetricDirection.LOWER_IS_BETTER)
  value = None
  if gate.threshold is not None:
    bound = "lower_bound" if metric.higher_is_better else "upper_bound"
    value = tfma.GenericValueThreshold(**{bound: {"value": gate.threshold}})
  sign = -1.0 if metric.higher_is_better else 1.0
  if metric.bounded:
    drop = DEFAULT_MAX_DROP_BOUNDED if gate.max_drop is None else gate.max_drop
    change = tfma.GenericChangeThreshold(direction=direction,
                                         absolute={"value": sign * drop})
  else:
    drop = DEFAULT_MAX_DROP_RELATIVE if gate.max_drop is None else gate.max_drop
    change = tfma.GenericChangeThreshold(direction=direction,
                                         relative={"value": sign * drop})
  return tfma.MetricThreshold(value_threshold=value, change_threshold=change)


def _per_class_specs(task: Task, num_classes: Optional[int]) -> List[tfma.MetricsSpec]:
  """Multi-class: precision and recall of each class, one-vs-rest."""
  if task is not Task.MULTICLASS or not num_classes:
    return []
  return [tfma.MetricsSpec(
      metrics=[tfma.MetricConfig(class_name="Precision"),
               tfma.MetricConfig(class_name="Recall")],
      binarize=tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))}))]


def _plots(task: Task) -> List[tfma.MetricConfig]:
  if task is Task.BINARY:
    return [tfma.MetricConfig(class_name="CalibrationPlot")]
  if task is Task.MULTICLASS:
    return [tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot")]
  return []


def eval_config(task: Task, label_key: str, gate: Gate,
                num_classes: Optional[int] = None) -> tfma.EvalConfig:
  """Student (candidate) against teacher (baseline), gated per `gate`."""
  gated = gate_metric(task, gate)
  model_specs = [
      tfma.ModelSpec(name=name, is_baseline=is_baseline,
                     signature_name="serving_default", label_key=label_key,
                     preprocessing_function_names=["transform_features"])
      for name, is_baseline in ((names.STUDENT, False), (names.TEACHER, True))
  ]
  metrics = [tfma.MetricConfig(class_name="ExampleCount")]
  metrics += [tfma.MetricConfig(
      class_name=m.class_name, threshold=threshold(m, gate) if m is gated else None,
      config=json.dumps(m.config) if m.config else "") for m in TASK_METRICS[task]]
  metrics += _plots(task)
  return tfma.EvalConfig(
      model_specs=model_specs,
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=metrics),
                     *_per_class_specs(task, num_classes)])
