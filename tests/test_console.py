"""The console: a run's noise goes to its log, progress to the person.

Each case runs in a child process: what is checked is the process's real
file descriptors 1 and 2, which pytest's own capture would otherwise hide.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from distill_pipelines.local import console

_CHILD = textwrap.dedent("""
    import os, subprocess, sys, warnings
    from absl import logging
    from distill_pipelines.local import console
    with console.captured(sys.argv[1]) as terminal:
      logging.info("Distillation step 100/1000: loss 0.25")
      print("python print")
      print("python stderr", file=sys.stderr)
      warnings.warn("a FutureWarning")
      os.write(1, b"C-level write\\n")
      os.write(2, b"C-level stderr\\n")
      subprocess.run(["sh", "-c", "echo child process; echo child stderr >&2"])
      print("progress line", file=terminal.stream, flush=True)
      if len(sys.argv) > 2:
        print("tail: " + " | ".join(terminal.tail(2)), file=terminal.stream)
    print("after the run")
""")


def _child(tmp_path, *extra):
  log = tmp_path / "logs" / "run.log"
  done = subprocess.run([sys.executable, "-c", _CHILD, str(log), *extra],
                        capture_output=True, text=True, check=True,
                        cwd=os.path.dirname(os.path.dirname(__file__)))
  return done, log.read_text()


def test_everything_the_components_print_goes_to_the_log(tmp_path):
  done, log = _child(tmp_path)
  assert done.stdout == "progress line\nafter the run\n"
  assert done.stderr == ""
  for noise in ("Distillation step 100/1000", "python print", "python stderr", "a FutureWarning", "C-level write",
                "C-level stderr", "child process", "child stderr"):
    assert noise in log, noise
  assert "progress line" not in log


def test_the_log_tail_is_at_hand_for_an_error(tmp_path):
  done, _ = _child(tmp_path, "tail")
  assert "tail: child process | child stderr" in done.stdout


@pytest.mark.parametrize("line, shown", [
    ("I1124 distiller.py:12] Distillation step 200/1000: {'loss': 0.1234, "
     "'soft_loss': 0.1}", "step 200/1000, loss 0.1234"),
    ("Distillation step 5/10: loss=nan", "step 5/10, loss nan"),
])
def test_distiller_progress_is_read_from_the_log(tmp_path, line, shown):
  log = tmp_path / "run.log"
  log.write_text(f"noise\n{line}\nmore noise\n")
  progress = console.Progress(str(tmp_path / "none.sqlite"), "p", log_path=str(log))
  assert progress._distiller_progress() == shown  # pylint: disable=protected-access
