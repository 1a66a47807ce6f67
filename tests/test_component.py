"""The Distiller's construction checks and the pipeline's wiring."""
import os

import pytest
from tfx import v1 as tfx
from tfx.types import Channel
from tfx.types import standard_artifacts

from distill_components.distiller.component import Distiller
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
  props = distiller.exec_properties
  assert props["alpha"] == 1.0 and props["temperature"] == 4.0
  assert props["raw_label_keys"] == '["tips"]'
  assert props["task"] is None  # binary or multiclass, by the teacher's width
  assert _distiller(task="Multiclass").exec_properties["task"] == "multiclass"


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
])
def test_construction_errors(overrides, message):
  with pytest.raises(ValueError, match=message):
    _distiller(**overrides)


def test_pipeline_wiring(tmp_path):
  settings = configs.settings(
      pipeline_name="wiring", pipeline_root=str(tmp_path), data_root=str(tmp_path),
      serving_dir=str(tmp_path / "serving"), train_steps=10, eval_steps=5,
      distill_steps=20, temperature=3.0, alpha=0.7,
      gate={"threshold": 0.65, "max_drop": 0.02})
  p = pipeline.create_pipeline(settings)
  by_id = {c.id: c for c in p.components}
  assert list(by_id) == [
      "CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
      "Transform", "Trainer", "Distiller", "Evaluator", "Pusher"]

  def source(component, key):
    channel = by_id[component].inputs[key]
    return channel.producer_component_id, channel.output_key

  assert source("Distiller", "teacher_model") == ("Trainer", "model")
  assert source("Distiller", "examples") == ("Transform", "transformed_examples")
  assert source("Distiller", "transform_graph") == ("Transform", "transform_graph")
  assert source("Evaluator", "model") == ("Distiller", "model")
  assert source("Evaluator", "baseline_model") == ("Trainer", "model")
  assert source("Evaluator", "examples") == ("CsvExampleGen", "examples")
  assert source("Pusher", "model") == ("Distiller", "model")
  assert source("Pusher", "model_blessing") == ("Evaluator", "blessing")
  distiller = by_id["Distiller"].exec_properties
  assert distiller["alpha"] == 0.7 and distiller["task"] == "binary"
  assert distiller["build_student"] == configs.BUILD_STUDENT
  assert by_id["Trainer"].exec_properties["run_fn"] == configs.TEACHER_RUN_FN
  assert by_id["Transform"].exec_properties["preprocessing_fn"] == configs.PREPROCESSING_FN

  config = by_id["Evaluator"].exec_properties["eval_config"]
  assert '"lower_bound": {\n' not in config  # JSON of the proto, checked below
  import json  # pylint: disable=g-import-not-at-top
  specs = json.loads(config)
  assert {m["name"]: m.get("is_baseline", False) for m in specs["model_specs"]} == {
      "student": False, "teacher": True}
  [auc] = [m for m in specs["metrics_specs"][0]["metrics"] if m["class_name"] == "AUC"]
  assert auc["threshold"]["value_threshold"]["lower_bound"] == 0.65
  assert auc["threshold"]["change_threshold"]["absolute"] == -0.02


def test_existing_teacher_is_imported_and_is_the_baseline(tmp_path):
  settings = configs.settings(pipeline_root=str(tmp_path), data_root=str(tmp_path),
                              teacher=None, teacher_model=str(tmp_path / "teacher"))
  by_id = {c.id: c for c in pipeline.create_pipeline(settings).components}
  assert "Trainer" not in by_id and "TeacherImporter" in by_id
  for component, key in (("Distiller", "teacher_model"), ("Evaluator", "baseline_model")):
    channel = by_id[component].inputs[key]
    assert (channel.producer_component_id, channel.output_key) == ("TeacherImporter", "result")
  importer = by_id["TeacherImporter"]
  assert importer.exec_properties["artifact_uri"] == str(tmp_path / "teacher")
