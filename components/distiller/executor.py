"""The Distiller's executor: check the inputs, train the student, export it."""

import os
from typing import Any, Dict, List

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.components.util import udf_utils
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as std
from tfx.utils import json_utils
from tfx.utils import path_utils

from distill_components.distiller import data
from distill_components.distiller import export
from distill_components.distiller import losses
from distill_components.distiller import spec as spec_lib
from distill_components.distiller import tasks
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import training

# Written first, renamed to Format-Serving only once the student is complete.
_STAGING_DIR = "Format-Serving.partial"
# TensorBoard summaries every this many steps.
_SUMMARY_EVERY_STEPS = 100
# The label check before training reads at most this many train labels.
_LABEL_CHECK_EXAMPLES = 1_000_000


class LabelNotFoundError(ValueError):
  """The label is not among the transformed features."""


class Executor(trainer_executor.GenericExecutor):
  """Trains the student on the distillation loss and exports it.

  Reuses the Trainer's `FnArgs` construction (the spec keeps the Trainer's
  keys), so the user's `build_student(fn_args)` sees what a `run_fn` would.
  """

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
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

    teacher_artifact = artifact_utils.get_single_instance(
        input_dict[spec_lib.TEACHER_MODEL_KEY])
    teacher_dir = path_utils.serving_model_path(
        teacher_artifact.uri, path_utils.is_old_model_artifact(teacher_artifact))
    teacher = teacher_lib.Teacher(
        teacher_dir, feature_spec,
        # Unset: classification; binary or multiclass follows from the width.
        task=tasks.Task.parse(task or tasks.Task.BINARY),
        signature_name=exec_properties.get(spec_lib.TEACHER_SIGNATURE_KEY) or None,
        outputs=exec_properties.get(spec_lib.TEACHER_OUTPUTS_KEY) or None)
    if task is None:
      task = tasks.Task.BINARY if teacher.width == 1 else tasks.Task.MULTICLASS
    task = tasks.Task.parse(task)
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
    student = build_student(fn_args)
    if not isinstance(student, tf.keras.Model):
      raise training.StudentOutputError(
          f"build_student must return a tf.keras.Model; it returned "
          f"{type(student).__name__}.")

    train_data = data.dataset(fn_args, fn_args.train_files, schema, label_key,
                          batch_size, repeat=True)
    eval_data = data.dataset(fn_args, fn_args.eval_files, schema, label_key,
                         batch_size, repeat=False)
    features, _ = next(iter(train_data))
    training.check_output_widths(teacher.logits(features), student(features))

    teacher_logits = teacher.logits
    cache_dir = None
    if exec_properties.get(spec_lib.CACHE_TEACHER_OUTPUTS_KEY):
      cache_dir = os.path.join(self._get_tmp_dir(), "teacher_outputs")
      pattern, count = teacher_cache.write(
          teacher.logits, fn_args.train_files,
          tf_transform_output.transformed_feature_spec(), cache_dir)
      logging.info("Teacher outputs for %d train examples cached in %s.", count,
                   pattern)
      train_data = data.dataset(fn_args, [pattern],
                            teacher_cache.extend_schema(schema, teacher.width),
                            label_key, batch_size, repeat=True)
      teacher_logits = teacher_cache.from_batch

    distillation = training.Distillation(
        student, teacher_logits, task=task, alpha=alpha, temperature=temperature,
        optimizer=tf.keras.optimizers.Adam(
            float(exec_properties[spec_lib.LEARNING_RATE_KEY])))
    logging.info("Distilling %s into a student of %d weights: T=%s alpha=%s, "
                 "%d steps of %d examples.", teacher_dir, student.count_params(),
                 temperature, alpha, fn_args.train_steps, batch_size)
    try:
      distillation.fit(train_data, fn_args.train_steps,
                       summary_dir=os.path.join(fn_args.model_run_dir, "train"),
                       summary_every=_SUMMARY_EVERY_STEPS)
    finally:
      if cache_dir:
        fileio.rmtree(cache_dir)
    # The eval split is scored against the teacher itself, cached or not.
    distillation.use_teacher(teacher.logits)
    eval_metrics = distillation.evaluate(eval_data, fn_args.eval_steps)
    logging.info("Student on the eval split: %s", eval_metrics)

    model_uri = artifact_utils.get_single_uri(output_dict[std.MODEL_KEY])
    staging_dir = os.path.join(model_uri, _STAGING_DIR)
    export.save_model(
        student, staging_dir, tf_transform_output, label_key=label_key,
        raw_label_keys=json_utils.loads(
            exec_properties[spec_lib.RAW_LABEL_KEYS_KEY]), task=task)
    fileio.rename(staging_dir, fn_args.serving_model_dir)

    student_params = student.count_params()
    teacher_bytes = export.saved_model_bytes(teacher_dir)
    student_bytes = export.saved_model_bytes(fn_args.serving_model_dir)
    record = artifact_utils.get_single_instance(output_dict[std.MODEL_KEY])
    record.set_string_custom_property("teacher_uri", teacher_artifact.uri)
    record.set_string_custom_property("teacher_source", teacher.source)
    record.set_string_custom_property("task", task.value)
    record.set_float_custom_property("temperature", temperature)
    record.set_float_custom_property("alpha", alpha)
    record.set_int_custom_property("cache_teacher_outputs", int(bool(cache_dir)))
    record.set_int_custom_property("teacher_params", teacher.num_params)
    record.set_int_custom_property("student_params", student_params)
    record.set_float_custom_property(
        "compression_ratio", teacher.num_params / max(student_params, 1))
    record.set_int_custom_property("teacher_saved_model_bytes", teacher_bytes)
    record.set_int_custom_property("student_saved_model_bytes", student_bytes)
    for name, value in eval_metrics.items():
      record.set_float_custom_property(f"eval_{name}", float(value))
    logging.info("Student written to %s (%d weights, teacher %d).",
                 fn_args.serving_model_dir, student_params, teacher.num_params)
