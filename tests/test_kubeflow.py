"""Kubeflow without a cluster: what we compile is what runs.

`tfx-distill compile` writes the KFP v2 package; it is read back with `kfp`
and checked task by task; then `local_runner` executes every task's own
container command, in dependency order, with the executor input a KFP
launcher would give it, and a blessed student comes out the other end. The
data sits in span directories, as a production drop would, and the compiled
ExampleGen must read the newest span.

`submit` and `schedule` talk to a stand-in KFP API server on localhost that
records what it is sent: the dry run must print exactly the request
`kfp.Client` sends, and hosts that are down or refuse are named in the error.
"""
import http.server
import json
import os
import shutil
import socket
import threading

import numpy as np
import pytest
import tensorflow as tf
import yaml

from conftest import column_types, raw_examples, read_taxi_rows
from distill_kubeflow import compiler
from distill_kubeflow import cron
from distill_kubeflow import local_runner
from distill_pipelines import cli
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
    "Evaluator": "tfx.components.evaluator.executor.Executor",
    "Pusher": "tfx.components.pusher.executor.Executor",
}


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
      "auc-floor": 0.7, "max-auc-drop": 0.05}))
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
  assert [t.name for t in package.tasks][:3] == ["CsvExampleGen", "StatisticsGen",
                                                  "SchemaGen"]
  assert {t.name for t in package.tasks} == set(EXECUTORS)


def test_every_task_runs_the_image_and_the_tfx_v2_entrypoint(compiled):
  for task in compiled["package"].tasks:
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
  assert distiller.input_parameters["alpha"] == 0.9
  assert distiller.input_parameters["temperature"] == 2.0
  assert json.loads(distiller.input_parameters["train_args"]) == {"num_steps": 400}
  evaluator = package.task("Evaluator")
  assert evaluator.input_artifacts["model"] == ("Distiller", "model")
  assert evaluator.input_artifacts["baseline_model"] == ("Trainer", "model")
  assert package.task("Pusher").input_artifacts == {
      "model": ("Distiller", "model"), "model_blessing": ("Evaluator", "blessing")}
  assert package.task("Transform").input_parameters["preprocessing_fn"] == (
      "distill_pipelines.taxi.preprocessing.preprocessing_fn")
  assert package.task("Trainer").input_parameters["run_fn"] == (
      "distill_pipelines.taxi.teacher.run_fn")
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
  blessing = local_run.tasks["Evaluator"].output("blessing")
  assert blessing["metadata"]["blessed"] == 1
  assert blessing["metadata"]["current_model"] == (
      local_run.tasks["Distiller"].output("model")["uri"])
  assert blessing["metadata"]["baseline_model"] == (
      local_run.tasks["Trainer"].output("model")["uri"])
  pushed = local_run.tasks["Pusher"].output("pushed_model")["metadata"]
  assert pushed["pushed"] == 1
  serving = compiled["root"] / "pipeline_root" / "serving_model"
  assert pushed["pushed_destination"].startswith(str(serving))
  assert os.listdir(serving) == [os.path.basename(pushed["pushed_destination"])]
  student = local_run.tasks["Distiller"].output("model")["metadata"]
  assert student["teacher_params"] >= 10 * student["student_params"]


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


# --- scheduling -------------------------------------------------------------

@pytest.mark.parametrize("expression", [
    "0 0 3 * * *", "0 */15 * * * ?", "0 30 2 1-7 * MON", "0 0 0 1 JAN-MAR,DEC *",
    "@daily", "@every 6h30m"])
def test_cron_accepts_kfp_expressions(expression):
  assert cron.check_cron(expression) == expression


@pytest.mark.parametrize("expression, message", [
    ("0 3 * * *", "did you mean '0 0 3 * * *'"),
    ("0 0 25 * * *", "hour field: 25 is outside 0-23"),
    ("0 0 3 * * FUNDAY", "day of week field: 'FUNDAY' is not a number"),
    ("0 */0 * * * *", "step '0'"),
    ("? 0 3 * * *", "only allowed for the day fields"),
    ("0 0 5-2 * * *", "runs backwards"),
    ("@fortnightly", "unknown descriptor"),
    ("", "empty"),
])
def test_cron_refuses_bad_expressions(expression, message):
  with pytest.raises(cron.CronError, match=message.replace("*", r"\*").replace("?", r"\?")):
    cron.check_cron(expression)


class _FakeKfp(http.server.BaseHTTPRequestHandler):
  """Answers the KFP v2beta1 calls kfp.Client makes; records what it gets."""
  requests = []
  refuse = False

  def _reply(self, status, body):
    data = json.dumps(body).encode()
    self.send_response(status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def do_GET(self):  # pylint: disable=invalid-name
    self.requests.append(("GET", self.path, None))
    if self.path.startswith("/apis/v2beta1/healthz"):
      return self._reply(200, {"multi_user": False})
    if self.path.startswith("/apis/v2beta1/experiments"):
      return self._reply(200, {"experiments": [
          {"experiment_id": "exp-7", "display_name": "taxi-distillation"}]})
    return self._reply(404, {"error": "not here"})

  def do_POST(self):  # pylint: disable=invalid-name
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    self.requests.append(("POST", self.path, body))
    if self.refuse:
      return self._reply(403, {"error": "forbidden: no permission to create"})
    if self.path == "/apis/v2beta1/recurringruns":
      return self._reply(200, dict(body, recurring_run_id="rr-1"))
    if self.path == "/apis/v2beta1/runs":
      return self._reply(200, dict(body, run_id="run-9"))
    return self._reply(404, {"error": "not here"})

  def log_message(self, *args):
    pass


@pytest.fixture
def fake_kfp():
  _FakeKfp.requests = []
  _FakeKfp.refuse = False
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeKfp)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{server.server_port}", _FakeKfp
  server.shutdown()


def _dry_run(package, capsys, *flags):
  code = cli.main(["schedule", "--package", package, "--cron", "0 0 3 * * *",
                   "--dry-run", *flags])
  out = capsys.readouterr().out
  return code, out


def test_schedule_dry_run_prints_a_recurring_run_request(compiled, capsys):
  code, out = _dry_run(compiled["path"], capsys)
  assert code == 0
  assert "dry run: nothing sent" in out
  body = json.loads(out[out.index("{"):])
  assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
  assert body["max_concurrency"] == 1 and body["no_catchup"] is True
  assert body["mode"] == "ENABLE"
  assert body["display_name"] == "taxi-distillation-retraining"
  with open(compiled["path"], encoding="utf-8") as f:
    assert body["pipeline_spec"] == yaml.safe_load(f)


def test_schedule_sends_what_the_dry_run_printed(compiled, fake_kfp, capsys):
  host, server = fake_kfp
  _, out = _dry_run(compiled["path"], capsys)
  printed = json.loads(out[out.index("{"):])
  code = cli.main(["schedule", "--host", host, "--package", compiled["path"],
                   "--cron", "0 0 3 * * *"])
  out = capsys.readouterr().out
  assert code == 0 and "rr-1" in out and "one run at a time, no catch-up" in out
  [(_, _, sent)] = [r for r in server.requests if r[1] == "/apis/v2beta1/recurringruns"]
  assert sent["experiment_id"] == "exp-7"
  printed["experiment_id"] = "exp-7"
  assert sent == printed


def test_invalid_cron_is_refused_before_anything_is_sent(compiled, fake_kfp, capsys):
  host, server = fake_kfp
  code = cli.main(["schedule", "--host", host, "--package", compiled["path"],
                   "--cron", "0 3 * * *"])
  assert code == 2
  assert "did you mean '0 0 3 * * *'" in capsys.readouterr().err
  assert server.requests == []


def test_submit_starts_a_run(compiled, fake_kfp, capsys):
  host, server = fake_kfp
  code = cli.main(["submit", "--host", host, "--package", compiled["path"]])
  assert code == 0 and "run-9" in capsys.readouterr().out
  [(_, _, sent)] = [r for r in server.requests if r[1] == "/apis/v2beta1/runs"]
  assert sent["experiment_id"] == "exp-7"
  assert sent["pipeline_spec"]["pipelineInfo"]["name"] == "taxi-distillation"


def test_refusing_host_is_named(compiled, fake_kfp, capsys):
  host, server = fake_kfp
  server.refuse = True
  code = cli.main(["submit", "--host", host, "--package", compiled["path"]])
  err = capsys.readouterr().err
  assert code == 1
  assert f"Kubeflow Pipelines at {host} refused to start a run: HTTP 403" in err


def test_unreachable_host_is_named(compiled, capsys):
  with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  host = f"http://127.0.0.1:{port}"
  code = cli.main(["schedule", "--host", host, "--package", compiled["path"],
                   "--cron", "@daily"])
  err = capsys.readouterr().err
  assert code == 1
  assert f"Could not reach Kubeflow Pipelines at {host}" in err


@pytest.mark.parametrize("argv, message", [
    (["compile", "--pipeline-root", "gs://b/r", "--data-root", "gs://b/d"],
     "`compile` needs --image"),
    (["compile", "--image", "x", "--pipeline-root", "gs://b/r", "--data-root",
      "gs://b/d", "--output", "p.json"], "kfp.Client refuses .json"),
    (["submit", "--host", "http://h", "--package", "/nonexistent.yaml"],
     "does not exist"),
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
                   "--pipeline-name", "penguins", "--output", str(package_path)])
  assert code == 0
  package = compiler.load_package(str(package_path))
  transform = package.task("Transform")
  assert transform.input_parameters["preprocessing_fn"] == (
      "distill_pipelines.generic.preprocessing.preprocessing_fn")
  config = json.loads(transform.input_parameters["custom_config"])
  assert (config["label"], config["task"], config["num_classes"]) == ("species", "multiclass", 3)
  assert package.task("Trainer").input_parameters["run_fn"] == (
      "distill_pipelines.generic.teacher.run_fn")
  distiller = package.task("Distiller")
  assert distiller.input_parameters["build_student"] == (
      "distill_pipelines.generic.student.build_student")
  assert distiller.input_parameters["task"] == "multiclass"
  eval_config = json.loads(package.task("Evaluator").input_parameters["eval_config"])
  classes = {m["class_name"] for s in eval_config["metrics_specs"] for m in s["metrics"]}
  assert "SparseCategoricalAccuracy" in classes and "AUC" not in classes


def test_compile_of_unreadable_data_needs_the_task(capsys):
  assert cli.main(["compile", "--image", IMAGE, "--pipeline-root", "gs://b/r",
                   "--data-root", "gs://b/d", "--label", "y"]) == 2
  assert "give --task" in capsys.readouterr().err
