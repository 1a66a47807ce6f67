"""The Distiller's executor: check the inputs, plan the soft labels, train
both students, keep the better, export it and record what happened."""

import dataclasses
import hashlib
import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as std

from distill_components.distiller import choice
from distill_components.distiller import distribute
from distill_components.distiller import export
from distill_components.distiller import inputs as inputs_lib
from distill_components.distiller import labelling
from distill_components.distiller import properties
from distill_components.distiller import soft_labels as soft_labels_lib
from distill_components.distiller import spec as spec_lib
from distill_components.distiller import training
from distill_components.distiller import transfer as transfer_lib

# Written first, renamed to Format-Serving only once the student is complete.
_STAGING_DIR = "Format-Serving.partial"
# TensorBoard summaries every this many steps.
_SUMMARY_EVERY_STEPS = 100

LabelNotFoundError = inputs_lib.LabelNotFoundError


@dataclasses.dataclass
class _Choice:
  """Which student went on, and the figures that chose it (choice.py)."""
  chosen: str = choice.DISTILLED
  figures: Dict[str, Dict[str, Dict[str, float]]] = dataclasses.field(default_factory=dict)
  validation_count: int = 0
  eval_count: int = 0
  seconds: float = 0.0


class Executor(base_beam_executor.BaseBeamExecutor, trainer_executor.GenericExecutor):
  """Trains the student on the distillation loss and exports it.

  Reuses the Trainer's `FnArgs` construction (the spec keeps the Trainer's
  keys), so the user's `build_student(fn_args)` sees what a `run_fn` would.
  A Beam executor: the teacher labels the train rows on the pipeline's Beam
  runner (labelling.py). `Do` runs named steps: check the inputs
  (inputs.py), build both students, plan the soft labels (soft_labels.py),
  train, choose (choice.py), export and record.
  """

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
    inputs = inputs_lib.check(
        input_dict, self._GetFnArgs(input_dict, output_dict, exec_properties),
        exec_properties)
    student, alone = _build_students(inputs, strategy)
    # A worker that is not the chief writes nothing the chief writes.
    scratch = os.path.join(self._get_tmp_dir(), "worker")
    soft_labels = soft_labels_lib.SoftLabelsOutput(
        artifact_utils.get_single_instance(output_dict[spec_lib.SOFT_LABELS_KEY])
        if spec_lib.SOFT_LABELS_KEY in output_dict else None,
        chief, scratch, self._make_beam_pipeline, inputs.teacher_dirs,
        inputs.feature_spec, inputs.reading)
    plan = soft_labels_lib.plan(inputs, soft_labels, self._get_tmp_dir())
    model_uri = artifact_utils.get_single_uri(output_dict[std.MODEL_KEY])
    distillation = _distillation(inputs, strategy, student, alone)
    logging.info("Distilling %s into a student of %d weights: T=%s alpha=%s, "
                 "%d steps of %d examples.", ", ".join(inputs.teacher_dirs),
                 student.count_params(), inputs.temperature, inputs.alpha,
                 inputs.fn_args.train_steps, inputs.batch_size)
    try:
      distillation.fit(
          _shard(strategy, plan.train_data), inputs.fn_args.train_steps,
          summary_dir=os.path.join(
              inputs.fn_args.model_run_dir if chief else scratch, "train"),
          summary_every=_SUMMARY_EVERY_STEPS,
          backup_dir=_backup_dir(model_uri, input_dict, exec_properties))
    finally:
      plan.clean_up()
    chosen = _choose(inputs, student, alone)
    if plan.labelled_count is not None and plan.mode == labelling.BEAM:
      plan.labelled_count -= chosen.validation_count  # Beam labelled the cut's rows too
    if chosen.chosen == choice.ALONE:
      student, distillation = alone, _distillation(inputs, strategy, alone, None)
    # The eval split is scored against the teacher itself, cached or not.
    eval_metrics = distillation.evaluate(
        _shard(strategy, inputs.batches(inputs.eval_files, inputs.batch_size, False)),
        inputs.fn_args.eval_steps)
    logging.info("Student on the eval split: %s", eval_metrics)

    # Every worker saves (Keras' rule under a multi-worker strategy); only the
    # chief's is the student.
    staging_dir = os.path.join(model_uri if chief else scratch, _STAGING_DIR)
    export.save_model(student, staging_dir, inputs.tf_transform_output,
                      label_key=inputs.label_key, raw_label_keys=inputs.raw_label_keys,
                      task=inputs.task)
    if not chief:
      fileio.rmtree(scratch)
      logging.info("Trained as a worker of %d; the chief exports and records the "
                   "student.", distribute.cluster_size())
      return
    fileio.rename(staging_dir, inputs.fn_args.serving_model_dir)
    _record(artifact_utils.get_single_instance(output_dict[std.MODEL_KEY]),
            inputs, plan, chosen, student, eval_metrics)


def _build_students(inputs: inputs_lib.Inputs, strategy
                    ) -> Tuple[tf.keras.Model, Optional[tf.keras.Model]]:
  """The student, and the same student alone (None when not compared): same
  first weights, trained beside it on the same batches from the labels."""
  def build():
    # A rerun on the same inputs trains the same student.
    tf.keras.utils.set_random_seed(inputs.seed)
    # The student, its optimizer and its training loop belong to the strategy.
    with strategy.scope():
      return inputs.build_student(inputs.fn_args)
  student = build()
  if not isinstance(student, tf.keras.Model):
    raise training.StudentOutputError(
        f"build_student must return a tf.keras.Model; it returned "
        f"{type(student).__name__}.")
  alone = build() if inputs.compare else None
  first = next(iter(inputs.batches(inputs.train_files, inputs.batch_size, True)))
  training.check_output_widths(
      first[2] if inputs.raw is not None else inputs.teacher.logits(first[0]),
      student(first[0]))
  return student, alone


def _distillation(inputs: inputs_lib.Inputs, strategy, student, alone
                  ) -> training.Distillation:
  with strategy.scope():
    distillation = training.Distillation(
        student, inputs.teacher.logits, task=inputs.task, alpha=inputs.alpha,
        temperature=inputs.temperature,
        optimizer=tf.keras.optimizers.Adam(inputs.learning_rate), alone=alone)
  return distillation


def _choose(inputs: inputs_lib.Inputs, student, alone) -> _Choice:
  """Which of the two students goes on: both scored on the validation cut
  (and, for the record, on the eval split, which never chooses)."""
  if not inputs.compare:
    return _Choice()
  started = time.monotonic()
  read = lambda files: inputs.batches(files, soft_labels_lib.READ_BATCH_SIZE, False)
  figures, counts = choice.score_students(
      inputs.task, {choice.DISTILLED: student, choice.ALONE: alone},
      inputs.validation_cut(read(inputs.train_files)), read(inputs.eval_files),
      inputs.fraction)
  count = counts[choice.VALIDATION]
  result = _Choice(choice.choose(figures, inputs.choice_metric), figures, count,
                   counts[choice.EVAL], time.monotonic() - started)
  metric = inputs.choice_metric
  logging.info(
      "Distilled vs alone on %d validation rows: %s %.4f vs %.4f; %s goes on "
      "(scored in %.1f s).", count, metric.title,
      figures[choice.VALIDATION][choice.DISTILLED][metric.name],
      figures[choice.VALIDATION][choice.ALONE][metric.name], result.chosen,
      result.seconds)
  return result


def _record(record: types.Artifact, inputs: inputs_lib.Inputs,
            plan: soft_labels_lib.Plan, chosen: _Choice, student: tf.keras.Model,
            eval_metrics: Dict[str, float]) -> None:
  """What the run did, as custom properties of the student Model (properties.py)."""
  teacher, artifacts = inputs.teacher, inputs.teacher_artifacts
  student_params = student.count_params()
  record.set_string_custom_property(properties.TEACHER_URI, artifacts[0].uri)
  record.set_int_custom_property(properties.TEACHERS, len(artifacts))
  if len(artifacts) > 1:
    record.set_string_custom_property(
        properties.TEACHER_URIS, json.dumps([a.uri for a in artifacts]))
  if plan.labelled_count is not None:
    record.set_int_custom_property(properties.LABELLED_EXAMPLES, plan.labelled_count)
  for key, source in ((properties.UNLABELED_EXAMPLES, transfer_lib.UNLABELED),
                      (properties.SYNTHETIC_EXAMPLES, transfer_lib.SYNTHETIC)):
    record.set_int_custom_property(key, plan.transfer_counts.get(source, 0))
  record.set_string_custom_property(properties.TEACHER_SOURCE, inputs.teacher_source)
  record.set_string_custom_property(properties.TASK, inputs.task.value)
  record.set_float_custom_property(properties.TEMPERATURE, inputs.temperature)
  record.set_float_custom_property(properties.ALPHA, inputs.alpha)
  record.set_int_custom_property(properties.CACHE_TEACHER_OUTPUTS,
                                 int(plan.labelled_count is not None))
  record.set_string_custom_property(properties.TEACHER_LABELLING, plan.mode)
  record.set_int_custom_property(properties.TEACHER_FOLDS,
                                 max((f.folds for f in inputs.folded if f), default=0))
  if teacher.num_params:  # a tree ensemble has no weights to count
    record.set_int_custom_property(properties.TEACHER_PARAMS, teacher.num_params)
    record.set_float_custom_property(
        properties.COMPRESSION_RATIO, teacher.num_params / max(student_params, 1))
  record.set_int_custom_property(properties.STUDENT_PARAMS, student_params)
  record.set_int_custom_property(
      properties.TEACHER_SAVED_MODEL_BYTES,
      sum(export.saved_model_bytes(d) for d in inputs.teacher_dirs))
  record.set_int_custom_property(
      properties.STUDENT_SAVED_MODEL_BYTES,
      export.saved_model_bytes(inputs.fn_args.serving_model_dir))
  for name, value in eval_metrics.items():
    record.set_float_custom_property(properties.EVAL_PREFIX + name, float(value))
  record.set_string_custom_property(properties.STUDENT_CHOSEN, chosen.chosen)
  if inputs.compare:
    record.set_string_custom_property(properties.CHOICE_METRIC, inputs.choice_metric.name)
    record.set_float_custom_property(properties.VALIDATION_FRACTION, inputs.fraction)
    record.set_int_custom_property(properties.VALIDATION_EXAMPLES, chosen.validation_count)
    record.set_int_custom_property(properties.SCORED_EVAL_EXAMPLES, chosen.eval_count)
    record.set_float_custom_property(properties.SCORING_SECONDS, chosen.seconds)
  else:
    record.set_int_custom_property(properties.COMPARE_ALONE, 0)
  for part, by_model in chosen.figures.items():
    for model, values in by_model.items():
      for name, value in values.items():
        record.set_float_custom_property(properties.figure(model, part, name), value)
  candidates = choice.read_candidates(artifacts[0].uri)
  if candidates:
    record.set_string_custom_property(properties.TEACHER_CANDIDATES,
                                      json.dumps(candidates["candidates"]))
    record.set_string_custom_property(properties.TEACHER_CHOSEN, candidates["chosen"])
  logging.info("Student written to %s (%d weights, teacher %d).",
               inputs.fn_args.serving_model_dir, student_params, teacher.num_params)


def _shard(strategy, dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Under a multi-worker strategy each worker reads every batch and trains
  on its share of it."""
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return _shard_by_data(dataset)
  return dataset


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """The dataset, split between a multi-worker strategy's workers batch by batch
  (not by file: a split may be one file)."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return dataset.with_options(options)


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
