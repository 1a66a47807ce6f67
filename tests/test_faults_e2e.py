"""Faults, end to end, on one pipeline root (tiny step counts).

`tfx-distill run` in a subprocess, as a scheduler runs it:
1. Ctrl-C (SIGINT) during the Trainer: one line naming where it stopped, exit
   130, no traceback; the Trainer's execution is CANCELED in MLMD with why.
   While it runs, a second run on the same root is refused (exit 6) naming
   the lock file and the process that holds it.
2. kill -9 during the Trainer: the execution stays RUNNING in MLMD...
3. ...until the next run, which marks it FAILED with the reason, says so,
   and runs to a push; its summary is its own run's.
4. The serving directory deleted, the same command again: every component
   cached, and the summary says the pushed model is missing (exit 7) instead
   of printing a path that is not there.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from ml_metadata.proto import metadata_store_pb2

from distill_components.distiller import properties
from distill_pipelines import exits
from distill_pipelines import names
from distill_pipelines import report

# Whole pipelines run here: the slow tier (`make test-fast` leaves it out).
pytestmark = pytest.mark.pipeline

NAME = "faults"
_State = metadata_store_pb2.Execution


def _command(root):
  return [sys.executable, "-m", "distill_cli", "run", "--pipeline-root",
          str(root), "--pipeline-name", NAME, "--teacher-type", "mlp",  # a long Trainer
          "--train-steps", "300",
          "--distill-steps", "50", "--eval-steps", "5", "--gate-threshold", "0",
          "--gate-max-drop", "1", "--no-serving-gate"]


def _start(root):
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
  return subprocess.Popen(_command(root), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env)


def _executions(root, tmp):
  """node id -> its executions (newest last), read from a copy of the store."""
  copy = os.path.join(tmp, "copy.sqlite")
  try:
    shutil.copyfile(os.path.join(root, "metadata.sqlite"), copy)
    store = report.open_store(copy)
    pipeline = store.get_context_by_type_and_name("pipeline", NAME)
  except Exception:  # pylint: disable=broad-except
    return {}  # not there yet, or copied mid-write
  if pipeline is None:
    return {}
  found = {}
  for execution in sorted(store.get_executions_by_context(pipeline.id),
                          key=lambda e: e.id):
    for context in store.get_contexts_by_execution(execution.id):
      if context.type == "node" and context.name.startswith(NAME + "."):
        found.setdefault(context.name[len(NAME) + 1:], []).append(execution)
  return found


def _wait_until_running(process, root, tmp, node, timeout=420):
  deadline = time.time() + timeout
  while time.time() < deadline:
    assert process.poll() is None, process.communicate()
    runs = _executions(root, tmp).get(node, [])
    if runs and runs[-1].last_known_state == _State.RUNNING:
      return
    time.sleep(0.5)
  process.kill()
  raise AssertionError(f"{node} never ran")


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
  root = tmp_path_factory.mktemp("faults") / "root"
  tmp = str(tmp_path_factory.mktemp("copies"))
  results = {"root": root}
  interrupted = _start(root)
  _wait_until_running(interrupted, root, tmp, "Trainer")
  busy = subprocess.run(_command(root), capture_output=True, text=True,
                        env=dict(os.environ, TF_USE_LEGACY_KERAS="1"), timeout=120)
  results["busy"] = (busy.returncode, busy.stdout, busy.stderr, interrupted.pid)
  interrupted.send_signal(signal.SIGINT)
  out, err = interrupted.communicate(timeout=180)
  results["interrupted"] = (interrupted.returncode, out, err)
  results["after_interrupt"] = _executions(root, tmp)

  killed = _start(root)
  _wait_until_running(killed, root, tmp, "Trainer")
  killed.kill()
  killed.communicate()
  results["after_kill"] = _executions(root, tmp)

  rerun = subprocess.run(_command(root), capture_output=True, text=True,
                         env=dict(os.environ, TF_USE_LEGACY_KERAS="1"), timeout=900)
  results["rerun"] = (rerun.returncode, rerun.stdout, rerun.stderr)
  results["after_rerun"] = _executions(root, tmp)

  shutil.rmtree(root / "serving_model")
  cached = subprocess.run(_command(root), capture_output=True, text=True,
                          env=dict(os.environ, TF_USE_LEGACY_KERAS="1"), timeout=900)
  results["cached"] = (cached.returncode, cached.stdout, cached.stderr)
  return results


def test_a_second_run_on_the_root_is_refused_naming_the_holder(faults):
  code, out, err, holder = faults["busy"]
  assert code == exits.BUSY, out + err
  assert f"another run holds {faults['root'] / '.tfx-distill.lock'} (pid {holder}," in err
  assert out == ""


def test_ctrl_c_prints_one_line_and_cancels_the_running_component(faults):
  code, out, err = faults["interrupted"]
  assert code == exits.INTERRUPTED, out + err[-3000:]
  assert "Traceback" not in err and "KeyboardInterrupt" not in err
  [line] = err.strip().splitlines()
  assert line.startswith("tfx-distill: interrupted (Ctrl-C) during Trainer; rerun the "
                         "same command to resume: finished components are reused")
  trainer = faults["after_interrupt"]["Trainer"][-1]
  assert trainer.last_known_state == _State.CANCELED
  assert trainer.custom_properties[properties.UNFINISHED_REASON].string_value == (
      "interrupted (Ctrl-C)")
  assert "Distiller" not in faults["after_interrupt"]


def test_a_killed_component_is_marked_failed_by_the_next_run(faults):
  killed = faults["after_kill"]["Trainer"][-1]
  assert killed.last_known_state == _State.RUNNING  # nobody was left to say
  code, out, err = faults["rerun"]
  assert code == 0, out + err[-3000:]
  assert "Earlier:  Trainer left running by a killed run: marked failed" in out
  marked = [e for e in faults["after_rerun"]["Trainer"] if e.id == killed.id][0]
  assert marked.last_known_state == _State.FAILED
  assert "left running by a run whose process ended" in (
      marked.custom_properties[properties.UNFINISHED_REASON].string_value)
  # The summary is this run's: every component of it, none of the killed one's.
  assert f"{names.PUSHER:<30} complete" in out
  assert "pushed:  " + str(faults["root"] / "serving_model") in out


def test_a_cached_push_whose_model_is_gone_is_not_reported_as_pushed(faults):
  code, out, err = faults["cached"]
  assert code == exits.NOT_SERVED, out + err[-3000:]
  assert f"{names.PUSHER:<30} cached" in out
  assert "pushed:  NOT SERVED: the pushed model at " + str(
      faults["root"] / "serving_model") in out
  assert "is missing (deleted since the Pusher ran); rerun with --no-cache" in out
