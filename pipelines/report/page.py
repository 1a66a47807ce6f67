"""What report.html shows about one run: `read` gathers it into a `Page`.

From the run's `RunSummary` (summary.py) and, through the same MLMD reader
(`distill_pipelines.mlmd`), what the Distiller and the Evaluators wrote: TFMA's figures on
every slice and its plots (evaluation.py), each gate's thresholds, the
student's training curves (figures.py), and the serving latency of teacher
and student timed here on eval examples (distill_components.measure).
"""

import dataclasses
import glob
import os
from typing import Dict, List, Optional

from distill_components.distiller import properties
from distill_components.distiller.tasks import Task
from distill_components import measure
from distill_pipelines import mlmd
from distill_pipelines import names
from distill_pipelines.report import evaluation
from distill_pipelines.report import figures
from distill_pipelines.report.summary import RunSummary

# Regression plot: predictions of both models on this many eval examples.
RESIDUAL_EXAMPLES = 2000
# The Distiller's record shown under the verdict, in order: label -> property.
_FACTS = (("teacher read as", properties.TEACHER_SOURCE),
          ("temperature", properties.TEMPERATURE),
          ("alpha (weight of the soft loss)", properties.ALPHA),
          ("teacher outputs cached", properties.CACHE_TEACHER_OUTPUTS),
          ("teacher outputs computed", properties.TEACHER_LABELLING),
          ("teachers averaged", properties.TEACHERS),
          ("labelled train examples", properties.LABELLED_EXAMPLES),
          ("unlabeled examples (transfer set)", properties.UNLABELED_EXAMPLES),
          ("synthetic examples (transfer set)", properties.SYNTHETIC_EXAMPLES),
          ("agreement with the teacher (eval)", properties.EVAL_AGREEMENT))


@dataclasses.dataclass
class Page:
  """Everything the page shows: `read` fills it, `html.render` draws it."""
  summary: RunSummary
  # model (names.TEACHER, ...) -> slice ("overall", "col=value") -> metric ->
  # value; a sub key's metric is "classId:0/precision".
  metrics: Dict[str, Dict[str, Dict[str, float]]] = dataclasses.field(
      default_factory=dict)
  # model -> TFMA's overall plot data ({"calibrationHistogramBuckets": ...}).
  plots: Dict[str, dict] = dataclasses.field(default_factory=dict)
  # scalar name -> series ("train", "eval") -> [(step, value)].
  curves: figures.Curves = dataclasses.field(default_factory=dict)
  latency: Dict[str, measure.Latency] = dataclasses.field(default_factory=dict)
  latency_examples: int = 0  # raw eval examples timed
  # gate (Evaluator node id) -> its thresholds; absent: not read.
  thresholds: Dict[str, List[evaluation.Threshold]] = dataclasses.field(
      default_factory=dict)
  distillation: Dict[str, object] = dataclasses.field(default_factory=dict)
  # Regression: model -> (labels, predictions) of the first eval examples.
  predictions: figures.Predictions = dataclasses.field(default_factory=dict)


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


def regression_predictions(model_dirs: Dict[str, Optional[str]], examples: List[bytes],
                           label_key: str, output: str = "predictions",
                           batch: int = 500) -> figures.Predictions:
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
      model = measure.load(model_dir) if model_dir else None
    except Exception:  # pylint: disable=broad-except
      model = None
    if model is not None and "serving_default" in model.signatures:
      loaded[label] = model
  student = loaded.get(names.STUDENT)
  if not examples or student is None or "transform_features" not in student.signatures:
    return {}

  def call(signature, key):
    argument = measure.input_name(signature)
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


def evaluation_uri(sqlite_path: str, summary: RunSummary,
                   evaluator: str = names.FIDELITY_EVALUATOR) -> Optional[str]:
  """The directory of TFMA's output of `evaluator` in the run of `summary`."""
  execution = {c.node_id: c.execution_id for c in summary.components}.get(evaluator)
  if execution is None:
    return None
  with mlmd.connect(sqlite_path) as handle:
    found = mlmd.executions(handle, {evaluator: execution})[evaluator].output(
        names.EVALUATION_KEY)
  root = os.path.dirname(os.path.abspath(sqlite_path))
  return mlmd.local_uri(found.uri, root) if found else None


def _read_gate(page: Page, evaluator: str, execution: mlmd.Execution, baseline: str,
               evaluation_dir: str) -> Optional[str]:
  """Fills the page with one gate's TFMA figures, plots and thresholds;
  returns the label key TFMA read (fidelity gate) or None."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  gate = {g.evaluator: g for g in page.summary.gates}.get(evaluator)
  models = ([names.TEACHER, names.STUDENT] if baseline == names.TEACHER
            else [names.SERVING])
  if gate is not None and gate.no_baseline:
    models = [m for m in models if m == names.STUDENT]  # TFMA has no baseline figures
  label_key = config = None
  for model, result in evaluation.load(evaluation_dir, models or [names.STUDENT]).items():
    config = result.config
    if baseline == names.TEACHER and config.model_specs:
      label_key = config.model_specs[0].label_key
    metrics = evaluation.eval_metrics(result)
    if model in models and any(metrics.values()):
      page.metrics[model] = metrics
      page.plots[model] = evaluation.overall_plot(result)
  page.thresholds[evaluator] = evaluation.gate_thresholds(
      config, "serving model" if baseline == names.SERVING else baseline,
      page.summary.task, tfma.load_validation_result(evaluation_dir),
      _configured(execution))
  return label_key


def _configured(execution: mlmd.Execution):
  """The EvalConfig an Evaluator was given (None: only the bounds TFMA ran
  with can be shown)."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  try:
    return json_format.Parse(execution.properties.get("eval_config"), tfma.EvalConfig())
  except (TypeError, json_format.ParseError):
    return None


def _read_litert_gate(page: Page, execution: mlmd.Execution, evaluation_dir: str) -> None:
  """The LiteRT gate's thresholds: it always has its baseline (the float32
  file), so the EvalConfig it was given is the one TFMA ran with."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  config = _configured(execution)
  if config is not None:
    page.thresholds[names.LITERT_EVALUATOR] = evaluation.gate_thresholds(
        config, "float32 file", page.summary.task,
        tfma.load_validation_result(evaluation_dir))


def read(sqlite_path: str, summary: RunSummary, latency: bool = True) -> Page:
  """Fills a Page for the run `summary` describes (its executions' ids)."""
  page = Page(summary)
  execution_ids = {c.node_id: c.execution_id for c in summary.components
                   if c.state in mlmd.DONE and c.node_id in (
                       names.DISTILLER, names.SCORER, names.FIDELITY_EVALUATOR,
                       names.NO_REGRESSION_EVALUATOR, names.LITERT_EVALUATOR)}
  if not execution_ids or not os.path.exists(sqlite_path):
    return page
  root = os.path.dirname(os.path.abspath(sqlite_path))
  with mlmd.connect(sqlite_path) as handle:
    done = mlmd.executions(handle, execution_ids)
  uri = lambda artifact: (  # pylint: disable=unnecessary-lambda-assignment
      mlmd.local_uri(artifact.uri, root) if artifact is not None else None)

  distiller = done.get(names.DISTILLER, mlmd.Execution())
  model = distiller.output(names.MODEL_KEY)
  for label, name in _FACTS:
    value = mlmd.custom(model, name)
    if value is not None:
      page.distillation[label] = value
  page.curves = figures.training_curves(
      uri(distiller.output(names.MODEL_RUN_KEY)))

  model_dirs: Dict[str, Optional[str]] = {}
  label_key = None
  for evaluator, baseline in ((names.FIDELITY_EVALUATOR, names.TEACHER),
                              (names.NO_REGRESSION_EVALUATOR, names.SERVING)):
    execution = done.get(evaluator, mlmd.Execution())
    evaluation_dir = uri(execution.output(names.EVALUATION_KEY))
    if not evaluation_dir or not os.path.isdir(evaluation_dir):
      continue
    found = _read_gate(page, evaluator, execution, baseline, evaluation_dir)
    if baseline == names.TEACHER:
      label_key = found
      model_dirs[names.STUDENT] = uri(execution.input(names.MODEL_KEY))
      model_dirs[names.TEACHER] = uri(execution.input(names.BASELINE_MODEL_KEY))
  litert = done.get(names.LITERT_EVALUATOR, mlmd.Execution())
  litert_dir = uri(litert.output(names.EVALUATION_KEY))
  if litert_dir and os.path.isdir(litert_dir):
    _read_litert_gate(page, litert, litert_dir)
  # The raw eval examples: what the Scorer read (the gates read its scores);
  # a run from before the Scorer gave them to the fidelity gate itself.
  reader = done.get(names.SCORER) or done.get(names.FIDELITY_EVALUATOR, mlmd.Execution())
  examples_dir = uri(reader.input(names.EXAMPLES_KEY))
  if model is not None:  # the Distiller's record, when no Evaluator ran
    model_dirs.setdefault(names.STUDENT, uri(model))
    model_dirs.setdefault(names.TEACHER, mlmd.local_uri(
        mlmd.custom(model, properties.TEACHER_URI), root))
  if summary.task is Task.REGRESSION and label_key and examples_dir:
    page.predictions = regression_predictions(
        {m: model_dirs.get(m) for m in (names.TEACHER, names.STUDENT)},
        eval_examples(examples_dir, RESIDUAL_EXAMPLES), label_key,
        Task.REGRESSION.serving_output)
  if latency and model_dirs:
    examples = eval_examples(examples_dir, max(measure.LATENCY_BATCHES))
    page.latency_examples = len(examples)
    for label in (names.TEACHER, names.STUDENT):
      page.latency[label] = measure.serving_latency(model_dirs.get(label), examples)
  return page
