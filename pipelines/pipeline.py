"""The distillation pipeline, defined once for every runner.

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform
-> Trainer (teacher) -> Distiller (student) -> Evaluator (student vs teacher)
-> Pusher (the student, only when blessed).
"""
from typing import List, Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from distill_components.distiller.component import Distiller

# Names of the two models in the Evaluator's results.
STUDENT = "student"
TEACHER = "teacher"


def eval_config(label_key: str, auc_floor: float,
                max_auc_drop: float) -> tfma.EvalConfig:
  """Student (candidate) against teacher (baseline), gated on AUC."""
  model_specs = [
      tfma.ModelSpec(name=name, is_baseline=is_baseline,
                     signature_name="serving_default", label_key=label_key,
                     preprocessing_function_names=["transform_features"])
      for name, is_baseline in ((STUDENT, False), (TEACHER, True))
  ]
  auc_gate = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={"value": auc_floor}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={"value": -max_auc_drop}))
  return tfma.EvalConfig(
      model_specs=model_specs,
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount"),
          tfma.MetricConfig(class_name="AUC", threshold=auc_gate),
          tfma.MetricConfig(class_name="BinaryAccuracy"),
          tfma.MetricConfig(class_name="BinaryCrossentropy"),
      ])])


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    serving_model_dir: str,
    label_key: str,
    raw_label_keys: Sequence[str],
    train_steps: int,
    eval_steps: int,
    distill_train_steps: int,
    temperature: float,
    alpha: float,
    auc_floor: float,
    max_auc_drop: float,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    enable_cache: bool = True,
    input_pattern: Optional[str] = None,
    preprocessing_module: Optional[str] = None,
    teacher_module: Optional[str] = None,
    student_module: Optional[str] = None,
    preprocessing_fn: Optional[str] = None,
    teacher_run_fn: Optional[str] = None,
    build_student: Optional[str] = None,
    cache_teacher_outputs: bool = False,
) -> tfx.dsl.Pipeline:
  """Builds the teacher -> student -> gate -> push pipeline.

  The user code comes either as module files (`*_module`: TFX packages each
  into a wheel under the pipeline root, as local runs do) or as Python paths
  to functions importable where the components run (`preprocessing_fn`,
  `teacher_run_fn`, `build_student`: what the Kubeflow image uses, since this
  project is installed in it). Exactly one of each pair; the components refuse
  neither or both.

  `input_pattern`, relative to `data_root`, selects the files ExampleGen reads,
  and may hold `{SPAN}` (and `{VERSION}`) so each run reads the newest span,
  e.g. "span-{SPAN}/*.csv". Unset: every file in `data_root`. The rows are
  hashed 2:1 into train and eval.
  """
  input_config = None
  if input_pattern:
    input_config = tfx.proto.Input(splits=[
        tfx.proto.Input.Split(name="single_split", pattern=input_pattern)])
  example_gen = tfx.components.CsvExampleGen(input_base=data_root,
                                             input_config=input_config)
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs["examples"])
  schema_gen = tfx.components.SchemaGen(
      statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"],
      schema=schema_gen.outputs["schema"])
  transform = tfx.components.Transform(
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      module_file=preprocessing_module,
      preprocessing_fn=preprocessing_fn)
  teacher = tfx.components.Trainer(
      module_file=teacher_module,
      run_fn=teacher_run_fn,
      examples=transform.outputs["transformed_examples"],
      transform_graph=transform.outputs["transform_graph"],
      schema=schema_gen.outputs["schema"],
      train_args=tfx.proto.TrainArgs(num_steps=train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=eval_steps))
  distiller = Distiller(
      teacher_model=teacher.outputs["model"],
      examples=transform.outputs["transformed_examples"],
      transform_graph=transform.outputs["transform_graph"],
      schema=schema_gen.outputs["schema"],
      module_file=student_module,
      build_student=build_student,
      label_key=label_key,
      raw_label_keys=raw_label_keys,
      train_args=tfx.proto.TrainArgs(num_steps=distill_train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=eval_steps),
      temperature=temperature,
      alpha=alpha,
      cache_teacher_outputs=cache_teacher_outputs)
  evaluator = tfx.components.Evaluator(
      examples=example_gen.outputs["examples"],
      model=distiller.outputs["model"],
      baseline_model=teacher.outputs["model"],
      eval_config=eval_config(label_key, auc_floor, max_auc_drop))
  pusher = tfx.components.Pusher(
      model=distiller.outputs["model"],
      model_blessing=evaluator.outputs["blessing"],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=serving_model_dir)))
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, example_validator,
                  transform, teacher, distiller, evaluator, pusher],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [])
