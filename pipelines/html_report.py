"""report.html: how one pipeline run went, on one self-contained page.

`write(sqlite_path, pipeline_name, out_path)` reads the newest run of a
pipeline back from ML Metadata (through TFX's own metadata helpers) and from
what TFMA and the Distiller wrote, and writes one HTML file: plots inline as
base64 PNG, CSS inline, no script and no external asset, so it opens from a
mail or a ticket as it opens from the pipeline root. Sections:

- the verdict: run id, task, blessed and pushed where, or stopped by which
  gate (or by data validation, or a failed component);
- teacher vs student, and the serving model when the no-regression gate ran,
  on the task's metrics overall and on every slice TFMA computed: the values
  are TFMA's (`tfma.load_eval_result`), each cell keeping the exact value in
  its `data-value` attribute;
- the task's plot from TFMA's plots: calibration (binary), confusion matrix
  (multi-class); for regression TFMA keeps no per-example predictions, so the
  page says so unless the EvalConfig asked for a `CalibrationPlot`;
- the student's training curves (loss, soft and hard loss, agreement) from
  the TensorBoard events under the Distiller's `model_run` (the names the
  Distiller's loop writes and the `batch_`/`epoch_` names of Keras'
  TensorBoard callback);
- parameters and SavedModel size (the Distiller's record) and serving
  latency of teacher and student, their `serving_default` timed here on
  serialized eval examples;
- each gate's verdict, its thresholds (the EvalConfig TFMA ran with) with
  which held, and TFMA's failures as sentences; the components' times.

To rewrite the page of a pipeline root's newest run:

    python -m distill_pipelines.html_report --pipeline-root DIR \\
        --pipeline-name NAME [--out FILE]   # default DIR/report.html

To look at it as a browser shows it (Debian's `chromium`; not needed by CI):

    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \\
        --screenshot=docs/report.png --window-size=1280,2400 \\
        file://$PWD/DIR/report.html
"""

import argparse
import base64
import dataclasses
import glob
import html
import io
import math
import os
import statistics
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from distill_components.distiller import properties
from distill_components.distiller.tasks import Task
from distill_pipelines import names
from distill_pipelines import report
from distill_components.distiller.metrics import TASK_METRICS, Metric

# The models as the page names them, in column order, and their names in the
# Evaluators' results.
TEACHER, STUDENT, SERVING = "teacher", "student", "serving"
_TFMA_NAME = {TEACHER: names.TEACHER, STUDENT: names.STUDENT,
              SERVING: names.SERVING}
OVERALL = "overall"

# The curves drawn, in order, whatever prefix Keras gives them.
CURVES = ("loss", "soft_loss", "hard_loss", "agreement")
# Serving latency: one request, and one batch of this many raw examples.
LATENCY_BATCHES = (1, 256)
# Per model and batch size: at most this many timed calls, or this long.
_LATENCY_CALLS, _LATENCY_SECONDS = 7, 0.4
# Regression plot: predictions of both models on this many eval examples.
RESIDUAL_EXAMPLES = 2000
# Calibration plot: TFMA's histogram buckets (1,000 by default) merged into this many.
_CALIBRATION_BINS = 10

# Section titles: the page's headings, in order (the tests look for them).
SECTIONS = {
    "metrics": "Teacher vs student",
    "worth": "Distilled vs the same student alone",
    "plot": {Task.BINARY: "Calibration", Task.MULTICLASS: "Confusion matrix",
             Task.REGRESSION: "Predictions vs labels", None: "Task plot"},
    "curves": "Student training curves",
    "size": "Size and serving latency",
    "gates": "Gates",
    "components": "Components",
}
NO_CURVES = "No training curves recorded"
NOT_AVAILABLE = "not available"


# --- what the page shows ------------------------------------------------------

@dataclasses.dataclass
class Threshold:
  """One bound of a gate's EvalConfig, as a person reads it."""
  metric: str  # the metric's title, e.g. "AUC"
  where: str  # "overall; trip_start_day = 1, 2, 3"
  bound: str  # "at most 0.01 below the teacher's"
  failed_on: List[str] = dataclasses.field(default_factory=list)  # slices
  ignored: bool = False  # a change bound with no baseline to compare with


@dataclasses.dataclass
class Latency:
  """Median milliseconds per `serving_default` call, by batch size."""
  ms: Dict[int, float] = dataclasses.field(default_factory=dict)
  note: str = ""  # why nothing was measured


@dataclasses.dataclass
class Page:
  """Everything the page shows: `read` fills it, `render` draws it."""
  summary: report.RunSummary
  # model (TEACHER, ...) -> slice ("overall", "col=value") -> metric -> value;
  # a sub key's metric is "classId:0/precision".
  metrics: Dict[str, Dict[str, Dict[str, float]]] = dataclasses.field(
      default_factory=dict)
  # model -> TFMA's overall plot data ({"calibrationHistogramBuckets": ...}).
  plots: Dict[str, dict] = dataclasses.field(default_factory=dict)
  # scalar name -> series ("train", "eval") -> [(step, value)].
  curves: Dict[str, Dict[str, List[Tuple[int, float]]]] = dataclasses.field(
      default_factory=dict)
  latency: Dict[str, Latency] = dataclasses.field(default_factory=dict)
  latency_examples: int = 0  # raw eval examples timed
  # gate (Evaluator node id) -> its thresholds; absent: not read.
  thresholds: Dict[str, List[Threshold]] = dataclasses.field(default_factory=dict)
  distillation: Dict[str, object] = dataclasses.field(default_factory=dict)
  # Regression: model -> (labels, predictions) of the first eval examples.
  predictions: Dict[str, Tuple[List[float], List[float]]] = dataclasses.field(
      default_factory=dict)


# --- reading TFMA's results ---------------------------------------------------

def slice_name(slice_key: Sequence[Tuple[str, object]]) -> str:
  """(("trip_start_day", 5),) -> "trip_start_day=5"; () -> "overall"."""
  parts = []
  for column, value in slice_key:
    if isinstance(value, bytes):
      value = value.decode("utf-8", "replace")
    parts.append(f"{column}={value}")
  return ", ".join(parts) or OVERALL


def _slice_value(key) -> object:
  """A SingleSliceKey proto's value (bytes, int or float)."""
  kind = key.WhichOneof("kind")
  return getattr(key, kind) if kind else ""


def _slice_order(name: str) -> Tuple:
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


def _number(value) -> Optional[float]:
  """TFMA's JSON-like value ({"doubleValue": 0.5}, "NaN" as a string)."""
  if isinstance(value, dict):
    value = value.get("doubleValue")
  try:
    return float(value)
  except (TypeError, ValueError):
    return None


def eval_metrics(result) -> Dict[str, Dict[str, float]]:
  """slice -> metric -> value of one model's `tfma.EvalResult`, no diffs."""
  found: Dict[str, Dict[str, float]] = {}
  for slice_key, outputs in result.slicing_metrics:
    values = found.setdefault(slice_name(slice_key), {})
    for sub_key, metrics in outputs.get("", {}).items():
      for name, value in metrics.items():
        number = _number(value)
        if name.endswith("_diff") or number is None:
          continue
        values[f"{sub_key}/{name}" if sub_key else name] = number
  return found


def overall_plot(result) -> dict:
  """One model's plot data on the overall slice (empty if none)."""
  for slice_key, outputs in result.plots:
    if not slice_key and outputs:
      return outputs.get("", {}).get("", {}) or {}
  return {}


def _metric_titles(task: Optional[Task]) -> Dict[str, str]:
  """TFMA class name -> title, with ExampleCount."""
  titles = {"ExampleCount": "example count"}
  for metric in TASK_METRICS.get(task, ()):
    titles[metric.class_name] = metric.title
  return titles


def _tfma_name(class_name: str, task: Optional[Task]) -> str:
  """TFMA's output name of a metric class (how failures name it)."""
  for metric in TASK_METRICS.get(task, ()):
    if metric.class_name == class_name:
      return metric.name
  return "".join("_" + c.lower() if c.isupper() and i else c.lower()
                 for i, c in enumerate(class_name))


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
    ordered = sorted(listed, key=lambda v: _slice_order(f"{column}={v}"))
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
      where = slice_name([(key.column, _slice_value(key))
                          for key in per_slice.slice_key.single_slice_keys])
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
            failed_on=sorted(set(failed.get((name, is_change), [])), key=_slice_order),
            ignored=ignored))
  return found


# --- reading what the Distiller recorded -------------------------------------

def _scalar(value) -> Optional[float]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  kind = value.WhichOneof("value")
  if kind == "simple_value":
    return float(value.simple_value)
  if kind == "tensor":
    array = tf.make_ndarray(value.tensor)
    return float(array) if array.size == 1 and array.dtype.kind in "fiu" else None
  return None


def _curve_name(tag: str) -> Tuple[str, int]:
  """A summary tag -> (scalar name, preference: lower wins).

  The Distiller's own loop writes `loss`; Keras' TensorBoard callback writes
  `batch_loss` every `update_freq` steps, `epoch_loss` per epoch and, for
  validation, `evaluation_loss_vs_iterations`.
  """
  if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
    return tag[len("evaluation_"):-len("_vs_iterations")], 1
  if tag.startswith("batch_"):
    return tag[len("batch_"):], 1
  if tag.startswith("epoch_"):
    return tag[len("epoch_"):], 2
  return tag, 0


def training_curves(model_run_uri: Optional[str]
                    ) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
  """name -> series ("train", "eval") -> [(step, value)] from the event files
  under `model_run_uri`; Keras' `validation` directory is the "eval" series."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not model_run_uri or not os.path.isdir(model_run_uri):
    return {}
  # (name, series) -> preference -> step -> value; the most frequent form of a
  # curve wins (the per-step one over the per-epoch one).
  found: Dict[Tuple[str, str], Dict[int, Dict[int, float]]] = {}
  for path in sorted(glob.glob(os.path.join(model_run_uri, "**", "*tfevents*"),
                               recursive=True)):
    parts = os.path.relpath(path, model_run_uri).split(os.sep)
    series = "eval" if any(p in ("validation", "eval") for p in parts[:-1]) else "train"
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        name, preference = _curve_name(value.tag)
        if name not in CURVES:
          continue
        number = _scalar(value)
        if number is not None:
          found.setdefault((name, series), {}).setdefault(preference, {})[
              int(event.step)] = number
  curves: Dict[str, Dict[str, List[Tuple[int, float]]]] = {}
  for (name, series), by_preference in found.items():
    points = by_preference[min(by_preference)]
    curves.setdefault(name, {})[series] = sorted(points.items())
  return curves


def _load(model_dir: str):
  """The SavedModel of a Model artifact's directory (or a bare one), or None."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for candidate in (os.path.join(model_dir, "Format-Serving"), model_dir):
    if tf.saved_model.contains_saved_model(candidate):
      return tf.saved_model.load(candidate)
  return None


def _load_signature(model_dir: str):
  model = _load(model_dir)
  return model.signatures["serving_default"] if model is not None else None


def serving_latency(model_dir: Optional[str], examples: List[bytes],
                    batches: Sequence[int] = LATENCY_BATCHES) -> Latency:
  """Median ms of `serving_default` on the first n of `examples`, per n."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not model_dir:
    return Latency(note="no model recorded")
  if not examples:
    return Latency(note="no eval examples found")
  try:
    signature = _load_signature(model_dir)
  except Exception as e:  # pylint: disable=broad-except
    return Latency(note=f"could not load: {type(e).__name__}")
  if signature is None:
    return Latency(note=f"no SavedModel in {model_dir}")
  argument = next(iter(signature.structured_input_signature[1]))
  latency = Latency()
  for size in batches:
    batch = {argument: tf.constant(examples[:size])}
    signature(**batch)  # the first call pays for setting up the function
    times, began = [], time.perf_counter()
    while len(times) < _LATENCY_CALLS and time.perf_counter() - began < _LATENCY_SECONDS:
      start = time.perf_counter()
      signature(**batch)
      times.append((time.perf_counter() - start) * 1000)
    latency.ms[min(size, len(examples))] = statistics.median(times)
  return latency


def regression_predictions(model_dirs: Dict[str, Optional[str]], examples: List[bytes],
                           label_key: str, output: str = "predictions",
                           batch: int = 500) -> Dict[str, Tuple[List[float], List[float]]]:
  """model -> (labels, predictions) on `examples`, for the residual plot.

  TFMA aggregates and keeps no per-example predictions, so both SavedModels
  are called here: each one's `serving_default` for its predictions, and the
  student's `transform_features` (which every Distiller export has; a user's
  teacher may not) for the transformed label `label_key` the gates compare
  them with. Models that cannot be loaded or called are left out.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = {}
  for label, model_dir in model_dirs.items():
    try:
      model = _load(model_dir) if model_dir else None
    except Exception:  # pylint: disable=broad-except
      model = None
    if model is not None and "serving_default" in model.signatures:
      loaded[label] = model
  student = loaded.get(STUDENT)
  if not examples or student is None or "transform_features" not in student.signatures:
    return {}

  def call(signature, key):
    argument = next(iter(signature.structured_input_signature[1]))
    parts = [signature(**{argument: tf.constant(examples[i:i + batch])})[key]
             for i in range(0, len(examples), batch)]
    return np.concatenate([np.reshape(p.numpy(), [-1]) for p in parts]).tolist()

  try:
    labels = call(student.signatures["transform_features"], label_key)
  except (KeyError, ValueError, tf.errors.OpError):
    return {}
  found = {}
  for label, model in loaded.items():
    try:
      predicted = call(model.signatures["serving_default"], output)
    except (KeyError, ValueError, tf.errors.OpError):
      continue
    if len(predicted) == len(labels):
      found[label] = (labels, predicted)
  return found


def eval_examples(examples_uri: Optional[str], count: int) -> List[bytes]:
  """The first `count` serialized tf.Examples of an Examples artifact's eval
  split (gzipped TFRecords, as ExampleGen writes them)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not examples_uri:
    return []
  files = sorted(glob.glob(os.path.join(examples_uri, "Split-eval", "*")))
  if not files:
    return []
  compression = "GZIP" if files[0].endswith(".gz") else ""
  records = tf.data.TFRecordDataset(files, compression_type=compression)
  return [r.numpy() for r in records.take(count)]


# --- reading ML Metadata ----------------------------------------------------

def _local(uri: Optional[str], root: str) -> Optional[str]:
  """An artifact's directory, also when the pipeline root was copied or moved
  (MLMD keeps absolute URIs): '<old root>/Node/key/7' -> '<root>/Node/key/7'."""
  if not uri or os.path.exists(uri):
    return uri
  parts = uri.rstrip("/").split("/")
  for depth in range(3, min(len(parts), 6) + 1):
    moved = os.path.join(root, *parts[-depth:])
    if os.path.exists(moved):
      return moved
  return uri


def _artifacts(sqlite_path: str, execution_ids: Dict[str, int]
               ) -> Dict[str, Dict[str, dict]]:
  """node -> "inputs"/"outputs" -> key -> [tfx Artifact], and "properties"
  -> the execution's properties (exec properties), via TFX's helpers."""
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable.mlmd import execution_lib  # pylint: disable=g-import-not-at-top
  # Registers TFX's artifact classes, so the artifacts read back are typed.
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top,unused-import
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = sqlite_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  found = {}
  with metadata.Metadata(connection_config=config) as handle:
    for node, execution_id in execution_ids.items():
      [execution] = handle.store.get_executions_by_id([execution_id])
      found[node] = {
          "inputs": execution_lib.get_input_artifacts(handle, execution_id),
          "outputs": execution_lib.get_output_artifacts(handle, execution_id),
          "properties": {k: v.string_value for k, v in
                         execution.custom_properties.items()}}
  return found


def _first(artifacts: Dict[str, Dict[str, Dict[str, list]]], node: str,
           direction: str, key: str):
  found = artifacts.get(node, {}).get(direction, {}).get(key) or []
  return found[0] if found else None


def _custom(artifact, name: str):
  if artifact is None or not artifact.has_custom_property(name):
    return None
  return artifact.get_custom_property(name)


def evaluation_uri(sqlite_path: str, summary: report.RunSummary,
                   evaluator: str = names.FIDELITY_EVALUATOR) -> Optional[str]:
  """The directory of TFMA's output of `evaluator` in the run of `summary`."""
  execution = {c.node_id: c.execution_id for c in summary.components}.get(evaluator)
  if execution is None:
    return None
  found = _first(_artifacts(sqlite_path, {evaluator: execution}), evaluator,
                 "outputs", "evaluation")
  return _local(found.uri, os.path.dirname(os.path.abspath(sqlite_path))) if found else None


def read(sqlite_path: str, summary: report.RunSummary, latency: bool = True) -> Page:
  """Fills a Page for the run `summary` describes (its executions' ids)."""
  page = Page(summary)
  ok = ("complete", "cached")
  execution_ids = {c.node_id: c.execution_id for c in summary.components
                   if c.state in ok and c.node_id in (
                       names.DISTILLER, names.FIDELITY_EVALUATOR,
                       names.NO_REGRESSION_EVALUATOR)}
  if not execution_ids or not os.path.exists(sqlite_path):
    return page
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.abspath(sqlite_path))
  artifacts = _artifacts(sqlite_path, execution_ids)
  uri = lambda artifact: _local(artifact.uri, root) if artifact is not None else None

  model = _first(artifacts, names.DISTILLER, "outputs", "model")
  label_key = None
  for label, name in (("teacher read as", properties.TEACHER_SOURCE),
                      ("temperature", properties.TEMPERATURE),
                      ("alpha (weight of the soft loss)", properties.ALPHA),
                      ("teacher outputs cached", properties.CACHE_TEACHER_OUTPUTS),
                      ("teacher outputs computed", properties.TEACHER_LABELLING),
                      ("teachers averaged", properties.TEACHERS),
                      ("labelled train examples", properties.LABELLED_EXAMPLES),
                      ("unlabeled examples (transfer set)", properties.UNLABELED_EXAMPLES),
                      ("synthetic examples (transfer set)", properties.SYNTHETIC_EXAMPLES),
                      ("agreement with the teacher (eval)", properties.EVAL_AGREEMENT)):
    value = _custom(model, name)
    if value is not None:
      page.distillation[label] = value
  page.curves = training_curves(
      uri(_first(artifacts, names.DISTILLER, "outputs", "model_run")))

  gates = {g.evaluator: g for g in summary.gates}
  models_dirs: Dict[str, Optional[str]] = {}
  examples_dir = None
  for evaluator, baseline in ((names.FIDELITY_EVALUATOR, TEACHER),
                              (names.NO_REGRESSION_EVALUATOR, SERVING)):
    evaluation = uri(_first(artifacts, evaluator, "outputs", "evaluation"))
    if not evaluation or not os.path.isdir(evaluation):
      continue
    gate = gates.get(evaluator)
    models = [TEACHER, STUDENT] if baseline == TEACHER else [SERVING]
    if gate is not None and gate.no_baseline:
      models = [m for m in models if m == STUDENT]  # TFMA has no baseline figures
    config = None
    for label in models or [STUDENT]:
      result = tfma.load_eval_result(evaluation, model_name=_TFMA_NAME[label])
      config = result.config
      if baseline == TEACHER and config.model_specs:
        label_key = config.model_specs[0].label_key
      metrics = eval_metrics(result)
      if label in models and any(metrics.values()):
        page.metrics[label] = metrics
        page.plots[label] = overall_plot(result)
    if config is not None:
      configured = artifacts[evaluator]["properties"].get("eval_config")
      try:
        configured = json_format.Parse(configured, tfma.EvalConfig())
      except (TypeError, json_format.ParseError):
        configured = None  # only the bounds TFMA ran with are shown
      page.thresholds[evaluator] = gate_thresholds(
          config, "serving model" if baseline == SERVING else baseline,
          summary.task, tfma.load_validation_result(evaluation), configured)
    if baseline == TEACHER:
      models_dirs[STUDENT] = uri(_first(artifacts, evaluator, "inputs", "model"))
      models_dirs[TEACHER] = uri(_first(artifacts, evaluator, "inputs", "baseline_model"))
      examples_dir = uri(_first(artifacts, evaluator, "inputs", "examples"))
  if model is not None:  # the Distiller's record, when no Evaluator ran
    models_dirs.setdefault(STUDENT, uri(model))
    models_dirs.setdefault(TEACHER, _local(_custom(model, properties.TEACHER_URI), root))
  if summary.task is Task.REGRESSION and label_key and examples_dir:
    page.predictions = regression_predictions(
        {m: models_dirs.get(m) for m in (TEACHER, STUDENT)},
        eval_examples(examples_dir, RESIDUAL_EXAMPLES), label_key,
        Task.REGRESSION.serving_output)
  if latency and models_dirs:
    examples = eval_examples(examples_dir, max(LATENCY_BATCHES))
    page.latency_examples = len(examples)
    for label in (TEACHER, STUDENT):
      page.latency[label] = serving_latency(models_dirs.get(label), examples)
  return page


# --- plots --------------------------------------------------------------------

def _png(figure) -> str:
  """A matplotlib Figure as an inline <img> (Agg, no pyplot state)."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  data = base64.b64encode(buffer.getvalue()).decode("ascii")
  return f'<img alt="" src="data:image/png;base64,{data}">'


_COLORS = {TEACHER: "#4c72b0", STUDENT: "#dd8452", SERVING: "#55a868"}


def calibration_bins(buckets: Sequence[dict], bins: int = _CALIBRATION_BINS,
                     keep_empty: bool = False) -> List[Tuple[float, float, float, str]]:
  """TFMA's calibration histogram merged into `bins` equal ranges of the
  prediction: [(examples, mean prediction, mean label, "0.1-0.2")], empty
  ranges left out unless `keep_empty`. TFMA omits zero fields, and its
  first and last buckets are open."""
  edges = [_number(b.get(k, 0.0)) for b in buckets
           for k in ("lowerThresholdInclusive", "upperThresholdExclusive")]
  finite = [e for e in edges if e is not None and math.isfinite(e)]
  if not finite:
    return []
  low, high = min(finite), max(finite)
  width = (high - low) / bins or 1.0
  sums = [[0.0, 0.0, 0.0] for _ in range(bins)]
  for b in buckets:
    count = _number(b.get("numWeightedExamples", 0.0)) or 0.0
    if not count:
      continue
    lower = _number(b.get("lowerThresholdInclusive", 0.0))
    # The epsilon keeps a bucket starting on an edge (0.3 / 0.1 = 2.999...) in
    # the range it starts.
    index = (0 if lower is None or not math.isfinite(lower)
             else math.floor((lower - low) / width + 1e-9))
    entry = sums[max(0, min(index, bins - 1))]
    entry[0] += count
    entry[1] += _number(b.get("totalWeightedRefinedPrediction", 0.0)) or 0.0
    entry[2] += _number(b.get("totalWeightedLabel", 0.0)) or 0.0
  edge = lambda i: f"{low + i * width:.3g}"
  return [(n, p / n if n else 0.0, y / n if n else 0.0, f"{edge(i)}-{edge(i + 1)}")
          for i, (n, p, y) in enumerate(sums) if n or keep_empty]


def calibration_figure(plots: Dict[str, dict], task: Optional[Task]) -> Optional[str]:
  """Mean label against mean prediction per range of the prediction, per
  model, over the share of examples in each range."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  series = {label: calibration_bins(
      data.get("calibrationHistogramBuckets", {}).get("buckets", []))
            for label, data in plots.items()}
  series = {label: points for label, points in series.items() if points}
  if not series:
    return None
  figure = Figure(figsize=(6.0, 4.9))
  top, bottom = figure.subplots(2, 1, sharex=True,
                                gridspec_kw={"height_ratios": [3, 1]})
  values = [v for points in series.values() for _, p, y, _ in points for v in (p, y)]
  low, high = min(values + [0.0]), max(values + [1.0])
  top.plot([low, high], [low, high], color="#999", linestyle="--", linewidth=1,
           label="perfectly calibrated")
  for label, points in series.items():
    total = sum(n for n, _, _, _ in points)
    predicted = [p for _, p, _, _ in points]
    top.plot(predicted, [y for _, _, y, _ in points], marker="o", label=label,
             color=_COLORS.get(label))
    bottom.plot(predicted, [n / total for n, _, _, _ in points], marker=".",
                color=_COLORS.get(label))
  binary = task is Task.BINARY
  top.set_ylabel("fraction of positives" if binary else "mean label")
  top.set_title(f"{_CALIBRATION_BINS} ranges of the prediction, eval split, "
                "overall", fontsize=10)
  top.legend(loc="upper left", fontsize=9)
  top.grid(alpha=0.3)
  bottom.set_yscale("log")
  bottom.set_ylabel("share of\nexamples")
  bottom.set_xlabel("mean predicted probability" if binary else "mean prediction")
  bottom.grid(alpha=0.3)
  return _png(figure)


def confusion_counts(plot: dict) -> Tuple[List[int], List[List[float]]]:
  """TFMA's MultiClassConfusionMatrixPlot -> (class ids, counts[true][pred]).

  Class id -1 is "no prediction" (no class above the threshold)."""
  matrices = plot.get("multiClassConfusionMatrixAtThresholds", {}).get("matrices", [])
  entries = matrices[0].get("entries", []) if matrices else []
  actual = lambda e: int(e.get("actualClassId", 0))
  predicted = lambda e: int(e.get("predictedClassId", 0))
  classes = sorted({actual(e) for e in entries} | {predicted(e) for e in entries})
  index = {c: i for i, c in enumerate(classes)}
  counts = [[0.0] * len(classes) for _ in classes]
  for e in entries:
    counts[index[actual(e)]][index[predicted(e)]] += _number(
        e.get("numWeightedExamples", 0.0)) or 0.0
  return classes, counts


def confusion_figure(plots: Dict[str, dict]) -> Optional[str]:
  """Student and teacher side by side: counts, shaded by the share of each
  true class (so recall reads along the diagonal)."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  shown = [(label, *confusion_counts(plots[label])) for label in (STUDENT, TEACHER)
           if label in plots]
  shown = [s for s in shown if s[1]]
  if not shown:
    return None
  size = max(len(classes) for _, classes, _ in shown)
  side = min(3.6 + 0.2 * size, 6.0)
  figure = Figure(figsize=(side * len(shown), side * 0.9))
  axes = figure.subplots(1, len(shown), squeeze=False)[0]
  for axis, (label, classes, counts) in zip(axes, shown):
    shares = [[c / (sum(row) or 1.0) for c in row] for row in counts]
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if len(classes) <= 15:
      for i, row in enumerate(counts):
        for j, value in enumerate(row):
          axis.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if shares[i][j] > 0.6 else "black")
    ticks = ["none" if c == -1 else str(c) for c in classes]
    axis.set_xticks(range(len(classes)), ticks)
    axis.set_yticks(range(len(classes)), ticks)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.set_title(label)
  figure.tight_layout()
  return _png(figure)


def residual_figure(predictions: Dict[str, Tuple[List[float], List[float]]]
                    ) -> Optional[str]:
  """Per model: prediction against label, and the residual (prediction -
  label) against the label, so a bias over part of the range shows."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  shown = [(m, *predictions[m]) for m in (TEACHER, STUDENT) if predictions.get(m)]
  if not shown:
    return None
  figure = Figure(figsize=(10.0, 4.2))
  scatter, residual = figure.subplots(1, 2)
  values = [v for _, labels, predicted in shown for v in (*labels, *predicted)]
  low, high = min(values), max(values)
  scatter.plot([low, high], [low, high], color="#999", linestyle="--", linewidth=1,
               label="prediction = label")
  residual.axhline(0.0, color="#999", linestyle="--", linewidth=1)
  for model, labels, predicted in shown:
    style = dict(s=6, alpha=0.35, color=_COLORS.get(model), label=model)
    scatter.scatter(labels, predicted, **style)
    residual.scatter(labels, [p - y for p, y in zip(predicted, labels)], **style)
  scatter.set_xlabel("label (transformed)")
  scatter.set_ylabel("prediction")
  residual.set_xlabel("label (transformed)")
  residual.set_ylabel("prediction - label")
  for axis in (scatter, residual):
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", markerscale=2)
  figure.suptitle(f"first {len(shown[0][1]):,} eval examples", fontsize=10)
  figure.tight_layout()
  return _png(figure)


def _residual_table(predictions: Dict[str, Tuple[List[float], List[float]]]) -> str:
  rows = []
  for model in (TEACHER, STUDENT):
    if not predictions.get(model):
      continue
    labels, predicted = predictions[model]
    errors = [p - y for p, y in zip(predicted, labels)]
    mean = sum(errors) / len(errors)
    mae = sum(abs(e) for e in errors) / len(errors)
    rows.append(f"<tr><td>{_e(model)}</td><td class='num'>{len(errors):,}</td>"
                f"<td class='num'>{mean:+.4g}</td><td class='num'>{mae:.4g}</td></tr>")
  return ("<table class='compact'><thead><tr><th>model</th><th class='num'>examples"
          "</th><th class='num'>mean residual</th><th class='num'>MAE</th></tr>"
          "</thead><tbody>" + "".join(rows) + "</tbody></table>")


def curves_figure(curves: Dict[str, Dict[str, List[Tuple[int, float]]]]) -> Optional[str]:
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  shown = [name for name in CURVES if curves.get(name)]
  if not shown:
    return None
  # One row: the four curves share the step axis, read side by side.
  columns, rows = len(shown), 1
  figure = Figure(figsize=(3.3 * columns, 2.8))
  axes = figure.subplots(rows, columns, squeeze=False).ravel()
  for axis, name in zip(axes, shown):
    for series, points in sorted(curves[name].items(), reverse=True):
      steps, values = zip(*points)
      axis.plot(steps, values, marker="." if len(points) < 30 else None,
                linestyle="-" if series == "train" else "--", label=series,
                color="#dd8452" if series == "train" else "#4c72b0")
    axis.set_title(name.replace("_", " "), fontsize=10)
    axis.set_xlabel("step")
    axis.grid(alpha=0.3)
    if len(curves[name]) > 1:
      axis.legend(fontsize=8)
  for axis in axes[len(shown):]:
    axis.set_visible(False)
  figure.tight_layout()
  return _png(figure)


# --- the page -------------------------------------------------------------------

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: #1f2328; background: #f6f7f9; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
section, header { background: #fff; border: 1px solid #d8dee4; border-radius: 8px;
          padding: 16px 20px; margin: 16px 0; }
.sub { color: #59636e; margin: 0 0 12px; }
.verdict { font-size: 17px; font-weight: 600; padding: 10px 14px; border-radius: 6px;
           margin: 12px 0 0; }
.ok { background: #dafbe1; color: #116329; }
.bad { background: #ffebe9; color: #a40e26; }
.none { background: #eaeef2; color: #424a53; }
table { border-collapse: collapse; margin: 4px 0 8px; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eaeef2; text-align: left;
         vertical-align: top; }
thead th { background: #f6f8fa; border-bottom: 1px solid #d8dee4; }
th.group { text-align: center; border-left: 1px solid #d8dee4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums;
                 white-space: nowrap; }
td.first { border-left: 1px solid #d8dee4; }
tr.overall td { font-weight: 600; background: #fbfbfc; }
td.worse { color: #a40e26; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px;
         font-size: 13px; font-weight: 600; }
.note { color: #59636e; font-style: italic; }
ul.failures { margin: 4px 0; padding-left: 20px; color: #a40e26; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px;
           margin: 12px 0 0; font-size: 14px; }
dl.facts dt { color: #59636e; } dl.facts dd { margin: 0; }
img { max-width: 100%; }
div.wide { overflow-x: auto; } td.slice { white-space: nowrap; }
.row { display: flex; gap: 20px; align-items: flex-start; flex-wrap: wrap; }
.row > img { width: 500px; }
table.compact { font-size: 13px; } table.compact th, table.compact td { padding: 3px 7px; }
code { font-size: 13px; }
"""


def _e(text) -> str:
  return html.escape(str(text), quote=True)


def _fmt(value: Optional[float], digits: int = 4) -> str:
  if value is None:
    return "-"
  if math.isnan(value):
    return "NaN"
  return f"{value:.{digits}f}"


def _cell(model: str, where: str, metric: str, value: Optional[float],
          first: bool = False, worse: bool = False) -> str:
  """A figure of TFMA's: shown rounded, exact in `data-value`."""
  classes = " ".join(["num"] + (["first"] if first else []) + (["worse"] if worse else []))
  if value is None:
    return f'<td class="{classes}">-</td>'
  return (f'<td class="{classes}" data-model="{_e(model)}" data-slice="{_e(where)}" '
          f'data-metric="{_e(metric)}" data-value="{value!r}">{_fmt(value)}</td>')


def _worse(metric: Metric, student: Optional[float], teacher: Optional[float]) -> bool:
  if student is None or teacher is None or not metric.gateable:
    return False
  if math.isnan(student) or math.isnan(teacher) or _fmt(student) == _fmt(teacher):
    return False  # a difference the page does not show is not flagged
  return student < teacher if metric.higher_is_better else student > teacher


def _section(key: str, title: str, body: str) -> str:
  return f'<section id="{key}"><h2>{_e(title)}</h2>\n{body}\n</section>'


def _note(text: str) -> str:
  return f'<p class="note">{_e(text)}</p>'


def _header(page: Page) -> str:
  s = page.summary
  task = s.task.value if s.task else "-"
  total = sum(c.seconds for c in s.components)
  parts = [f"<h1>{_e(s.pipeline_name)}</h1>",
           f'<p class="sub">run <code>{_e(s.run_id or "-")}</code> &middot; task '
           f'<b>{_e(task)}</b> &middot; {len(s.components)} components, '
           f'{total:.1f}s</p>']
  if s.pushed_missing:
    verdict, kind = (f"Not served: the pushed model at {s.pushed_missing} is "
                     "missing; rerun with --no-cache to push it again", "bad")
  elif s.pushed_to:
    verdict, kind = f"Blessed by every gate and pushed to {s.pushed_to}", "ok"
  elif s.held_for_no_gain:
    verdict, kind = ("Not pushed: --require-gain, and the student trained alone "
                     "beat the distilled one", "bad")
  elif s.stopped_by == "data validation":
    verdict, kind = "Not pushed: stopped by data validation (the DataGate)", "bad"
  elif s.stopped_by:
    verdict, kind = f"Not pushed: stopped by the {s.stopped_by} gate", "bad"
  elif s.failed:
    verdict, kind = f"Failed: {', '.join(s.failed)}", "bad"
  elif s.blessed:
    verdict, kind = "Blessed by every gate; nothing pushed", "none"
  else:
    verdict, kind = "No gate ran: nothing pushed", "none"
  parts.append(f'<p class="verdict {kind}">{_e(verdict)}</p>')
  facts = dict(page.distillation)
  if s.agreement is not None:
    facts.setdefault("agreement with the teacher (eval)", s.agreement)
  if facts:
    parts.append('<dl class="facts">' + "".join(
        f"<dt>{_e(k)}</dt><dd>{_e(_fact(k, v))}</dd>" for k, v in facts.items())
                 + "</dl>")
  return '<header id="verdict">' + "\n".join(parts) + "</header>"


def _fact(label: str, value) -> str:
  if "cached" in label:
    return "yes" if value else "no"
  if isinstance(value, float):
    return f"{value:.4f}" if "agreement" in label else f"{value:g}"
  return str(value)


def _task_metrics(page: Page) -> List[Metric]:
  metrics = list(TASK_METRICS.get(page.summary.task, ()))
  if metrics:
    return metrics
  names_found = sorted({m for by_slice in page.metrics.values()
                        for values in by_slice.values() for m in values
                        if "/" not in m and m != "example_count"})
  return [Metric(n, n, n, True, gateable=False) for n in names_found]


def _metrics_section(page: Page) -> str:
  s = page.summary
  models = [m for m in (TEACHER, STUDENT, SERVING) if page.metrics.get(m)]
  metrics = _task_metrics(page)
  if not models:
    # No TFMA result to read: what the summary kept (overall only), if any.
    sides = {TEACHER: s.teacher.metrics, STUDENT: s.student.metrics,
             SERVING: s.serving.metrics}
    sides = {k: v for k, v in sides.items() if v}
    if not sides:
      return _note(f"Metrics {NOT_AVAILABLE}: no Evaluator result for this run.")
    rows = "".join(
        f"<tr><td>{_e(m.title)}</td>" + "".join(
            f'<td class="num">{_fmt(v.get(m.name))}</td>' for v in sides.values())
        + "</tr>" for m in metrics)
    return (_note(f"Per-slice metrics {NOT_AVAILABLE}: only the summary's overall "
                  "figures.") + "<table><thead><tr><th>metric</th>" + "".join(
                      f'<th class="num">{_e(k)}</th>' for k in sides)
            + f"</tr></thead><tbody>{rows}</tbody></table>")
  slices = sorted({name for m in models for name in page.metrics[m]}, key=_slice_order)
  head = ('<tr><th rowspan="2">slice</th><th rowspan="2" class="num">examples</th>'
          + "".join(f'<th class="group" colspan="{len(models)}">{_e(m.title)}</th>'
                    for m in metrics)
          + "</tr><tr>" + "".join(
              f'<th class="num">{_e(model)}</th>' for _ in metrics for model in models)
          + "</tr>")
  body = []
  for where in slices:
    values = {m: page.metrics[m].get(where, {}) for m in models}
    count = next((values[m].get("example_count") for m in (STUDENT, TEACHER, SERVING)
                  if m in values and values[m].get("example_count") is not None), None)
    cells = [f'<td class="slice">{_e(where)}</td>',
             f'<td class="num">{"-" if count is None else f"{count:,.0f}"}</td>']
    for metric in metrics:
      for i, model in enumerate(models):
        value = values[model].get(metric.name)
        worse = model == STUDENT and _worse(
            metric, value, values.get(TEACHER, {}).get(metric.name))
        cells.append(_cell(model, where, metric.name, value, first=not i, worse=worse))
    kind = ' class="overall"' if where == OVERALL else ""
    body.append(f"<tr{kind}>" + "".join(cells) + "</tr>")
  parts = [
      '<p class="sub">As TFMA computed them on the eval split '
      '(<code>tfma.load_eval_result</code>), overall and on each slice'
      + ("; serving: the model being served, the latest student the pipeline "
         "blessed" if SERVING in models else "")
      + '; <span style="color:#a40e26">red</span>: the student worse than the '
      "teacher.</p>",
      f"<div class='wide'><table><thead>{head}</thead><tbody>{''.join(body)}"
      "</tbody></table></div>"]
  parts.append(_per_class(page, models))
  return "\n".join(parts)


def _worth_section(page: Page) -> str:
  """The distilled student and the same student trained alone (the
  Distiller's TFMA figures), which went on and why; the teacher's candidates."""
  s = page.summary
  if not s.students:
    return _note(f"The student alone {NOT_AVAILABLE}: this run's Distiller "
                 "recorded no comparison.")
  metrics = _task_metrics(page)
  chosen_by = next((m for m in metrics if m.name == s.choice_metric), None)
  parts = [_e(line) for line in report.choice_lines(s) if not line.startswith("  ")]
  if s.student_chosen == "alone":
    why = ("The student trained alone scored better on the validation cut, so it "
           + ("is not pushed: --require-gain holds the run before the Pusher."
              if s.held_for_no_gain else "went on to the gates in the distilled "
              "one's place."))
  else:
    why = ("The distilled student scored at least as well as the student trained "
           "alone on the validation cut, so it went on to the gates.")
  parts = [f"<p>{'<br>'.join(parts)}</p>", _note(why)]
  head = ("<tr><th rowspan='2'>student</th>" + "".join(
      f"<th class='group' colspan='{len(metrics)}'>{_e(where)}</th>"
      for where in ("validation cut (chooses)", "eval split (reported)"))
          + "</tr><tr>" + "".join(
              f"<th class='num'>{_e(m.title)}"
              + (" &#9733;" if m is chosen_by else "") + "</th>"
              for _ in range(2) for m in metrics) + "</tr>")
  rows = []
  for student in ("distilled", "alone"):
    label = student + (" (went on)" if student == s.student_chosen else "")
    cells = [f"<td>{_e(label)}</td>"]
    for part in ("validation", "eval"):
      values = s.students.get(part, {}).get(student, {})
      cells += [_cell(student, part, m.name, values.get(m.name)) for m in metrics]
    rows.append("<tr>" + "".join(cells) + "</tr>")
  parts.append(f"<div class='wide'><table><thead>{head}</thead>"
               f"<tbody>{''.join(rows)}</tbody></table></div>")
  parts.append(
      f'<p class="sub">The same <code>build_student</code>, seed, steps and train '
      "rows; the student alone learns from the labels only (alpha 0). Both were "
      f"scored by TFMA in the Distiller: on the validation cut "
      f"({s.validation_examples or 0:,} train rows, by a hash of their features, "
      "that neither trained on) and on the eval split, which gates the one that "
      "goes on and never chooses it. &#9733;: the metric that chose.</p>")
  if s.teacher_candidates:
    names_ = sorted(s.teacher_candidates)
    rows = "".join(
        f"<tr><td>{_e(n)}{' (kept)' if n == s.teacher_chosen else ''}</td>" + "".join(
            _cell(n, "validation", m.name, s.teacher_candidates[n].get(m.name))
            for m in metrics) + "</tr>" for n in names_)
    parts.append(
        "<h3>The teacher's candidates, on the validation cut</h3><table><thead>"
        "<tr><th>teacher</th>" + "".join(f"<th class='num'>{_e(m.title)}</th>"
                                         for m in metrics)
        + f"</tr></thead><tbody>{rows}</tbody></table>")
  return "\n".join(parts)


def _per_class(page: Page, models: List[str]) -> str:
  """Multi-class: TFMA's one-vs-rest precision and recall per class, overall."""
  keys = sorted({k for m in models for k in page.metrics[m].get(OVERALL, {})
                 if "/" in k}, key=lambda k: (k.split("/")[1], _class_id(k)))
  if not keys:
    return ""
  classes = sorted({k.split("/")[0] for k in keys}, key=_class_id)
  measures = sorted({k.split("/")[1] for k in keys})
  head = ('<tr><th rowspan="2">class</th>' + "".join(
      f'<th class="group" colspan="{len(models)}">{_e(m)}</th>' for m in measures)
          + "</tr><tr>" + "".join(f'<th class="num">{_e(model)}</th>'
                                  for _ in measures for model in models) + "</tr>")
  rows = []
  for cls in classes:
    cells = [f"<td>{_e(cls.replace('classId:', ''))}</td>"]
    for measure in measures:
      for i, model in enumerate(models):
        key = f"{cls}/{measure}"
        cells.append(_cell(model, OVERALL, key,
                           page.metrics[model].get(OVERALL, {}).get(key), first=not i))
    rows.append("<tr>" + "".join(cells) + "</tr>")
  return ("<h3>Per class, overall (one class against the rest)</h3>"
          f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")


def _class_id(key: str) -> int:
  digits = key.split("/")[0].rpartition(":")[2]
  return int(digits) if digits.lstrip("-").isdigit() else 0


def _plot_section(page: Page) -> str:
  task = page.summary.task
  if not page.plots:
    return _note(f"Plot {NOT_AVAILABLE}: no Evaluator result for this run.")
  if task is Task.MULTICLASS:
    image = confusion_figure(page.plots)
    if not image:
      return _note(f"Confusion matrix {NOT_AVAILABLE}: TFMA recorded none.")
    return ('<p class="sub">TFMA\'s MultiClassConfusionMatrixPlot, overall: counts '
            "of examples, shaded by the share of their true class (recall on the "
            "diagonal); \"none\": no class above the threshold.</p>" + image)
  image = calibration_figure(page.plots, task)
  if image:
    return f'<div class="row">{image}{_calibration_table(page.plots, task)}</div>'
  if task is Task.REGRESSION:
    image = residual_figure(page.predictions)
    if not image:
      return _note(f"Residuals {NOT_AVAILABLE}: the models could not be called "
                   "on the eval examples.")
    return ('<p class="sub">TFMA keeps aggregates, not per-example predictions: '
            "both models' <code>serving_default</code> called here on raw eval "
            "examples, the label from the student's <code>transform_features</code> "
            "(the label the gates compare with).</p>"
            + image + _residual_table(page.predictions))
  return _note(f"Calibration plot {NOT_AVAILABLE}: TFMA recorded none.")


def _calibration_table(plots: Dict[str, dict], task: Optional[Task]) -> str:
  """The plotted points as figures: per range, examples and both means."""
  models = [m for m in (TEACHER, STUDENT, SERVING) if m in plots]
  bins = {m: calibration_bins(plots[m].get("calibrationHistogramBuckets", {})
                              .get("buckets", []), _CALIBRATION_BINS, keep_empty=True)
          for m in models}
  if not any(bins.values()):
    return ""
  label = "positives" if task is Task.BINARY else "mean label"
  head = ('<tr><th rowspan="2">range</th>' + "".join(
      f'<th class="group" colspan="3">{_e(m)}</th>' for m in models) + "</tr><tr>"
          + "".join('<th class="num">examples</th><th class="num">predicted</th>'
                    f'<th class="num">{label}</th>' for _ in models) + "</tr>")
  rows = []
  for i in range(_CALIBRATION_BINS):
    ranges = [bins[m][i][3] for m in models if bins[m]]
    cells = [f"<td>{_e(ranges[0] if ranges else '')}</td>"]
    for m in models:
      n, p, y, _ = bins[m][i] if bins[m] else (0, None, None, "")
      cells += [f'<td class="num first">{n:,.0f}</td>',
                f'<td class="num">{_fmt(p, 3) if n else "-"}</td>',
                f'<td class="num">{_fmt(y, 3) if n else "-"}</td>']
    rows.append("<tr>" + "".join(cells) + "</tr>")
  return ('<div><p class="sub">TFMA\'s calibration histogram (overall), in '
          f'{_CALIBRATION_BINS} ranges of the prediction.</p>'
          f"<table class='compact'><thead>{head}</thead><tbody>{''.join(rows)}"
          "</tbody></table></div>")


def _curves_section(page: Page) -> str:
  image = curves_figure(page.curves)
  if not image:
    return _note(f"{NO_CURVES} (no TensorBoard events with "
                 f"{', '.join(CURVES)} under the Distiller's model run).")
  return ('<p class="sub">From the TensorBoard events under the Distiller\'s '
          "<code>model_run</code>.</p>" + image)


def _size_section(page: Page) -> str:
  s = page.summary
  sides = {TEACHER: s.teacher, STUDENT: s.student}
  batches = sorted({b for lat in page.latency.values() for b in lat.ms}) or list(
      LATENCY_BATCHES)
  head = ("<tr><th>model</th><th class='num'>parameters</th>"
          "<th class='num'>SavedModel (MB)</th>" + "".join(
              f"<th class='num'>latency, {b} example{'s' if b > 1 else ''} (ms)</th>"
              for b in batches) + "</tr>")
  rows = []
  notes = []
  for label, side in sides.items():
    latency = page.latency.get(label, Latency(note="no model read for this run"))
    mb = side.saved_model_bytes / 1e6 if side.saved_model_bytes else None
    cells = [f"<td>{_e(label)}</td>",
             f"<td class='num'>{'-' if side.params is None else f'{side.params:,}'}</td>",
             f"<td class='num'>{_fmt(mb, 2)}</td>"]
    cells += [f"<td class='num'>{_fmt(latency.ms.get(b), 2)}</td>" for b in batches]
    rows.append("<tr>" + "".join(cells) + "</tr>")
    if not latency.ms:
      notes.append(f"{label}'s latency {NOT_AVAILABLE}: {latency.note}")
  ms = lambda label, b: page.latency.get(label, Latency()).ms.get(b)
  ratios = [report.ratio(s.teacher.params, s.student.params, "fewer", "more"),
            report.ratio(s.teacher.saved_model_bytes, s.student.saved_model_bytes,
                   "smaller", "larger")]
  ratios += [report.ratio(ms(TEACHER, b), ms(STUDENT, b), "faster", "slower")
             for b in batches]
  rows.append("<tr><td>teacher / student</td>" + "".join(
      f"<td class='num'>{_e(r)}</td>" for r in ratios) + "</tr>")
  parts = [f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"]
  if page.latency_examples:
    parts.append(f'<p class="sub">Latency: median of up to {_LATENCY_CALLS} calls of '
                 "each SavedModel's <code>serving_default</code> on serialized raw "
                 "tf.Examples of the eval split, timed in this process when the "
                 "report was written (the machine's load shows in them).</p>")
  parts += [_note(n) for n in notes]
  return "\n".join(parts)


def _verdict_badge(verdict: str) -> str:
  kind = {"passed": "ok", "failed": "bad"}.get(verdict, "none")
  return f'<span class="badge {kind}">{_e(verdict)}</span>'


def _gates_section(page: Page) -> str:
  s = page.summary
  parts = []
  if s.data_anomalies:
    parts.append(f"<h3>data validation {_verdict_badge('failed')}</h3>"
                 "<ul class='failures'>" + "".join(
                     f"<li>{_e(a)}</li>" for a in s.data_anomalies) + "</ul>")
  for gate in s.gates:
    parts.append(f"<h3>{_e(gate.title)} {_verdict_badge(gate.verdict)}</h3>")
    if gate.verdict == "not run":
      parts.append(_note("Not run: it runs only on a student the fidelity gate "
                         "blessed."))
      continue
    if gate.no_baseline:
      parts.append(_note("No serving model yet (a first run): TFX's Evaluator "
                         "ignored the change thresholds; only the absolute bounds held."))
    thresholds = page.thresholds.get(gate.evaluator)
    if thresholds is None:
      parts.append(_note(f"Thresholds {NOT_AVAILABLE}: no evaluation recorded."))
    elif thresholds:
      rows = []
      for t in thresholds:
        if t.ignored:
          result = '<span class="note">ignored</span>'
        elif t.failed_on:
          result = ('<span class="badge bad">failed</span> '
                    + _e(", ".join(t.failed_on)))
        else:
          result = '<span class="badge ok">held</span>'
        rows.append(f"<tr><td>{_e(t.metric)}</td><td>{_e(t.bound)}</td>"
                    f"<td>{_e(t.where)}</td><td>{result}</td></tr>")
      parts.append("<table><thead><tr><th>metric</th><th>bound</th><th>on</th>"
                   f"<th>result</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    if gate.failures:
      parts.append("<ul class='failures'>" + "".join(
          f"<li>{_e(line)}</li>" for line in gate.failures) + "</ul>")
  if not parts:
    parts.append(_note("No gate ran in this run."))
  return "\n".join(parts)


def _components_section(page: Page) -> str:
  s = page.summary
  if not s.components:
    return _note(f"Components {NOT_AVAILABLE}.")
  rows = "".join(
      f"<tr><td>{_e(c.node_id)}</td><td>{_e(c.state)}</td>"
      f"<td class='num'>{c.seconds:.1f}</td></tr>" for c in s.components)
  return ("<table><thead><tr><th>component</th><th>state</th>"
          f"<th class='num'>seconds</th></tr></thead><tbody>{rows}</tbody></table>")


def render(page: Page) -> str:
  """The page's HTML, from what `read` gathered (or a bare summary)."""
  s = page.summary
  sections = [
      _header(page),
      _section("metrics", SECTIONS["metrics"], _metrics_section(page)),
      _section("worth", SECTIONS["worth"], _worth_section(page)),
      _section("plot", SECTIONS["plot"].get(s.task, SECTIONS["plot"][None]),
               _plot_section(page)),
      _section("curves", SECTIONS["curves"], _curves_section(page)),
      _section("size", SECTIONS["size"], _size_section(page)),
      _section("gates", SECTIONS["gates"], _gates_section(page)),
      _section("components", SECTIONS["components"], _components_section(page)),
  ]
  return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
          f"<title>{_e(s.pipeline_name)}: run {_e(s.run_id)}</title>"
          f"<style>{_CSS}</style></head>\n<body><main>\n" + "\n".join(sections)
          + "\n</main></body></html>\n")


def write(sqlite_path: str, pipeline_name: str, out_path: str,
          summary: Optional[report.RunSummary] = None) -> str:
  """Writes the newest run's report.html at `out_path`; returns the path.

  `summary`: the run's `report.summarize` if the caller has it (it is read
  otherwise). A run that stopped early gets a page too, with placeholders.
  """
  if summary is None:
    summary = report.summarize(sqlite_path, pipeline_name)
  text = render(read(sqlite_path, summary))
  directory = os.path.dirname(os.path.abspath(out_path))
  os.makedirs(directory, exist_ok=True)
  with open(out_path, "w", encoding="utf-8") as f:
    f.write(text)
  return out_path


def main(argv: Optional[Iterable[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m distill_pipelines.html_report",
      description="Writes report.html for a pipeline root's newest run.")
  parser.add_argument("--pipeline-root", required=True)
  parser.add_argument("--pipeline-name", required=True)
  parser.add_argument("--out", help="default: PIPELINE_ROOT/report.html")
  args = parser.parse_args(None if argv is None else list(argv))
  sqlite_path = os.path.join(args.pipeline_root, "metadata.sqlite")
  if not os.path.exists(sqlite_path):
    parser.error(f"no metadata.sqlite in --pipeline-root {args.pipeline_root!r}")
  out = args.out or os.path.join(args.pipeline_root, "report.html")
  print(write(sqlite_path, args.pipeline_name, out))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
