"""Kubeflow without a cluster: what we compile is what runs.

`tfx-distill compile` writes the KFP v2 package; it is read back with `kfp`
and checked task by task; then `local_runner` executes every task's own
container command, in dependency order, with the executor input a KFP
launcher would give it, and a blessed student comes out the other end. The
data sits in span directories, as a production drop would, and the compiled
ExampleGen must read the newest span.

Scheduling and submitting are tested in test_kubeflow_schedule.py.
"""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import yaml

from conftest import column_types, raw_examples, read_taxi_rows
from distill_cli import main as cli
from distill_kubeflow import commands
from distill_kubeflow import compiler
from distill_kubeflow import local_runner
from distill_pipelines.taxi import config as taxi_config
from distill_pipelines.taxi import features
from distill_pipelines.taxi import raw_data

IMAGE = "registry.example.com/ml/tfx-distill:1.0"
RUN_EXECUTOR = ["python", "-m",
                "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
EXECUTORS = {
    "CsvExampleGen": "tfx.components.example_gen.csv_example_gen.executor.Executor",
    "StatisticsGen": "tfx.components.statistics_gen.executor.Executor",
    "SchemaGen": "tfx.components.schema_gen.executor.Executor",
    "ExampleValidator": "tfx.components.example_validator.executor.Executor",
    "Transform": "tfx.components.transform.executor.Executor",
    "Trainer": "tfx.components.trainer.executor.GenericExecutor",
    "Distiller": "distill_components.distiller.executor.Executor",
    "DataGate": "distill_components.gates.data_validation.DataGate_Executor",
    "FidelityEvaluator": "distill_components.gates.evaluator.Executor",
    "NoRegressionEvaluator": "distill_components.gates.evaluator.Executor",
    "Pusher": "distill_components.litert.executor.PusherExecutor",
    "LiteRTExport": "distill_components.litert.executor.Executor",
    "LiteRTEvaluator": "distill_components.gates.evaluator.Executor",
    "Scorer": "distill_components.gates.scorer.Executor",
}
# TFX compiles its Resolver node into two ML Metadata queries, no container.
RESOLVERS = {
    "LatestBlessedStudentResolver-model-blessing-resolver": {
        "model_blessing": 'schema_title="tfx.ModelBlessing" AND state=LIVE AND '
                          'metadata.blessed.number_value=1'},
    "LatestBlessedStudentResolver-model-resolver": {
        "model": 'schema_title="tfx.Model" AND state=LIVE AND name='
                 '"{{$.inputs.artifacts[\'input\'].metadata[\'current_model_id\']}}"'},
}
FIDELITY_BLESSED = ("(inputs.artifacts['_FidelityEvaluator.blessing'].artifacts[0]"
                    ".metadata['blessed'] == 1.0)")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
  """Span 1 is an old 300-row drop; span 2, the whole taxi file, is newest."""
  root = tmp_path_factory.mktemp("kfp")
  data = root / "data"
  (data / "span-1").mkdir(parents=True)
  (data / "span-2").mkdir()
  with open(raw_data.csv_path(), encoding="utf-8") as f:
    lines = f.readlines()
  (data / "span-1" / "data.csv").write_text("".join(lines[:301]))
  shutil.copyfile(raw_data.csv_path(), data / "span-2" / "data.csv")
  config = root / "kfp.yaml"
  config.write_text(yaml.safe_dump({
      "image": IMAGE, "pipeline-root": str(root / "pipeline_root"),
      "data-root": str(data), "input-pattern": "span-{SPAN}/*.csv",
      "train-steps": 150, "distill-steps": 400, "eval-steps": 20,
      "auc-floor": 0.7, "max-auc-drop": 0.05,
      "beam-arg": ["--direct_num_workers=1"]}))
  package_path = root / "taxi.yaml"
  code = cli.main(["compile", "--config", str(config), "--output", str(package_path)])
  assert code == 0
  return {"root": root, "path": str(package_path),
          "package": compiler.load_package(str(package_path)),
          "rows": len(lines) - 1}


def test_package_is_yaml_that_kfp_reads_back(compiled):
  package = compiled["package"]
  assert compiled["path"].endswith(".yaml")
  assert package.spec.schema_version == "2.1.0"
  assert package.name == "taxi-distillation"
  assert package.default_pipeline_root == str(compiled["root"] / "pipeline_root")
  assert {t.name for t in package.tasks} == set(EXECUTORS) | set(RESOLVERS)
  seen = set()
  for task in package.tasks:  # producers first
    assert set(task.upstream) <= seen, task.name
    seen.add(task.name)


def test_every_task_runs_the_image_and_the_tfx_v2_entrypoint(compiled):
  for task in compiled["package"].tasks:
    if task.name in RESOLVERS:
      assert (task.kind, task.command, task.resolver_queries) == (
          "resolver", [], RESOLVERS[task.name])
      continue
    assert task.kind == "container"
    assert task.image == IMAGE, task.name
    assert task.command == RUN_EXECUTOR, task.name
    assert task.executor_class_path == EXECUTORS[task.name]
    assert "{{$}}" in task.args
    assert "--direct_num_workers=1" in task.args
  # ExampleGen resolves its span in a driver before KFP's cache check.
  driver = compiled["package"].task("CsvExampleGen").pre_cache_check
  assert driver[:3] == ["python", "-m",
                        "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"]


def test_wiring_and_settings_survive_compilation(compiled):
  package = compiled["package"]
  distiller = package.task("Distiller")
  assert distiller.input_artifacts == {
      "teacher_model": ("Trainer", "model"),
      "examples": ("Transform", "transformed_examples"),
      "transform_graph": ("Transform", "transform_graph"),
      "schema": ("SchemaGen", "schema")}
  assert distiller.input_parameters["build_student"] == (
      "distill_pipelines.taxi.student.build_student")
  assert distiller.input_parameters["alpha"] == taxi_config.ALPHA
  assert distiller.input_parameters["temperature"] == taxi_config.TEMPERATURE
  assert json.loads(distiller.input_parameters["train_args"]) == {"num_steps": 400}
  # The tree teacher's custom ops, imported wherever it is loaded.
  assert json.loads(distiller.input_parameters["teacher_imports"]) == [
      "tensorflow_decision_forests"]
  assert package.task("Trainer").input_parameters["run_fn"] == (
      "distill_pipelines.taxi.tree_teacher.run_fn")
  # The gates' one pass of inference loads the trees; the Evaluators no model.
  scorer = package.task("Scorer")
  assert json.loads(scorer.input_parameters["model_imports"]) == [
      "tensorflow_decision_forests"]
  assert scorer.input_artifacts == {
      "examples": ("CsvExampleGen", "examples"), "schema": ("SchemaGen", "schema"),
      "model": ("Distiller", "model"), "baseline_model": ("Trainer", "model"),
      "serving_model": ("LatestBlessedStudentResolver-model-resolver", "model")}
  # The LiteRT gate reads the export's first transformed eval rows.
  assert package.task("LiteRTEvaluator").input_artifacts["examples"] == (
      "LiteRTExport", "gate_examples")
  fidelity = package.task("FidelityEvaluator")
  for evaluator in (fidelity, package.task("NoRegressionEvaluator")):
    assert "model_imports" not in evaluator.input_parameters
    assert evaluator.input_artifacts["examples"] == ("Scorer", "scored_examples")
    assert evaluator.input_artifacts["schema"] == ("Scorer", "scored_schema")
  assert fidelity.input_artifacts["model"] == ("Distiller", "model")
  assert fidelity.input_artifacts["baseline_model"] == ("Trainer", "model")
  assert fidelity.condition == ""
  no_regression = package.task("NoRegressionEvaluator")
  assert no_regression.input_artifacts["model"] == ("Distiller", "model")
  assert no_regression.input_artifacts["baseline_model"] == (
      "LatestBlessedStudentResolver-model-resolver", "model")
  # The no-regression gate and the Pusher run only on a fidelity blessing.
  assert no_regression.condition == FIDELITY_BLESSED
  pusher = package.task("Pusher")
  assert pusher.condition == FIDELITY_BLESSED
  assert pusher.input_artifacts == {
      "model": ("Distiller", "model"),
      "model_blessing": ("NoRegressionEvaluator", "blessing"),
      "litert_float": ("LiteRTExport", "litert_float"),
      "litert_int8": ("LiteRTExport", "litert_int8"),
      "litert_blessing": ("LiteRTEvaluator", "blessing"),
      "_FidelityEvaluator.blessing": ("FidelityEvaluator", "blessing")}
  for task, baseline in ((fidelity, "teacher"), (no_regression, "serving")):
    config = json.loads(task.input_parameters["eval_config"])
    assert {m["name"]: m.get("is_baseline", False) for m in config["model_specs"]} == {
        "student": False, baseline: True}
    assert config["options"]["min_slice_size"] == 200
    [auc] = [m for m in config["metrics_specs"][0]["metrics"]
             if m["class_name"] == "AUC"]
    assert {"feature_keys": ["trip_start_day"]} in [
        s for b in auc["per_slice_thresholds"] for s in b["slicing_specs"]]
  # Transform waits for the data gate.
  assert "DataGate" in package.task("Transform").upstream
  assert package.task("DataGate").input_artifacts == {
      "anomalies": ("ExampleValidator", "anomalies")}
  assert package.task("Transform").input_parameters["preprocessing_fn"] == (
      "distill_pipelines.taxi.preprocessing.preprocessing_fn")
  assert "span-{SPAN}/*.csv" in package.task("CsvExampleGen").input_parameters[
      "input_config"]


def test_distiller_executor_imports_from_the_installed_package(compiled):
  from tfx.dsl.components.base import base_executor  # pylint: disable=g-import-not-at-top
  from tfx.utils import import_utils  # pylint: disable=g-import-not-at-top
  path = compiled["package"].task("Distiller").executor_class_path
  cls = import_utils.import_class_by_path(path)
  assert issubclass(cls, base_executor.BaseExecutor)
  import distill_components  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  assert os.path.dirname(distill_components.__file__) == os.path.join(repo, "components")


@pytest.fixture(scope="module")
def local_run(compiled):
  return local_runner.run_package(compiled["path"], run_id="run-1")


def test_compiled_pipeline_runs_and_pushes_a_blessed_student(compiled, local_run):
  assert list(local_run.tasks) == [t.name for t in compiled["package"].tasks]
  assert {n for n, t in local_run.tasks.items() if t.state != local_runner.RAN} == set(
      RESOLVERS)
  student = local_run.tasks["Distiller"].output("model")["uri"]
  blessing = local_run.tasks["FidelityEvaluator"].output("blessing")
  assert blessing["metadata"]["blessed"] == 1
  assert blessing["metadata"]["current_model"] == student
  assert blessing["metadata"]["baseline_model"] == (
      local_run.tasks["Trainer"].output("model")["uri"])
  # Nothing serves yet (no ML Metadata here, as on a first run): the
  # no-regression gate ran on the fidelity blessing, without a baseline.
  no_regression = local_run.tasks["NoRegressionEvaluator"]
  assert no_regression.executor_input["inputs"]["artifacts"]["baseline_model"] == {
      "artifacts": []}
  blessing = no_regression.output("blessing")
  assert blessing["metadata"]["blessed"] == 1
  assert blessing["metadata"]["current_model"] == student
  assert "baseline_model" not in blessing["metadata"]
  pushed = local_run.tasks["Pusher"].output("pushed_model")["metadata"]
  assert pushed["pushed"] == 1
  serving = compiled["root"] / "pipeline_root" / "serving_model"
  assert pushed["pushed_destination"].startswith(str(serving))
  assert os.listdir(serving) == [os.path.basename(pushed["pushed_destination"])]
  assert sorted(os.listdir(os.path.join(pushed["pushed_destination"], "assets.extra",
                                        "litert"))) == [
      "features.json", "student_float32.tflite", "student_int8.tflite"]
  student = local_run.tasks["Distiller"].output("model")["metadata"]
  # The demo's tree teacher loaded in the Distiller's and the Evaluator's own
  # processes (teacher_imports), and taught a student of plain weights.
  assert "teacher_params" not in student and student["student_params"] > 0


@pytest.mark.parametrize("metadata, runs", [({"blessed": 1}, True),
                                            ({"blessed": 0}, False)])
def test_trigger_condition_is_evaluated_as_kfp_does(compiled, metadata, runs):
  """KFP holds metadata as a protobuf Struct (numbers are doubles) and CEL
  compares 1 == 1.0 only as doubles: the runner must give it what KFP does."""
  pusher = compiled["package"].task("Pusher")
  executor_input = {"inputs": {"parameterValues": {}, "artifacts": {
      "_FidelityEvaluator.blessing": {"artifacts": [{"uri": "u",
                                                     "metadata": metadata}]}}}}
  assert local_runner._condition_holds(pusher, executor_input) is runs  # pylint: disable=protected-access


def test_condition_on_missing_metadata_is_named(compiled):
  pusher = compiled["package"].task("Pusher")
  executor_input = {"inputs": {"parameterValues": {}, "artifacts": {
      "_FidelityEvaluator.blessing": {"artifacts": [{"uri": "u", "metadata": {}}]}}}}
  with pytest.raises(compiler.PackageError,
                     match="Task Pusher: its condition .* cannot be evaluated"):
    local_runner._condition_holds(pusher, executor_input)  # pylint: disable=protected-access


def test_pushed_student_serves_raw_examples(local_run):
  pushed = local_run.tasks["Pusher"].output("pushed_model")["metadata"]
  model = tf.saved_model.load(pushed["pushed_destination"])
  serialized = raw_examples(read_taxi_rows(16, start=500),
                            column_types(read_taxi_rows(2000)),
                            drop=features.RAW_LABEL_KEYS)
  probs = model.signatures["serving_default"](
      examples=tf.constant(serialized))["probabilities"].numpy()
  assert probs.shape == (16, 1) and np.all((probs >= 0) & (probs <= 1))


def test_example_gen_read_the_newest_span(compiled, local_run):
  examples = local_run.tasks["CsvExampleGen"].output("examples")
  # The driver records the span as a custom property; `span` is also a
  # property name of Examples, so TFX's translation prefixes it.
  assert examples["metadata"]["custom:span"] == 2
  resolved = local_run.tasks["CsvExampleGen"].executor_input["inputs"][
      "parameterValues"]["input_config"]
  assert "span-2/*.csv" in resolved
  stats = local_run.tasks["StatisticsGen"].output("statistics")["uri"]
  from tensorflow_data_validation.utils import stats_util  # pylint: disable=g-import-not-at-top
  counts = [stats_util.load_stats_binary(os.path.join(stats, f"Split-{split}",
                                                      "FeatureStats.pb"))
            .datasets[0].num_examples for split in ("train", "eval")]
  assert sum(counts) == compiled["rows"]  # all of span 2, none of span 1


@pytest.mark.parametrize("argv, message", [
    (["compile", "--pipeline-root", "gs://b/r", "--data-root", "gs://b/d"],
     "`compile` needs --image"),
    (["compile", "--image", "x", "--pipeline-root", "gs://b/r", "--data-root",
      "gs://b/d", "--output", "p.json"], "kfp.Client refuses .json"),
    (["submit", "--host", "http://h", "--package", "/nonexistent.yaml"],
     "does not exist"),
    (["compile", "--image", "x", "--pipeline-root", "gs://b/r", "--data-root",
      "gs://b/d", "--label", "y", "--task", "binary", "--teacher-model", "gs://b/t1",
      "--teacher-model", "gs://b/t2"], "Kubeflow V2 compiler refuses"),
])
def test_bad_deploy_input_exits_2(argv, message, capsys):
  assert cli.main(argv) == 2
  assert message in capsys.readouterr().err


def test_config_file_with_unknown_setting_is_refused(tmp_path, capsys):
  config = tmp_path / "kfp.yaml"
  config.write_text("image: x\npipline-root: gs://b/r\n")
  assert cli.main(["compile", "--config", str(config)]) == 2
  assert "unknown setting 'pipline-root'" in capsys.readouterr().err


def test_dockerfile_builds_on_the_tfx_image_we_test_with():
  import tfx  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with open(os.path.join(repo, compiler.DOCKERFILE), encoding="utf-8") as f:
    lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
  assert lines[0] == f"FROM gcr.io/tfx-oss-public/tfx:{tfx.__version__}"
  text = "\n".join(lines)
  assert "-r requirements.lock" in text  # the pins the tests ran with
  for folder in ("components", "pipelines", "kubeflow"):
    assert f"COPY {folder} ./{folder}" in text
  assert "import distill_components.distiller.executor" in text


def test_compile_follows_the_settings_for_any_dataset(tmp_path):
  """A remote data root cannot be read here: the task and classes come as flags,
  and the package carries the same generic modules, task and gate as a local run."""
  package_path = tmp_path / "mc.yaml"
  code = cli.main(["compile", "--image", IMAGE, "--pipeline-root", "gs://b/root",
                   "--data-root", "gs://b/data", "--label", "species",
                   "--task", "multiclass", "--num-classes", "3",
                   "--pipeline-name", "penguins", "--teacher-model", "gs://b/teacher",
                   "--output", str(package_path)])
  assert code == 0
  package = compiler.load_package(str(package_path))
  # An existing teacher is a KFP importer task: no container, its URI given.
  importer = package.task("TeacherImporter")
  assert (importer.kind, importer.importer_uri, importer.command) == (
      "importer", "gs://b/teacher", [])
  assert importer.output_artifacts == {"result": "tfx.Model"}
  assert package.task("Distiller").input_artifacts["teacher_model"] == (
      "TeacherImporter", "result")
  transform = package.task("Transform")
  assert transform.input_parameters["preprocessing_fn"] == (
      "distill_pipelines.generic.preprocessing.preprocessing_fn")
  config = json.loads(transform.input_parameters["custom_config"])
  assert (config["label"], config["task"], config["num_classes"]) == ("species", "multiclass", 3)
  assert "Trainer" not in {t.name for t in package.tasks}
  distiller = package.task("Distiller")
  assert distiller.input_parameters["build_student"] == (
      "distill_pipelines.generic.student.build_student")
  assert distiller.input_parameters["task"] == "multiclass"
  eval_config = json.loads(
      package.task("FidelityEvaluator").input_parameters["eval_config"])
  classes = {m["class_name"] for s in eval_config["metrics_specs"] for m in s["metrics"]}
  assert "SparseCategoricalAccuracy" in classes and "AUC" not in classes


def test_compile_of_unreadable_data_needs_the_task(capsys):
  assert cli.main(["compile", "--image", IMAGE, "--pipeline-root", "gs://b/r",
                   "--data-root", "gs://b/d", "--label", "y"]) == 2
  assert "give --task" in capsys.readouterr().err


def _task(name, state=local_runner.RAN, **outputs):
  """A task run whose outputs' metadata are `outputs` (key -> metadata)."""
  return local_runner.TaskRun(
      name=name, seconds=0.0, executor_input={}, log_path="", state=state,
      executor_output={"artifacts": {key: {"artifacts": [{"metadata": meta}]}
                                     for key, meta in outputs.items()}})


@pytest.mark.parametrize("tasks, status, line", [
    # Pushed.
    ([_task("FidelityEvaluator", blessing={"blessed": 1}),
      _task("Pusher", pushed_model={"pushed": 1, "pushed_destination": "/s/1"})],
     0, "/s/1"),
    # --no-serving-gate: the Pusher runs on the fidelity blessing and pushes
    # nothing when it failed; the status names the fidelity gate.
    ([_task("Distiller", model={"student_chosen": "distilled"}),
      _task("FidelityEvaluator", blessing={"blessed": 0}),
      _task("Pusher", pushed_model={"pushed": 0})],
     4, "the fidelity (student vs teacher) gate did not bless"),
    ([_task("FidelityEvaluator", blessing={"blessed": 1}),
      _task("NoRegressionEvaluator", blessing={"blessed": 0}),
      _task("Pusher", pushed_model={"pushed": 0})],
     5, "the no regression (student vs serving model) gate did not bless"),
    # --require-gain: the gates blessed the student alone; the Pusher skipped.
    ([_task("Distiller", model={"student_chosen": "alone"}),
      _task("FidelityEvaluator", blessing={"blessed": 1}),
      _task("NoRegressionEvaluator", state=local_runner.SKIPPED),
      _task("Pusher", state=local_runner.SKIPPED)],
     8, "--require-gain"),
])
def test_run_package_status_names_what_held_the_student(tasks, status, line):
  code, said = commands.package_status({t.name: t for t in tasks})
  assert code == status and line in said
