"""`tfx-distill run`: the pipeline here, with LocalDagRunner.

    tfx-distill run [--pipeline-root DIR] [--train-steps N] ...   # the demo
    tfx-distill run --data-root DIR --label COLUMN [--task binary|multiclass|regression]
        [--preprocessing-module F] [--teacher-module F] [--student-module F]
        [--teacher-model DIR] ...                             # your own CSV

The flags fill one `Settings` (pipelines/flags.py, pipelines/settings.py) and
build `create_pipeline`. The console stays quiet (pipelines/console.py), the
summary and report.html are read back from MLMD and TFMA, and the exit status
says why nothing was pushed. The Kubeflow commands (`compile`, `submit`,
`schedule`, `run-package`) live in kubeflow/cli.py, whose `main` is the
`tfx-distill` entry point offering both.
"""

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from typing import Dict, Optional, Sequence, Tuple

from distill_pipelines import flags
from distill_pipelines.flags import InputError


@contextlib.contextmanager
def _argv_parsed():
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


# Exit status of `run`: why nothing was pushed, for a scheduler to act on.
EXIT_FAILED = 1  # a component failed
EXIT_INPUT = 2  # the settings or the data were refused before anything ran
EXIT_DATA_ANOMALIES = 3  # the data broke the schema; nothing was trained
EXIT_FIDELITY = 4  # the student is too far from the teacher
EXIT_NO_REGRESSION = 5  # the student is worse than the serving model
EXIT_BUSY = 6  # another run holds the pipeline root; this one did nothing
EXIT_NOT_SERVED = 7  # the model the Pusher pushed is gone from its destination
EXIT_NO_GAIN = 8  # --require-gain: the student alone beat the distilled one
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: finished components are reused on rerun


def exit_status(summary) -> int:
  """0 when the run ended as it should (pushed); else why not (EXIT_*)."""
  from distill_pipelines import names  # pylint: disable=g-import-not-at-top
  if summary.data_anomalies:
    return EXIT_DATA_ANOMALIES
  failed = {g.evaluator for g in summary.gates if g.verdict == "failed"}
  if names.FIDELITY_EVALUATOR in failed:
    return EXIT_FIDELITY
  if names.NO_REGRESSION_EVALUATOR in failed:
    return EXIT_NO_REGRESSION
  if summary.failed:
    return EXIT_FAILED
  if summary.held_for_no_gain:
    return EXIT_NO_GAIN
  return EXIT_NOT_SERVED if summary.pushed_missing else 0


def add_run_command(commands) -> Dict[str, flags.Handler]:
  """Adds `run` to a subparsers action; returns its handler by name."""
  run = commands.add_parser(
      "run", help="run the pipeline locally (LocalDagRunner, SQLite MLMD)")
  run.add_argument("--data-root", default=None,
                   help="directory of CSV files (default: the demo CSV inside tfx)")
  run.add_argument("--pipeline-root", default="tfx_pipeline_output",
                   help="where artifacts, MLMD and the pushed model go")
  flags.add_pipeline_flags(run)
  run.add_argument("--verbose", action="store_true",
                   help="show the components' own output (TensorFlow, Beam, pip) "
                   "live instead of writing it to the run's log file")
  return {"run": _run}


def _parser() -> Tuple[argparse.ArgumentParser, Dict[str, flags.Handler]]:
  parser = argparse.ArgumentParser(
      prog="tfx-distill",
      description="Distil a TFX teacher into a small student, gated by TFMA.")
  handlers = add_run_command(parser.add_subparsers(dest="command", required=True))
  return parser, handlers


def build_parser() -> argparse.ArgumentParser:
  """The parser of `tfx-distill` with only the local command."""
  return _parser()[0]


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


def _run(args: argparse.Namespace) -> int:
  settings = flags.settings_from_args(args)
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
      return EXIT_BUSY
    signals = stack.enter_context(_Interrupts().installed())
    return _run_holding_the_root(args, settings, signals)


def _run_holding_the_root(args: argparse.Namespace, settings, signals) -> int:
  from distill_pipelines import guard  # pylint: disable=g-import-not-at-top
  metadata_path = os.path.join(settings.pipeline_root, "metadata.sqlite")
  from distill_pipelines import console  # pylint: disable=g-import-not-at-top
  log_path = None if args.verbose else os.path.join(
      settings.pipeline_root, "logs", time.strftime("run-%Y%m%d-%H%M%S.log"))
  error, tail, interrupted = None, [], None
  with contextlib.ExitStack() as stack:
    # From here on, what TensorFlow, Beam and pip print goes to the log.
    terminal = stack.enter_context(console.captured(log_path)) if log_path else None
    out = terminal.stream if terminal else sys.stdout
    say = lambda text: print(text, file=out, flush=True)  # pylint: disable=unnecessary-lambda-assignment
    say(f"Data:     {settings.data_root}\nLabel:    {settings.label} "
        f"({settings.task.value})\nPipeline: {settings.pipeline_root}")
    if log_path:
      say(f"Log:      {log_path}")

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
    if closed:
      say(f"Earlier:  {', '.join(closed)} left running by a killed run: marked failed")
    plan = retraining.plan(settings, metadata_path)
    settings = plan.settings
    say(f"Schema:   {plan.schema_note}")
    if plan.teacher_note:
      say(f"Teacher:  {plan.teacher_note}")
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
                          log_path=log_path, since_ms=started_ms), _argv_parsed():
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
    where = f"during {', '.join(stopped)}" if stopped else "between components"
    print(f"tfx-distill: interrupted ({interrupted}) {where}; rerun the same command "
          "to resume: finished components are reused"
          + (f" (log: {log_path})" if log_path else ""), file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED
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
  print("\n" + report.render(summary, components=args.verbose), flush=True)
  print(f"report:  {page}", flush=True)
  if log_path:
    print(f"log:     {log_path}", flush=True)
  status = exit_status(summary)
  if error is not None and not summary.data_anomalies:
    if tail:
      print(f"\nThe last lines of {log_path}:\n" + "\n".join(tail), file=sys.stderr)
    print(f"\ntfx-distill: the pipeline failed: {type(error).__name__}: {error}",
          file=sys.stderr)
    return status or EXIT_FAILED
  return status


def main(argv: Optional[Sequence[str]] = None) -> int:
  """`tfx-distill run ...` (the entry point with every command is
  distill_kubeflow.cli.main)."""
  return flags.dispatch(*_parser(), argv)


if __name__ == "__main__":
  sys.exit(main())
