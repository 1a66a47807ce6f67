"""The distillation pipeline, defined once for every runner.

ExampleGen -> StatisticsGen -> SchemaGen, or ImportSchemaGen (a curated or
kept schema) -> ExampleValidator -> DataGate (fails on any anomaly) ->
Transform -> Trainer (teacher), or Importer (an existing teacher) ->
Distiller (student, and the same student trained alone: the better goes on;
with a transfer set, UnlabeledExampleGen's rows too) -> FidelityEvaluator
(student vs teacher) -> [if blessed] NoRegressionEvaluator (student vs the
latest blessed student) -> Pusher (only when both gates blessed; with
require_gain, only when the distilled student went on). With litert:
LiteRTExport (the student as LiteRT float32 and int8) -> LiteRTEvaluator
(int8 vs float32), and the Pusher pushes the files inside the student's
version (the int8 one only when that gate blessed it).

Every setting comes from one `Settings`; the local command line, the Kubeflow
compiler and the benchmarks all call `create_pipeline` with one.
"""
import contextlib
from typing import Dict, Optional

from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from distill_components.distiller import Distiller
from distill_components.distiller import choice
from distill_components.distiller import properties
from distill_components.gates.data_validation import DataGate
from distill_components.gates.evaluator import Evaluator
from distill_components.gates.scorer import Scorer
from distill_components.litert.component import LiteRTExport, Pusher
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

  `settings.schema_file` (a schema.pbtxt) is imported instead of inferred.
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
  if s.schema_file:
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=s.schema_file).with_id(names.SCHEMA_IMPORTER)
  else:
    # Shapes inferred: a column present in every row becomes a dense feature,
    # as TFX's own examples expect; one with missing values stays sparse.
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"],
        infer_feature_shape=True).with_id(names.SCHEMA_GEN)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"],
      schema=schema_gen.outputs["schema"])
  data_gate = DataGate(
      anomalies=example_validator.outputs["anomalies"]).with_id(names.DATA_GATE)
  transform = tfx.components.Transform(
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      custom_config=module_config,
      **_code(s.preprocessing_code, "module_file", "preprocessing_fn"))
  transform.add_upstream_node(data_gate)
  unlabeled = None
  if s.unlabeled_root:
    # A transfer set: every row in one split; the Distiller transforms them
    # with this run's Transform graph and the teacher labels them.
    unlabeled = tfx.components.CsvExampleGen(
        input_base=s.unlabeled_root,
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(
            splits=[tfx.proto.SplitConfig.Split(name="unlabeled", hash_buckets=1)])),
    ).with_id(names.UNLABELED_EXAMPLE_GEN)
  if s.teacher_models:
    # Existing teachers; with several, the student learns their mean.
    teachers = [tfx.dsl.Importer(
        source_uri=uri,
        artifact_type=tfx.types.standard_artifacts.Model,
        custom_properties=_IMPORTED_MODEL_PROPERTIES,
    ).with_id(names.TEACHER_IMPORTER + (f"_{i + 1}" if i else ""))
                for i, uri in enumerate(s.teacher_models)]
    teacher_models = [t.outputs["result"] for t in teachers]
    # The fidelity gate's baseline: the first.
    teacher_model = teacher_models[0]
  else:
    teacher = tfx.components.Trainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=s.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=s.eval_steps),
        custom_config=module_config,
        **_code(s.teacher_code, "module_file", "run_fn")).with_id(names.TRAINER)
    teachers = [teacher]
    teacher_model = teacher.outputs["model"]
    teacher_models = [teacher_model]
  distiller = Distiller(
      teacher_model=teacher_models,
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
      seed=s.seed,
      validation_fraction=s.validation_fraction,
      choice_metric=gates.gate_metric(s.task, s.gate).name,
      teacher_outputs=s.teacher_outputs,
      cache_teacher_outputs=s.cache_teacher_outputs,
      teacher_labelling=s.teacher_labelling,
      custom_config=module_config,
      # An imported teacher (reused from an earlier span, or trained
      # elsewhere) was trained on another Transform: it reads raw examples.
      raw_examples=example_gen.outputs["examples"] if s.teacher_model else None,
      teacher_imports=s.teacher_modules,
      teacher_folds=s.folds,
      unlabeled_examples=unlabeled.outputs["examples"] if unlabeled else None,
      synthetic_ratio=s.synthetic_ratio,
      **_code(s.student_code, "module_file", "build_student"))
  components = [example_gen, statistics_gen, schema_gen, example_validator,
                data_gate, transform, *([unlabeled] if unlabeled else []), *teachers,
                distiller]
  serving = None
  if s.no_regression.enabled:
    # What is serving: the latest student the no-regression gate blessed
    # (it only runs on students the fidelity gate blessed, and the Pusher
    # pushes exactly those), as a TFX pipeline finds its Trainer's baseline.
    serving = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model,
                              producer_component_id=names.DISTILLER,
                              output_key="model"),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing,
            producer_component_id=names.NO_REGRESSION_EVALUATOR,
            output_key="blessing"),
    ).with_id(names.SERVING_RESOLVER)
    components.append(serving)
  # Every model the gates compare, run once over the eval split; the
  # Evaluators read the predictions (TFMA loads no model).
  model_names = {"model": names.STUDENT, "baseline_model": names.TEACHER}
  if serving:
    model_names["serving_model"] = names.SERVING
  scorer = Scorer(
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      model=distiller.outputs["model"],
      baseline_model=teacher_model,
      serving_model=serving.outputs["model"] if serving else None,
      label_key=s.transformed_label, slice_by=s.slice_by, model_names=model_names,
      # The teacher's ops (TF-DF) are loaded in this component only.
      model_imports=s.teacher_modules).with_id(names.SCORER)
  components.append(scorer)
  fidelity = Evaluator(
      examples=scorer.outputs["scored_examples"],
      model=distiller.outputs["model"],
      baseline_model=teacher_model,
      schema=scorer.outputs["scored_schema"],
      eval_config=gates.fidelity_config(s)).with_id(names.FIDELITY_EVALUATOR)
  components.append(fidelity)
  litert = {}
  if s.litert.enabled:
    # The student for other runtimes, gated int8 vs float32 on the first
    # transformed eval examples (GATE_ROWS); only the int8 file's push depends on it.
    export = LiteRTExport(
        model=distiller.outputs["model"],
        transform_graph=transform.outputs["transform_graph"],
        examples=transform.outputs["transformed_examples"],
        teacher_model=teacher_model, teacher_imports=s.teacher_modules,
        task=s.task.value, label_key=s.transformed_label,
        seed=s.seed).with_id(names.LITERT_EXPORT)
    litert_gate = Evaluator(
        examples=export.outputs["gate_examples"],
        model=export.outputs["litert_int8"],
        baseline_model=export.outputs["litert_float"],
        eval_config=gates.litert_config(s)).with_id(names.LITERT_EVALUATOR)
    components += [export, litert_gate]
    litert = dict(litert_float=export.outputs["litert_float"],
                  litert_int8=export.outputs["litert_int8"],
                  litert_blessing=litert_gate.outputs["blessing"])
  push_to = tfx.proto.PushDestination(
      filesystem=tfx.proto.PushDestination.Filesystem(
          base_directory=s.serving_model_dir))
  # --require-gain: nothing past the fidelity gate unless the distilled
  # student went on (not the student trained alone).
  gained = (distiller.outputs["model"].future()[0].custom_property(
      properties.STUDENT_CHOSEN) == choice.DISTILLED)
  gain = tfx.dsl.Cond(gained) if s.require_gain else contextlib.nullcontext()
  if not s.no_regression.enabled:
    with gain:
      pusher = Pusher(
          model=distiller.outputs["model"],
          model_blessing=fidelity.outputs["blessing"],
          push_destination=push_to, **litert).with_id(names.PUSHER)
    components.append(pusher)
  else:
    fidelity_blessed = fidelity.outputs["blessing"].future()[0].custom_property(
        "blessed") == 1
    with tfx.dsl.Cond(fidelity_blessed), gain:
      no_regression = Evaluator(
          examples=scorer.outputs["scored_examples"],
          model=distiller.outputs["model"],
          baseline_model=serving.outputs["model"],
          schema=scorer.outputs["scored_schema"],
          eval_config=gates.no_regression_config(s),
      ).with_id(names.NO_REGRESSION_EVALUATOR)
      pusher = Pusher(
          model=distiller.outputs["model"],
          model_blessing=no_regression.outputs["blessing"],
          push_destination=push_to, **litert).with_id(names.PUSHER)
    components += [no_regression, pusher]
  return tfx.dsl.Pipeline(
      pipeline_name=s.pipeline_name,
      pipeline_root=s.pipeline_root,
      components=components,
      enable_cache=s.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=s.beam_args)
