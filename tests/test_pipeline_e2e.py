"""End to end: `tfx-distill run` on the embedded taxi data, three runs, one root.

1. A full run blesses the student and pushes it; the pushed model serves raw
   examples.
2. The same pipeline with an impossible AUC floor: everything up to the
   Distiller is cached, the Evaluator does not bless, nothing new is pushed.
3. A student whose output width disagrees with the teacher's: the Distiller
   fails, publishes no model, and nothing downstream runs.
"""
import contextlib
import io
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from conftest import column_types, raw_examples, read_taxi_rows
from distill_pipelines import cli
from distill_pipelines import report
from distill_pipelines.taxi import features

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
  assert [(c.node_id, c.state) for c in summary.components] == [
      (n, "complete") for n in ("CsvExampleGen", "StatisticsGen", "SchemaGen",
                                "ExampleValidator", "Transform", "Trainer",
                                "Distiller", "Evaluator", "Pusher")]
  # Progress lines came out while it ran, then the side-by-side summary.
  assert "Distiller            running" in out and "Distiller            complete" in out
  assert "blessed: yes" in out and "teacher" in out and "student" in out
  assert summary.blessed is True
  teacher_auc, student_auc = summary.teacher.metrics["auc"], summary.student.metrics["auc"]
  assert teacher_auc > 0.8 and student_auc > 0.8
  assert student_auc >= teacher_auc - 0.05
  assert summary.teacher.params >= 10 * summary.student.params
  assert summary.teacher.saved_model_bytes > summary.student.saved_model_bytes
  assert 0.5 < summary.agreement <= 1.0
  assert len(runs["blessed_versions"]) == 1
  assert summary.pushed_to == str(runs["root"] / "serving_model" /
                                  runs["blessed_versions"][0])


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


def test_student_artifact_is_recorded_in_mlmd(runs):
  store = report.open_store(str(runs["root"] / "metadata.sqlite"))
  models = store.get_artifacts_by_type("Model")
  [teacher] = [a for a in models if "/Trainer/" in a.uri]
  [student] = [a for a in models if "/Distiller/" in a.uri]
  assert student.state == metadata_store_pb2.Artifact.LIVE
  props = student.custom_properties
  assert props["teacher_uri"].string_value == teacher.uri
  for key in ("temperature", "alpha", "compression_ratio", "eval_agreement"):
    assert props[key].double_value > 0
  assert os.path.isdir(os.path.join(student.uri, "Format-Serving"))


def test_impossible_threshold_blocks_the_push(runs):
  code, out, _ = runs["gated"]
  assert code == 0, out
  states = {c.node_id: c.state for c in runs["gated_summary"].components}
  assert states["Trainer"] == states["Distiller"] == "cached"
  assert states["Evaluator"] == "complete"
  assert "blessed: no" in out
  # Why: TFMA's validation result, in words.
  [failure] = runs["gated_summary"].gate_failures
  assert failure.startswith("auc (overall): the student's 0.") and failure.endswith(
      "is not >= 0.999")
  assert f"gate failed: {failure}" in out
  assert runs["gated_summary"].blessed is False
  assert runs["gated_summary"].pushed_to is None
  assert sorted(os.listdir(runs["root"] / "serving_model")) == runs["blessed_versions"]


def test_failing_distiller_publishes_nothing(runs):
  code, out, err = runs["broken"]
  assert code == 1
  assert "StudentOutputError" in err and "[batch, 1]" in err
  states = {c.node_id: c.state for c in runs["broken_summary"].components}
  assert states["Distiller"] == "FAILED"
  assert "Evaluator" not in states and "Pusher" not in states
  assert "FAILED: Distiller" in out
  store = report.open_store(str(runs["root"] / "metadata.sqlite"))
  live = [a for a in store.get_artifacts_by_type("Model") if "/Distiller/" in a.uri
          and a.state == metadata_store_pb2.Artifact.LIVE]
  assert len(live) == 1  # the first run's student only
  assert sorted(os.listdir(runs["root"] / "serving_model")) == runs["blessed_versions"]
