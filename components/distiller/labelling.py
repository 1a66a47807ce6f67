"""Teacher labelling as a Beam job: the teacher's outputs for every train row,
computed once before training on the pipeline's Beam runner.

The once-before-training pass (the teacher-output cache, out-of-fold
outputs, a transfer set) is the one step of the Distiller that grows with the
data. `label` runs it as a Beam pipeline: Beam's `RunInference` with a model
handler (`TeacherHandler`) that loads the teacher in each Beam worker the way
the Distiller reads it (teacher.py: one teacher, several averaged, out-of-fold
models, a teacher reading raw examples) and calls it on batches of serialized
tf.Examples: this run's transformed train examples, or untransformed ones (a
teacher of another Transform reads them through its serving signature; a
transfer set's unlabeled rows are transformed by this run's graph first). So
it runs where the pipeline's other Beam components run:
several local processes (`--direct_running_mode=multi_processing
--direct_num_workers=N`), Dataflow, Flink or Spark through the pipeline's
Beam arguments.

Each output record is its input tf.Example with one more feature,
`TEACHER_LOGITS` (a float list of the teacher's K outputs). It is written as
bytes: the input record followed by a serialized tf.Example holding that one
feature. Protocol buffers merge concatenated messages field by field (a
map's entries add up), so the two parse as one tf.Example holding every
feature, and no row is decoded in Python. Training reads the records back
(`rows`), parsed with the schema they were written from plus that feature.
"""
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import apache_beam as beam
from apache_beam.ml.inference import base as inference
import numpy as np
import tensorflow as tf

from distill_components.distiller import folds as folds_lib
from distill_components.distiller import teacher as teacher_lib

# The feature each labelled record carries the teacher's outputs in.
TEACHER_LOGITS = "__teacher_logits__"
# Where `label` writes, under its output directory.
FILE_PREFIX = "soft_labels"
_SUFFIX = ".tfrecord.gz"
# Rows per teacher call: Beam's RunInference batches between these.
_MIN_BATCH, _MAX_BATCH = 256, 2048

# How the once-before-training pass runs (the Distiller's teacher_labelling).
BEAM = "beam"              # this module: on the pipeline's Beam runner
IN_PROCESS = "in_process"  # teacher_cache.py: in the Distiller's process
MODES = (BEAM, IN_PROCESS)
_NAMESPACE = "distiller_teacher_labelling"
_ROWS = beam.metrics.Metrics.counter(_NAMESPACE, "labelled_rows")

# What the records hold, and so how `TeacherHandler` calls the teacher.
TRANSFORMED = "transformed"  # this run's transformed examples; Teacher.logits
RAW = "raw"                  # untransformed examples; the teacher's serving_default
# Untransformed examples, transformed by this run's graph for Teacher.logits
# (a transfer set's unlabeled rows).
UNTRANSFORMED = "untransformed"
_RECORDS = (TRANSFORMED, RAW, UNTRANSFORMED)


class LabellingError(ValueError):
  """The teacher cannot label the records as asked."""


def _load_labeller(teacher_dirs: Sequence[str], fold_uris: Sequence[Optional[str]],
                   feature_spec: Dict[str, tf.TensorSpec], reading: Dict[str, Any],
                   records: str):
  """The teacher as the executor reads it: a function of a batch of
  serialized records (RAW) or of their parsed features (otherwise)."""
  teachers = [teacher_lib.Teacher(d, feature_spec, **reading) for d in teacher_dirs]
  if records == RAW:
    return teacher_lib.one_or_ensemble(teachers).raw_reader()
  members = [teacher_lib.OutOfFold(uri, folds_lib.read_manifest(uri), feature_spec,
                                   **reading) if uri else t
             for uri, t in zip(fold_uris, teachers)]
  return teacher_lib.one_or_ensemble(members).logits


class TeacherHandler(inference.ModelHandler):
  """Beam's RunInference model handler for a Distiller teacher.

  Its model is the teacher, loaded in each Beam worker from what the
  executor read it with; a batch of serialized tf.Examples in, each row's
  [K] float32 logits (regression: predictions) out.

  Args:
    teacher_dirs: each teacher's serving SavedModel (several are averaged).
    fold_uris: per teacher, the Model artifact URI whose out-of-fold models
      label the rows (folds.py), or None.
    parse_spec: the tf.io.parse_example spec of the records (TRANSFORMED,
      UNTRANSFORMED).
    feature_spec: the transformed features' TensorSpecs (teacher.Teacher's).
    reading: teacher.Teacher's keyword arguments (task, signature_name,
      outputs, imports).
    records: TRANSFORMED, RAW (the teacher reads them through its own
      serving signature) or UNTRANSFORMED (transformed by `transform_dir`'s
      graph first).
    transform_dir: the Transform graph's directory (UNTRANSFORMED).
  """

  def __init__(self, teacher_dirs: Sequence[str], fold_uris: Sequence[Optional[str]],
               parse_spec: Dict[str, Any], feature_spec: Dict[str, tf.TensorSpec],
               reading: Dict[str, Any], records: str = TRANSFORMED,
               transform_dir: Optional[str] = None):
    super().__init__()
    if len(fold_uris) != len(teacher_dirs):
      raise LabellingError(f"{len(teacher_dirs)} teachers but {len(fold_uris)} "
                           "fold_uris; give one per teacher (None: no folds).")
    if records not in _RECORDS:
      raise LabellingError(f"records must be one of {list(_RECORDS)}; got {records!r}.")
    if (records == UNTRANSFORMED) != bool(transform_dir):
      raise LabellingError("transform_dir is needed for untransformed records, "
                           "and only for them.")
    self._args = (list(teacher_dirs), list(fold_uris), feature_spec, dict(reading),
                  RAW if records == RAW else TRANSFORMED)
    self._parse_spec = parse_spec
    self._records = records
    self._transform_dir = transform_dir

  def load_model(self):
    labeller = _load_labeller(*self._args)
    if self._records == RAW:
      return labeller
    parse_spec = self._parse_spec
    if self._records == TRANSFORMED:
      return lambda serialized: labeller(tf.io.parse_example(serialized, parse_spec))
    import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
    layer = tft.TFTransformOutput(self._transform_dir).transform_features_layer()
    return lambda serialized: labeller(layer(tf.io.parse_example(serialized, parse_spec)))

  def run_inference(self, batch: Sequence[bytes], model: Callable,
                    inference_args: Optional[Dict[str, Any]] = None
                    ) -> Iterable[inference.PredictionResult]:
    del inference_args
    logits = model(tf.constant(list(batch))).numpy()
    return [inference.PredictionResult(example, row)
            for example, row in zip(batch, logits)]

  def batch_elements_kwargs(self):
    return {"min_batch_size": _MIN_BATCH, "max_batch_size": _MAX_BATCH}

  def get_metrics_namespace(self) -> str:
    return _NAMESPACE


def with_logits(result: inference.PredictionResult) -> bytes:
  """The record followed by a tf.Example of its logits: one tf.Example when
  parsed (protocol buffers merge concatenated messages)."""
  logits = tf.train.Example(features=tf.train.Features(feature={
      TEACHER_LOGITS: tf.train.Feature(float_list=tf.train.FloatList(
          value=np.asarray(result.inference, np.float32).ravel()))}))
  _ROWS.inc()
  return result.example + logits.SerializeToString()


def check_mode(mode: str) -> str:
  if mode not in MODES:
    raise LabellingError(f"teacher_labelling must be one of {list(MODES)}; got {mode!r}.")
  return mode


def label(pipeline: beam.Pipeline, file_patterns: Sequence[str],
          handler: TeacherHandler, output_dir: str) -> None:
  """Adds the labelling to `pipeline`: reads the records of `file_patterns`
  (gzipped TFRecords, as ExampleGen and Transform write them), labels each
  with the teacher and writes it under `output_dir`."""
  _ = (pipeline
       | "ListPatterns" >> beam.Create(list(file_patterns))
       | "ReadRecords" >> beam.io.ReadAllFromTFRecord(coder=beam.coders.BytesCoder())
       | "Teacher" >> inference.RunInference(handler)
       | "WithLogits" >> beam.Map(with_logits)
       | "Write" >> beam.io.WriteToTFRecord(
           os.path.join(output_dir, FILE_PREFIX), file_name_suffix=_SUFFIX))


def run(pipeline: beam.Pipeline, file_patterns: Sequence[str],
        handler: TeacherHandler, output_dir: str) -> int:
  """Runs `label` on `pipeline` (made for it: it is run here) and returns
  the number of rows written."""
  label(pipeline, file_patterns, handler, output_dir)
  result = pipeline.run()
  result.wait_until_finish()
  counters = result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace(_NAMESPACE)
      .with_name("labelled_rows"))["counters"]
  if not counters:
    # A runner that reports no metrics: count what was written instead.
    return count(output_dir)
  try:
    return int(sum(c.committed for c in counters))
  except (TypeError, ValueError):  # a runner without committed metrics
    return int(sum(c.attempted for c in counters))


def count(output_dir: str) -> int:
  """The records `label` wrote under `output_dir` (one pass over them)."""
  records = tf.data.TFRecordDataset(files(output_dir), compression_type="GZIP")
  return int(records.reduce(np.int64(0), lambda n, _: n + 1))


def files(output_dir: str) -> List[str]:
  """The record files `label` wrote under `output_dir`."""
  found = sorted(tf.io.gfile.glob(os.path.join(output_dir, f"{FILE_PREFIX}*{_SUFFIX}")))
  if not found:
    raise LabellingError(f"No labelled records under {output_dir}.")
  return found


def parse_spec(record_spec: Dict[str, Any], width: int) -> Dict[str, Any]:
  """`record_spec` (how the input records parse) with the teacher's outputs."""
  if TEACHER_LOGITS in record_spec:
    raise LabellingError(f"The records already hold a feature {TEACHER_LOGITS!r}, "
                         "the name the teacher's outputs are written under.")
  return {**record_spec, TEACHER_LOGITS: tf.io.FixedLenFeature([width], tf.float32)}


def rows(output_dir: str, record_spec: Dict[str, Any], width: int,
         prepare: Callable[[Dict[str, tf.Tensor], tf.Tensor], tuple],
         batch_size: int, shuffle_buffer: int, seed: int = 0) -> tf.data.Dataset:
  """Batches of the labelled records, shuffled record by record and repeated
  without end; `prepare(parsed, logits)` makes each batch what training
  takes (e.g. (features, label, logits))."""
  spec = parse_spec(record_spec, width)

  def parse(serialized):
    parsed = tf.io.parse_example(serialized, spec)
    return prepare(parsed, parsed.pop(TEACHER_LOGITS))

  return (tf.data.TFRecordDataset(files(output_dir), compression_type="GZIP",
                                  num_parallel_reads=tf.data.AUTOTUNE)
          .shuffle(shuffle_buffer, seed=seed).repeat().batch(batch_size)
          .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))
