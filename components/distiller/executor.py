"""The Distiller's executor: check the inputs, train the student, export it."""

import hashlib
import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.components.util import udf_utils
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as std
from tfx.proto import trainer_pb2
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import path_utils
from tfx.utils import proto_utils

from distill_components.distiller import choice
from distill_components.distiller import data
from distill_components.distiller import distribute
from distill_components.distiller import export
from distill_components.distiller import folds as folds_lib
from distill_components.distiller import labelling
from distill_components.distiller import losses
from distill_components.distiller import metrics as metrics_lib
from distill_components.distiller import properties
from distill_components.distiller import spec as spec_lib
from distill_components.distiller import tasks
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import training
from distill_components.distiller import transfer as transfer_lib

# Written first, renamed to Format-Serving only once the student is complete.
_STAGING_DIR = "Format-Serving.partial"
# TensorBoard summaries every this many steps.
_SUMMARY_EVERY_STEPS = 100
# The label check before training reads at most this many train labels.
_LABEL_CHECK_EXAMPLES = 1_000_000
# Examples per teacher call in the one pass that fills the teacher-output cache.
_CACHE_BATCH_SIZE = 1024


class LabelNotFoundError(ValueError):
  """The label is not among the transformed features."""


class Executor(base_beam_executor.BaseBeamExecutor, trainer_executor.GenericExecutor):
  """Trains the student on the distillation loss and exports it.

  Reuses the Trainer's `FnArgs` construction (the spec keeps the Trainer's
  keys), so the user's `build_student(fn_args)` sees what a `run_fn` would.
  A Beam executor: the teacher labels the train rows on the pipeline's Beam
  runner (labelling.py).
  """

  def _raw_teacher(self, teacher, input_dict):
    """The teacher's raw reader when raw examples are given and it serves them."""
    if not input_dict.get(spec_lib.RAW_EXAMPLES_KEY):
      return None
    raw = teacher.raw_reader()
    if raw is None:
      logging.warning(
          "raw_examples given, but the teacher's serving_default does not take "
          "serialized tf.Examples and return [batch, %d] outputs: the teacher "
          "reads this run's transformed features (%s).", teacher.width, teacher.source)
    return raw

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    # First, before TensorFlow runs anything: a multi-worker strategy sets up
    # its collective ops at program startup.
    strategy = distribute.strategy(
        exec_properties.get(spec_lib.DISTRIBUTION_KEY) or distribute.AUTO)
    chief = distribute.is_chief()
    logging.info("Training under %s (%d replicas)%s.", type(strategy).__name__,
                 strategy.num_replicas_in_sync, "" if chief else ", not the chief")
    fn_args = self._GetFnArgs(input_dict, output_dict, exec_properties)
    task = exec_properties.get(spec_lib.TASK_KEY)
    alpha = float(exec_properties[spec_lib.ALPHA_KEY])
    temperature = float(exec_properties[spec_lib.TEMPERATURE_KEY])
    losses.check_alpha_and_temperature(alpha, temperature)
    label_key = exec_properties[spec_lib.LABEL_KEY_KEY]
    batch_size = int(exec_properties[spec_lib.BATCH_SIZE_KEY])
    if not fn_args.train_steps:
      raise ValueError("train_args.num_steps must be > 0.")

    # Everything that can be wrong with the inputs is checked before training.
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    transformed = tf_transform_output.transformed_feature_spec()
    if label_key not in transformed:
      raise LabelNotFoundError(
          f"label_key {label_key!r} is not among the transformed features "
          f"{sorted(transformed)}; the Transform's preprocessing_fn must output it.")
    feature_spec = export.model_input_spec(tf_transform_output, label_key)
    compare = exec_properties.get(spec_lib.COMPARE_ALONE_KEY) != 0
    fraction = choice.check_fraction(
        exec_properties.get(spec_lib.VALIDATION_FRACTION_KEY)
        or choice.DEFAULT_VALIDATION_FRACTION)
    # Both students train on the train rows outside the validation cut.
    hashed = sorted(feature_spec)
    outside_cut = ((lambda d: choice.cut(d, hashed, fraction, validation=False))
                   if compare else (lambda d: d))

    # One teacher, or several whose outputs are averaged.
    teacher_artifacts = list(input_dict[spec_lib.TEACHER_MODEL_KEY])
    if not teacher_artifacts:
      raise teacher_lib.TeacherContractError("The teacher_model input holds no Model.")
    teacher_dirs = [path_utils.serving_model_path(
        a.uri, path_utils.is_old_model_artifact(a)) for a in teacher_artifacts]
    reading = dict(
        # Unset: classification; binary or multiclass follows from the width.
        task=tasks.Task.parse(task or tasks.Task.BINARY),
        signature_name=exec_properties.get(spec_lib.TEACHER_SIGNATURE_KEY) or None,
        outputs=exec_properties.get(spec_lib.TEACHER_OUTPUTS_KEY) or None,
        imports=json_utils.loads(
            exec_properties.get(spec_lib.TEACHER_IMPORTS_KEY) or "[]"))
    teachers = [teacher_lib.Teacher(d, feature_spec, **reading) for d in teacher_dirs]
    teacher = teacher_lib.one_or_ensemble(teachers)
    if task is None:
      task = tasks.Task.BINARY if teacher.width == 1 else tasks.Task.MULTICLASS
    task = tasks.Task.parse(task)
    choice_metric = choice.metric_named(
        task, exec_properties.get(spec_lib.CHOICE_METRIC_KEY)
        or metrics_lib.TASK_METRICS[task][0].name)
    try:
      task.check_width(teacher.width)
    except ValueError as e:
      raise teacher_lib.TeacherContractError(
          f"The teacher ({teacher.source}) does not fit the task: {e}") from e
    schema = tf_transform_output.transformed_metadata.schema
    task.check_labels(
        data.read_labels(fn_args, schema, label_key, _LABEL_CHECK_EXAMPLES),
        teacher.width,
        where=f"The transformed label {label_key!r} of the train split")
    logging.info("Teacher read through %s; task %s.", teacher.source, task.value)

    try:
      build_student = udf_utils.get_fn(exec_properties, spec_lib.BUILD_STUDENT_KEY)
    except (AttributeError, ImportError) as e:
      raise ValueError(
          f"Cannot load the student's `{spec_lib.BUILD_STUDENT_KEY}` function: "
          f"{e}") from e
    # A rerun on the same inputs trains the same student: its first weights
    # and every random op after them follow the seed.
    seed = int(exec_properties.get(spec_lib.SEED_KEY) or 0)
    tf.keras.utils.set_random_seed(seed)
    # The student, its optimizer and its training loop belong to the strategy.
    with strategy.scope():
      student = build_student(fn_args)
    if not isinstance(student, tf.keras.Model):
      raise training.StudentOutputError(
          f"build_student must return a tf.keras.Model; it returned "
          f"{type(student).__name__}.")
    # The same student, from the same first weights, trained beside it on the
    # same batches from the labels alone (choice.py).
    alone = None
    if compare:
      tf.keras.utils.set_random_seed(seed)
      with strategy.scope():
        alone = build_student(fn_args)

    raw = self._raw_teacher(teacher, input_dict)
    # Each teacher's out-of-fold models, where it has them, label the train split.
    folded = [_out_of_fold(a.uri, raw is not None, feature_spec, teacher.width,
                           reading, exec_properties) for a in teacher_artifacts]
    out_of_fold = (teacher_lib.one_or_ensemble(
        [f or t for f, t in zip(folded, teachers)]) if any(folded) else None)
    synthetic_ratio = float(exec_properties.get(spec_lib.SYNTHETIC_RATIO_KEY) or 0)
    transfer_lib.check_ratio(synthetic_ratio)
    if synthetic_ratio and raw is not None:
      raise transfer_lib.TransferSetError(
          "Synthetic rows are mixed from this run's transformed features, which "
          f"the teacher ({raw.source}) does not read: it was trained on another "
          "Transform. Leave synthetic_ratio at 0, or give unlabeled_examples.")
    unlabeled = input_dict.get(spec_lib.UNLABELED_EXAMPLES_KEY)
    if raw is not None:
      # The teacher reads raw examples its own way; the student this run's
      # transformed features of the same examples.
      split_files = lambda split: [io_utils.all_files_pattern(  # pylint: disable=g-long-lambda
          artifact_utils.get_split_uri(input_dict[spec_lib.RAW_EXAMPLES_KEY], split))]
      train_files = split_files(_split_name(exec_properties, std.TRAIN_ARGS_KEY, "train"))
      eval_files = split_files(_split_name(exec_properties, std.EVAL_ARGS_KEY, "eval"))
      batches = lambda files, size, repeat: data.raw_dataset(  # pylint: disable=g-long-lambda
          files, tf_transform_output, label_key, feature_spec, raw, size, repeat)
      teacher_source = f"{raw.source}, not this run's Transform"
    else:
      batches = lambda files, size, repeat: data.dataset(  # pylint: disable=g-long-lambda
          fn_args, files, schema, label_key, size, repeat=repeat)
      train_files, eval_files = fn_args.train_files, fn_args.eval_files
      teacher_source = out_of_fold.source if out_of_fold else teacher.source
    train_data = choice.rebatch(outside_cut(batches(train_files, batch_size, True)),
                                batch_size)
    eval_data = batches(eval_files, batch_size, False)
    first = next(iter(train_data))
    training.check_output_widths(
        first[2] if raw is not None else teacher.logits(first[0]), student(first[0]))

    mode = labelling.check_mode(
        exec_properties.get(spec_lib.TEACHER_LABELLING_KEY) or labelling.IN_PROCESS)
    # A worker that is not the chief writes nothing the chief writes.
    scratch = os.path.join(self._get_tmp_dir(), "worker")
    soft_labels = _SoftLabels(
        artifact_utils.get_single_instance(output_dict[spec_lib.SOFT_LABELS_KEY])
        if spec_lib.SOFT_LABELS_KEY in output_dict else None,
        chief, scratch, self._make_beam_pipeline, teacher_dirs, feature_spec, reading)
    cache_dir = transfer_dir = None
    labelled_count, transfer_counts, transfer = None, {}, []
    # Out-of-fold outputs and a transfer set's are computed once, before
    # training, as a cache is: every fold model runs on its own rows only.
    # Asking for Beam labelling asks for that pass too.
    if (exec_properties.get(spec_lib.CACHE_TEACHER_OUTPUTS_KEY) or out_of_fold
        or unlabeled or synthetic_ratio or mode == labelling.BEAM):
      if mode == labelling.BEAM:
        split = _split_name(exec_properties, std.TRAIN_ARGS_KEY, "train")
        handler = soft_labels.handler(
            [None if raw is not None or not f else a.uri
             for a, f in zip(teacher_artifacts, folded)],
            (tf_transform_output.raw_feature_spec() if raw is not None
             else tf_transform_output.transformed_feature_spec()),
            labelling.RAW if raw is not None else labelling.TRANSFORMED)
        labelled_count, soft_dir = soft_labels.label(split, train_files, handler)
        labelled_rows = lambda size: choice.rebatch(outside_cut(_soft_label_rows(  # pylint: disable=g-long-lambda
            soft_dir, tf_transform_output, label_key, feature_spec, raw is not None,
            teacher.width, size)), size)
      else:
        cache_dir = os.path.join(self._get_tmp_dir(), "teacher_outputs")
        labelled_count = teacher_cache.write(
            None if raw is not None else (out_of_fold or teacher).logits,
            outside_cut(batches(train_files, _CACHE_BATCH_SIZE, False)), cache_dir)
        logging.info("Teacher outputs for %d train examples cached in %s.",
                     labelled_count, cache_dir)
        labelled_rows = lambda size: teacher_cache.read(cache_dir, size)
      train_data = labelled_rows(batch_size)
    raw_label_keys = json_utils.loads(exec_properties[spec_lib.RAW_LABEL_KEYS_KEY])
    if unlabeled and mode == labelling.BEAM:
      count, rows_of = _label_unlabeled_on_beam(
          soft_labels, unlabeled, raw, fn_args.transform_output, tf_transform_output,
          raw_label_keys,
          feature_spec, teacher.width)
      transfer_counts[transfer_lib.UNLABELED] = count
      if count:  # an empty source would be read forever
        transfer.append((rows_of, count))
      unlabeled = None  # labelled
    if unlabeled or synthetic_ratio:
      transfer_dir = os.path.join(self._get_tmp_dir(), "transfer_set")
      counts = _write_transfer_set(
          transfer_dir, unlabeled, synthetic_ratio, teacher, raw, feature_spec,
          tf_transform_output, raw_label_keys,
          lambda: outside_cut(batches(train_files, _CACHE_BATCH_SIZE, False)),
          out_of_fold)
      transfer_counts.update(counts)
      if sum(counts.values()):
        transfer.append((lambda size: teacher_cache.read(transfer_dir, size),
                         sum(counts.values())))
    if transfer:
      logging.info("Transfer set labelled by the teacher: %s.", transfer_counts)
      train_data = transfer_lib.mix(labelled_rows, labelled_count, transfer, batch_size)

    # Under a multi-worker strategy each worker reads every batch and trains
    # on its share of it.
    shard = (_shard_by_data
             if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
             else lambda dataset: dataset)
    train_data, eval_data = shard(train_data), shard(eval_data)
    with strategy.scope():
      distillation = training.Distillation(
          student, teacher.logits, task=task, alpha=alpha, temperature=temperature,
          optimizer=tf.keras.optimizers.Adam(
              float(exec_properties[spec_lib.LEARNING_RATE_KEY])), alone=alone)
    logging.info("Distilling %s into a student of %d weights: T=%s alpha=%s, "
                 "%d steps of %d examples.", ", ".join(teacher_dirs),
                 student.count_params(),
                 temperature, alpha, fn_args.train_steps, batch_size)
    model_uri = artifact_utils.get_single_uri(output_dict[std.MODEL_KEY])
    try:
      distillation.fit(train_data, fn_args.train_steps,
                       summary_dir=os.path.join(
                           fn_args.model_run_dir if chief else scratch, "train"),
                       summary_every=_SUMMARY_EVERY_STEPS,
                       backup_dir=_backup_dir(model_uri, input_dict, exec_properties))
    finally:
      for directory in (cache_dir, transfer_dir):
        if directory:
          fileio.rmtree(directory)
    # Which of the two students goes on: both scored on the validation cut.
    started = time.monotonic()
    figures, validation_count, chosen = {}, 0, choice.DISTILLED
    if compare:
      validation_rows = choice.cut(batches(train_files, _CACHE_BATCH_SIZE, False),
                                   hashed, fraction, validation=True)
      figures, validation_count = choice.score_students(
          task, {choice.DISTILLED: student, choice.ALONE: alone}, validation_rows,
          batches(eval_files, _CACHE_BATCH_SIZE, False), fraction)
      chosen = choice.choose(figures, choice_metric)
      logging.info(
          "Distilled vs alone on %d validation rows: %s %.4f vs %.4f; %s goes on "
          "(scored in %.1f s).", validation_count, choice_metric.title,
          figures[choice.VALIDATION][choice.DISTILLED][choice_metric.name],
          figures[choice.VALIDATION][choice.ALONE][choice_metric.name], chosen,
          time.monotonic() - started)
    scoring_seconds = time.monotonic() - started
    if labelled_count is not None and mode == labelling.BEAM:
      labelled_count -= validation_count  # Beam labelled the cut's rows too
    if chosen == choice.ALONE:
      student = alone
      with strategy.scope():
        distillation = training.Distillation(
            alone, teacher.logits, task=task, alpha=alpha, temperature=temperature,
            optimizer=tf.keras.optimizers.Adam(
                float(exec_properties[spec_lib.LEARNING_RATE_KEY])))
    # The eval split is scored against the teacher itself, cached or not.
    eval_metrics = distillation.evaluate(eval_data, fn_args.eval_steps)
    logging.info("Student on the eval split: %s", eval_metrics)

    # Every worker saves (Keras' rule under a multi-worker strategy); only the
    # chief's is the student.
    staging_dir = os.path.join(model_uri if chief else scratch, _STAGING_DIR)
    export.save_model(
        student, staging_dir, tf_transform_output, label_key=label_key,
        raw_label_keys=json_utils.loads(
            exec_properties[spec_lib.RAW_LABEL_KEYS_KEY]), task=task)
    if not chief:
      fileio.rmtree(scratch)
      logging.info("Trained as a worker of %d; the chief exports and records the "
                   "student.", distribute.cluster_size())
      return
    fileio.rename(staging_dir, fn_args.serving_model_dir)

    student_params = student.count_params()
    teacher_bytes = sum(export.saved_model_bytes(d) for d in teacher_dirs)
    student_bytes = export.saved_model_bytes(fn_args.serving_model_dir)
    record = artifact_utils.get_single_instance(output_dict[std.MODEL_KEY])
    record.set_string_custom_property(properties.TEACHER_URI, teacher_artifacts[0].uri)
    record.set_int_custom_property(properties.TEACHERS, len(teacher_artifacts))
    if len(teacher_artifacts) > 1:
      record.set_string_custom_property(
          properties.TEACHER_URIS, json.dumps([a.uri for a in teacher_artifacts]))
    if labelled_count is not None:
      record.set_int_custom_property(properties.LABELLED_EXAMPLES, labelled_count)
    record.set_int_custom_property(
        properties.UNLABELED_EXAMPLES, transfer_counts.get(transfer_lib.UNLABELED, 0))
    record.set_int_custom_property(
        properties.SYNTHETIC_EXAMPLES, transfer_counts.get(transfer_lib.SYNTHETIC, 0))
    record.set_string_custom_property(properties.TEACHER_SOURCE, teacher_source)
    record.set_string_custom_property(properties.TASK, task.value)
    record.set_float_custom_property(properties.TEMPERATURE, temperature)
    record.set_float_custom_property(properties.ALPHA, alpha)
    record.set_int_custom_property(properties.CACHE_TEACHER_OUTPUTS,
                                   int(labelled_count is not None))
    record.set_string_custom_property(
        properties.TEACHER_LABELLING, mode if labelled_count is not None else "online")
    record.set_int_custom_property(properties.TEACHER_FOLDS,
                                   max((f.folds for f in folded if f), default=0))
    if teacher.num_params:  # a tree ensemble has no weights to count
      record.set_int_custom_property(properties.TEACHER_PARAMS, teacher.num_params)
      record.set_float_custom_property(
          properties.COMPRESSION_RATIO, teacher.num_params / max(student_params, 1))
    record.set_int_custom_property(properties.STUDENT_PARAMS, student_params)
    record.set_int_custom_property(properties.TEACHER_SAVED_MODEL_BYTES, teacher_bytes)
    record.set_int_custom_property(properties.STUDENT_SAVED_MODEL_BYTES, student_bytes)
    for name, value in eval_metrics.items():
      record.set_float_custom_property(properties.EVAL_PREFIX + name, float(value))
    record.set_string_custom_property(properties.STUDENT_CHOSEN, chosen)
    if compare:
      record.set_string_custom_property(properties.CHOICE_METRIC, choice_metric.name)
      record.set_float_custom_property(properties.VALIDATION_FRACTION, fraction)
      record.set_int_custom_property(properties.VALIDATION_EXAMPLES, validation_count)
      record.set_float_custom_property(properties.SCORING_SECONDS, scoring_seconds)
    else:
      record.set_int_custom_property(properties.COMPARE_ALONE, 0)
    for part, by_model in figures.items():
      for model, values in by_model.items():
        for name, value in values.items():
          record.set_float_custom_property(properties.figure(model, part, name), value)
    candidates = choice.read_candidates(teacher_artifacts[0].uri)
    if candidates:
      record.set_string_custom_property(properties.TEACHER_CANDIDATES,
                                        json.dumps(candidates["candidates"]))
      record.set_string_custom_property(properties.TEACHER_CHOSEN, candidates["chosen"])
    logging.info("Student written to %s (%d weights, teacher %d).",
                 fn_args.serving_model_dir, student_params, teacher.num_params)


class _SoftLabels:
  """The soft_labels output: each source the teacher labelled on Beam, as a
  split of it (on a worker that is not the chief, in its scratch)."""

  def __init__(self, artifact, chief: bool, scratch: str, make_pipeline,
               teacher_dirs, feature_spec, reading):
    self._artifact, self._chief, self._scratch = artifact, chief, scratch
    self._make_pipeline = make_pipeline
    self._teacher = (teacher_dirs, feature_spec, reading)
    self._splits = []

  def handler(self, fold_uris, parse_spec, records, **kwargs
              ) -> labelling.TeacherHandler:
    """A RunInference handler for this run's teachers; `fold_uris`: per
    teacher, the artifact whose out-of-fold models label, or None (all: the
    teachers themselves)."""
    teacher_dirs, feature_spec, reading = self._teacher
    fold_uris = fold_uris or [None] * len(teacher_dirs)
    return labelling.TeacherHandler(teacher_dirs, fold_uris, parse_spec,
                                    feature_spec, reading, records, **kwargs)

  def label(self, split: str, files, handler) -> Tuple[int, str]:
    """Labels `files` on Beam into split `split`; the rows written, and where."""
    if self._artifact is None:
      raise labelling.LabellingError(
          f"teacher_labelling={labelling.BEAM!r} writes to the Distiller's "
          f"{spec_lib.SOFT_LABELS_KEY!r} output, which this execution lacks.")
    if self._chief:
      self._splits.append(split)
      self._artifact.split_names = artifact_utils.encode_split_names(self._splits)
      directory = artifact_utils.get_split_uri([self._artifact], split)
    else:
      directory = os.path.join(self._scratch, spec_lib.SOFT_LABELS_KEY, split)
    count = labelling.run(self._make_pipeline(), files, handler, directory)
    logging.info("The teacher labelled %d %s examples on Beam: %s.", count, split,
                 directory)
    return count, directory


def _all_splits(examples) -> List[str]:
  """File patterns of every split of an Examples channel's one artifact."""
  artifact = artifact_utils.get_single_instance(examples)
  return [io_utils.all_files_pattern(artifact_utils.get_split_uri([artifact], split))
          for split in artifact_utils.decode_split_names(artifact.split_names)]


def _unlabeled_dataset(files, tf_transform_output, raw_label_keys, feature_spec):
  try:
    return data.unlabeled_dataset(files, tf_transform_output, raw_label_keys,
                                  feature_spec, _CACHE_BATCH_SIZE)
  except ValueError as e:
    raise transfer_lib.TransferSetError(f"unlabeled_examples: {e}") from e


def _label_unlabeled_on_beam(soft_labels: _SoftLabels, unlabeled, raw,
                             transform_dir: str, tf_transform_output, raw_label_keys,
                             feature_spec, width: int):
  """The transfer set's unlabeled rows, labelled on Beam (split 'unlabeled'):
  their count, and their (features, teacher logits) batches."""
  files = _all_splits(unlabeled)
  # Fails here, naming the problem, on rows this Transform cannot read.
  _unlabeled_dataset(files, tf_transform_output, raw_label_keys, feature_spec)
  record_spec = {name: spec for name, spec in tf_transform_output.raw_feature_spec().items()
                 if name not in set(raw_label_keys)}
  if raw is not None:
    handler = soft_labels.handler(None, record_spec, labelling.RAW)
  else:
    handler = soft_labels.handler(None, record_spec, labelling.UNTRANSFORMED,
                                  transform_dir=transform_dir)
  try:
    count, directory = soft_labels.label(transfer_lib.UNLABELED, files, handler)
  except Exception as e:  # pylint: disable=broad-except
    # A row that does not parse fails in a Beam worker, as whatever the runner
    # wraps TensorFlow's error in.
    raise transfer_lib.TransferSetError(
        "The teacher could not label the unlabeled examples on Beam (each needs "
        "every column the raw schema requires, but the label's): "
        f"{str(e).splitlines()[-1] if str(e) else type(e).__name__}") from e
  layer = tf_transform_output.transform_features_layer()

  def prepare(parsed, logits):
    transformed = layer(parsed)
    return {name: transformed[name] for name in feature_spec}, logits

  return count, lambda size: labelling.rows(  # pylint: disable=g-long-lambda
      directory, record_spec, width, prepare, size, teacher_cache.SHUFFLE_BUFFER)


def _soft_label_rows(soft_dir: str, tf_transform_output, label_key: str,
                     feature_spec, raw: bool, width: int, batch_size: int
                     ) -> tf.data.Dataset:
  """(features, label, teacher logits) batches of the rows labelled on Beam:
  transformed examples as TFXIO reads them, or raw ones transformed here by
  this run's transform graph (a teacher of another Transform), as
  `data.raw_dataset` does."""
  if raw:
    layer = tf_transform_output.transform_features_layer()

    def prepare(parsed, logits):
      transformed = layer(parsed)
      return ({name: transformed[name] for name in feature_spec},
              transformed[label_key], logits)
    record_spec = tf_transform_output.raw_feature_spec()
  else:
    def prepare(parsed, logits):
      label = parsed.pop(label_key)
      return parsed, label, logits
    record_spec = tf_transform_output.transformed_feature_spec()
  return labelling.rows(soft_dir, record_spec, width, prepare, batch_size,
                        teacher_cache.SHUFFLE_BUFFER)


def _write_transfer_set(path, unlabeled, ratio, teacher, raw, feature_spec,
                        tf_transform_output, raw_label_keys, train_batches,
                        out_of_fold) -> Dict[str, int]:
  """Labels the transfer set with the teacher, once; its rows by source.

  Unlabeled rows are no train rows: the teacher fit on every row labels
  them. A synthetic row is mostly its base train row: out-of-fold models,
  where there are, label it by that row's fold.
  """
  sources = {}
  if unlabeled:
    files = _all_splits(unlabeled)
    dataset = _unlabeled_dataset(files, tf_transform_output, raw_label_keys,
                                 feature_spec)
    sources[transfer_lib.UNLABELED] = lambda: transfer_lib.unlabeled_rows(
        dataset, teacher.logits, raw)
  if ratio:
    labeller = out_of_fold or teacher
    sources[transfer_lib.SYNTHETIC] = lambda: transfer_lib.synthetic_rows(
        train_batches(), labeller.logits, ratio)
  return transfer_lib.write(sources, feature_spec, teacher.width, path)


def _out_of_fold(teacher_uri: str, raw: bool, feature_spec, width: int,
                 reading: Dict[str, Any], exec_properties
                 ) -> Optional[teacher_lib.OutOfFold]:
  """The teacher's out-of-fold models for the train split, or None.

  Used when the teacher's artifact has them (folds.py) and the teacher reads
  this run's transformed examples: a teacher read through raw examples was
  fit on another run's rows, which its folds are about.
  """
  wanted = int(exec_properties.get(spec_lib.TEACHER_FOLDS_KEY) or 0)
  manifest = folds_lib.read_manifest(teacher_uri)
  if manifest and raw:
    logging.warning("The teacher's out-of-fold models are not used: it reads raw "
                    "examples, so it was fit on another run's rows.")
    manifest = None
  found = int(manifest["folds"]) if manifest else 0
  if wanted and wanted != found:
    raise teacher_lib.TeacherContractError(
        f"teacher_folds={wanted}, but the teacher at {teacher_uri} has "
        + (f"{found} out-of-fold models" if found else
           f"no out-of-fold models ({folds_lib.DIR}/{folds_lib.MANIFEST})"
           + (" that this run may use: it reads raw examples" if raw else ""))
        + ". Its Trainer module writes them (distill_components.distiller.folds; "
        "the zero-code tree teacher does with teacher_folds in its custom_config), "
        "or unset teacher_folds.")
  if not manifest:
    return None
  out_of_fold = teacher_lib.OutOfFold(teacher_uri, manifest, feature_spec, **reading)
  if out_of_fold.width != width:
    raise teacher_lib.TeacherContractError(
        f"The teacher's out-of-fold models emit {out_of_fold.width} outputs; the "
        f"teacher emits {width}.")
  logging.info("Train outputs of the teacher out of fold: %d models.", out_of_fold.folds)
  return out_of_fold


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """The dataset, split between a multi-worker strategy's workers batch by batch
  (not by file: a split may be one file)."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return dataset.with_options(options)


def _split_name(exec_properties, key: str, default: str) -> str:
  """The first split train_args / eval_args name (TFX's default otherwise)."""
  args = (trainer_pb2.TrainArgs() if key == std.TRAIN_ARGS_KEY
          else trainer_pb2.EvalArgs())
  if exec_properties.get(key):
    proto_utils.json_to_proto(exec_properties[key], args)
  return args.splits[0] if args.splits else default


def _backup_dir(model_uri: str, input_dict, exec_properties) -> str:
  """Where training checkpoints wait for a rerun of the same Distiller work.

  Rerunning a pipeline after a crash makes a new execution with new output
  URIs (`<pipeline root>/Distiller/model/<execution id>`): TFX 1.16's
  launcher reuses an execution, and so its URIs and `stateful_working_dir`,
  only within the same pipeline run, and LocalDagRunner starts a new run
  each time. So the directory is named by what the work is: the input
  artifacts' URIs and the execution properties. It sits beside the
  Distiller's outputs (`<pipeline root>/Distiller/training_backup/
  <fingerprint>`); Keras' BackupAndRestore deletes it once training
  completes.
  """
  work = {"inputs": {key: sorted(a.uri for a in artifacts)
                     for key, artifacts in input_dict.items()},
          "properties": {k: v for k, v in exec_properties.items()
                         if isinstance(v, (str, int, float, bool, type(None)))}}
  fingerprint = hashlib.sha256(
      json.dumps(work, sort_keys=True).encode()).hexdigest()[:16]
  component_dir = os.path.dirname(os.path.dirname(model_uri))
  return os.path.join(component_dir, "training_backup", fingerprint)
