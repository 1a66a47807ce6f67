"""End to end: `tfx-distill run` on the embedded taxi data, three runs, one root.

1. A full run blesses the student and pushes it; the pushed model serves raw
   examples. Nothing serves yet: the no-regression gate has no baseline.
2. The same pipeline with an impossible AUC floor: the schema of run 1 is
   kept (imported), the fidelity gate refuses the student, the no-regression
   gate does not run, nothing new is pushed, and the exit status says so.
3. A student whose output width disagrees with the teacher's: everything up
   to the Distiller is cached (same kept schema as run 2), the Distiller
   fails, publishes no model, and nothing downstream runs.
"""
import contextlib
import io
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from conftest import column_types, raw_examples, read_taxi_rows
from distill_cli import main as cli
from distill_components.gates import scorer
from distill_pipelines import exits
from distill_pipelines import report
from distill_pipelines.report import html as report_html
from distill_pipelines.report import page as report_page
from distill_pipelines.taxi import features

# A whole pipeline runs here: the slow tier (`make test-fast` leaves it out).
pytestmark = pytest.mark.pipeline

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")
NAME = "e2e"


def _cli(root, *flags):
  out, err = io.StringIO(), io.StringIO()
  # The process's own command line must not reach the components: absl would
  # read pytest's `-v` as its --verbosity (this broke CI once).
  saved, sys.argv = sys.argv, ["pytest", "-v", "--durations=15"]
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      code = cli.main([
          "run", "--pipeline-root", str(root), "--pipeline-name", NAME,
          "--train-steps", "150", "--distill-steps", "400", "--eval-steps", "20",
          "--auc-floor", "0.7", "--max-auc-drop", "0.05", *flags])
  finally:
    sys.argv = saved
  return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("pipeline")
  results = {}
  results["blessed"] = _cli(root)
  serving = root / "serving_model"
  results["blessed_versions"] = sorted(os.listdir(serving)) if serving.is_dir() else []
  results["blessed_summary"] = report.summarize(str(root / "metadata.sqlite"), NAME)
  results["blessed_report"] = (root / "report.html").read_text(encoding="utf-8")
  results["gated"] = _cli(root, "--auc-floor", "0.999")
  results["gated_summary"] = report.summarize(str(root / "metadata.sqlite"), NAME)
  results["broken"] = _cli(root, "--student-module",
                           os.path.join(TESTDATA, "two_logit_student.py"))
  results["broken_summary"] = report.summarize(str(root / "metadata.sqlite"), NAME)
  results["root"] = root
  return results


def test_full_run_blesses_and_pushes_the_student(runs):
  code, out, err = runs["blessed"]
  assert code == 0, out + err[-3000:]
  summary = runs["blessed_summary"]
  assert sorted((c.node_id, c.state) for c in summary.components) == sorted(
      (n, "complete") for n in (
          "CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
          "DataGate", "Transform", "Trainer", "Distiller", "FidelityEvaluator",
          "LatestBlessedStudentResolver", "NoRegressionEvaluator", "Pusher",
          "LiteRTExport", "LiteRTEvaluator", "Scorer"))
  # The gates' one pass of inference: per eval row the label, one prediction
  # per model and the slicing column, nothing else; TFMA read these.
  store = report.open_store(str(runs["root"] / "metadata.sqlite"))
  [scored] = [a for a in store.get_artifacts_by_type("Examples")
              if "/Scorer/" in a.uri][:1]
  files = tf.io.gfile.glob(os.path.join(scored.uri, "Split-eval", "*"))
  assert len(files) == scorer.SHARDS  # for the gates' worker processes to share
  record = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP")))
  row = tf.train.Example.FromString(record.numpy()).features.feature
  assert sorted(row) == sorted([features.LABEL_KEY, "trip_start_day",
                                "__prediction__student", "__prediction__teacher"])
  assert 0.0 <= row["__prediction__teacher"].float_list.value[0] <= 1.0
  # One progress line per finished component, then the side-by-side summary;
  # what TensorFlow, Keras and Beam print went to the run's log, named.
  assert f"{'Distiller':<30} complete" in out
  assert "\x1b" not in out  # not a terminal: no control codes
  assert len(out.splitlines()) <= 50, out
  [log] = [line.split()[-1] for line in out.splitlines() if line.startswith("log:")]
  assert os.path.dirname(log) == str(runs["root"] / "logs")
  with open(log, encoding="utf-8") as f:
    logged = f.read()
  # What the tree teacher's C++ (YDF) writes to the process's stderr. (Not
  # absl's INFO lines: earlier tests in the suite may lower absl's level.)
  assert "Use fast generic engine" in logged and "generic engine" not in out
  assert err == ""
  assert "Schema:   inferred from this span (first run)" in out
  assert "blessed: yes" in out and "teacher" in out and "student" in out
  assert "fidelity (student vs teacher): passed" in out
  assert ("no regression (student vs serving model): passed (no serving model "
          "yet") in out
  assert summary.blessed is True
  assert [g.no_baseline for g in summary.gates] == [False, True]
  teacher_auc, student_auc = summary.teacher.metrics["auc"], summary.student.metrics["auc"]
  assert teacher_auc > 0.8 and student_auc > 0.8
  assert student_auc >= teacher_auc - 0.05
  assert summary.teacher.params is None  # the demo's trees have no weights to count
  assert summary.student.params > 0
  # Early-stopped trees are compact: no size ratio is promised, both are read.
  assert summary.teacher.saved_model_bytes > 0 and summary.student.saved_model_bytes > 0
  assert 0.5 < summary.agreement <= 1.0
  assert len(runs["blessed_versions"]) == 1
def test_report_page_shows_tfma_figures_and_every_section(runs):
  from test_html_report import check_report  # pylint: disable=g-import-not-at-top
  _, out, _ = runs["blessed"]
  assert f"report:  {runs['root'] / 'report.html'}" in out
  page = runs["blessed_report"]
  summary = runs["blessed_summary"]
  sqlite_path = str(runs["root"] / "metadata.sqlite")
  # Every section, the verdict, each gate, and TFMA's figures of run 1.
  check_report(page, report_page.evaluation_uri(sqlite_path, summary), summary)
  assert "Blessed by every gate and pushed to" in page
  assert report_html.NO_CURVES not in page
  assert page.count('src="data:image/png;base64,') == 2  # calibration, curves


def test_pushed_student_serves_raw_examples(runs):
  pushed = runs["blessed_summary"].pushed_to
  model = tf.saved_model.load(pushed)
  rows = read_taxi_rows(32, start=100)
  serialized = raw_examples(rows, column_types(read_taxi_rows(2000)),
                            drop=features.RAW_LABEL_KEYS)
  probs = model.signatures["serving_default"](
      examples=tf.constant(serialized))["probabilities"].numpy()
  assert probs.shape == (32, 1)
  assert np.all((probs >= 0) & (probs <= 1)) and probs.std() > 0


def test_the_litert_files_are_gated_measured_and_pushed(runs):
  _, out, _ = runs["blessed"]
  summary = runs["blessed_summary"]
  assert summary.litert_gate.verdict == "passed"
  assert "LiteRT int8 vs float32: passed (AUC 0." in out
  assert [r["model"] for r in summary.compression] == [
      "teacher", "student", "litert_float32", "litert_int8"]
  by = {r["model"]: r for r in summary.compression}
  # The files are the student's own weights: far smaller than either SavedModel.
  assert by["litert_int8"]["file_bytes"] < by["litert_float32"]["file_bytes"]
  assert by["litert_float32"]["file_bytes"] * 5 < by["student"]["file_bytes"]
  assert by["litert_int8"]["params"] == summary.student.params
  assert all(set(r["latency_ms"]) == {"1", "256"} for r in summary.compression)
  assert summary.litert_mode == "int8"
  assert "runtimes" in out and "student LiteRT int8" in out
  assert "int8 student vs teacher: " in out
  pushed = os.path.join(summary.pushed_to, "assets.extra", "litert")
  assert sorted(os.listdir(pushed)) == [
      "features.json", "student_float32.tflite", "student_int8.tflite"]
  assert summary.litert_pushed == ["student_float32.tflite", "student_int8.tflite"]
  assert "Every runtime, measured alike" in runs["blessed_report"]
  page = runs["blessed_report"]
  gate = page[page.index("LiteRT int8 vs float32 <span"):]
  assert "Int8 vs float32: AUC 0." in gate[:gate.index("</table>")]
  # The gate scored the first transformed eval rows: all 4,966 here (cap 50,000).
  assert summary.litert_gate_examples == 4966
  assert "on the first 4,966 rows of the transformed eval split" in gate
  assert "at most 0.005 below the float32 file" in gate[:gate.index("</table>")]
  # What an app needs to compute the inputs: the z-scores' constants.
  with open(os.path.join(pushed, "features.json"), encoding="utf-8") as f:
    described = json.load(f)
  assert set(described["scales"]) == {
      "trip_miles_xf", "fare_xf", "trip_seconds_xf", "trip_start_day_xf",
      "trip_start_hour_xf", "trip_start_month_xf"}
  assert described["scales"]["trip_start_hour_xf"] == {
      "raw": "trip_start_hour", "shift": 0.0, "scale": 1.0}
  assert set(described["scales"]) | set(described["computed_by_transform"]) == set(
      described["inputs"])


def test_the_pushed_int8_file_runs_where_tf_df_does_not(runs, tmp_path):
  """What an app does: the pushed int8 file in LiteRT's interpreter, in a
  process that cannot import TF-DF (nor TFX, nor TFMA), on features computed
  outside it, reproduces the float32 student."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from distill_components.litert import convert  # pylint: disable=g-import-not-at-top
  pushed = os.path.join(runs["blessed_summary"].pushed_to, "assets.extra", "litert")
  root = runs["root"]
  [graph] = sorted(os.listdir(root / "Transform" / "transform_graph"))[:1]
  [examples] = sorted(os.listdir(root / "Transform" / "transformed_examples"))[:1]
  spec = tft.TFTransformOutput(
      str(root / "Transform" / "transform_graph" / graph)).transformed_feature_spec()
  files = tf.io.gfile.glob(str(root / "Transform" / "transformed_examples" / examples
                               / "Split-eval" / "*"))
  batch = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP")
                    .batch(1000).map(lambda x: tf.io.parse_example(x, spec))))
  with open(os.path.join(pushed, "features.json"), encoding="utf-8") as f:
    inputs = json.load(f)["inputs"]
  rows = {k: batch[k].numpy() for k in inputs}
  with open(os.path.join(pushed, "student_float32.tflite"), "rb") as f:
    expected = convert.predict(f.read(), rows)
  np.savez(tmp_path / "rows.npz", expected=expected, **rows)
  done = subprocess.run(
      [sys.executable, os.path.join(TESTDATA, "litert_client.py"),
       os.path.join(pushed, "student_int8.tflite"), str(tmp_path / "rows.npz")],
      capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert result["rows"] == 1000 and result["forbidden_loaded"] == []
  # int8 outputs sit on a grid of 1/256: close, not equal.
  assert result["mean_gap"] < 0.01 and result["max_gap"] < 0.1, result


def test_student_artifact_is_recorded_in_mlmd(runs):
  store = report.open_store(str(runs["root"] / "metadata.sqlite"))
  models = store.get_artifacts_by_type("Model")
  # Run 1's (run 2 imports the kept schema, so it trains again).
  teacher = min((a for a in models if "/Trainer/" in a.uri), key=lambda a: a.id)
  student = min((a for a in models if "/Distiller/" in a.uri), key=lambda a: a.id)
  assert student.state == metadata_store_pb2.Artifact.LIVE
  props = student.custom_properties
  assert props["teacher_uri"].string_value == teacher.uri
  for key in ("temperature", "alpha", "eval_agreement"):
    assert props[key].double_value > 0
  assert "compression_ratio" not in props  # trees: no weights to compare
  assert os.path.isdir(os.path.join(student.uri, "Format-Serving"))


def test_impossible_threshold_blocks_the_push(runs):
  code, out, _ = runs["gated"]
  assert code == exits.FIDELITY, out
  assert "Schema:   kept from the first run" in out
  states = {c.node_id: c.state for c in runs["gated_summary"].components}
  assert states["SchemaImporter"] == "complete" and "SchemaGen" not in states
  assert states["FidelityEvaluator"] == "complete"
  assert "NoRegressionEvaluator" not in states and "Pusher" not in states
  assert "blessed: no" in out
  # Why: TFMA's validation result, in words, with the gate that failed.
  [failure] = runs["gated_summary"].gate_failures
  assert failure.startswith(
      "fidelity (student vs teacher): auc (overall): the student's 0.")
  assert failure.endswith("is not >= 0.999")
  assert "not run (the fidelity gate failed)" in out
  assert "pushed:  nothing (stopped by the fidelity (student vs teacher) gate)" in out
  assert runs["gated_summary"].blessed is False
  assert runs["gated_summary"].pushed_to is None
  assert sorted(os.listdir(runs["root"] / "serving_model")) == runs["blessed_versions"]


def test_failing_distiller_publishes_nothing(runs):
  code, out, err = runs["broken"]
  assert code == 1
  assert "StudentOutputError" in err and "[batch, 1]" in err
  states = {c.node_id: c.state for c in runs["broken_summary"].components}
  assert states["Distiller"] == "FAILED"
  assert states["Transform"] == states["Trainer"] == "cached"
  assert not {"FidelityEvaluator", "NoRegressionEvaluator", "Pusher",
              "LiteRTExport", "LiteRTEvaluator", "Scorer"} & set(states)
  assert "FAILED: Distiller" in out
  store = report.open_store(str(runs["root"] / "metadata.sqlite"))
  live = [a for a in store.get_artifacts_by_type("Model") if "/Distiller/" in a.uri
          and a.state == metadata_store_pb2.Artifact.LIVE]
  assert len(live) == 2  # runs 1 and 2 published theirs; run 3's, none
  assert sorted(os.listdir(runs["root"] / "serving_model")) == runs["blessed_versions"]
