"""One run per pipeline root, and an honest record of runs that did not finish.

- `hold(pipeline_root)`: an exclusive lock (`fcntl.flock`) on
  `PIPELINE_ROOT/.tfx-distill.lock` for as long as a run lasts. A second
  `tfx-distill run` on the same root is refused at once with `RootBusy`,
  which names the lock file and the process holding it: two runs of identical
  inputs would both train, both pass the gates and both push a version. The
  kernel drops the lock when its process dies, however it dies, so a killed
  run never leaves the root locked.
- `close_unfinished(...)`: an execution still RUNNING in ML Metadata when no
  run holds the lock was left so by a process that died (kill -9, a crash, a
  lost machine): it is marked FAILED, and one this process stopped (Ctrl-C)
  CANCELED, each with the reason in its `unfinished_reason` property, so the
  summary and any tool reading MLMD see what happened.
"""

import contextlib
import fcntl
import os
import time
from typing import Iterator, List, Optional

from distill_components.distiller import properties

LOCK_FILE = ".tfx-distill.lock"


class RootBusy(RuntimeError):
  """Another run holds the pipeline root; the message names it."""


@contextlib.contextmanager
def hold(pipeline_root: str) -> Iterator[str]:
  """Holds the pipeline root's run lock; yields the lock file's path."""
  os.makedirs(pipeline_root, exist_ok=True)
  path = os.path.join(pipeline_root, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
      raise RootBusy(
          f"another run holds {path} ({holder or 'holder unknown'}); wait for it "
          "to finish, or stop it, then rerun: two runs on one pipeline root would "
          "train and push the same inputs twice.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
              .encode(), 0)
    try:
      yield path
    finally:
      os.ftruncate(fd, 0)
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)


def close_unfinished(sqlite_path: str, pipeline_name: str, *, reason: str,
                     canceled: bool = False,
                     since_ms: Optional[int] = None) -> List[str]:
  """Marks this pipeline's RUNNING executions FAILED (or CANCELED) with
  `reason`; with `since_ms`, only those created then or later. Returns the
  node ids marked. Call it holding the root's lock."""
  if not os.path.isfile(sqlite_path):
    return []
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  from distill_pipelines import mlmd  # pylint: disable=g-import-not-at-top
  # Read-write, never create: only an existing store has executions to close.
  store = mlmd.open_store(sqlite_path, writable=True)
  pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
  if pipeline is None:
    return []
  state = metadata_store_pb2.Execution
  stale = [e for e in store.get_executions_by_context(pipeline.id)
           if e.last_known_state == state.RUNNING
           and (since_ms is None or e.create_time_since_epoch >= since_ms)]
  marked = []
  for execution in stale:
    execution.last_known_state = state.CANCELED if canceled else state.FAILED
    execution.custom_properties[properties.UNFINISHED_REASON].string_value = reason
    marked += mlmd.node_ids(store, execution.id, pipeline_name)
  if stale:
    store.put_executions(stale)
  return marked
