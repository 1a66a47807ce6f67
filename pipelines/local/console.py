"""What a person sees while a pipeline runs: one live line per component.

TensorFlow, absl, Beam and pip write to the process's stdout and stderr from
C++, from threads and from subprocesses; a Python-level redirect misses most
of it. `captured(log_path)` therefore points file descriptors 1 and 2 (and
`sys.stdout`/`sys.stderr`) at a log file for the length of a run, and hands
back a stream on the terminal kept aside, where `Progress` draws.

The run's own lines are written here too: `header` (what runs on what),
`interrupted`, `outcome` (the summary, the report's and log's paths) and
`failure`; their wording is this module's, the runner only calls them.

`Progress` polls ML Metadata for the run's executions. On a terminal it keeps
a live rich table (component, state, elapsed; the Distiller's step and loss,
read from the log); in a pipe or CI log it prints one plain line per finished
component, with no control codes.
"""

import contextlib
import dataclasses
import io
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from typing import Dict, Iterator, List, Optional, TextIO

from absl import logging as absl_logging
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from distill_pipelines import names
from distill_pipelines import report

# The Distiller logs "Distillation step 200/1000: ... loss ... 0.1234"
# (components/distiller/training.py); the live line shows the newest one.
_DISTILLER_STEP = re.compile(
    r"Distillation step (?P<step>\d+)/(?P<steps>\d+)\b.*?\bloss\W+(?P<loss>[-+0-9.eE]+|nan|inf)")
_TAIL_BYTES = 64 * 1024


@dataclasses.dataclass
class Terminal:
  """Where the console draws while fds 1 and 2 go to the log."""
  stream: TextIO
  log_path: str

  def tail(self, lines: int = 20) -> List[str]:
    """The last `lines` lines of the log (shown with an error)."""
    return _tail(self.log_path, lines)


def _tail(path: str, lines: int) -> List[str]:
  try:
    with open(path, "rb") as f:
      f.seek(max(0, os.path.getsize(path) - _TAIL_BYTES))
      text = f.read().decode("utf-8", "replace")
  except OSError:
    return []
  return text.splitlines()[-lines:]


@contextlib.contextmanager
def captured(log_path: str) -> Iterator[Terminal]:
  """Sends everything written to stdout/stderr to `log_path` while inside.

  Yields the Terminal to draw on: a duplicate of the real stdout, or, when
  `sys.stdout` is not a file (a notebook, a test's StringIO), `sys.stdout`
  itself. The log also gets absl's INFO lines (TFX's and the Distiller's
  progress), which absl drops by default outside an absl app.
  """
  os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
  sys.stdout.flush()
  sys.stderr.flush()
  try:
    out_fd = sys.stdout.fileno()
  except (AttributeError, io.UnsupportedOperation, ValueError):
    out_fd = None
  terminal = (os.fdopen(os.dup(out_fd), "w", buffering=1, encoding="utf-8",
                        errors="replace") if out_fd is not None else sys.stdout)
  saved_fds = [os.dup(1), os.dup(2)]
  saved_streams = sys.stdout, sys.stderr
  log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
  verbosity = absl_logging.get_verbosity()
  try:
    absl_logging.set_verbosity(absl_logging.INFO)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    yield Terminal(terminal, log_path)
  finally:
    absl_logging.set_verbosity(verbosity)
    log.flush()
    sys.stdout, sys.stderr = saved_streams
    os.dup2(saved_fds[0], 1)
    os.dup2(saved_fds[1], 2)
    for fd in saved_fds:
      os.close(fd)
    log.close()
    if terminal is not saved_streams[0]:
      terminal.flush()
      terminal.close()


@dataclasses.dataclass
class _Row:
  node_id: str
  state: str
  started: float
  seconds: Optional[float] = None  # once finished


class Progress:
  """Shows each component's state while a pipeline runs (see the module doc).

  Polls the MLMD SQLite file from a background thread. It reads a byte copy,
  never the live file: a SQLite reader holds a shared lock that can make the
  runner's concurrent write fail with "database is locked". A copy torn by a
  write in flight fails to read or reads stale; the next poll gets it right.
  """

  def __init__(self, sqlite_path: str, pipeline_name: str,
               out: Optional[TextIO] = None, log_path: Optional[str] = None,
               every_seconds: float = 1.0, live: Optional[bool] = None,
               since_ms: Optional[int] = None):
    self._path = sqlite_path
    self._since_ms = since_ms  # only the run created from then on
    self._pipeline = pipeline_name
    self._out = out or sys.stdout
    self._log_path = log_path
    self._every = every_seconds
    self._console = Console(file=self._out, highlight=False, soft_wrap=True)
    self._live_mode = self._console.is_terminal if live is None else live
    self._rows: Dict[int, _Row] = {}
    self._printed: Dict[int, str] = {}
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._loop, daemon=True)
    self._started = time.time()
    self._before = 0  # Executions up to this id belong to earlier runs.
    self._copy_dir = tempfile.mkdtemp(prefix="tfx-distill-progress-")
    self._live: Optional[Live] = None

  def __enter__(self):
    try:
      self._before = max(
          (e.id for e in report.open_store(self._path).get_executions()), default=0)
    except Exception:  # pylint: disable=broad-except
      self._before = 0  # No store yet: a first run.
    if self._live_mode:
      self._live = Live(get_renderable=self._table, console=self._console,
                        refresh_per_second=4, transient=False,
                        redirect_stdout=False, redirect_stderr=False)
      self._live.start()
    self._thread.start()
    return self

  def __exit__(self, *unused):
    self._stop.set()
    self._thread.join()
    self._poll()
    if self._live is not None:
      self._live.stop()
    shutil.rmtree(self._copy_dir, ignore_errors=True)

  def _loop(self):
    while not self._stop.wait(self._every):
      self._poll()

  def _poll(self):
    copy = os.path.join(self._copy_dir, "metadata.sqlite")
    try:
      shutil.copyfile(self._path, copy)
      runs = report.component_runs(report.open_store(copy), self._pipeline,
                                   self._since_ms)
    except Exception:  # pylint: disable=broad-except
      return  # The store may not exist yet, or be mid-write; try again later.
    now = time.time()
    with self._lock:
      for c in runs:
        if c.execution_id <= self._before:
          continue
        row = self._rows.setdefault(c.execution_id, _Row(c.node_id, c.state, now))
        row.state = c.state
        if c.state != "running":
          row.seconds = c.seconds
      if not self._live_mode:
        self._print_finished()

  def _print_finished(self):
    for execution_id, row in sorted(self._rows.items()):
      if row.state == "running" or self._printed.get(execution_id) == row.state:
        continue
      self._printed[execution_id] = row.state
      elapsed = time.time() - self._started
      self._console.print(
          f"[{elapsed:7.1f}s] {row.node_id:<{report.NAME_WIDTH}} {row.state}"
          f" ({row.seconds:.1f}s)", markup=False)

  def _distiller_progress(self) -> str:
    if not self._log_path:
      return ""
    for line in reversed(_tail(self._log_path, 200)):
      found = _DISTILLER_STEP.search(line)
      if found:
        return (f"step {found['step']}/{found['steps']}, "
                f"loss {float(found['loss']):.4f}")
    return ""

  def _table(self) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(width=2)
    table.add_column(min_width=report.NAME_WIDTH)
    table.add_column(min_width=9)
    table.add_column(justify="right", min_width=8)
    table.add_column()
    now = time.time()
    with self._lock:
      rows = [row for _, row in sorted(self._rows.items())]
    for row in rows:
      running = row.state == "running"
      seconds = (now - row.started) if running else (row.seconds or 0.0)
      detail = (self._distiller_progress()
                if running and row.node_id == names.DISTILLER else "")
      mark = (Spinner("dots") if running else
              Text("x", style="bold red") if row.state == "FAILED" else
              Text("✓", style="green"))
      table.add_row(mark, row.node_id,
                    Text(row.state, style="red" if row.state == "FAILED" else ""),
                    f"{seconds:.1f}s", Text(detail, style="dim"))
    table.add_row("", Text(f"elapsed {now - self._started:.0f}s", style="dim"),
                  "", "", "")
    return table


def header(out: TextIO, settings, log_path: Optional[str]) -> None:
  """What this run reads and where it writes (before TFX is even imported)."""
  lines = [f"Data:     {settings.data_root}",
           f"Label:    {settings.label} ({settings.task.value})",
           f"Pipeline: {settings.pipeline_root}"]
  if log_path:
    lines.append(f"Log:      {log_path}")
  print("\n".join(lines), file=out, flush=True)


def plan(out: TextIO, *, closed: List[str], schema_note: str,
         teacher_note: str = "") -> None:
  """What this run takes over from earlier ones: `closed` are executions a
  killed run left running (now marked failed), the schema, the teacher."""
  lines = []
  if closed:
    lines.append(f"Earlier:  {', '.join(closed)} left running by a killed run: "
                 "marked failed")
  if schema_note:
    lines.append(f"Schema:   {schema_note}")
  if teacher_note:
    lines.append(f"Teacher:  {teacher_note}")
  print("\n".join(lines), file=out, flush=True)


def interrupted(why: str, stopped: List[str], log_path: Optional[str]) -> None:
  where = f"during {', '.join(stopped)}" if stopped else "between components"
  print(f"tfx-distill: interrupted ({why}) {where}; rerun the same command "
        "to resume: finished components are reused"
        + (f" (log: {log_path})" if log_path else ""), file=sys.stderr, flush=True)


def outcome(summary, page: str, log_path: Optional[str], *,
            components: bool = False) -> None:
  """The run's summary (report.render), then where its page and log are."""
  print("\n" + report.render(summary, components=components), flush=True)
  print(f"report:  {page}", flush=True)
  if log_path:
    print(f"log:     {log_path}", flush=True)


def failure(error: BaseException, tail: List[str], log_path: Optional[str]) -> None:
  """A run that failed: the log's last lines and the error, on stderr."""
  if tail:
    print(f"\nThe last lines of {log_path}:\n" + "\n".join(tail), file=sys.stderr)
  print(f"\ntfx-distill: the pipeline failed: {type(error).__name__}: {error}",
        file=sys.stderr)
