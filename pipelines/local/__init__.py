"""A pipeline run here, with LocalDagRunner: `tfx-distill run`.

`run(settings)` holds the pipeline root (one run at a time), keeps the
console quiet (console.py: live progress, the components' own
output in the run's log), builds `create_pipeline`, runs it, reads the
summary and report.html back from MLMD and TFMA, and returns the exit status
(`exits.py`) that says why nothing was pushed.
"""

import contextlib
import os
import signal
import sys
import threading
import time

from distill_pipelines import exits
from distill_pipelines.inputs import InputError
from distill_pipelines.settings import Settings


@contextlib.contextmanager
def argv_parsed():
  """Hides the command line from the components while they run.

  Beam and absl inside the components parse `sys.argv` for flags of their own
  when nobody has; a caller's flags (`-v` for pytest, say) would be read as
  theirs (`-v` is absl's --verbosity). Ours are parsed already.
  """
  saved = sys.argv
  sys.argv = saved[:1]
  try:
    yield
  finally:
    sys.argv = saved


class _Interrupts:
  """Ctrl-C and SIGTERM (what a scheduler sends to stop a job) end the run alike.

  Both raise KeyboardInterrupt, and the signal is also remembered: one that
  lands inside TensorFlow's C++ code can come out as another exception
  (SystemError, then a ValueError from tf.data), and the run was still
  interrupted, not failed.
  """

  def __init__(self):
    self.why = None

  def _interrupt(self, signum, frame):
    del frame
    self.why = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    raise KeyboardInterrupt(self.why)

  @contextlib.contextmanager
  def installed(self):
    if threading.current_thread() is not threading.main_thread():
      yield self  # only the main thread may set handlers
      return
    saved = {s: signal.signal(s, self._interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
      yield self
    finally:
      for s, handler in saved.items():
        signal.signal(s, handler)


def run(settings: Settings, *, verbose: bool = False) -> int:
  """Runs the pipeline of `settings` here; returns its exit status."""
  from distill_pipelines import guard  # pylint: disable=g-import-not-at-top
  with contextlib.ExitStack() as stack:
    try:
      os.makedirs(settings.pipeline_root, exist_ok=True)
      stack.enter_context(guard.hold(settings.pipeline_root))
    except OSError as e:
      why = ("it is a file, not a directory" if os.path.isfile(settings.pipeline_root)
             else e.strerror or str(e))
      raise InputError(f"--pipeline-root {settings.pipeline_root!r} cannot hold a "
                       f"run: {why}.") from None
    except guard.RootBusy as e:
      print(f"tfx-distill: {e}", file=sys.stderr)
      return exits.BUSY
    signals = stack.enter_context(_Interrupts().installed())
    return _run_holding_the_root(settings, signals, verbose)


def _run_holding_the_root(settings: Settings, signals, verbose: bool) -> int:
  from distill_pipelines import guard  # pylint: disable=g-import-not-at-top
  metadata_path = os.path.join(settings.pipeline_root, "metadata.sqlite")
  from distill_pipelines.local import console  # pylint: disable=g-import-not-at-top
  log_path = None if verbose else os.path.join(
      settings.pipeline_root, "logs", time.strftime("run-%Y%m%d-%H%M%S.log"))
  error, tail, interrupted = None, [], None
  with contextlib.ExitStack() as stack:
    # From here on, what TensorFlow, Beam and pip print goes to the log.
    terminal = stack.enter_context(console.captured(log_path)) if log_path else None
    out = terminal.stream if terminal else sys.stdout
    console.header(out, settings, log_path)

    # Imported here: the checks above must not wait for TFX.
    from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
    from distill_pipelines import report  # pylint: disable=g-import-not-at-top
    from distill_pipelines import retraining  # pylint: disable=g-import-not-at-top

    # Nothing else runs on this root (the lock): what is still RUNNING was
    # left so by a process that died.
    closed = guard.close_unfinished(
        metadata_path, settings.pipeline_name,
        reason="left running by a run whose process ended without finishing it "
        f"(killed?); marked failed by the run started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    plan = retraining.plan(settings, metadata_path)
    console.plan(out, closed=closed, schema_note=plan.schema_note,
                 teacher_note=plan.teacher_note)
    settings = plan.settings
    try:
      definition = pipeline.create_pipeline(
          settings,
          metadata_connection_config=(
              tfx.orchestration.metadata.sqlite_metadata_connection_config(
                  metadata_path)))
    except ValueError as e:  # A component refused its settings: nothing ran yet.
      raise InputError(str(e)) from e
    # This process's run is the one created from now on (the lock keeps any
    # other run off this root): the progress and summary follow it only.
    started_ms = int(time.time() * 1000)
    # Components run in this process: a Trainer module that sets no seed of
    # its own trains the same teacher on a rerun.
    tf.keras.utils.set_random_seed(settings.seed)
    with console.Progress(metadata_path, settings.pipeline_name, out=out,
                          log_path=log_path, since_ms=started_ms), argv_parsed():
      try:
        tfx.orchestration.LocalDagRunner().run(definition)
      except KeyboardInterrupt as e:
        interrupted = signals.why or str(e) or "Ctrl-C"
      except Exception as e:  # pylint: disable=broad-except
        if signals.why:  # the signal surfaced as another exception
          interrupted = signals.why
        else:
          error = e
          tail = terminal.tail(20) if terminal else []
    if interrupted:
      stopped = guard.close_unfinished(
          metadata_path, settings.pipeline_name, canceled=True, since_ms=started_ms,
          reason=f"interrupted ({interrupted})")
  if interrupted:
    console.interrupted(interrupted, stopped, log_path)
    return exits.INTERRUPTED
  with contextlib.ExitStack() as stack:
    if log_path:  # what the report's TensorFlow prints goes to the log too
      stack.enter_context(console.captured(log_path))
    summary = report.summarize(metadata_path, settings.pipeline_name, settings.task,
                               since_ms=started_ms)
    page = os.path.join(settings.pipeline_root, "report.html")
    try:
      from distill_pipelines.report import html as report_html  # pylint: disable=g-import-not-at-top
      report_html.write(metadata_path, settings.pipeline_name, page, summary)
    except Exception as e:  # pylint: disable=broad-except
      # The run's outcome stands without its page; the log has the trace.
      import traceback  # pylint: disable=g-import-not-at-top
      traceback.print_exc()
      page = f"not written ({type(e).__name__}: {e}; see the log)"
  console.outcome(summary, page, log_path, components=verbose)
  status = exits.status(summary)
  if error is not None and not summary.data_anomalies:
    console.failure(error, tail, log_path)
    return status or exits.FAILED
  return status
