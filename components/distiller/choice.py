"""The student alone, and which student goes on.

Every run trains, beside the distilled student, the same student from the
hard labels only: the same `build_student` and seed (so the same first
weights), trained in the same loop on the same batches for the same steps,
with alpha 0 (`training.DistillationModel`'s `alone`). A user distils to get
a student better than that one; this is how a run knows whether it did.

Both students are scored by TFMA, with the task's metrics (`metrics.py`), on
two sets of rows neither trained on:

- the *validation cut*: a fraction of the train split, the rows whose
  features hash into it (`validation_mask`; a row and its duplicates always
  fall on the same side). Both students train on the rest. The student
  better on the choice metric here goes on to the gates and the Pusher (a
  tie: the distilled one).
- the *eval split*: reported beside, never used to choose, since it gates
  the chosen student afterwards.

Each part is scored on its first `SCORED_ROWS` rows at most, so the
comparison costs the same at a million rows as at fifty thousand (the
gates still see the whole eval split); the count scored is recorded.

The zero-code teacher chooses among its candidates on the same cut
(`distill_pipelines.generic.auto_teacher`), so the rows that choose were
seen by no model that is chosen. A teacher from a Trainer of one's own was
fit on the whole train split, the cut included: its distilled student is
then scored on rows whose labels its teacher saw.
"""

import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_model_analysis as tfma

from distill_components.distiller import defaults
from distill_components.distiller import export
from distill_components.distiller import folds
from distill_components.distiller import properties
from distill_components.distiller import tasks

# The students and the parts they are scored on, as MLMD names them.
DISTILLED, ALONE = properties.DISTILLED, properties.ALONE
VALIDATION, EVAL = properties.VALIDATION, properties.EVAL

DEFAULT_VALIDATION_FRACTION = 0.1
# A row falls in the cut when its features' hash, in this many buckets,
# falls under fraction x BUCKETS.
BUCKETS = 10_000

_LABEL, _PART = "__label__", "__part__"
SCORED_ROWS = defaults.SCORED_ROWS


class ChoiceError(ValueError):
  """The validation cut or the comparison cannot be made; the message says why."""


def check_fraction(fraction: float) -> float:
  fraction = float(fraction)
  if not 0.0 < fraction <= 0.5:
    raise ChoiceError(
        f"validation_fraction is the share of train rows held out to choose "
        f"the student, in (0, 0.5]; got {fraction}.")
  return fraction


def validation_mask(features: Mapping[str, tf.Tensor], names: Sequence[str],
                    fraction: float) -> tf.Tensor:
  """[batch] bool: which rows of a batch are in the validation cut."""
  bucket = folds.fold_ids(features, BUCKETS, names)
  return bucket < int(round(fraction * BUCKETS))


def cut(dataset: tf.data.Dataset, names: Sequence[str], fraction: float, *,
        validation: bool) -> tf.data.Dataset:
  """The batches of `dataset` with only the cut's rows (`validation`) or
  only the others; empty batches dropped.

  An element is a tuple whose first member is the features dict; every
  member holds one row per example (dense tensors, as TFXIO yields a
  schema's fixed-shape features).
  """
  def keep(*element):
    mask = validation_mask(element[0], names, fraction)
    if not validation:
      mask = tf.logical_not(mask)
    return tf.nest.map_structure(lambda t: tf.boolean_mask(t, mask), element)

  def rows(*element):
    return tf.shape(tf.nest.flatten(element)[0])[0] > 0

  return dataset.map(keep).filter(rows)


def rebatch(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
  """`dataset`'s rows in batches of exactly `batch_size` (but the last of a
  finite one): a cut training stream keeps the batch size asked for."""
  return dataset.unbatch().batch(batch_size)


def outputs(task: tasks.Task, logits: np.ndarray) -> np.ndarray:
  """What serving returns for `logits`: probabilities or predictions."""
  return export.serving_outputs(tf.constant(logits, tf.float32), task).numpy()


def score(task: tasks.Task, labels: Mapping[str, np.ndarray],
          predictions: Mapping[str, Mapping[str, np.ndarray]],
          metrics: Iterable[tasks.Metric] = ()
          ) -> Dict[str, Dict[str, Dict[str, float]]]:
  """part -> model -> metric -> value, by TFMA in one pass.

  `labels`: part -> [n] labels; `predictions`: part -> model -> what serving
  returns for those rows ([n] or [n, K]). `metrics`: the task's by default.
  """
  metrics = list(metrics) or list(task.metrics)
  models = sorted({m for by_model in predictions.values() for m in by_model})
  frames = []
  for part, label in labels.items():
    columns = {_LABEL: np.asarray(label).ravel(), _PART: part}
    for model in models:
      values = np.asarray(predictions[part][model], np.float32)
      columns[model] = (list(values) if task is tasks.Task.MULTICLASS
                        else values.reshape(len(values)))
    frames.append(pd.DataFrame(columns))
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(name=m, label_key=_LABEL, prediction_key=m)
                   for m in models],
      slicing_specs=[tfma.SlicingSpec(feature_keys=[_PART])],
      metrics_specs=[tfma.MetricsSpec(
          model_names=models,
          metrics=[tfma.MetricConfig(class_name=m.class_name,
                                     config=json.dumps(m.config) if m.config else "")
                   for m in metrics])])
  figures = {part: {model: {} for model in models} for part in labels}
  with tempfile.TemporaryDirectory() as output:
    tfma.analyze_raw_data(pd.concat(frames, ignore_index=True), config,
                          output_path=output)
    for found in tfma.load_metrics(output):
      part = found.slice_key.single_slice_keys[0].bytes_value.decode()
      for entry in found.metric_keys_and_values:
        if entry.value.HasField("double_value"):
          figures[part][entry.key.model_name][entry.key.name] = (
              entry.value.double_value.value)
  return figures


def better(figures: Mapping[str, Mapping[str, float]], metric: tasks.Metric,
           first: str, second: str) -> str:
  """`first` or `second`, whichever is better on `metric` (a tie: `first`)."""
  a, b = figures[first][metric.name], figures[second][metric.name]
  worse = b > a if metric.higher_is_better else b < a
  return second if worse else first


def choose(figures, metric: tasks.Metric) -> str:
  """DISTILLED or ALONE: the better on the validation cut (a tie: DISTILLED)."""
  return better(figures[VALIDATION], metric, DISTILLED, ALONE)


def collect(dataset: tf.data.Dataset, models: Mapping[str, object],
            limit: Optional[int] = None) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
  """Labels and each model's logits over one pass of (features, label, ...)
  batches, stopping after `limit` rows."""
  labels: List[np.ndarray] = []
  logits: Dict[str, List[np.ndarray]] = {name: [] for name in models}
  seen = 0
  for element in dataset:
    features, label = element[0], element[1]
    labels.append(np.asarray(label).reshape(-1))
    seen += len(labels[-1])
    for name, model in models.items():
      logits[name].append(np.asarray(model(features, training=False)))
    if limit is not None and seen >= limit:
      break  # no further batch is read
  if not labels:
    return np.zeros([0]), {name: np.zeros([0, 1]) for name in models}
  return (np.concatenate(labels)[:limit],
          {name: np.concatenate(parts)[:limit] for name, parts in logits.items()})


def metric_named(task: tasks.Task, name: str) -> tasks.Metric:
  """The task's metric called `name` (TFMA's name or class name)."""
  for metric in task.metrics:
    if name in (metric.name, metric.class_name):
      return metric
  raise ChoiceError(
      f"choice_metric {name!r} is none of the {task.value} "
      f"task's metrics {[m.name for m in task.metrics]}.")


# Beside a teacher's Format-Serving/ (in its Model artifact's directory): the
# candidates its Trainer chose among, {"candidates": {name: {metric: value}},
# "chosen": name, "metric": name}, as the zero-code teacher writes it.
CANDIDATES_FILE = "teacher_candidates.json"


def write_candidates(model_uri: str, candidates: Mapping[str, Mapping[str, float]],
                     chosen: str, metric: str) -> None:
  """Records a Trainer's candidates for the Distiller to copy into MLMD."""
  tf.io.gfile.makedirs(model_uri)
  with tf.io.gfile.GFile(os.path.join(model_uri, CANDIDATES_FILE), "w") as f:
    json.dump({"candidates": {k: dict(v) for k, v in candidates.items()},
               "chosen": chosen, "metric": metric}, f, indent=1, sort_keys=True)


def score_students(task: tasks.Task, students: Dict[str, tf.keras.Model],
                   validation_rows: tf.data.Dataset, eval_rows: tf.data.Dataset,
                   fraction: float, limit: int = SCORED_ROWS):
  """part -> student -> metric -> value (TFMA), and part -> rows scored (at
  most `limit` each)."""
  labels, predictions = {}, {}
  for part, rows in ((VALIDATION, validation_rows), (EVAL, eval_rows)):
    labels[part], logits = collect(rows, students, limit)
    predictions[part] = {name: outputs(task, values)
                         for name, values in logits.items()}
  count = len(labels[VALIDATION])
  if not count:
    raise ChoiceError(
        f"The validation cut ({fraction:.0%} of the train split, by a hash of "
        "each row's features) holds no rows, so the distilled student cannot be "
        "compared with the student alone: add train rows or raise "
        "validation_fraction.")
  if not len(labels[EVAL]):
    raise ValueError("The eval split yielded no examples.")
  return score(task, labels, predictions), {part: len(v) for part, v in labels.items()}


def read_candidates(teacher_uri: str) -> Optional[Dict[str, Any]]:
  """What a teacher's Trainer wrote of the candidates it chose among
  (CANDIDATES_FILE beside its serving model), or None."""
  path = os.path.join(teacher_uri, CANDIDATES_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)
