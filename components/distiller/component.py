"""The Distiller: a TFX component that trains a small student from a teacher."""

import ast
import os
from typing import Any, Dict, Optional, Sequence, Union

from tfx import types
from tfx.components.util import udf_utils
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.proto import trainer_pb2
from tfx.types import channel as channel_types
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as std
from tfx.utils import json_utils

from distill_components.distiller import choice
from distill_components.distiller import defaults
from distill_components.distiller import distribute
from distill_components.distiller import executor
from distill_components.distiller import folds as folds_lib
from distill_components.distiller import labelling
from distill_components.distiller import spec as spec_lib
from distill_components.distiller import tasks
from distill_components.distiller import transfer


def _is_runtime(value: Any) -> bool:
  return isinstance(value, data_types.RuntimeParameter)


def check_student_module(module_file: str) -> None:
  """Raises ValueError unless the file exists and defines `build_student`.

  Read as source, not imported: importing would pull in TensorFlow and the
  user's dependencies at pipeline-definition time.
  """
  if not os.path.isfile(module_file):
    raise ValueError(f"The student module file {module_file!r} does not exist.")
  with open(module_file, encoding="utf-8") as f:
    tree = ast.parse(f.read(), filename=module_file)
  names = {node.name for node in tree.body
           if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
  names |= {target.id for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}
  if spec_lib.BUILD_STUDENT_KEY not in names:
    raise ValueError(
        f"The student module file {module_file!r} defines no top-level "
        f"`{spec_lib.BUILD_STUDENT_KEY}(fn_args)` function; the Distiller calls it "
        "to build the student.")


class Distiller(base_component.BaseComponent):
  """Trains a small student model on a teacher's soft labels and the hard labels.

  The Distiller sits between the teacher's `Trainer` and the `Evaluator`. It
  reads the Transform's transformed examples, runs the teacher on the same
  transformed features the student sees, and trains the student on

      loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
             + (1 - alpha) * cross_entropy(labels, student)

  `alpha` weighs the **soft** (teacher) term: alpha = 1 is pure soft-label
  training, alpha = 0 ignores the teacher. A single-logit (binary) model uses
  the Bernoulli form of the KL; regression uses
  `alpha * MSE(teacher, student) + (1 - alpha) * MSE(labels, student)`.

  The student is exported with the teacher's serving contract (see `export`):
  `serving_default` takes serialized raw `tf.Example`s, applies the Transform
  graph and returns probabilities at temperature 1, so an Evaluator can compare
  it against the teacher and a Pusher can serve it in the teacher's place.

  The user module defines only the student:

      # student.py
      import tensorflow as tf

      def build_student(fn_args):
        # fn_args is TFX's FnArgs: hyperparameters, custom_config,
        # transform_output, schema_path, ...
        inputs = {name: tf.keras.layers.Input(shape=(1,), name=name)
                  for name in ["age_xf", "income_xf"]}
        x = tf.keras.layers.concatenate(list(inputs.values()))
        x = tf.keras.layers.Dense(8, activation="relu")(x)
        logits = tf.keras.layers.Dense(1)(x)   # logits, not probabilities
        return tf.keras.Model(inputs, logits)  # uncompiled

  Example:

      distiller = Distiller(
          teacher_model=trainer.outputs["model"],
          examples=transform.outputs["transformed_examples"],
          transform_graph=transform.outputs["transform_graph"],
          module_file="student.py",
          label_key="churned",
          raw_label_keys=["churned"],
          task="binary",
          train_args=tfx.proto.TrainArgs(num_steps=1000),
          eval_args=tfx.proto.EvalArgs(num_steps=100),
          temperature=1.0,
          alpha=1.0,
      )
      evaluator = Evaluator(
          examples=example_gen.outputs["examples"],
          model=distiller.outputs["model"],            # candidate: the student
          baseline_model=trainer.outputs["model"],     # baseline: the teacher
          eval_config=eval_config)

  The teacher is any Keras model a TFX Trainer saved, unchanged (with
  `tf.saved_model.save(model, dir, signatures=...)` as TFX's examples do, or
  `model.save(dir)`): the Distiller restores it and calls it on the
  transformed features. Logits or probabilities are read from its final
  layer (or `teacher_outputs`). A teacher may instead expose a signature
  (`transformed_logits`) taking transformed features; see `teacher.py`. The
  executor checks the teacher, the label values and the student's output
  width before it trains, and fails with an error that names what it found
  and what it needs.

  Outputs:
    model: the student, a `Model` artifact laid out like the Trainer's, with
      custom properties: teacher_uri, teacher_source, temperature, alpha, task,
      teacher_params, student_params, compression_ratio,
      teacher_saved_model_bytes, student_saved_model_bytes, eval_agreement
      (classification), eval_soft_loss, eval_hard_loss.
    model_run: TensorBoard logs of the distillation.
    soft_labels: `Examples` (split 'train'): the train rows, each with the
      teacher's outputs, when the teacher labelled them on Beam; no split
      otherwise.
  """

  SPEC_CLASS = spec_lib.DistillerSpec
  # Beam-powered: the teacher labels the train rows on the pipeline's Beam
  # runner (its beam_pipeline_args), as Transform and Evaluator run.
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(
      self,
      teacher_model: Union[types.BaseChannel, Sequence[types.BaseChannel]],
      examples: types.BaseChannel,
      transform_graph: types.BaseChannel,
      label_key: str,
      module_file: Optional[Union[str, data_types.RuntimeParameter]] = None,
      build_student: Optional[str] = None,
      schema: Optional[types.BaseChannel] = None,
      hyperparameters: Optional[types.BaseChannel] = None,
      train_args: Optional[trainer_pb2.TrainArgs] = None,
      eval_args: Optional[trainer_pb2.EvalArgs] = None,
      temperature: Union[float, data_types.RuntimeParameter] = defaults.DEFAULT_TEMPERATURE,
      alpha: Union[float, data_types.RuntimeParameter] = defaults.DEFAULT_ALPHA,
      task: Optional[str] = None,
      raw_label_keys: Sequence[str] = (),
      batch_size: int = defaults.DEFAULT_BATCH_SIZE,
      learning_rate: float = defaults.DEFAULT_LEARNING_RATE,
      seed: int = 0,
      teacher_signature: Optional[str] = None,
      teacher_outputs: Optional[str] = None,
      cache_teacher_outputs: bool = False,
      custom_config: Optional[Dict[str, Any]] = None,
      raw_examples: Optional[types.BaseChannel] = None,
      teacher_imports: Sequence[str] = (),
      teacher_folds: int = 0,
      unlabeled_examples: Optional[types.BaseChannel] = None,
      synthetic_ratio: float = 0.0,
      distribution: str = "auto",
      teacher_labelling: str = labelling.IN_PROCESS,
      validation_fraction: float = choice.DEFAULT_VALIDATION_FRACTION,
      choice_metric: Optional[str] = None,
      compare_alone: bool = True):
    """Constructs a Distiller.

    Args:
      teacher_model: `Model` channel of the teacher (typically
        `trainer.outputs["model"]`), or a list of them: several teachers,
        whose outputs (logits; regression: predictions) the student learns
        averaged, as one ensemble. Each is read the same way (the settings
        below apply to all), and they must emit the same width. Several
        teachers travel as one TFX union channel, which LocalDagRunner runs;
        TFX 1.16's Kubeflow V2 compiler takes one channel per input.
      examples: `Examples` channel of transformed examples
        (`transform.outputs["transformed_examples"]`), with 'train' and 'eval'
        splits unless train_args / eval_args name others.
      transform_graph: `TransformGraph` channel; it goes inside the student so
        the student serves raw examples.
      label_key: the transformed label feature, e.g. "churned".
      module_file: path to a Python file defining `build_student(fn_args)`,
        which returns an uncompiled `tf.keras.Model` mapping the transformed
        features to logits (regression: predictions). Exactly one of
        `module_file` and `build_student` is needed.
      build_student: Python path to such a function, e.g.
        "my_pkg.student.build_student", instead of a module file.
      schema: optional `Schema` channel, passed on in FnArgs.
      hyperparameters: optional `HyperParameters` channel (e.g. a Tuner's),
        passed on in `fn_args.hyperparameters`.
      train_args: `TrainArgs`; `num_steps` (> 0) is required.
      eval_args: `EvalArgs`; `num_steps` unset reads the whole eval split.
      temperature: softening temperature T > 0.
      alpha: weight of the soft (teacher) term, in [0, 1]; 1 = pure soft labels.
        The defaults (T = 1, alpha = 1) were the best across the four tasks of
        the project's bench/distill.py; with a transfer set, alpha < 1 also
        learns the labels of the labelled rows.
      task: "binary", "multiclass" or "regression". Unset: binary or
        multiclass, by the teacher's output width (1 or K); a label whose
        values do not fit fails before training.
      raw_label_keys: raw columns that serving requests lack (the label's
        sources); the student's `serving_default` does not parse them.
      batch_size: examples per training step (> 0).
      learning_rate: Adam learning rate for the student (> 0).
      seed: seeds Python, NumPy and TensorFlow before the student is built, so
        a rerun on the same inputs trains the same student.
      validation_fraction: the share of train rows (by a hash of their
        features) held out of training to choose which student goes on: the
        distilled one, or the same student trained alone from the labels
        (same `build_student`, seed and steps, alpha 0), whichever scores
        better there (`choice.py`). Both students' figures, on this cut and
        on the eval split, are recorded on the `model` artifact.
      choice_metric: the metric that chooses (e.g. "auc"); unset: the task's
        first (AUC, accuracy, MSE).
      compare_alone: False trains no student alone and holds no rows out:
        the distilled student goes on, and nothing says whether the teacher
        helped (for a pipeline that compares elsewhere, or a benchmark of
        what the comparison costs).
      teacher_signature: a teacher signature that takes transformed features
        and returns `logits` or `probabilities`. Unset: `transformed_logits`
        when the teacher has it, else the teacher's restored Keras model.
      teacher_outputs: "logits" or "probabilities": what the teacher's Keras
        model emits, needed only when its final layer does not show it.
      cache_teacher_outputs: compute the teacher's outputs once per train
        example before training (one pass over the train split) and reuse
        them every epoch, instead of calling the teacher on every batch.
      custom_config: a dict passed on in `fn_args.custom_config`.
      raw_examples: optional `Examples` channel of the untransformed examples
        (`example_gen.outputs["examples"]`), for a teacher trained on another
        Transform than this run's (a teacher reused from an earlier span, or
        imported): the teacher then reads each batch through its own
        `serving_default` on the serialized raw examples, and the student
        reads the same batch through this run's transform graph. Ignored,
        with a warning, when the teacher's `serving_default` does not take
        serialized examples.
      teacher_imports: Python modules to import before the teacher is loaded,
        for a teacher whose SavedModel calls ops stock TensorFlow does not
        register (a TF-DF model: ["tensorflow_decision_forests"]). The student
        needs none of them.
      teacher_folds: k >= 2 when the teacher's Trainer wrote k out-of-fold
        models beside its serving model (`folds.py`; the zero-code tree
        teacher does with `teacher_folds` in its custom_config): each train
        example's soft label then comes from the fold model that was not fit
        on it, computed once before training; a teacher without them fails
        before training. 0: out-of-fold models are used when the teacher has
        them, and a teacher read through raw examples (another Transform's)
        never uses them. With several teachers: each that has them.
      unlabeled_examples: optional `Examples` channel of untransformed
        examples without labels (an ExampleGen's over rows that lack the
        label's columns; columns they do have are ignored), a transfer set:
        transformed by `transform_graph`, labelled by the teacher once before
        training, and mixed into the training batches in proportion to their
        number, where they count in the soft term only (`transfer.py`).
      synthetic_ratio: synthetic transfer-set rows per train example (>= 0;
        0: none), each a train row whose features are partly swapped with
        other rows' (`transfer.py`), labelled by the teacher like the
        unlabeled examples. Needs a teacher reading this run's transformed
        features.
      distribution: the `tf.distribute` strategy the student trains under
        (`distribute.py`): "auto" (MultiWorkerMirroredStrategy when
        TF_CONFIG names several workers, MirroredStrategy over several local
        GPUs, else none), "none", "mirrored" or "multi_worker".
      teacher_labelling: where the once-before-training pass over the train
        split runs (with cache_teacher_outputs, out-of-fold models or a
        transfer set's unlabeled rows; "beam" asks for it by itself;
        `labelling.py`): "beam", a Beam job
        with RunInference on the pipeline's Beam runner (its
        beam_pipeline_args: several local processes, Dataflow, Flink,
        Spark), writing the labelled rows to the `soft_labels` output; or
        "in_process" (the default), in the Distiller's own process, to its
        temporary directory. On one machine in process is faster (the
        project's bench/labelling.py: 667k rows in 17 s against 50 s on
        Beam's DirectRunner); "beam" is for a runner that adds machines.

    Raises:
      ValueError: for a missing teacher_model / examples / transform_graph, a
        module file that does not exist or defines no build_student, an alpha
        outside [0, 1], a temperature <= 0, an unknown task or
        teacher_outputs, neither or both of module_file / build_student, train_args
        without num_steps > 0, a non-positive batch size or learning rate.
    """
    for name, channel in (("teacher_model", teacher_model), ("examples", examples),
                          ("transform_graph", transform_graph)):
      if channel is None:
        raise ValueError(f"The Distiller needs the {name!r} input; got None.")
    if bool(module_file) == bool(build_student):
      raise ValueError(
          "Exactly one of 'module_file' and 'build_student' must be supplied; got "
          f"module_file={module_file!r}, build_student={build_student!r}.")
    if isinstance(module_file, str):
      check_student_module(module_file)
    if not _is_runtime(alpha):
      defaults.check_alpha(alpha)
    if not _is_runtime(temperature):
      defaults.check_temperature(temperature)
    # The task's name, parsed once here; the spec carries its value.
    task = tasks.Task.parse(task) if task is not None else None
    if teacher_outputs not in (None, "logits", "probabilities"):
      raise ValueError("teacher_outputs must be 'logits' or 'probabilities' (or "
                       f"unset); got {teacher_outputs!r}.")
    train_args = train_args or trainer_pb2.TrainArgs()
    if train_args.num_steps <= 0:
      raise ValueError(
          "train_args.num_steps must be > 0 (the training data is repeated "
          f"until then); got {train_args.num_steps}.")
    if batch_size <= 0:
      raise ValueError(f"batch_size must be > 0; got {batch_size}.")
    if learning_rate <= 0:
      raise ValueError(f"learning_rate must be > 0; got {learning_rate}.")
    if isinstance(raw_label_keys, str):
      raise ValueError(
          f"raw_label_keys is a list of column names; got the string {raw_label_keys!r}.")
    if not label_key:
      raise ValueError("label_key (the transformed label feature) is required.")
    if isinstance(teacher_imports, str) or not all(
        isinstance(m, str) and m for m in teacher_imports):
      raise ValueError("teacher_imports is a list of Python module names; got "
                       f"{teacher_imports!r}.")

    folds_lib.check_folds(int(teacher_folds))
    distribute.check(distribution)
    labelling.check_mode(teacher_labelling)
    transfer.check_ratio(synthetic_ratio)
    choice.check_fraction(validation_fraction)
    if choice_metric is not None and task is not None:
      choice.metric_named(task, choice_metric)
    if not isinstance(teacher_model, types.BaseChannel):
      teachers = list(teacher_model)
      if not teachers or not all(isinstance(c, types.BaseChannel) for c in teachers):
        raise ValueError("teacher_model is a Model channel or a non-empty list of "
                         f"them; got {teacher_model!r}.")
      teacher_model = (teachers[0] if len(teachers) == 1
                       else channel_types.union(teachers))

    spec = spec_lib.DistillerSpec(
        teacher_model=teacher_model,
        examples=examples,
        transform_graph=transform_graph,
        schema=schema,
        hyperparameters=hyperparameters,
        train_args=train_args,
        eval_args=eval_args or trainer_pb2.EvalArgs(),
        module_file=module_file,
        build_student=build_student,
        label_key=label_key,
        raw_label_keys=json_utils.dumps(list(raw_label_keys)),
        temperature=temperature if _is_runtime(temperature) else float(temperature),
        alpha=alpha if _is_runtime(alpha) else float(alpha),
        task=task.value if task else None,
        batch_size=int(batch_size),
        learning_rate=float(learning_rate),
        seed=int(seed),
        teacher_signature=teacher_signature,
        teacher_outputs=teacher_outputs,
        cache_teacher_outputs=int(bool(cache_teacher_outputs)),
        custom_config=json_utils.dumps(custom_config),
        raw_examples=raw_examples,
        teacher_imports=(json_utils.dumps(list(teacher_imports))
                         if teacher_imports else None),
        teacher_folds=int(teacher_folds) or None,
        unlabeled_examples=unlabeled_examples,
        synthetic_ratio=float(synthetic_ratio) or None,
        distribution=None if distribution == distribute.AUTO else distribution,
        teacher_labelling=teacher_labelling,
        validation_fraction=float(validation_fraction),
        choice_metric=choice_metric,
        compare_alone=None if compare_alone else 0,
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun),
        soft_labels=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)

    if udf_utils.should_package_user_modules():
      # As for the Trainer: the module file is packaged as a wheel under the
      # pipeline root, so remote workers (KFP, Dataflow) can install it.
      udf_utils.add_user_module_dependency(
          self, std.MODULE_FILE_KEY, std.MODULE_PATH_KEY)
