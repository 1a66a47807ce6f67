"""What TFMA wrote for a gate, read back for the summary and report.html.

The figures come from `tfma.load_eval_result` (one model at a time, every
slice), slice keys from TFMA's slicer (`tfma.slicer.deserialize_slice_key`),
and a gate's verdict from `tfma.load_validation_result` with the EvalConfig
TFMA ran with. Slices are named as the console and the page show them:
"overall", "trip_start_day=5", "a=1, b=x".
"""

import dataclasses
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from distill_components.distiller.tasks import Task

OVERALL = "overall"


@dataclasses.dataclass
class Threshold:
  """One bound of a gate's EvalConfig, as a person reads it."""
  metric: str  # the metric's title, e.g. "AUC"
  where: str  # "overall; trip_start_day = 1, 2, 3"
  bound: str  # "at most 0.01 below the teacher's"
  failed_on: List[str] = dataclasses.field(default_factory=list)  # slices
  ignored: bool = False  # a change bound with no baseline to compare with


def slice_name(slice_key: Sequence[Tuple[str, object]]) -> str:
  """(("trip_start_day", 5),) -> "trip_start_day=5"; () -> "overall"."""
  parts = []
  for column, value in slice_key:
    if isinstance(value, bytes):
      value = value.decode("utf-8", "replace")
    parts.append(f"{column}={value}")
  return ", ".join(parts) or OVERALL


def proto_slice_name(slice_key) -> str:
  """A SliceKey proto (a ValidationResult's) named like `slice_name`."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  return slice_name(tfma.slicer.deserialize_slice_key(slice_key))


def slice_order(name: str) -> Tuple:
  """overall first; then by column, numbers in numeric order."""
  if name == OVERALL:
    return (0,)
  keys = []
  for part in name.split(", "):
    column, _, value = part.partition("=")
    try:
      keys.append((column, 0, float(value), ""))
    except ValueError:
      keys.append((column, 1, 0.0, value))
  return (1, tuple(keys))


def number(value) -> Optional[float]:
  """TFMA's JSON-like value ({"doubleValue": 0.5}, "NaN" as a string)."""
  if isinstance(value, dict):
    value = value.get("doubleValue")
  try:
    return float(value)
  except (TypeError, ValueError):
    return None


def eval_metrics(result) -> Dict[str, Dict[str, float]]:
  """slice -> metric -> value of one model's `tfma.EvalResult`, no diffs; a
  sub key's metric is "classId:0/precision"."""
  found: Dict[str, Dict[str, float]] = {}
  for slice_key, outputs in result.slicing_metrics:
    values = found.setdefault(slice_name(slice_key), {})
    for sub_key, metrics in outputs.get("", {}).items():
      for name, value in metrics.items():
        value = number(value)
        if name.endswith("_diff") or value is None:
          continue
        values[f"{sub_key}/{name}" if sub_key else name] = value
  return found


def overall_plot(result) -> dict:
  """One model's plot data on the overall slice (empty if none)."""
  for slice_key, outputs in result.plots:
    if not slice_key and outputs:
      return outputs.get("", {}).get("", {}) or {}
  return {}


def load(evaluation_uri: str, models: Iterable[str]) -> Dict[str, object]:
  """model name -> its `tfma.load_eval_result` of one Evaluator's output."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  return {model: tfma.load_eval_result(evaluation_uri, model_name=model)
          for model in models}


def overall_metrics(results: Dict[str, object]) -> Dict[str, Dict[str, float]]:
  """model name -> metric -> value on the overall slice (no sub keys)."""
  overall = {}
  for model, result in results.items():
    values = eval_metrics(result).get(OVERALL, {})
    if values:
      overall[model] = {k: v for k, v in values.items() if "/" not in k}
  return overall


def gate_failures(validation, baseline: str,
                  baseline_metrics: Dict[str, float]) -> List[str]:
  """TFMA's ValidationResult as sentences: metric, slice, values, threshold.

  Overall failures first, then by slice, in a stable order.
  """
  found = []
  for per_slice in validation.metric_validations_per_slice:
    where = proto_slice_name(per_slice.slice_key)
    lines = []
    for failure in per_slice.failures:
      name, value = failure.metric_key.name, failure.metric_value.double_value.value
      threshold = failure.metric_threshold
      if failure.message.strip():  # e.g. "Metric not found."
        lines.append(f"{name} ({where}): {failure.message.strip()}")
      elif failure.metric_key.is_diff:
        change = threshold.change_threshold
        if change.HasField("relative"):
          base = baseline_metrics.get(name) if where == OVERALL else None
          allowed = (f"{abs(change.relative.value):.0%} of the {baseline}'s "
                     + (f"{base:.4f}" if base is not None else "value"))
        else:
          allowed = f"{abs(change.absolute.value):g}"
        lines.append(f"{name} ({where}): the student is {abs(value):.4f} worse "
                     f"than the {baseline}; allowed {allowed}")
      else:
        bound = threshold.value_threshold
        limits = []
        if bound.HasField("lower_bound"):
          limits.append(f">= {bound.lower_bound.value:g}")
        if bound.HasField("upper_bound"):
          limits.append(f"<= {bound.upper_bound.value:g}")
        lines.append(f"{name} ({where}): the student's {value:.4f} is not "
                     f"{' and '.join(limits)}")
    found += [((where != OVERALL, where, line), line) for line in lines]
  return [line for _, line in sorted(found)]


def _metric_titles(task: Optional[Task]) -> Dict[str, str]:
  """TFMA class name -> title, with ExampleCount."""
  titles = {"ExampleCount": "example count"}
  for metric in (task.metrics if task else ()):
    titles[metric.class_name] = metric.title
  return titles


def _tfma_name(class_name: str, task: Optional[Task]) -> str:
  """TFMA's output name of a metric class (how failures name it): the
  task's table, else TFMA's registered metric's default name."""
  for metric in (task.metrics if task else ()):
    if metric.class_name == class_name:
      return metric.name
  from tensorflow_model_analysis.metrics import metric_types  # pylint: disable=g-import-not-at-top
  registered = metric_types.registered_metrics().get(class_name)
  try:
    return registered().name if registered else class_name
  except TypeError:  # a metric that needs arguments to be built
    return class_name


def _where(slicing_specs) -> str:
  """The slices a bound holds on: 'overall; trip_start_day = 1, 2, 3'."""
  overall, every, values = False, [], {}
  for spec in slicing_specs:
    if not spec.feature_keys and not spec.feature_values:
      overall = True
    every += [key for key in spec.feature_keys if not spec.feature_values]
    for column, value in sorted(spec.feature_values.items()):
      values.setdefault(column, []).append(value)
  parts = [OVERALL] if overall else []
  parts += [f"every {column} slice" for column in every]
  for column, listed in values.items():
    ordered = sorted(listed, key=lambda v: slice_order(f"{column}={v}"))  # pylint: disable=cell-var-from-loop
    parts.append(f"{column} = {', '.join(ordered)}")
  return "; ".join(parts) or OVERALL


def _bound(threshold, baseline: str) -> Tuple[str, bool]:
  """A MetricThreshold in words; True when it compares with the baseline."""
  from tensorflow_model_analysis.proto import config_pb2  # pylint: disable=g-import-not-at-top
  if threshold.HasField("change_threshold"):
    change = threshold.change_threshold
    higher = change.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER
    side = "below" if higher else "above"
    if change.HasField("relative"):
      amount = f"{abs(change.relative.value):.0%}"
    else:
      amount = f"{abs(change.absolute.value):g}"
    return f"at most {amount} {side} the {baseline}'s", True
  value = threshold.value_threshold
  low = value.lower_bound.value if value.HasField("lower_bound") else None
  high = value.upper_bound.value if value.HasField("upper_bound") else None
  if low is not None and high is not None:
    return f"between {low:g} and {high:g}", False
  if low is not None:
    return f"at least {low:g}", False
  if high is not None:
    return f"at most {high:g}", False
  return "a change bound (not recorded)", True


def gate_thresholds(eval_config, baseline: str, task: Optional[Task],
                    validation=None, configured=None) -> List[Threshold]:
  """The bounds of the EvalConfig TFMA ran with; with its ValidationResult,
  where each failed.

  With no baseline model TFX's Evaluator empties the change thresholds
  before TFMA runs; `configured` (the Evaluator's `eval_config` property)
  then says what they were, shown as ignored.
  """
  dropped = {}  # class name -> the configured change thresholds, in order
  for spec in (configured.metrics_specs if configured is not None else []):
    for metric in spec.metrics:
      dropped[metric.class_name] = [
          b.threshold for b in metric.per_slice_thresholds
          if b.threshold.HasField("change_threshold")]
  failed: Dict[Tuple[str, bool], List[str]] = {}
  if validation is not None:
    for per_slice in validation.metric_validations_per_slice:
      where = proto_slice_name(per_slice.slice_key)
      for failure in per_slice.failures:
        key = (failure.metric_key.name, failure.metric_key.is_diff)
        failed.setdefault(key, []).append(where)
  titles = _metric_titles(task)
  found = []
  for spec in eval_config.metrics_specs:
    for metric in spec.metrics:
      bounds = [(b.slicing_specs, b.threshold) for b in metric.per_slice_thresholds]
      if metric.HasField("threshold"):
        bounds.append(([], metric.threshold))
      for slicing_specs, threshold in bounds:
        ignored = not (threshold.HasField("change_threshold")
                       or threshold.HasField("value_threshold"))
        if ignored and dropped.get(metric.class_name):
          threshold = dropped[metric.class_name].pop(0)
        text, is_change = _bound(threshold, baseline)
        name = _tfma_name(metric.class_name, task)
        found.append(Threshold(
            metric=titles.get(metric.class_name, metric.class_name),
            where=_where(slicing_specs), bound=text,
            failed_on=sorted(set(failed.get((name, is_change), [])), key=slice_order),
            ignored=ignored))
  return found
