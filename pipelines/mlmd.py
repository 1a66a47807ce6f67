"""ML Metadata, opened and read in one place: the reader behind the summary,
report.html, the retraining plan and the run guard.

Built on TFX's and MLMD's own helpers: the connection from
`tfx.orchestration.metadata` (`sqlite_metadata_connection_config`, opened
read-only unless a caller asks to write; never creating a store), a run's
executions from MLMD's `get_executions_by_context`, and each execution's
inputs and outputs as typed TFX artifacts from
`execution_lib.get_input_artifacts` / `get_output_artifacts` (TFX rebuilds
them from the events' paths). TFX is imported on first use, not at import:
the command line checks its flags before TensorFlow loads.
"""

import dataclasses
import os
import time
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

_State = metadata_store_pb2.Execution.State
_STATE_NAMES = {
    _State.NEW: "new", _State.RUNNING: "running", _State.COMPLETE: "complete",
    _State.FAILED: "FAILED", _State.CACHED: "cached", _State.CANCELED: "canceled",
}
# The states of an execution whose outputs can be read.
DONE = ("complete", "cached")


@dataclasses.dataclass
class ComponentRun:
  node_id: str
  state: str
  seconds: float
  execution_id: int


def connection_config(sqlite_path: str, *, writable: bool = False
                      ) -> metadata_store_pb2.ConnectionConfig:
  """TFX's SQLite connection config, read-only unless `writable`; never one
  that creates or migrates a store (that is the pipeline's to do)."""
  if not os.path.isfile(sqlite_path):
    # Checked here: TFX's helper would create the folder, and its handle retry
    # for seconds, for a store that is not there.
    raise FileNotFoundError(f"No ML Metadata store at {sqlite_path!r}: no "
                            "pipeline has run with this pipeline root yet.")
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  config = metadata.sqlite_metadata_connection_config(os.path.abspath(sqlite_path))
  modes = metadata_store_pb2.SqliteMetadataSourceConfig
  config.sqlite.connection_mode = modes.READWRITE if writable else modes.READONLY
  return config


def open_store(sqlite_path: str, *, writable: bool = False
               ) -> metadata_store.MetadataStore:
  """An MLMD store on `sqlite_path`, read-only unless `writable`."""
  return metadata_store.MetadataStore(
      connection_config(sqlite_path, writable=writable))


def connect(sqlite_path: str):
  """TFX's `metadata.Metadata` handle on `sqlite_path`, read-only; use it
  in a `with` block, as TFX's execution helpers expect."""
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  return metadata.Metadata(connection_config(sqlite_path))


def node_ids(store, execution_id: int, pipeline_name: str) -> List[str]:
  """The pipeline's node ids of an execution (TFX names its node contexts
  '<pipeline>.<node>')."""
  prefix = pipeline_name + "."
  return [c.name[len(prefix):] for c in store.get_contexts_by_execution(execution_id)
          if c.type == "node" and c.name.startswith(prefix)]


def latest_run_context(store, pipeline_name: str, since_ms: Optional[int] = None):
  """The newest run of the pipeline; with `since_ms`, only a run created then
  or later (the run a process started, not an earlier one)."""
  runs = [c for c in store.get_contexts_by_type("pipeline_run")
          if since_ms is None or c.create_time_since_epoch >= since_ms]
  pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
  if pipeline is None:
    return None
  ids = {c.id for c in store.get_children_contexts_by_context(pipeline.id)}
  # Older MLMD layouts do not link runs to their pipeline; fall back to all.
  runs = [c for c in runs if not ids or c.id in ids] or runs
  return max(runs, key=lambda c: (c.create_time_since_epoch, c.id), default=None)


def component_runs(store, pipeline_name: str,
                   since_ms: Optional[int] = None) -> List[ComponentRun]:
  """The newest run's executions (see `latest_run_context`), in the order
  they started."""
  run = latest_run_context(store, pipeline_name, since_ms)
  if run is None:
    return []
  result = []
  for execution in sorted(store.get_executions_by_context(run.id),
                          key=lambda e: (e.create_time_since_epoch, e.id)):
    node_id = next(iter(node_ids(store, execution.id, pipeline_name)),
                   execution.type.rsplit(".", 1)[-1])
    end = execution.last_update_time_since_epoch
    if execution.last_known_state == _State.RUNNING:
      end = int(time.time() * 1000)
    result.append(ComponentRun(
        node_id=node_id,
        state=_STATE_NAMES.get(execution.last_known_state, "unknown"),
        seconds=(end - execution.create_time_since_epoch) / 1000.0,
        execution_id=execution.id))
  return result


@dataclasses.dataclass
class Execution:
  """What one execution read and wrote (key -> TFX artifacts), and its exec
  properties (TFX keeps them as the execution's custom properties)."""
  inputs: Dict[str, list] = dataclasses.field(default_factory=dict)
  outputs: Dict[str, list] = dataclasses.field(default_factory=dict)
  properties: Dict[str, str] = dataclasses.field(default_factory=dict)

  def input(self, key: str):
    """The first artifact of input `key`, or None."""
    return (self.inputs.get(key) or [None])[0]

  def output(self, key: str):
    """The first artifact of output `key`, or None."""
    return (self.outputs.get(key) or [None])[0]


def execution(handle, execution_id: int) -> Execution:
  """What execution `execution_id` read and wrote, through TFX's helpers
  (`handle`: an entered `connect(...)`)."""
  from tfx.orchestration.portable.mlmd import execution_lib  # pylint: disable=g-import-not-at-top
  # Registers TFX's artifact classes, so the artifacts read back are typed.
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top,unused-import
  [found] = handle.store.get_executions_by_id([execution_id])
  return Execution(
      inputs=execution_lib.get_input_artifacts(handle, execution_id),
      outputs=execution_lib.get_output_artifacts(handle, execution_id),
      properties={k: v.string_value for k, v in found.custom_properties.items()})


def executions(handle, execution_ids: Dict[str, int]) -> Dict[str, Execution]:
  """node -> its Execution, for each execution id (see `execution`)."""
  return {node: execution(handle, execution_id)
          for node, execution_id in execution_ids.items()}


def producer(handle, artifact_id: int) -> Optional[Execution]:
  """The execution that wrote artifact `artifact_id` (its output event, as
  TFX's `event_lib` defines one), or None."""
  from tfx.orchestration.portable.mlmd import event_lib  # pylint: disable=g-import-not-at-top
  writers = [e.execution_id for e in handle.store.get_events_by_artifact_ids([artifact_id])
             if event_lib.is_valid_output_event(e)]
  return execution(handle, writers[0]) if writers else None


def newest_output(sqlite_path: str, pipeline_name: str, node: str, key: str):
  """Output `key` (a TFX artifact) of component `node` in the pipeline's
  newest run, or None if it did not run or wrote none."""
  with connect(sqlite_path) as handle:
    runs = [c for c in component_runs(handle.store, pipeline_name) if c.node_id == node]
    if not runs:
      return None
    return execution(handle, runs[-1].execution_id).output(key)


def custom(artifact, name: str):
  """A custom property of a TFX artifact (the Distiller's record, a
  blessing), or None when the artifact or the property is absent."""
  if artifact is None or not artifact.has_custom_property(name):
    return None
  return artifact.get_custom_property(name)


def local_uri(uri: Optional[str], root: str) -> Optional[str]:
  """An artifact's directory, also when the pipeline root was copied or moved
  (MLMD keeps absolute URIs): '<old root>/Node/key/7' -> '<root>/Node/key/7'."""
  if not uri or os.path.exists(uri):
    return uri
  parts = uri.rstrip("/").split("/")
  for depth in range(3, min(len(parts), 6) + 1):
    moved = os.path.join(root, *parts[-depth:])
    if os.path.exists(moved):
      return moved
  return uri
