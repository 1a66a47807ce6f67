"""The Distiller's ComponentSpec: its typed parameters, inputs and outputs.

Keys shared with TFX's Trainer (`examples`, `transform_graph`, `schema`,
`hyperparameters`, `train_args`, `eval_args`, `module_file`, `custom_config`,
`model`, `model_run`) keep the Trainer's names, so TFX's own `FnArgs` builder
serves the Distiller as it serves the Trainer.
"""
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as std
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

TEACHER_MODEL_KEY = "teacher_model"
BUILD_STUDENT_KEY = "build_student"
LABEL_KEY_KEY = "label_key"
RAW_LABEL_KEYS_KEY = "raw_label_keys"
TEMPERATURE_KEY = "temperature"
ALPHA_KEY = "alpha"
TASK_KEY = "task"
BATCH_SIZE_KEY = "batch_size"
LEARNING_RATE_KEY = "learning_rate"
TEACHER_SIGNATURE_KEY = "teacher_signature"
CACHE_TEACHER_OUTPUTS_KEY = "cache_teacher_outputs"
TEACHER_OUTPUTS_KEY = "teacher_outputs"
RAW_EXAMPLES_KEY = "raw_examples"
TEACHER_IMPORTS_KEY = "teacher_imports"
TEACHER_FOLDS_KEY = "teacher_folds"
UNLABELED_EXAMPLES_KEY = "unlabeled_examples"
SYNTHETIC_RATIO_KEY = "synthetic_ratio"
DISTRIBUTION_KEY = "distribution"
TEACHER_LABELLING_KEY = "teacher_labelling"
SOFT_LABELS_KEY = "soft_labels"
SEED_KEY = "seed"
VALIDATION_FRACTION_KEY = "validation_fraction"
CHOICE_METRIC_KEY = "choice_metric"
COMPARE_ALONE_KEY = "compare_alone"


def _optional(type_) -> ExecutionParameter:
  """A parameter the Distiller may leave unset."""
  return ExecutionParameter(type=type_, optional=True)


class DistillerSpec(ComponentSpec):
  """Distiller component spec."""

  PARAMETERS = {
      std.TRAIN_ARGS_KEY: ExecutionParameter(type=trainer_pb2.TrainArgs),
      std.EVAL_ARGS_KEY: ExecutionParameter(type=trainer_pb2.EvalArgs),
      std.MODULE_FILE_KEY: _optional(str),
      std.MODULE_PATH_KEY: _optional(str),
      BUILD_STUDENT_KEY: _optional(str),
      LABEL_KEY_KEY: ExecutionParameter(type=str),
      # JSON list of raw columns serving requests do not carry.
      RAW_LABEL_KEYS_KEY: ExecutionParameter(type=str),
      TEMPERATURE_KEY: ExecutionParameter(type=float),
      ALPHA_KEY: ExecutionParameter(type=float),
      # binary | multiclass | regression; unset: binary or multiclass by the
      # teacher's output width.
      TASK_KEY: _optional(str),
      BATCH_SIZE_KEY: ExecutionParameter(type=int),
      LEARNING_RATE_KEY: ExecutionParameter(type=float),
      # Unset: `transformed_logits` if the teacher has it, else its Keras model.
      TEACHER_SIGNATURE_KEY: _optional(str),
      # "logits" | "probabilities", for a teacher whose head cannot be seen.
      TEACHER_OUTPUTS_KEY: _optional(str),
      # 1: compute the teacher's outputs once per train example and reuse
      # them every epoch; 0: call the teacher on every batch.
      CACHE_TEACHER_OUTPUTS_KEY: _optional(int),
      # JSON list of Python modules imported before the teacher is loaded:
      # those registering its custom ops (TF-DF: tensorflow_decision_forests).
      TEACHER_IMPORTS_KEY: _optional(str),
      # k > 1: the teacher's Model artifact must hold k out-of-fold models
      # (folds.py); 0 or unset: they are used if it has them.
      TEACHER_FOLDS_KEY: _optional(int),
      # Synthetic transfer-set rows per train example (transfer.py); 0: none.
      SYNTHETIC_RATIO_KEY: _optional(float),
      # auto | none | mirrored | multi_worker: the tf.distribute strategy
      # (distribute.py); unset: auto, from TF_CONFIG and the local devices.
      DISTRIBUTION_KEY: _optional(str),
      # beam | in_process: where the once-before-training teacher pass runs
      # (labelling.py); unset: in_process (faster on one machine: bench/labelling.py).
      TEACHER_LABELLING_KEY: _optional(str),
      # Seeds Python, NumPy and TensorFlow before the student is built: its
      # first weights and its batches' order; unset: 0.
      SEED_KEY: _optional(int),
      # The share of train rows held out, by a hash of their features, to
      # choose between the distilled student and the student alone
      # (choice.py); unset: choice.DEFAULT_VALIDATION_FRACTION.
      VALIDATION_FRACTION_KEY: _optional(float),
      # The metric that chooses (a TFMA name of the task's metrics, e.g. auc);
      # unset: the task's first (Task.metrics).
      CHOICE_METRIC_KEY: _optional(str),
      # 0: no student alone, no validation cut; the distilled student goes
      # on (choice.py); unset: 1.
      COMPARE_ALONE_KEY: _optional(int),
      std.CUSTOM_CONFIG_KEY: _optional(str),
  }
  INPUTS = {
      # One Model, or several (a union channel) whose outputs are averaged.
      TEACHER_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      std.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      std.TRANSFORM_GRAPH_KEY: ChannelParameter(
          type=standard_artifacts.TransformGraph),
      std.SCHEMA_KEY: ChannelParameter(
          type=standard_artifacts.Schema, optional=True),
      std.HYPERPARAMETERS_KEY: ChannelParameter(
          type=standard_artifacts.HyperParameters, optional=True),
      # The untransformed examples (ExampleGen's), for a teacher trained on
      # another Transform (reused, imported): it reads them through its own
      # serving signature while the student reads this run's Transform.
      RAW_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
      # Untransformed examples without labels (an ExampleGen's), a transfer
      # set: the student learns the teacher's outputs on them (transfer.py).
      UNLABELED_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
  }
  OUTPUTS = {
      std.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      std.MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun),
      # The train rows, each with the teacher's outputs, when the teacher
      # labelled them on Beam (labelling.py); otherwise no split.
      SOFT_LABELS_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }
