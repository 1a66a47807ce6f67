"""The Distiller's first step: every input checked before anything trains.

`check` reads the execution's properties and artifacts once and returns
`Inputs`, what the later steps (soft_labels.py, the executor's training,
choice and export) read: the task, the teacher and how it reads, the label
and its checks, the student's module, where the train and eval rows are.
Whatever can be wrong with the inputs raises here, naming the problem.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.components.trainer import fn_args_utils
from tfx.components.util import udf_utils
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as std
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import path_utils
from tfx.utils import proto_utils

from distill_components.distiller import choice
from distill_components.distiller import data
from distill_components.distiller import defaults
from distill_components.distiller import export
from distill_components.distiller import labelling
from distill_components.distiller import soft_labels
from distill_components.distiller import spec as spec_lib
from distill_components.distiller import tasks
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import transfer as transfer_lib


class LabelNotFoundError(ValueError):
  """The label is not among the transformed features."""


@dataclasses.dataclass
class Inputs:
  """The Distiller's inputs, checked (see module)."""
  fn_args: fn_args_utils.FnArgs
  task: tasks.Task
  alpha: float
  temperature: float
  learning_rate: float
  batch_size: int
  seed: int
  label_key: str
  raw_label_keys: List[str]
  tf_transform_output: tft.TFTransformOutput
  feature_spec: Dict[str, Any]  # the student's (and teacher's) transformed inputs
  build_student: Callable[[fn_args_utils.FnArgs], tf.keras.Model]
  # The teacher: its artifacts and SavedModels, how each is read, one or
  # their mean; its raw reader (another Transform's) and out-of-fold models.
  teacher_artifacts: List[types.Artifact]
  teacher_dirs: List[str]
  reading: Dict[str, Any]
  teacher: Any
  raw: Optional[Any]
  folded: List[Optional[teacher_lib.OutOfFold]]
  out_of_fold: Optional[Any]
  # The student alone beside the distilled one, chosen on a validation cut.
  compare: bool
  fraction: float
  choice_metric: tasks.Metric
  # The soft labels: where the teacher's outputs are computed, the transfer set.
  labelling_mode: str
  cache_teacher_outputs: bool
  synthetic_ratio: float
  unlabeled: Optional[List[types.Artifact]]
  train_split: str
  train_files: List[str]
  eval_files: List[str]
  batches: Callable[[Sequence[str], int, bool], tf.data.Dataset]

  @property
  def schema(self):
    return self.tf_transform_output.transformed_metadata.schema

  @property
  def teacher_source(self) -> str:
    if self.raw is not None:
      return f"{self.raw.source}, not this run's Transform"
    return self.out_of_fold.source if self.out_of_fold else self.teacher.source

  def outside_cut(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The train rows both students train on: those outside the validation
    cut (all of them when the students are not compared)."""
    if not self.compare:
      return dataset
    return choice.cut(dataset, sorted(self.feature_spec), self.fraction, validation=False)

  def validation_cut(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
    return choice.cut(dataset, sorted(self.feature_spec), self.fraction, validation=True)


def check(input_dict: Dict[str, List[types.Artifact]],
          fn_args: fn_args_utils.FnArgs, exec_properties: Dict[str, Any]) -> Inputs:
  """Every input of the execution, checked; raises naming the first problem."""
  alpha = defaults.check_alpha(float(exec_properties[spec_lib.ALPHA_KEY]))
  temperature = defaults.check_temperature(
      float(exec_properties[spec_lib.TEMPERATURE_KEY]))
  # The task arrives as its name and is parsed here, once; unset: binary or
  # multiclass, by the teacher's width (known once the teacher is read).
  task = (tasks.Task.parse(exec_properties[spec_lib.TASK_KEY])
          if exec_properties.get(spec_lib.TASK_KEY) else None)
  if not fn_args.train_steps:
    raise ValueError("train_args.num_steps must be > 0.")
  label_key = exec_properties[spec_lib.LABEL_KEY_KEY]
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  transformed = tf_transform_output.transformed_feature_spec()
  if label_key not in transformed:
    raise LabelNotFoundError(
        f"label_key {label_key!r} is not among the transformed features "
        f"{sorted(transformed)}; the Transform's preprocessing_fn must output it.")
  feature_spec = export.model_input_spec(tf_transform_output, label_key)

  teacher_artifacts = list(input_dict[spec_lib.TEACHER_MODEL_KEY])
  if not teacher_artifacts:
    raise teacher_lib.TeacherContractError("The teacher_model input holds no Model.")
  teacher_dirs = [path_utils.serving_model_path(
      a.uri, path_utils.is_old_model_artifact(a)) for a in teacher_artifacts]
  reading = dict(
      # Unset: classification, read the same whatever the number of classes.
      task=task or tasks.Task.BINARY,
      signature_name=exec_properties.get(spec_lib.TEACHER_SIGNATURE_KEY) or None,
      outputs=exec_properties.get(spec_lib.TEACHER_OUTPUTS_KEY) or None,
      imports=json_utils.loads(exec_properties.get(spec_lib.TEACHER_IMPORTS_KEY) or "[]"))
  # One teacher, or several whose outputs are averaged.
  teachers = [teacher_lib.Teacher(d, feature_spec, **reading) for d in teacher_dirs]
  teacher = teacher_lib.one_or_ensemble(teachers)
  task = task or (tasks.Task.BINARY if teacher.width == 1 else tasks.Task.MULTICLASS)
  try:
    task.check_width(teacher.width)
  except ValueError as e:
    raise teacher_lib.TeacherContractError(
        f"The teacher ({teacher.source}) does not fit the task: {e}") from e
  schema = tf_transform_output.transformed_metadata.schema
  # Every train label, streamed: one wrong value anywhere is an error.
  count = task.check_label_chunks(
      data.label_chunks(fn_args, schema, label_key), teacher.width,
      where=f"The transformed label {label_key!r} of the train split")
  logging.info("Teacher read through %s; task %s; %d train labels checked.",
               teacher.source, task.value, count)

  try:
    build_student = udf_utils.get_fn(exec_properties, spec_lib.BUILD_STUDENT_KEY)
  except (AttributeError, ImportError) as e:
    raise ValueError(f"Cannot load the student's `{spec_lib.BUILD_STUDENT_KEY}` "
                     f"function: {e}") from e

  raw = _raw_teacher(teacher, input_dict)
  # Each teacher's out-of-fold models, where it has them, label the train split.
  folded = [soft_labels.out_of_fold(a.uri, raw is not None, feature_spec,
                                    teacher.width, reading, exec_properties)
            for a in teacher_artifacts]
  out_of_fold = (teacher_lib.one_or_ensemble([f or t for f, t in zip(folded, teachers)])
                 if any(folded) else None)
  synthetic_ratio = float(exec_properties.get(spec_lib.SYNTHETIC_RATIO_KEY) or 0)
  transfer_lib.check_ratio(synthetic_ratio)
  if synthetic_ratio and raw is not None:
    raise transfer_lib.TransferSetError(
        "Synthetic rows are mixed from this run's transformed features, which "
        f"the teacher ({raw.source}) does not read: it was trained on another "
        "Transform. Leave synthetic_ratio at 0, or give unlabeled_examples.")

  if raw is not None:
    # The teacher reads raw examples its own way; the student this run's
    # transformed features of the same examples.
    def split_files(key, default):
      split = _split_name(exec_properties, key, default)
      return [io_utils.all_files_pattern(artifact_utils.get_split_uri(
          input_dict[spec_lib.RAW_EXAMPLES_KEY], split))]
    train_files = split_files(std.TRAIN_ARGS_KEY, "train")
    eval_files = split_files(std.EVAL_ARGS_KEY, "eval")
    batches = lambda files, size, repeat: data.raw_dataset(  # pylint: disable=g-long-lambda
        files, tf_transform_output, label_key, feature_spec, raw, size, repeat)
  else:
    train_files, eval_files = fn_args.train_files, fn_args.eval_files
    batches = lambda files, size, repeat: data.dataset(  # pylint: disable=g-long-lambda
        fn_args, files, schema, label_key, size, repeat=repeat)

  compare = exec_properties.get(spec_lib.COMPARE_ALONE_KEY) != 0
  return Inputs(
      fn_args=fn_args, task=task, alpha=alpha, temperature=temperature,
      learning_rate=float(exec_properties[spec_lib.LEARNING_RATE_KEY]),
      batch_size=int(exec_properties[spec_lib.BATCH_SIZE_KEY]),
      # A rerun on the same inputs trains the same student: its first weights
      # and every random op after them follow the seed.
      seed=int(exec_properties.get(spec_lib.SEED_KEY) or 0),
      label_key=label_key,
      raw_label_keys=json_utils.loads(exec_properties[spec_lib.RAW_LABEL_KEYS_KEY]),
      tf_transform_output=tf_transform_output, feature_spec=feature_spec,
      build_student=build_student, teacher_artifacts=teacher_artifacts,
      teacher_dirs=teacher_dirs, reading=reading, teacher=teacher, raw=raw,
      folded=folded, out_of_fold=out_of_fold, compare=compare,
      fraction=choice.check_fraction(
          exec_properties.get(spec_lib.VALIDATION_FRACTION_KEY)
          or choice.DEFAULT_VALIDATION_FRACTION),
      choice_metric=choice.metric_named(
          task, exec_properties.get(spec_lib.CHOICE_METRIC_KEY)
          or task.metrics[0].name),
      labelling_mode=labelling.check_mode(
          exec_properties.get(spec_lib.TEACHER_LABELLING_KEY) or labelling.IN_PROCESS),
      cache_teacher_outputs=bool(exec_properties.get(spec_lib.CACHE_TEACHER_OUTPUTS_KEY)),
      synthetic_ratio=synthetic_ratio,
      unlabeled=input_dict.get(spec_lib.UNLABELED_EXAMPLES_KEY),
      train_split=_split_name(exec_properties, std.TRAIN_ARGS_KEY, "train"),
      train_files=train_files, eval_files=eval_files, batches=batches)


def _raw_teacher(teacher, input_dict):
  """The teacher's raw reader when raw examples are given (a teacher of
  another run, whose Transform is not this run's)."""
  if not input_dict.get(spec_lib.RAW_EXAMPLES_KEY):
    return None
  raw = teacher.raw_reader()
  if raw is None:
    raise teacher_lib.TeacherContractError(
        "raw_examples are given, so the teacher was trained on another Transform "
        "than this run's, but its serving_default does not take serialized "
        f"tf.Examples and return [batch, {teacher.width}] outputs: reading this "
        "run's transformed features instead would feed it features it was not "
        f"trained on ({teacher.source}). Export the teacher with a serving_default "
        "on serialized tf.Examples (as TFX's Trainer modules do), or leave "
        "raw_examples unset if the teacher reads this run's transformed features.")
  return raw


def _split_name(exec_properties, key: str, default: str) -> str:
  """The first split train_args / eval_args name (TFX's default otherwise)."""
  args = (trainer_pb2.TrainArgs() if key == std.TRAIN_ARGS_KEY
          else trainer_pb2.EvalArgs())
  if exec_properties.get(key):
    proto_utils.json_to_proto(exec_properties[key], args)
  return args.splits[0] if args.splits else default
