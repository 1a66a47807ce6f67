"""Retraining on spans, end to end: the scenario of `distill_pipelines.taxi.spans`.

One scenario run (four pipeline runs in one root, few training steps) and
every test reads it back: which versions were pushed, which gate stopped
what, the schema kept from the first run, the exit statuses a scheduler
sees.
"""
import contextlib
import io
import os
import sys

import pytest

from distill_cli import main as cli

from distill_pipelines import exits
from distill_pipelines import names
from distill_pipelines import report
from distill_pipelines import retraining
from distill_pipelines.taxi import config
from distill_pipelines.taxi import spans


# spans.QUICK_STEPS and spans.SCENARIO_GATES as the command line gives them.
QUICK_FLAGS = ("--train-steps", "300", "--distill-steps", "1000", "--eval-steps", "20",
               "--gate-max-drop", "0.05", "--max-log-loss-increase", "0.15",
               "--calibration-tolerance", "0.2")

# A whole pipeline runs here: the slow tier (`make test-fast` leaves it out).
pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("spans"))
  out = io.StringIO()
  saved, sys.argv = sys.argv, ["pytest", "-v"]  # must not reach absl / Beam
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
      code = spans.main(["--workdir", workdir, "--quick"])
  finally:
    sys.argv = saved
  return workdir, code, out.getvalue()


def _outcomes(text):
  """The final table: run name -> its columns."""
  table = text[text.rindex("\nrun "):].strip().splitlines()[1:]
  return {line[:26].strip(): line[26:].split() for line in table}


def test_every_run_ends_as_a_production_schedule_expects(scenario):
  _, code, out = scenario
  assert code == 0, out[-6000:]
  rows = _outcomes(out)
  assert list(rows) == [s.name for s in spans.steps()]
  # exit status, stopped by, versions serving, seconds, as expected
  assert [r[0] for r in rows.values()] == [
      "0", "0", str(exits.NO_REGRESSION), str(exits.DATA_ANOMALIES)]
  assert [r[-3] for r in rows.values()] == ["1", "2", "2", "2"]  # versions serving
  assert all(r[-1] == "yes" for r in rows.values())


def test_exactly_two_versions_serve(scenario):
  workdir, _, _ = scenario
  versions = os.listdir(os.path.join(workdir, "pipeline", "serving_model"))
  assert len(versions) == 2


def test_first_run_has_no_serving_model_and_says_so(scenario):
  _, _, out = scenario
  first = out[:out.index("=== span 2 arrives")]
  assert "Schema:   inferred from this span (first run)" in first
  assert "no regression (student vs serving model): passed (no serving model yet" in first


def test_second_span_is_validated_against_the_kept_schema(scenario):
  workdir, _, out = scenario
  second = out[out.index("=== span 2 arrives"):out.index("=== span 2, botched training")]
  assert "Schema:   kept from the first run" in second
  # The no-regression gate had a serving model this time: its figures show.
  assert "serving" in second.split("task: binary")[1].splitlines()[0]
  kept = os.path.join(workdir, "pipeline", retraining.KEPT_SCHEMA_DIR, "schema.pbtxt")
  assert "min_domain_mass: 0.99" in open(kept, encoding="utf-8").read()


def test_weak_teacher_is_refused_by_the_no_regression_gate(scenario):
  _, _, out = scenario
  botched = out[out.index("=== span 2, botched training"):out.index("=== span 3 arrives")]
  assert "fidelity (student vs teacher): passed" in botched
  assert "no regression (student vs serving model): failed" in botched
  assert "the student is" in botched and "worse than the serving model" in botched
  assert ("pushed:  nothing (stopped by the no regression (student vs serving "
          "model) gate)") in botched


def test_shifted_span_is_stopped_before_any_training(scenario):
  workdir, _, out = scenario
  shifted = out[out.index("=== span 3 arrives"):]
  assert "data validation: FAILED, the examples break the schema" in shifted
  assert (f"feature 'payment_type': Unexpected string values (Examples contain "
          f"values missing from the schema: {spans.NEW_PAYMENT_TYPE}") in shifted
  assert "pushed:  nothing (stopped by the data validation gate)" in shifted
  summary = report.summarize(os.path.join(workdir, "pipeline", "metadata.sqlite"),
                             config.PIPELINE_NAME)
  states = {c.node_id: c.state for c in summary.components}
  assert states[names.DATA_GATE] == "FAILED"
  assert not {"Transform", "Trainer", "Distiller", "Pusher"} & set(states)


# Last: it adds a run to the scenario's root (the tests above read its runs).
@pytest.fixture(scope="module")
def reused(scenario):
  """After the scenario, span 4 (span 2's distribution) arrives and the run
  reuses the teacher behind the serving student (span 2's, not the botched
  run's whose student was refused): `--reuse-teacher-spans 3`."""
  workdir, _, _ = scenario
  data_root = os.path.join(workdir, "data")
  spans.add_span(data_root, 4)
  out = io.StringIO()
  saved, sys.argv = sys.argv, ["pytest", "-v"]
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
      code = cli.main(["run", "--data-root", data_root, "--input-pattern",
                       "span-{SPAN}/*.csv", "--pipeline-root",
                       os.path.join(workdir, "pipeline"), "--reuse-teacher-spans", "3",
                       *QUICK_FLAGS, "--no-serving-gate"])
  finally:
    sys.argv = saved
  return workdir, code, out.getvalue()


def test_a_later_span_reuses_the_serving_students_teacher(reused):
  """The teacher of span 2 (2 spans old, retrained every 3) is imported, not
  trained, and reads span 4's raw examples through its own serving
  signature; span 4's student is distilled from it and pushed."""
  workdir, code, out = reused
  assert code == 0, out[-4000:]
  assert "Teacher:  reused from span 2 (" in out and "2 spans old, retrained every 3" in out
  # An Importer's execution is recorded as cached (it registers, runs nothing).
  assert f"{names.TEACHER_IMPORTER:<30} cached" in out
  assert f"{names.TRAINER:<30}" not in out
  assert f"{names.PUSHER:<30} complete" in out
  store = report.open_store(os.path.join(workdir, "pipeline", "metadata.sqlite"))
  students = sorted((a for a in store.get_artifacts_by_type("Model")
                     if "/Distiller/" in a.uri), key=lambda a: a.id)
  sources = [a.custom_properties["teacher_source"].string_value for a in students]
  assert sources[-1].startswith("its serving_default on raw examples"), sources
  assert not any(s.startswith("its serving_default") for s in sources[:-1]), sources
  # The teacher imported is span 2's first (pushed) one, not the botched one.
  trainers = sorted((a for a in store.get_artifacts_by_type("Model")
                     if "/Trainer/" in a.uri), key=lambda a: a.id)
  assert f"({trainers[1].uri};" in out  # span 1's, span 2's, the botched one
