"""The Distiller's construction checks and the pipeline's wiring."""
import json
import os

import pytest
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tfx.dsl.components.base import executor_spec
from tfx import v1 as tfx
from tfx.types import Channel
from tfx.types import standard_artifacts

from distill_components.distiller import Distiller
from distill_pipelines.taxi import config as configs
from distill_pipelines import pipeline

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")


def _channels():
  return dict(
      teacher_model=Channel(type=standard_artifacts.Model),
      examples=Channel(type=standard_artifacts.Examples),
      transform_graph=Channel(type=standard_artifacts.TransformGraph))


def _distiller(**overrides):
  kwargs = dict(_channels(), module_file=configs.STUDENT_MODULE,
                label_key="big_tipper",
                train_args=tfx.proto.TrainArgs(num_steps=10))
  kwargs.update(overrides)
  return Distiller(**kwargs)


def test_outputs_and_parameters():
  distiller = _distiller(alpha=1.0, temperature=4.0, raw_label_keys=["tips"])
  assert distiller.outputs["model"].type == standard_artifacts.Model
  assert distiller.outputs["model_run"].type == standard_artifacts.ModelRun
  assert distiller.outputs["soft_labels"].type == standard_artifacts.Examples
  # A Beam component: the pipeline's beam_pipeline_args reach its executor.
  assert isinstance(distiller.executor_spec, executor_spec.BeamExecutorSpec)
  props = distiller.exec_properties
  assert props["teacher_labelling"] == "in_process"  # bench/labelling.py: faster here
  assert _distiller(teacher_labelling="beam").exec_properties[
      "teacher_labelling"] == "beam"
  with pytest.raises(ValueError, match="teacher_labelling must be one of"):
    _distiller(teacher_labelling="spark")
  assert props["alpha"] == 1.0 and props["temperature"] == 4.0
  assert props["raw_label_keys"] == '["tips"]'
  assert props["task"] is None  # binary or multiclass, by the teacher's width
  assert _distiller(task="Multiclass").exec_properties["task"] == "multiclass"
  assert props["teacher_imports"] is None
  assert _distiller(teacher_imports=["tensorflow_decision_forests"]).exec_properties[
      "teacher_imports"] == '["tensorflow_decision_forests"]'
  assert props["teacher_folds"] is None
  assert _distiller(teacher_folds=5).exec_properties["teacher_folds"] == 5
  assert props["synthetic_ratio"] is None
  assert props["seed"] == 0 and _distiller(seed=7).exec_properties["seed"] == 7
  assert _distiller(synthetic_ratio=2).exec_properties["synthetic_ratio"] == 2.0
  unlabeled = Channel(type=standard_artifacts.Examples)
  assert _distiller(unlabeled_examples=unlabeled).inputs["unlabeled_examples"] is unlabeled


def test_several_teachers_travel_as_one_union_channel():
  from tfx.types import channel as channel_types  # pylint: disable=g-import-not-at-top
  teachers = [Channel(type=standard_artifacts.Model) for _ in range(2)]
  distiller = _distiller(teacher_model=teachers)
  union = distiller.inputs["teacher_model"]
  assert isinstance(union, channel_types.UnionChannel)
  assert list(union.channels) == teachers
  assert _distiller(teacher_model=teachers[:1]).inputs["teacher_model"] is teachers[0]


@pytest.mark.parametrize("overrides, message", [
    ({"alpha": -0.1}, r"alpha .* \[0, 1\]; got -0.1"),
    ({"alpha": 1.5}, r"alpha .* \[0, 1\]; got 1.5"),
    ({"temperature": 0.0}, r"temperature must be > 0; got 0.0"),
    ({"temperature": -2.0}, r"temperature must be > 0; got -2.0"),
    ({"task": "ranking"},
     r"task must be one of \['binary', 'multiclass', 'regression'\]; got 'ranking'"),
    ({"teacher_outputs": "logit"}, r"teacher_outputs must be 'logits' or 'probabilities'"),
    ({"teacher_model": None}, r"needs the 'teacher_model' input"),
    ({"examples": None}, r"needs the 'examples' input"),
    ({"transform_graph": None}, r"needs the 'transform_graph' input"),
    ({"module_file": None}, r"Exactly one of 'module_file' and 'build_student'"),
    ({"build_student": "pkg.mod.fn"}, r"Exactly one of 'module_file' and 'build_student'"),
    ({"module_file": os.path.join(TESTDATA, "no_student.py")},
     r"defines no top-level `build_student\(fn_args\)`"),
    ({"module_file": "/no/such/student.py"}, r"does not exist"),
    ({"train_args": tfx.proto.TrainArgs()}, r"num_steps must be > 0"),
    ({"batch_size": 0}, r"batch_size must be > 0"),
    ({"raw_label_keys": "tips"}, r"list of column names"),
    ({"teacher_imports": "tensorflow_decision_forests"}, r"list of Python module names"),
    ({"teacher_folds": 1}, r"teacher_folds is 0 \(off\) or the number of folds"),
    ({"synthetic_ratio": -1.0}, r"synthetic_ratio is the number of synthetic rows"),
    ({"teacher_model": []}, r"teacher_model is a Model channel or a non-empty list"),
])
def test_construction_errors(overrides, message):
  with pytest.raises(ValueError, match=message):
    _distiller(**overrides)


def test_pipeline_wiring(tmp_path):
  settings = configs.settings(
      pipeline_name="wiring", pipeline_root=str(tmp_path), data_root=str(tmp_path),
      serving_dir=str(tmp_path / "serving"), train_steps=10, eval_steps=5,
      distill_steps=20, temperature=3.0, alpha=0.7, seed=11,
      gate={"threshold": 0.65, "max_drop": 0.02})
  p = pipeline.create_pipeline(settings)
  by_id = {c.id: c for c in p.components}
  assert sorted(by_id) == sorted([
      "CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
      "DataGate", "Transform", "Trainer", "Distiller", "FidelityEvaluator",
      "LatestBlessedStudentResolver", "NoRegressionEvaluator", "Pusher",
      "LiteRTExport", "LiteRTEvaluator", "Scorer"])

  def source(component, key):
    node = by_id[component]
    # A Resolver's own inputs are the channels it queries: `raw_inputs`.
    channel = (node.raw_inputs if hasattr(node, "raw_inputs") else node.inputs)[key]
    return channel.producer_component_id, channel.output_key

  assert source("Distiller", "teacher_model") == ("Trainer", "model")
  assert source("Distiller", "examples") == ("Transform", "transformed_examples")
  assert source("Distiller", "transform_graph") == ("Transform", "transform_graph")
  assert source("DataGate", "anomalies") == ("ExampleValidator", "anomalies")
  assert "DataGate" in {n.id for n in by_id["Transform"].upstream_nodes}
  # One pass of inference: the Scorer runs student, teacher and serving model
  # over the raw eval split; both gates read its scores, loading no model.
  assert source("Scorer", "examples") == ("CsvExampleGen", "examples")
  assert source("Scorer", "schema") == ("SchemaGen", "schema")
  assert source("Scorer", "model") == ("Distiller", "model")
  assert source("Scorer", "baseline_model") == ("Trainer", "model")
  assert source("Scorer", "serving_model") == ("LatestBlessedStudentResolver", "model")
  for evaluator in ("FidelityEvaluator", "NoRegressionEvaluator"):
    assert source(evaluator, "model") == ("Distiller", "model")
    assert source(evaluator, "examples") == ("Scorer", "scored_examples")
    assert source(evaluator, "schema") == ("Scorer", "scored_schema")
    config = json_format.Parse(by_id[evaluator].exec_properties["eval_config"],
                               tfma.EvalConfig())
    assert {m.model_type for m in config.model_specs} == {"materialized_prediction"}
    assert all(m.prediction_key for m in config.model_specs)
  assert source("FidelityEvaluator", "baseline_model") == ("Trainer", "model")
  assert source("NoRegressionEvaluator", "baseline_model") == (
      "LatestBlessedStudentResolver", "model")
  assert source("Pusher", "model") == ("Distiller", "model")
  assert source("Pusher", "model_blessing") == ("NoRegressionEvaluator", "blessing")
  # The LiteRT files: int8 gated against float32 on the transformed examples;
  # only the int8 file's push waits on that gate.
  assert source("LiteRTExport", "model") == ("Distiller", "model")
  assert source("LiteRTExport", "examples") == ("Transform", "transformed_examples")
  assert source("LiteRTEvaluator", "model") == ("LiteRTExport", "litert_int8")
  assert source("LiteRTEvaluator", "baseline_model") == ("LiteRTExport", "litert_float")
  # The LiteRT gate scores the export's copy of the first transformed eval rows.
  assert source("LiteRTEvaluator", "examples") == ("LiteRTExport", "gate_examples")
  assert source("Pusher", "litert_int8") == ("LiteRTExport", "litert_int8")
  assert source("Pusher", "litert_blessing") == ("LiteRTEvaluator", "blessing")
  litert_config = json_format.Parse(
      by_id["LiteRTEvaluator"].exec_properties["eval_config"], tfma.EvalConfig())
  assert [m.model_type for m in litert_config.model_specs] == ["tf_lite", "tf_lite"]
  # The serving model: the latest student the no-regression gate blessed.
  resolver = by_id["LatestBlessedStudentResolver"]
  assert resolver.exec_properties["resolver_class"].__name__ == (
      "LatestBlessedModelStrategy")
  assert source("LatestBlessedStudentResolver", "model_blessing") == (
      "NoRegressionEvaluator", "blessing")
  assert source("LatestBlessedStudentResolver", "model") == ("Distiller", "model")
  distiller = by_id["Distiller"].exec_properties
  assert distiller["alpha"] == 0.7 and distiller["task"] == "binary"
  assert distiller["seed"] == 11
  assert distiller["build_student"] == configs.BUILD_STUDENT
  assert by_id["Trainer"].exec_properties["run_fn"] == configs.TREE_TEACHER_RUN_FN
  # The trees' ops are imported wherever the teacher is loaded, and only there.
  tf_df = '["tensorflow_decision_forests"]'
  assert distiller["teacher_imports"] == tf_df
  assert by_id["Scorer"].exec_properties["model_imports"] == tf_df
  for evaluator in ("FidelityEvaluator", "NoRegressionEvaluator"):  # no model loaded
    assert "model_imports" not in by_id[evaluator].exec_properties
  assert by_id["Transform"].exec_properties["preprocessing_fn"] == configs.PREPROCESSING_FN

  specs = json.loads(by_id["FidelityEvaluator"].exec_properties["eval_config"])
  assert {m["name"]: m.get("is_baseline", False) for m in specs["model_specs"]} == {
      "student": False, "teacher": True}
  [auc] = [m for m in specs["metrics_specs"][0]["metrics"] if m["class_name"] == "AUC"]
  bounds = {json.dumps(b["threshold"], sort_keys=True): b["slicing_specs"]
            for b in auc["per_slice_thresholds"]}
  assert bounds == {
      json.dumps({"change_threshold": {"absolute": -0.02,
                                       "direction": "HIGHER_IS_BETTER"}},
                 sort_keys=True): [{}, {"feature_keys": ["trip_start_day"]}],
      json.dumps({"value_threshold": {"lower_bound": 0.65}}, sort_keys=True): [{}]}
  specs = json.loads(by_id["NoRegressionEvaluator"].exec_properties["eval_config"])
  assert {m["name"]: m.get("is_baseline", False) for m in specs["model_specs"]} == {
      "student": False, "serving": True}


def test_a_transfer_set_is_read_by_its_own_example_gen(tmp_path):
  settings = configs.settings(
      pipeline_name="transfer", pipeline_root=str(tmp_path), data_root=str(tmp_path),
      unlabeled_root=str(tmp_path / "unlabeled"), synthetic_ratio=1.5)
  by_id = {c.id: c for c in pipeline.create_pipeline(settings).components}
  gen = by_id["UnlabeledExampleGen"]
  assert gen.exec_properties["input_base"] == str(tmp_path / "unlabeled")
  assert '"name": "unlabeled"' in gen.exec_properties["output_config"]
  distiller = by_id["Distiller"]
  channel = distiller.inputs["unlabeled_examples"]
  assert (channel.producer_component_id, channel.output_key) == (
      "UnlabeledExampleGen", "examples")
  assert distiller.exec_properties["synthetic_ratio"] == 1.5
  plain = configs.settings(pipeline_name="p", pipeline_root=str(tmp_path),
                           data_root=str(tmp_path))
  assert "UnlabeledExampleGen" not in {
      c.id for c in pipeline.create_pipeline(plain).components}


def test_several_existing_teachers_are_imported_into_one_distiller(tmp_path):
  from tfx.types import channel as channel_types  # pylint: disable=g-import-not-at-top
  settings = configs.settings(pipeline_name="two", pipeline_root=str(tmp_path),
                              data_root=str(tmp_path), teacher=None,
                              teacher_model=["/t/one", "/t/two"])
  by_id = {c.id: c for c in pipeline.create_pipeline(settings).components}
  assert by_id["TeacherImporter"].exec_properties["artifact_uri"] == "/t/one"
  assert by_id["TeacherImporter_2"].exec_properties["artifact_uri"] == "/t/two"
  union = by_id["Distiller"].inputs["teacher_model"]
  assert isinstance(union, channel_types.UnionChannel)
  assert [c.producer_component_id for c in union.channels] == [
      "TeacherImporter", "TeacherImporter_2"]
  assert by_id["FidelityEvaluator"].inputs["baseline_model"].producer_component_id == (
      "TeacherImporter")


def test_pipeline_without_the_serving_gate_pushes_on_fidelity(tmp_path):
  settings = configs.settings(pipeline_root=str(tmp_path), data_root=str(tmp_path),
                              no_regression={"enabled": False})
  by_id = {c.id: c for c in pipeline.create_pipeline(settings).components}
  assert "NoRegressionEvaluator" not in by_id
  assert "LatestBlessedStudentResolver" not in by_id
  channel = by_id["Pusher"].inputs["model_blessing"]
  assert (channel.producer_component_id, channel.output_key) == (
      "FidelityEvaluator", "blessing")


def test_curated_schema_is_imported(tmp_path):
  settings = configs.settings(pipeline_root=str(tmp_path), data_root=str(tmp_path),
                              schema_file=str(tmp_path / "schema.pbtxt"))
  by_id = {c.id: c for c in pipeline.create_pipeline(settings).components}
  assert "SchemaGen" not in by_id
  assert by_id["SchemaImporter"].exec_properties["schema_file"] == str(
      tmp_path / "schema.pbtxt")
  for node in ("ExampleValidator", "Transform", "Scorer"):
    channel = by_id[node].inputs["schema"]
    assert channel.producer_component_id == "SchemaImporter"


def test_existing_teacher_is_imported_and_is_the_baseline(tmp_path):
  settings = configs.settings(pipeline_root=str(tmp_path), data_root=str(tmp_path),
                              teacher=None, teacher_model=str(tmp_path / "teacher"))
  by_id = {c.id: c for c in pipeline.create_pipeline(settings).components}
  assert "Trainer" not in by_id and "TeacherImporter" in by_id
  for component, key in (("Distiller", "teacher_model"),
                         ("FidelityEvaluator", "baseline_model")):
    channel = by_id[component].inputs[key]
    assert (channel.producer_component_id, channel.output_key) == ("TeacherImporter", "result")
  importer = by_id["TeacherImporter"]
  assert importer.exec_properties["artifact_uri"] == str(tmp_path / "teacher")


def test_property_names_are_tfx_own():
  from tfx.components.evaluator import constants  # pylint: disable=g-import-not-at-top
  from tfx.components.pusher import executor as pusher  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import properties  # pylint: disable=g-import-not-at-top
  assert properties.BLESSED == constants.ARTIFACT_PROPERTY_BLESSED_KEY
  assert properties.CURRENT_MODEL == constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY
  assert properties.BASELINE_MODEL == constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY
  assert properties.PUSHED == pusher._PUSHED_KEY  # pylint: disable=protected-access
  assert properties.PUSHED_DESTINATION == pusher._PUSHED_DESTINATION_KEY  # pylint: disable=protected-access


def test_distiller_is_exported_by_its_package():
  from distill_components import distiller  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import component  # pylint: disable=g-import-not-at-top
  assert distiller.Distiller is component.Distiller


def test_data_gate_refuses_a_split_whose_anomalies_are_missing(tmp_path):
  """A split the ExampleValidator did not validate is no clean split."""
  from distill_components.gates import data_validation  # pylint: disable=g-import-not-at-top
  with pytest.raises(data_validation.DataAnomaliesError,
                     match="train split's anomalies are missing"):
    data_validation.describe(str(tmp_path), '["train", "eval"]')
