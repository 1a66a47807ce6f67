"""What a pipeline run did, read back from ML Metadata.

`ProgressReporter` prints components as they start and finish; `summarize`
returns one run's component times and the teacher-vs-student outcome; `render`
turns that into the text `tfx-distill run` prints at the end.
"""

import dataclasses
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, TextIO

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from distill_components.distiller.tasks import Task
from distill_pipelines import names
from distill_pipelines.metrics import TASK_METRICS

_State = metadata_store_pb2.Execution.State
_STATE_NAMES = {
    _State.NEW: "new", _State.RUNNING: "running", _State.COMPLETE: "complete",
    _State.FAILED: "FAILED", _State.CACHED: "cached", _State.CANCELED: "canceled",
}


@dataclasses.dataclass
class ComponentRun:
  node_id: str
  state: str
  seconds: float
  execution_id: int


@dataclasses.dataclass
class ModelSide:
  """One model's figures: from the Evaluator, and from the Distiller's record."""
  # TFMA metric name -> value on the overall slice (the task's metrics).
  metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
  params: Optional[int] = None
  saved_model_bytes: Optional[int] = None


@dataclasses.dataclass
class RunSummary:
  pipeline_name: str
  run_id: str
  components: List[ComponentRun]
  teacher: ModelSide
  student: ModelSide
  task: Optional[Task] = None
  agreement: Optional[float] = None
  blessed: Optional[bool] = None
  # Why the Evaluator did not bless: one line per failed threshold (TFMA's
  # validation result).
  gate_failures: List[str] = dataclasses.field(default_factory=list)
  pushed_to: Optional[str] = None

  @property
  def failed(self) -> List[str]:
    return [c.node_id for c in self.components if c.state == "FAILED"]


def open_store(sqlite_path: str) -> metadata_store.MetadataStore:
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = sqlite_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return metadata_store.MetadataStore(config)


def _latest_run_context(store, pipeline_name: str):
  runs = [c for c in store.get_contexts_by_type("pipeline_run")]
  pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
  if pipeline is None:
    return None
  ids = {c.id for c in store.get_children_contexts_by_context(pipeline.id)}
  # Older MLMD layouts do not link runs to their pipeline; fall back to all.
  runs = [c for c in runs if not ids or c.id in ids] or runs
  return max(runs, key=lambda c: (c.create_time_since_epoch, c.id), default=None)


def component_runs(store, pipeline_name: str) -> List[ComponentRun]:
  """The newest run's executions, in the order they started."""
  run = _latest_run_context(store, pipeline_name)
  if run is None:
    return []
  prefix = pipeline_name + "."
  result = []
  for execution in sorted(store.get_executions_by_context(run.id),
                          key=lambda e: (e.create_time_since_epoch, e.id)):
    node_id = next(
        (c.name[len(prefix):] for c in store.get_contexts_by_execution(execution.id)
         if c.type == "node" and c.name.startswith(prefix)),
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


def _outputs(store, execution_id: int) -> Dict[str, metadata_store_pb2.Artifact]:
  """Output key -> artifact for one execution."""
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if e.type in (metadata_store_pb2.Event.OUTPUT,
                          metadata_store_pb2.Event.DECLARED_OUTPUT)]
  artifacts = {a.id: a for a in store.get_artifacts_by_id(
      [e.artifact_id for e in events])}
  return {e.path.steps[0].key: artifacts[e.artifact_id] for e in events
          if e.path.steps and e.artifact_id in artifacts}


def _custom(artifact, name):
  if artifact is None or name not in artifact.custom_properties:
    return None
  value = artifact.custom_properties[name]
  return getattr(value, value.WhichOneof("value"))


def _evaluator_metrics(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
  """model name -> metric name -> value, overall slice, no diffs."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  metrics = {}
  for per_slice in tfma.load_metrics(evaluation_uri):
    if per_slice.slice_key.single_slice_keys:
      continue
    for entry in per_slice.metric_keys_and_values:
      if not entry.key.is_diff and entry.value.HasField("double_value"):
        metrics.setdefault(entry.key.model_name, {})[entry.key.name] = (
            entry.value.double_value.value)
  return metrics


def _gate_failures(evaluation_uri: str, teacher: Dict[str, float]) -> List[str]:
  """TFMA's validation result as sentences: metric, value, threshold."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  lines = []
  result = tfma.load_validation_result(evaluation_uri)
  for per_slice in result.metric_validations_per_slice:
    where = "overall" if not per_slice.slice_key.single_slice_keys else str(
        per_slice.slice_key).replace("\n", " ")
    for failure in per_slice.failures:
      name, value = failure.metric_key.name, failure.metric_value.double_value.value
      threshold = failure.metric_threshold
      if failure.metric_key.is_diff:
        change = threshold.change_threshold
        if change.HasField("relative"):
          base = teacher.get(name)
          allowed = (f"{abs(change.relative.value):.0%} of the teacher's "
                     f"{base:.4f}" if base is not None else
                     f"{abs(change.relative.value):.0%} of the teacher's value")
        else:
          allowed = f"{abs(change.absolute.value):g}"
        lines.append(f"{name} ({where}): the student is {abs(value):.4f} worse than "
                     f"the teacher; allowed {allowed}")
      else:
        bound = threshold.value_threshold
        limit = (f">= {bound.lower_bound.value:g}" if bound.HasField("lower_bound")
                 else f"<= {bound.upper_bound.value:g}")
        lines.append(f"{name} ({where}): the student's {value:.4f} is not {limit}")
  return lines


def summarize(sqlite_path: str, pipeline_name: str,
              task: Optional[Task] = None) -> RunSummary:
  """The newest run of `pipeline_name`: components, and teacher vs student.

  `task` picks the metrics read back; unset, the Distiller's record says it.
  """
  store = open_store(sqlite_path)
  runs = component_runs(store, pipeline_name)
  by_node = {c.node_id: c for c in runs}
  run = _latest_run_context(store, pipeline_name)
  summary = RunSummary(pipeline_name, run.name if run else "", runs,
                       ModelSide(), ModelSide(), task=task)
  ok = ("complete", "cached")
  if names.DISTILLER in by_node and by_node[names.DISTILLER].state in ok:
    model = _outputs(store, by_node[names.DISTILLER].execution_id).get("model")
    summary.teacher.params = _custom(model, "teacher_params")
    summary.student.params = _custom(model, "student_params")
    summary.teacher.saved_model_bytes = _custom(model, "teacher_saved_model_bytes")
    summary.student.saved_model_bytes = _custom(model, "student_saved_model_bytes")
    summary.agreement = _custom(model, "eval_agreement")
    if summary.task is None and _custom(model, "task"):
      summary.task = Task.parse(_custom(model, "task"))
  if names.EVALUATOR in by_node and by_node[names.EVALUATOR].state in ok:
    outputs = _outputs(store, by_node[names.EVALUATOR].execution_id)
    blessed = _custom(outputs.get("blessing"), "blessed")
    summary.blessed = None if blessed is None else bool(blessed)
    if outputs.get("evaluation") is not None:
      metrics = _evaluator_metrics(outputs["evaluation"].uri)
      summary.teacher.metrics = metrics.get(names.TEACHER, {})
      summary.student.metrics = metrics.get(names.STUDENT, {})
      if summary.blessed is False:
        summary.gate_failures = _gate_failures(outputs["evaluation"].uri,
                                               summary.teacher.metrics)
  if names.PUSHER in by_node and by_node[names.PUSHER].state in ok:
    pushed = _outputs(store, by_node[names.PUSHER].execution_id).get("pushed_model")
    if _custom(pushed, "pushed"):
      summary.pushed_to = _custom(pushed, "pushed_destination")
  return summary


def _fmt(value, spec: str) -> str:
  return "-" if value is None else format(value, spec)


def _ratio(teacher, student, smaller: str, larger: str) -> str:
  """'154.6x fewer'; a student bigger than its teacher says so."""
  if not teacher or not student:
    return ""
  if student > teacher:
    return f"{student / teacher:.1f}x {larger} (the student is the bigger model)"
  return f"{teacher / student:.1f}x {smaller}"


def render(summary: RunSummary) -> str:
  """Plain-text report: component table, then teacher vs student."""
  lines = [f"Pipeline {summary.pipeline_name}, run {summary.run_id}", "",
           f"{'component':<20}{'status':<10}{'seconds':>9}"]
  for c in summary.components:
    lines.append(f"{c.node_id:<20}{c.state:<10}{c.seconds:>9.1f}")
  lines.append(f"{'total':<30}{sum(c.seconds for c in summary.components):>9.1f}")
  t, s = summary.teacher, summary.student
  mb = lambda b: None if b is None else b / 1e6
  task = summary.task.value if summary.task else "-"
  lines += ["", f"{'task: ' + task:<18}{'teacher':>12}{'student':>12}"]
  for metric in TASK_METRICS.get(summary.task, ()):
    lines.append(f"{metric.title:<18}{_fmt(t.metrics.get(metric.name), '.4f'):>12}"
                 f"{_fmt(s.metrics.get(metric.name), '.4f'):>12}")
  lines += [
      f"{'parameters':<18}{_fmt(t.params, ',d'):>12}{_fmt(s.params, ',d'):>12}"
      f"  {_ratio(t.params, s.params, 'fewer', 'more')}",
      f"{'SavedModel (MB)':<18}{_fmt(mb(t.saved_model_bytes), '.2f'):>12}"
      f"{_fmt(mb(s.saved_model_bytes), '.2f'):>12}"
      f"  {_ratio(t.saved_model_bytes, s.saved_model_bytes, 'smaller', 'larger')}",
  ]
  if summary.agreement is not None:  # classification: same predicted class
    lines.append(f"{'agreement':<18}{_fmt(summary.agreement, '.4f'):>24}")
  lines += [
      "",
      "blessed: " + {True: "yes", False: "no", None: "-"}[summary.blessed],
      *("  gate failed: " + line for line in summary.gate_failures),
      "pushed:  " + (summary.pushed_to or "nothing (the student was not blessed)"
                     if summary.blessed is not None else "-"),
  ]
  if summary.failed:
    lines.append("FAILED: " + ", ".join(summary.failed))
  return "\n".join(lines)


class ProgressReporter:
  """Prints each component's start and end while a pipeline runs.

  Polls the MLMD SQLite file from a background thread. It reads a byte copy,
  never the live file: a SQLite reader holds a shared lock that can make the
  runner's concurrent write fail with "database is locked". A copy torn by a
  write in flight fails to read or reads stale; the next poll gets it right.
  """

  def __init__(self, sqlite_path: str, pipeline_name: str,
               out: Optional[TextIO] = None, every_seconds: float = 1.0):
    self._path = sqlite_path
    self._pipeline = pipeline_name
    self._out = out or sys.stdout
    self._every = every_seconds
    self._seen: Dict[int, str] = {}
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._loop, daemon=True)
    self._started = time.time()
    self._before = 0  # Executions up to this id belong to earlier runs.
    self._copy_dir = tempfile.mkdtemp(prefix="tfx-distill-progress-")

  def __enter__(self):
    try:
      self._before = max((e.id for e in open_store(self._path).get_executions()),
                         default=0)
    except Exception:  # pylint: disable=broad-except
      self._before = 0  # No store yet: a first run.
    self._thread.start()
    return self

  def __exit__(self, *unused):
    self._stop.set()
    self._thread.join()
    self._poll()
    shutil.rmtree(self._copy_dir, ignore_errors=True)

  def _loop(self):
    while not self._stop.wait(self._every):
      self._poll()

  def _poll(self):
    copy = os.path.join(self._copy_dir, "metadata.sqlite")
    try:
      shutil.copyfile(self._path, copy)
      runs = component_runs(open_store(copy), self._pipeline)
    except Exception:  # pylint: disable=broad-except
      return  # The store may not exist yet, or be mid-write; try again later.
    for c in runs:
      if c.execution_id <= self._before or self._seen.get(c.execution_id) == c.state:
        continue
      self._seen[c.execution_id] = c.state
      elapsed = time.time() - self._started
      took = "" if c.state == "running" else f" ({c.seconds:.1f}s)"
      print(f"[{elapsed:7.1f}s] {c.node_id:<20} {c.state}{took}",
            file=self._out, flush=True)
