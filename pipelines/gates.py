"""When the student is blessed: one TFMA EvalConfig per gate.

Two gates, each run by its own Evaluator, both needed before a push:

- *fidelity* (`fidelity_config`): the student (candidate) against this run's
  teacher (baseline). The task's main metric (or `Settings.gate.metric`) may
  drop at most `gate.max_drop`, overall and on every slice of `slice_by`.
- *no regression* (`no_regression_config`): the student against the model
  that is serving, the latest student this pipeline blessed. The main metric
  may drop at most `no_regression.max_drop`, overall and per slice; the log
  loss may grow at most `max_log_loss_increase` of the serving model's; a
  binary student's calibration must lie within 1 +- `calibration_tolerance`.
  On a first run there is no serving model: TFX's Evaluator then ignores the
  change thresholds (TFMA's rubber stamp) and only the value bounds hold
  (at least: the eval split is not empty).

Thresholds sit in `per_slice_thresholds`, never in `threshold`: TFMA applies a
plain threshold to every slice it computes, tiny ones included. The slice
thresholds name `SlicingSpec(feature_keys=[column])`, "every slice of this
column"; `options.min_slice_size` carries the smallest slice that gates, and
the gated Evaluator (`distill_components.gates.evaluator`) narrows the slice
thresholds to the slices that large before TFMA runs.

Both gates read the Scorer's output (`distill_components.gates.scorer`): each
model's predictions computed once, in one pass over the eval split, so TFMA
computes the metrics and runs no model.
"""

import json
from typing import List, Optional, Sequence, Tuple

import tensorflow_model_analysis as tfma

from distill_components.distiller.tasks import Task
from distill_components.gates import scorer
from distill_pipelines import names
from distill_components.distiller.metrics import Metric, gate_metric
from distill_pipelines.settings import Settings


# Allowed worsening when the settings give none: 0.01 of AUC or accuracy;
# 10% of an unbounded metric such as MSE.
DEFAULT_MAX_DROP_BOUNDED = 0.01
DEFAULT_MAX_DROP_RELATIVE = 0.10

_Threshold = Tuple[Metric, tfma.MetricThreshold, bool]  # metric, bound, per slice


def _direction(metric: Metric):
  return (tfma.MetricDirection.HIGHER_IS_BETTER if metric.higher_is_better
          else tfma.MetricDirection.LOWER_IS_BETTER)


def change_threshold(metric: Metric, max_drop: Optional[float]
                     ) -> tfma.GenericChangeThreshold:
  """At most `max_drop` worse than the baseline: in the metric's units for a
  bounded metric, as a fraction of the baseline's value otherwise."""
  sign = -1.0 if metric.higher_is_better else 1.0
  if metric.bounded:
    drop = DEFAULT_MAX_DROP_BOUNDED if max_drop is None else max_drop
    return tfma.GenericChangeThreshold(direction=_direction(metric),
                                       absolute={"value": sign * drop})
  drop = DEFAULT_MAX_DROP_RELATIVE if max_drop is None else max_drop
  return tfma.GenericChangeThreshold(direction=_direction(metric),
                                     relative={"value": sign * drop})


def value_threshold(metric: Metric, bound: float) -> tfma.GenericValueThreshold:
  """A floor when higher is better, a ceiling otherwise."""
  side = "lower_bound" if metric.higher_is_better else "upper_bound"
  return tfma.GenericValueThreshold(**{side: {"value": bound}})


def _log_loss(task: Task) -> Optional[Metric]:
  return next((m for m in task.metrics
               if m.class_name.endswith("Crossentropy")), None)


def fidelity_thresholds(s: Settings) -> List[_Threshold]:
  """The student against the teacher: the gate metric, overall and per slice."""
  metric = gate_metric(s.task, s.gate)
  found = [(metric, tfma.MetricThreshold(
      change_threshold=change_threshold(metric, s.gate.max_drop)), True)]
  if s.gate.threshold is not None:
    found.append((metric, tfma.MetricThreshold(
        value_threshold=value_threshold(metric, s.gate.threshold)), False))
  return found


def no_regression_thresholds(s: Settings) -> List[_Threshold]:
  """The student against the serving model: main metric, log loss, calibration."""
  gate = s.no_regression
  metric = gate_metric(s.task, s.gate)
  max_drop = gate.max_drop  # None: the defaults, whatever fidelity allows
  found = [(metric, tfma.MetricThreshold(
      change_threshold=change_threshold(metric, max_drop)), True)]
  log_loss = _log_loss(s.task)
  if log_loss is not None and gate.max_log_loss_increase is not None:
    found.append((log_loss, tfma.MetricThreshold(change_threshold=change_threshold(
        log_loss, gate.max_log_loss_increase)), False))
  calibration = s.task.metric("calibration")
  if calibration is not None and gate.calibration_tolerance is not None:
    tolerance = gate.calibration_tolerance
    found.append((calibration, tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(
            lower_bound={"value": 1.0 - tolerance},
            upper_bound={"value": 1.0 + tolerance})), False))
  if s.task is Task.REGRESSION:
    mae = s.task.metric("mean_absolute_error")
    if mae is not None and mae is not metric:
      found.append((mae, tfma.MetricThreshold(
          change_threshold=change_threshold(mae, max_drop)), False))
  return found


def _per_class_specs(task: Task, num_classes: Optional[int]) -> List[tfma.MetricsSpec]:
  """Multi-class: precision and recall of each class, one-vs-rest."""
  if not task.per_class or not num_classes:
    return []
  return [tfma.MetricsSpec(
      metrics=[tfma.MetricConfig(class_name="Precision"),
               tfma.MetricConfig(class_name="Recall")],
      binarize=tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))}))]


def _plots(task: Task) -> List[tfma.MetricConfig]:
  return [tfma.MetricConfig(class_name=plot) for plot in task.plots]


def _eval_config(s: Settings, baseline: str,
                 thresholds: Sequence[_Threshold]) -> tfma.EvalConfig:
  """The task's metrics for student vs `baseline`, with `thresholds`."""
  # The Scorer's predictions and label: TFMA runs no model (scorer.py).
  model_specs = [scorer.model_spec(name, s.transformed_label, is_baseline)
                 for name, is_baseline in ((names.STUDENT, False), (baseline, True))]
  slices = [tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[column])
                                   for column in s.slice_by]
  # Every gate holds a value bound: without a baseline TFX's Evaluator drops
  # the change thresholds, and with no threshold left it writes no blessing
  # at all, so a first regression or multi-class run could never push.
  metrics = [tfma.MetricConfig(
      class_name="ExampleCount", per_slice_thresholds=[tfma.PerSliceMetricThreshold(
          slicing_specs=slices[:1], threshold=tfma.MetricThreshold(
              value_threshold=tfma.GenericValueThreshold(
                  lower_bound={"value": 1})))])]
  for metric in s.task.metrics:
    bounds = [tfma.PerSliceMetricThreshold(
        slicing_specs=slices if per_slice else slices[:1], threshold=bound)
              for gated, bound, per_slice in thresholds if gated is metric]
    metrics.append(tfma.MetricConfig(
        class_name=metric.class_name, per_slice_thresholds=bounds,
        config=json.dumps(metric.config) if metric.config else ""))
  metrics += _plots(s.task)
  return tfma.EvalConfig(
      model_specs=model_specs,
      slicing_specs=slices,
      metrics_specs=[tfma.MetricsSpec(metrics=metrics),
                     *_per_class_specs(s.task, s.classes)],
      options=tfma.Options(min_slice_size={"value": s.min_slice_size})
      if s.slice_by else None)


DEFAULT_LITERT_MAX_DROP_BOUNDED = 0.005
DEFAULT_LITERT_MAX_DROP_RELATIVE = 0.02


def litert_config(s: Settings) -> tfma.EvalConfig:
  """The LiteRT gate: the int8 file (candidate) against the float32 one
  (baseline) on the transformed eval examples, overall. TFMA runs `tf_lite`
  models only beside other `tf_lite` models; that the float32 file is the
  SavedModel student the LiteRT export checks itself."""
  metric = gate_metric(s.task, s.gate)
  drop = s.litert.max_drop
  if drop is None:
    drop = (DEFAULT_LITERT_MAX_DROP_BOUNDED if metric.bounded
            else DEFAULT_LITERT_MAX_DROP_RELATIVE)
  specs = [tfma.ModelSpec(name=name, model_type=tfma.TF_LITE,
                          label_key=s.transformed_label, is_baseline=baseline)
           for name, baseline in ((names.LITERT_INT8, False),
                                  (names.LITERT_FLOAT32, True))]
  return tfma.EvalConfig(
      model_specs=specs, slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount", threshold=tfma.MetricThreshold(
              value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 1}))),
          tfma.MetricConfig(
              class_name=metric.class_name,
              config=json.dumps(metric.config) if metric.config else "",
              threshold=tfma.MetricThreshold(
                  change_threshold=change_threshold(metric, drop)))])])


def fidelity_config(s: Settings) -> tfma.EvalConfig:
  """The fidelity gate: student (candidate) against the teacher (baseline)."""
  return _eval_config(s, names.TEACHER, fidelity_thresholds(s))


def no_regression_config(s: Settings) -> tfma.EvalConfig:
  """The no-regression gate: student against the serving student (baseline)."""
  return _eval_config(s, names.SERVING, no_regression_thresholds(s))
