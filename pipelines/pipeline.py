"""The distillation pipeline, defined once for every runner.

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform
-> Trainer (teacher), or Importer (an existing teacher)
-> Distiller (student) -> Evaluator (student vs teacher) -> Pusher (the
student, only when blessed).

Every setting comes from one `Settings`; the local command line, the Kubeflow
compiler and the benchmarks all call `create_pipeline` with one.
"""
from typing import Dict, Optional

from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from distill_components.distiller.component import Distiller
from distill_pipelines import gates
from distill_pipelines import names
from distill_pipelines.settings import Settings, is_module_file

# The Importer marks an existing teacher as a Model of today's layout
# (Format-Serving/); without it TFX takes an imported model for a pre-0.26 one.
_IMPORTED_MODEL_PROPERTIES = {"tfx_version": tfx.__version__}


def _code(code: str, module_key: str, function_key: str) -> Dict[str, str]:
  """User code as a component argument: a module file or a Python path."""
  return {module_key: code} if is_module_file(code) else {function_key: code}


def create_pipeline(
    settings: Settings,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
) -> tfx.dsl.Pipeline:
  """Builds the teacher -> student -> gate -> push pipeline from `settings`.

  `settings.input_pattern`, relative to `data_root`, selects the files
  ExampleGen reads, and may hold `{SPAN}` (and `{VERSION}`) so each run reads
  the newest span, e.g. "span-{SPAN}/*.csv". Unset: every file in
  `data_root`. The rows are hashed 2:1 into train and eval.
  """
  s = settings
  module_config = s.module_config()
  input_config = None
  if s.input_pattern:
    input_config = tfx.proto.Input(splits=[
        tfx.proto.Input.Split(name="single_split", pattern=s.input_pattern)])
  example_gen = tfx.components.CsvExampleGen(
      input_base=s.data_root, input_config=input_config)
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs["examples"])
  # Shapes inferred: a column present in every row becomes a dense feature,
  # as TFX's own examples expect; one with missing values stays sparse.
  schema_gen = tfx.components.SchemaGen(
      statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"],
      schema=schema_gen.outputs["schema"])
  transform = tfx.components.Transform(
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      custom_config=module_config,
      **_code(s.preprocessing_code, "module_file", "preprocessing_fn"))
  if s.teacher_model:
    teacher = tfx.dsl.Importer(
        source_uri=s.teacher_model,
        artifact_type=tfx.types.standard_artifacts.Model,
        custom_properties=_IMPORTED_MODEL_PROPERTIES,
    ).with_id(names.TEACHER_IMPORTER)
    teacher_model = teacher.outputs["result"]
  else:
    teacher = tfx.components.Trainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=s.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=s.eval_steps),
        custom_config=module_config,
        **_code(s.teacher_code, "module_file", "run_fn"))
    teacher_model = teacher.outputs["model"]
  distiller = Distiller(
      teacher_model=teacher_model,
      examples=transform.outputs["transformed_examples"],
      transform_graph=transform.outputs["transform_graph"],
      schema=schema_gen.outputs["schema"],
      label_key=s.transformed_label,
      raw_label_keys=s.serving_excluded,
      task=s.task.value,
      train_args=tfx.proto.TrainArgs(num_steps=s.distill_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=s.eval_steps),
      temperature=s.temperature,
      alpha=s.alpha,
      batch_size=s.batch_size,
      learning_rate=s.learning_rate,
      teacher_outputs=s.teacher_outputs,
      cache_teacher_outputs=s.cache_teacher_outputs,
      custom_config=module_config,
      **_code(s.student_code, "module_file", "build_student"))
  evaluator = tfx.components.Evaluator(
      examples=example_gen.outputs["examples"],
      model=distiller.outputs["model"],
      baseline_model=teacher_model,
      eval_config=gates.eval_config(s.task, s.transformed_label, s.gate, s.classes))
  pusher = tfx.components.Pusher(
      model=distiller.outputs["model"],
      model_blessing=evaluator.outputs["blessing"],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=s.serving_model_dir)))
  return tfx.dsl.Pipeline(
      pipeline_name=s.pipeline_name,
      pipeline_root=s.pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, example_validator,
                  transform, teacher, distiller, evaluator, pusher],
      enable_cache=s.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=s.beam_args)
