"""What a pipeline run did, read back from ML Metadata.

`summarize` returns one run's component times, the teacher-vs-student
outcome and the gates' verdicts; `render` turns that into the text
`tfx-distill run` prints at the end (pipelines/console.py shows the run live).
"""

import dataclasses
import json
import os
import time
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from distill_components.distiller import properties
from distill_components.distiller.tasks import Task
from distill_pipelines import names
from distill_components.distiller.metrics import TASK_METRICS

_State = metadata_store_pb2.Execution.State
_STATENAME_WIDTHS = {
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
class GateResult:
  """One gate's verdict, from its Evaluator's blessing and validation result."""
  evaluator: str  # the Evaluator's node id
  title: str
  # "passed", "failed", "not run" (an earlier gate failed), or "-" (absent).
  verdict: str = "-"
  # True when there was nothing to compare with (a first run: no baseline
  # model among the Evaluator's inputs); only the gate's absolute bounds held.
  no_baseline: bool = False
  # One sentence per failed threshold: metric, slice, values, threshold.
  failures: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RunSummary:
  pipeline_name: str
  run_id: str
  components: List[ComponentRun]
  teacher: ModelSide
  student: ModelSide
  task: Optional[Task] = None
  agreement: Optional[float] = None
  # What the student learnt from, by kind (labelled, unlabeled, synthetic),
  # when it had a transfer set; and how many teachers were averaged.
  examples: Dict[str, int] = dataclasses.field(default_factory=dict)
  teachers: int = 1
  # The serving model's figures, from the no-regression gate (if it ran with
  # one).
  serving: ModelSide = dataclasses.field(default_factory=ModelSide)
  gates: List[GateResult] = dataclasses.field(default_factory=list)
  # The ExampleValidator's anomalies when the DataGate stopped the run.
  data_anomalies: List[str] = dataclasses.field(default_factory=list)
  pushed_to: Optional[str] = None
  # Where the Pusher recorded a push that is no longer there (deleted since).
  pushed_missing: Optional[str] = None
  # The distilled student and the same student trained alone, as the
  # Distiller scored them (TFMA): part ("validation", "eval") -> student
  # ("distilled", "alone") -> metric -> value; which went on, chosen by which
  # metric on the validation cut of how many train rows.
  students: Dict[str, Dict[str, Dict[str, float]]] = dataclasses.field(
      default_factory=dict)
  student_chosen: Optional[str] = None
  choice_metric: Optional[str] = None
  validation_examples: Optional[int] = None
  # The zero-code teacher's candidates: name -> metric -> value on the
  # validation cut, and the one kept.
  teacher_candidates: Dict[str, Dict[str, float]] = dataclasses.field(
      default_factory=dict)
  teacher_chosen: Optional[str] = None
  # The Pusher was skipped because the student alone went on (require_gain).
  held_for_no_gain: bool = False

  @property
  def failed(self) -> List[str]:
    return [c.node_id for c in self.components if c.state == "FAILED"]

  @property
  def blessed(self) -> Optional[bool]:
    """Every gate blessed the student (None: no gate ran)."""
    if not any(g.verdict in ("passed", "failed") for g in self.gates):
      return None
    return all(g.verdict == "passed" for g in self.gates)

  @property
  def gate_failures(self) -> List[str]:
    return [f"{g.title}: {line}" for g in self.gates for line in g.failures]

  @property
  def stopped_by(self) -> Optional[str]:
    """What kept the student from being pushed, if anything did."""
    if self.data_anomalies:
      return "data validation"
    failed = next((g for g in self.gates if g.verdict == "failed"), None)
    return failed.title if failed else None


def open_store(sqlite_path: str) -> metadata_store.MetadataStore:
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = sqlite_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return metadata_store.MetadataStore(config)


def _latest_run_context(store, pipeline_name: str, since_ms: Optional[int] = None):
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
  """The newest run's executions (see `_latest_run_context`), in the order
  they started."""
  run = _latest_run_context(store, pipeline_name, since_ms)
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
        state=_STATENAME_WIDTHS.get(execution.last_known_state, "unknown"),
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


def _slice_name(slice_key) -> str:
  if not slice_key.single_slice_keys:
    return "overall"
  parts = []
  for key in slice_key.single_slice_keys:
    kind = key.WhichOneof("kind")
    value = getattr(key, kind) if kind else ""
    if isinstance(value, bytes):
      value = value.decode("utf-8", "replace")
    parts.append(f"{key.column}={value}")
  return ", ".join(parts)


def gate_failures(validation, baseline: str,
                  baseline_metrics: Dict[str, float]) -> List[str]:
  """TFMA's ValidationResult as sentences: metric, slice, values, threshold.

  Overall failures first, then by slice, in a stable order.
  """
  found = []
  for per_slice in validation.metric_validations_per_slice:
    where = _slice_name(per_slice.slice_key)
    lines = []
    for failure in per_slice.failures:
      name, value = failure.metric_key.name, failure.metric_value.double_value.value
      threshold = failure.metric_threshold
      if failure.message.strip():  # e.g. "Metric not found."
        lines.append(f"{name} ({where}): {failure.message.strip()}")
      elif failure.metric_key.is_diff:
        change = threshold.change_threshold
        if change.HasField("relative"):
          base = baseline_metrics.get(name) if where == "overall" else None
          allowed = (f"{abs(change.relative.value):.0%} of the {baseline}'s "
                     + (f"{base:.4f}" if base is not None else "value"))
        else:
          allowed = f"{abs(change.absolute.value):g}"
        lines.append(f"{name} ({where}): the student is {abs(value):.4f} worse "
                     f"than the {baseline}; allowed {allowed}")
      else:
        bound = threshold.value_threshold
        limits = []
        if bound.HasField("lower_bound"):
          limits.append(f">= {bound.lower_bound.value:g}")
        if bound.HasField("upper_bound"):
          limits.append(f"<= {bound.upper_bound.value:g}")
        lines.append(f"{name} ({where}): the student's {value:.4f} is not "
                     f"{' and '.join(limits)}")
    found += [((where != "overall", where, line), line) for line in lines]
  return [line for _, line in sorted(found)]


def _read_gate(store, execution_id: int, gate: GateResult, baseline: str,
               baseline_title: str) -> Dict[str, Dict[str, float]]:
  """Fills `gate` from its Evaluator's outputs; returns its overall metrics."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  outputs = _outputs(store, execution_id)
  blessed = _custom(outputs.get("blessing"), properties.BLESSED)
  gate.verdict = "-" if blessed is None else ("passed" if blessed else "failed")
  evaluation = outputs.get("evaluation")
  if evaluation is None:
    return {}
  metrics = _evaluator_metrics(evaluation.uri)
  validation = tfma.load_validation_result(evaluation.uri)
  # No baseline among its inputs: nothing served yet (TFX then ignores the
  # change thresholds; TFMA's rubber stamp).
  gate.no_baseline = not any(
      e.type == metadata_store_pb2.Event.INPUT and e.path.steps
      and e.path.steps[0].key == "baseline_model"
      for e in store.get_events_by_execution_ids([execution_id]))
  if not blessed:
    gate.failures = gate_failures(validation, baseline_title,
                                  metrics.get(baseline, {}))
  return metrics


def _exists(path: str) -> bool:
  if "://" in path:  # gs://, s3://: TensorFlow's filesystems
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.exists(path)
  return os.path.exists(path)


def _read_choice(model, summary: RunSummary) -> None:
  """The two students' figures and which went on, from the Distiller's record."""
  summary.student_chosen = _custom(model, properties.STUDENT_CHOSEN)
  summary.choice_metric = _custom(model, properties.CHOICE_METRIC)
  summary.validation_examples = _custom(model, properties.VALIDATION_EXAMPLES)
  for part in (properties.VALIDATION, properties.EVAL):
    for student in (properties.DISTILLED, properties.ALONE):
      for metric in TASK_METRICS.get(summary.task, ()):
        value = _custom(model, properties.figure(student, part, metric.name))
        if value is not None:
          summary.students.setdefault(part, {}).setdefault(student, {})[
              metric.name] = value
  candidates = _custom(model, properties.TEACHER_CANDIDATES)
  if candidates:
    summary.teacher_candidates = json.loads(candidates)
    summary.teacher_chosen = _custom(model, properties.TEACHER_CHOSEN)


def summarize(sqlite_path: str, pipeline_name: str,
              task: Optional[Task] = None, since_ms: Optional[int] = None
              ) -> RunSummary:
  """The newest run of `pipeline_name`: components, and teacher vs student.

  `task` picks the metrics read back; unset, the Distiller's record says it.
  `since_ms`: only a run created then or later (the one a process started);
  none yet gives a summary with no components. A push whose model is no
  longer where the Pusher put it (a cached Pusher's may be gone) is
  `pushed_missing`, not `pushed_to`. A Pusher that never ran though every
  gate that ran blessed a student trained alone was held by require_gain.
  """
  store = open_store(sqlite_path)
  runs = component_runs(store, pipeline_name, since_ms)
  by_node = {c.node_id: c for c in runs}
  run = _latest_run_context(store, pipeline_name, since_ms)
  summary = RunSummary(pipeline_name, run.name if run else "", runs,
                       ModelSide(), ModelSide(), task=task)
  ok = ("complete", "cached")
  if names.DISTILLER in by_node and by_node[names.DISTILLER].state in ok:
    model = _outputs(store, by_node[names.DISTILLER].execution_id).get("model")
    summary.teacher.params = _custom(model, properties.TEACHER_PARAMS)
    summary.student.params = _custom(model, properties.STUDENT_PARAMS)
    summary.teacher.saved_model_bytes = _custom(
        model, properties.TEACHER_SAVED_MODEL_BYTES)
    summary.student.saved_model_bytes = _custom(
        model, properties.STUDENT_SAVED_MODEL_BYTES)
    summary.agreement = _custom(model, properties.EVAL_AGREEMENT)
    summary.teachers = _custom(model, properties.TEACHERS) or 1
    counts = {kind: _custom(model, name) for kind, name in (
        ("labelled", properties.LABELLED_EXAMPLES),
        ("unlabeled", properties.UNLABELED_EXAMPLES),
        ("synthetic", properties.SYNTHETIC_EXAMPLES))}
    if counts["unlabeled"] or counts["synthetic"]:
      summary.examples = {k: v for k, v in counts.items() if v}
    if summary.task is None and _custom(model, properties.TASK):
      summary.task = Task.parse(_custom(model, properties.TASK))
    _read_choice(model, summary)
  ran = lambda node: node in by_node and by_node[node].state in ok
  fidelity = GateResult(names.FIDELITY_EVALUATOR,
                        names.GATES[names.FIDELITY_EVALUATOR])
  no_regression = GateResult(names.NO_REGRESSION_EVALUATOR,
                             names.GATES[names.NO_REGRESSION_EVALUATOR])
  if ran(names.FIDELITY_EVALUATOR):
    metrics = _read_gate(store, by_node[names.FIDELITY_EVALUATOR].execution_id,
                         fidelity, names.TEACHER, "teacher")
    summary.teacher.metrics = metrics.get(names.TEACHER, {})
    summary.student.metrics = metrics.get(names.STUDENT, {})
    summary.gates.append(fidelity)
  if ran(names.NO_REGRESSION_EVALUATOR):
    metrics = _read_gate(
        store, by_node[names.NO_REGRESSION_EVALUATOR].execution_id,
        no_regression, names.SERVING, "serving model")
    summary.serving.metrics = metrics.get(names.SERVING, {})
    summary.gates.append(no_regression)
  elif fidelity.verdict == "failed" and names.SERVING_RESOLVER in by_node:
    no_regression.verdict = "not run"  # it runs only on a faithful student
    summary.gates.append(no_regression)
  if names.DATA_GATE in by_node and by_node[names.DATA_GATE].state == "FAILED":
    validator = by_node.get("ExampleValidator")
    anomalies = validator and _outputs(store, validator.execution_id).get(
        "anomalies")
    if anomalies is not None:
      from distill_components.gates import data_validation  # pylint: disable=g-import-not-at-top
      summary.data_anomalies = data_validation.describe(
          anomalies.uri, anomalies.properties["split_names"].string_value)
  summary.held_for_no_gain = bool(
      summary.student_chosen == properties.ALONE and names.PUSHER not in by_node
      and not summary.failed and fidelity.verdict == "passed"
      and no_regression.verdict in ("passed", "-"))
  if names.PUSHER in by_node and by_node[names.PUSHER].state in ok:
    pushed = _outputs(store, by_node[names.PUSHER].execution_id).get("pushed_model")
    if _custom(pushed, properties.PUSHED):
      destination = _custom(pushed, properties.PUSHED_DESTINATION)
      if destination and not _exists(destination):
        summary.pushed_missing = destination
      else:
        summary.pushed_to = destination
  return summary


# Failures listed per gate in the console; the rest are counted.
_MAX_FAILURES = 6
# Width of the component column: the longest node id, LatestBlessedStudentResolver.
NAME_WIDTH = 30


def _fmt(value, spec: str) -> str:
  return "-" if value is None else format(value, spec)


_BIGGER = " (the student is the bigger model)"


def ratio(teacher, student, less: str, more: str) -> str:
  """'154.6x fewer'; a student bigger (or slower) than its teacher says so."""
  if not teacher or not student:
    return ""
  if student > teacher:
    return f"{student / teacher:.1f}x {more}"
  return f"{teacher / student:.1f}x {less}"


def _metrics_table(summary: RunSummary) -> str:
  """Teacher, student (and serving model) on the task's metrics, sizes and
  agreement: a rich Table, as plain text (no colour or control codes)."""
  import io  # pylint: disable=g-import-not-at-top
  from rich.console import Console  # pylint: disable=g-import-not-at-top
  from rich.table import Table  # pylint: disable=g-import-not-at-top
  t, s = summary.teacher, summary.student
  serving = summary.serving.metrics
  table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 0, 0, 2))
  table.add_column(f"task: {summary.task.value if summary.task else '-'}",
                   min_width=16, no_wrap=True)
  for name in ("teacher", "student") + (("serving",) if serving else ()):
    table.add_column(name, justify="right", min_width=10, no_wrap=True)
  table.add_column("", no_wrap=True)
  for metric in TASK_METRICS.get(summary.task, ()):
    values = [t.metrics.get(metric.name), s.metrics.get(metric.name)]
    values += [serving.get(metric.name)] if serving else []
    table.add_row(metric.title, *(_fmt(v, ".4f") for v in values), "")
  pad = [""] if serving else []
  mb = lambda b: None if b is None else b / 1e6
  table.add_row("parameters", _fmt(t.params, ",d"), _fmt(s.params, ",d"), *pad,
                ratio(t.params, s.params, "fewer", f"more{_BIGGER}"))
  table.add_row("SavedModel (MB)", _fmt(mb(t.saved_model_bytes), ".2f"),
                _fmt(mb(s.saved_model_bytes), ".2f"), *pad,
                ratio(t.saved_model_bytes, s.saved_model_bytes, "smaller",
                      f"larger{_BIGGER}"))
  if summary.agreement is not None:  # classification: same predicted class
    table.add_row("agreement", "", _fmt(summary.agreement, ".4f"), *pad, "")
  out = io.StringIO()
  Console(file=out, width=200, color_system=None, highlight=False,
          force_terminal=False).print(table)
  return "\n".join(line.rstrip() for line in out.getvalue().rstrip().splitlines())


def _metric(summary: RunSummary, name: Optional[str]):
  return next((m for m in TASK_METRICS.get(summary.task, ()) if m.name == name), None)


def choice_lines(summary: RunSummary) -> List[str]:
  """Distilled vs alone on the gate metric, what went on, the teacher chosen."""
  lines = []
  metric = _metric(summary, summary.choice_metric)
  if summary.teacher_candidates and metric:
    scores = ", ".join(
        f"{name} {values.get(metric.name, float('nan')):.4f}"
        for name, values in sorted(summary.teacher_candidates.items()))
    lines.append(f"teacher: {summary.teacher_chosen}, the best of the candidates on "
                 f"the validation cut ({metric.title}: {scores})")
  evaluated = summary.students.get(properties.EVAL, {})
  if not metric or len(evaluated) < 2:
    return lines
  distilled = evaluated[properties.DISTILLED].get(metric.name)
  alone = evaluated[properties.ALONE].get(metric.name)
  if distilled is None or alone is None:
    return lines
  lines.append(f"distilled vs alone: {metric.title} {distilled:.4f} vs {alone:.4f} "
               f"({distilled - alone:+.4f}"
               + ("" if metric.higher_is_better else ", lower is better")
               + "; eval split)")
  validation = summary.students.get(properties.VALIDATION, {})
  if summary.student_chosen == properties.ALONE:
    went_on = ("--require-gain stops the run before the Pusher"
               if summary.held_for_no_gain else "pushing the student trained alone")
    lines.append("the teacher did not help on this data: " + went_on)
  if validation:
    lines.append(
        f"  chosen on the validation cut ({summary.validation_examples or 0:,} "
        f"train rows neither student trained on): distilled "
        f"{validation[properties.DISTILLED][metric.name]:.4f}, alone "
        f"{validation[properties.ALONE][metric.name]:.4f} -> "
        f"{summary.student_chosen}")
  return lines


def render(summary: RunSummary, components: bool = True) -> str:
  """Plain-text report: component table (or, with `components=False`, when
  the console showed them live, one line), then teacher vs student."""
  total = sum(c.seconds for c in summary.components)
  if not components:
    lines = [f"Pipeline {summary.pipeline_name}, run {summary.run_id}: "
             f"{len(summary.components)} components, {total:.1f}s"]
  else:
    lines = [f"Pipeline {summary.pipeline_name}, run {summary.run_id}", "",
             f"{'component':<{NAME_WIDTH}}{'status':<10}{'seconds':>9}"]
    for c in summary.components:
      lines.append(f"{c.node_id:<{NAME_WIDTH}}{c.state:<10}{c.seconds:>9.1f}")
    lines.append(f"{'total':<{NAME_WIDTH + 10}}{total:>9.1f}")
  lines += ["", _metrics_table(summary)]
  if summary.teachers > 1:
    lines.append(f"teacher: the mean of {summary.teachers} teachers (the gate "
                 "compares with the first)")
  if summary.examples:
    lines.append("student learnt from: " + " + ".join(
        f"{n:,} {kind}" for kind, n in summary.examples.items()) + " rows")
  lines += choice_lines(summary)
  lines += ["", "gates:"]
  if summary.data_anomalies:
    lines.append("  data validation: FAILED, the examples break the schema")
    lines += [f"    - {line}" for line in summary.data_anomalies]
  for gate in summary.gates:
    verdict = gate.verdict
    if gate.verdict == "passed" and gate.no_baseline:
      verdict = "passed (no serving model yet: first run, only its bounds held)"
    elif gate.verdict == "failed" and gate.no_baseline:
      verdict = "failed (no serving model yet: on its own bounds)"
    elif gate.verdict == "not run":
      verdict = "not run (the fidelity gate failed)"
    lines.append(f"  {gate.title}: {verdict}")
    lines += [f"    - {line}" for line in gate.failures[:_MAX_FAILURES]]
    if len(gate.failures) > _MAX_FAILURES:
      lines.append(f"    - and {len(gate.failures) - _MAX_FAILURES} more")
  lines.append("blessed: " + {True: "yes", False: "no", None: "-"}[summary.blessed])
  if summary.pushed_missing:
    lines.append(f"pushed:  NOT SERVED: the pushed model at {summary.pushed_missing} "
                 "is missing (deleted since the Pusher ran); rerun with --no-cache "
                 "to push it again")
  elif summary.pushed_to:
    lines.append(f"pushed:  {summary.pushed_to}")
  elif summary.held_for_no_gain:
    lines.append("pushed:  nothing (--require-gain: the teacher did not help)")
  elif summary.stopped_by:
    lines.append(f"pushed:  nothing (stopped by the {summary.stopped_by} gate)")
  elif summary.gates or summary.failed:
    lines.append("pushed:  nothing")
  if summary.failed:
    lines.append("FAILED: " + ", ".join(summary.failed))
  return "\n".join(lines)
