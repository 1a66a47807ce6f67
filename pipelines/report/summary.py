"""What a pipeline run did, and the text `tfx-distill run` prints at the end.

`summarize` reads one run back (through `mlmd` and `evaluation`): its
component times, the teacher-vs-student outcome and the gates' verdicts;
`render` turns that into plain text (pipelines/local/console.py shows the run live).
"""

import dataclasses
import io
import json
import os
from typing import Dict, List, Optional

from distill_components.distiller import defaults
from distill_components.distiller import properties
from distill_components.distiller.tasks import Task
from distill_pipelines import mlmd
from distill_pipelines.mlmd import ComponentRun
from distill_pipelines import names
from distill_pipelines.report import evaluation


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
  scored_eval_examples: Optional[int] = None
  # The zero-code teacher's candidates: name -> metric -> value on the
  # validation cut, and the one kept.
  teacher_candidates: Dict[str, Dict[str, float]] = dataclasses.field(
      default_factory=dict)
  teacher_chosen: Optional[str] = None
  # The Pusher was skipped because the student alone went on (require_gain).
  held_for_no_gain: bool = False
  # The student for other runtimes (LiteRTExport, LiteRTEvaluator): one row
  # per model measured alike, the int8 file's kind, its gate, what was pushed.
  compression: List[Dict] = dataclasses.field(default_factory=list)
  litert_mode: Optional[str] = None
  litert_gate: Optional[GateResult] = None
  litert_metrics: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
  litert_pushed: List[str] = dataclasses.field(default_factory=list)
  litert_gate_examples: Optional[int] = None  # transformed eval rows it scored

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


# --- reading a run back ---------------------------------------------------------

_EXAMPLE_VALIDATOR = "ExampleValidator"


def _read_gate(execution: mlmd.Execution, gate: GateResult, baseline: str,
               baseline_title: str, root: str) -> Dict[str, Dict[str, float]]:
  """Fills `gate` from its Evaluator's outputs; returns its overall metrics."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  blessed = mlmd.custom(execution.output(names.BLESSING_KEY), properties.BLESSED)
  gate.verdict = "-" if blessed is None else ("passed" if blessed else "failed")
  output = execution.output(names.EVALUATION_KEY)
  if output is None:
    return {}
  uri = mlmd.local_uri(output.uri, root)
  # No baseline among its inputs: nothing served yet (TFX then ignores the
  # change thresholds; TFMA's rubber stamp), and TFMA has no baseline figures.
  gate.no_baseline = execution.input(names.BASELINE_MODEL_KEY) is None
  models = [names.STUDENT] + ([] if gate.no_baseline else [baseline])
  metrics = evaluation.overall_metrics(evaluation.load(uri, models))
  if not blessed:
    gate.failures = evaluation.gate_failures(
        tfma.load_validation_result(uri), baseline_title, metrics.get(baseline, {}))
  return metrics


def _read_distiller(model, summary: RunSummary) -> None:
  """Sizes, agreement, examples, and the two students and which went on,
  from the Distiller's record on its `model`."""
  custom = lambda name: mlmd.custom(model, name)  # pylint: disable=unnecessary-lambda-assignment
  summary.teacher.params = custom(properties.TEACHER_PARAMS)
  summary.student.params = custom(properties.STUDENT_PARAMS)
  summary.teacher.saved_model_bytes = custom(properties.TEACHER_SAVED_MODEL_BYTES)
  summary.student.saved_model_bytes = custom(properties.STUDENT_SAVED_MODEL_BYTES)
  summary.agreement = custom(properties.EVAL_AGREEMENT)
  summary.teachers = custom(properties.TEACHERS) or 1
  counts = {kind: custom(name) for kind, name in (
      ("labelled", properties.LABELLED_EXAMPLES),
      ("unlabeled", properties.UNLABELED_EXAMPLES),
      ("synthetic", properties.SYNTHETIC_EXAMPLES))}
  if counts["unlabeled"] or counts["synthetic"]:
    summary.examples = {k: v for k, v in counts.items() if v}
  if summary.task is None and custom(properties.TASK):
    summary.task = Task.parse(custom(properties.TASK))
  summary.student_chosen = custom(properties.STUDENT_CHOSEN)
  summary.choice_metric = custom(properties.CHOICE_METRIC)
  summary.validation_examples = custom(properties.VALIDATION_EXAMPLES)
  summary.scored_eval_examples = custom(properties.SCORED_EVAL_EXAMPLES)
  for part in (properties.VALIDATION, properties.EVAL):
    for student in (properties.DISTILLED, properties.ALONE):
      for metric in (summary.task.metrics if summary.task else ()):
        value = custom(properties.figure(student, part, metric.name))
        if value is not None:
          summary.students.setdefault(part, {}).setdefault(student, {})[
              metric.name] = value
  candidates = custom(properties.TEACHER_CANDIDATES)
  if candidates:
    summary.teacher_candidates = json.loads(candidates)
    summary.teacher_chosen = custom(properties.TEACHER_CHOSEN)


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
  root = os.path.dirname(os.path.abspath(sqlite_path))
  with mlmd.connect(sqlite_path) as handle:
    runs = mlmd.component_runs(handle.store, pipeline_name, since_ms)
    run = mlmd.latest_run_context(handle.store, pipeline_name, since_ms)
    by_node = {c.node_id: c for c in runs}
    data_stopped = (names.DATA_GATE in by_node
                    and by_node[names.DATA_GATE].state == "FAILED")
    read = {node: c.execution_id for node, c in by_node.items()
            if (node in (names.DISTILLER, names.FIDELITY_EVALUATOR,
                         names.NO_REGRESSION_EVALUATOR, names.PUSHER,
                         names.LITERT_EXPORT, names.LITERT_EVALUATOR)
                and c.state in mlmd.DONE)
            or (node == _EXAMPLE_VALIDATOR and data_stopped)}
    done = mlmd.executions(handle, read)
  summary = RunSummary(pipeline_name, run.name if run else "", runs,
                       ModelSide(), ModelSide(), task=task)
  if names.DISTILLER in done:
    _read_distiller(done[names.DISTILLER].output(names.MODEL_KEY), summary)
  fidelity = GateResult(names.FIDELITY_EVALUATOR,
                        names.GATES[names.FIDELITY_EVALUATOR])
  no_regression = GateResult(names.NO_REGRESSION_EVALUATOR,
                             names.GATES[names.NO_REGRESSION_EVALUATOR])
  if names.FIDELITY_EVALUATOR in done:
    metrics = _read_gate(done[names.FIDELITY_EVALUATOR], fidelity, names.TEACHER,
                         "teacher", root)
    summary.teacher.metrics = metrics.get(names.TEACHER, {})
    summary.student.metrics = metrics.get(names.STUDENT, {})
    summary.gates.append(fidelity)
  if names.NO_REGRESSION_EVALUATOR in done:
    metrics = _read_gate(done[names.NO_REGRESSION_EVALUATOR], no_regression,
                         names.SERVING, "serving model", root)
    summary.serving.metrics = metrics.get(names.SERVING, {})
    summary.gates.append(no_regression)
  elif fidelity.verdict == "failed" and names.SERVING_RESOLVER in by_node:
    no_regression.verdict = "not run"  # it runs only on a faithful student
    summary.gates.append(no_regression)
  _read_litert(done, summary, root)
  anomalies = done[_EXAMPLE_VALIDATOR].output("anomalies") if data_stopped else None
  if anomalies is not None:
    from distill_components.gates import data_validation  # pylint: disable=g-import-not-at-top
    summary.data_anomalies = data_validation.describe(anomalies.uri,
                                                      anomalies.split_names)
  summary.held_for_no_gain = bool(
      summary.student_chosen == properties.ALONE and names.PUSHER not in by_node
      and not summary.failed and fidelity.verdict == "passed"
      and no_regression.verdict in ("passed", "-"))
  pushed = (done[names.PUSHER].output(names.PUSHED_MODEL_KEY) if names.PUSHER in done
            else None)
  if mlmd.custom(pushed, properties.PUSHED):
    from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top  # gs:// too
    destination = mlmd.custom(pushed, properties.PUSHED_DESTINATION)
    if destination and not fileio.exists(destination):
      summary.pushed_missing = destination
    else:
      summary.pushed_to = destination
      litert = os.path.join(destination, LITERT_PUSHED_DIR)
      if fileio.exists(litert):
        summary.litert_pushed = sorted(n for n in fileio.listdir(litert)
                                       if n.endswith(".tflite"))
  return summary


# Where the Pusher puts the LiteRT files inside the student's version
# (distill_components.litert.executor.PUSHED_DIR).
LITERT_PUSHED_DIR = os.path.join("assets.extra", "litert")


def _read_litert(done, summary: RunSummary, root: str) -> None:
  """The compression table, the int8 file's kind and the LiteRT gate."""
  if names.LITERT_EXPORT in done:
    int8 = done[names.LITERT_EXPORT].output("litert_int8")
    table = mlmd.custom(int8, properties.COMPRESSION)
    summary.compression = json.loads(table) if table else []
    summary.litert_mode = mlmd.custom(int8, properties.LITERT_MODE)
    summary.litert_gate_examples = mlmd.custom(
        done[names.LITERT_EXPORT].output("gate_examples"), properties.GATE_EXAMPLES)
  if names.LITERT_EVALUATOR not in done:
    return
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  execution = done[names.LITERT_EVALUATOR]
  gate = GateResult(names.LITERT_EVALUATOR, "LiteRT int8 vs float32")
  blessed = mlmd.custom(execution.output(names.BLESSING_KEY), properties.BLESSED)
  gate.verdict = "-" if blessed is None else ("passed" if blessed else "failed")
  output = execution.output(names.EVALUATION_KEY)
  if output is not None:
    uri = mlmd.local_uri(output.uri, root)
    summary.litert_metrics = evaluation.overall_metrics(evaluation.load(
        uri, [names.LITERT_INT8, names.LITERT_FLOAT32]))
    if not blessed:
      gate.failures = evaluation.gate_failures(
          tfma.load_validation_result(uri), "float32 file",
          summary.litert_metrics.get(names.LITERT_FLOAT32, {}))
  summary.litert_gate = gate


# --- the text ---------------------------------------------------------------------

# Failures listed per gate in the console; the rest are counted.
_MAX_FAILURES = 6
# Width of the component column: the longest node id, LatestBlessedStudentResolver.
NAME_WIDTH = 30
_BIGGER = " (the student is the bigger model)"


def _fmt(value, spec: str) -> str:
  return "-" if value is None else format(value, spec)


def ratio(teacher, student, less: str, more: str) -> str:
  """'154.6x fewer'; a student bigger (or slower) than its teacher says so."""
  if not teacher or not student:
    return ""
  if student > teacher:
    return f"{student / teacher:.1f}x {more}"
  return f"{teacher / student:.1f}x {less}"


def _plain(table) -> List[str]:
  """A rich Table as plain text lines: no colour, no control codes, no
  trailing spaces."""
  from rich.console import Console  # pylint: disable=g-import-not-at-top
  out = io.StringIO()
  Console(file=out, width=200, color_system=None, highlight=False,
          force_terminal=False).print(table)
  return [line.rstrip() for line in out.getvalue().rstrip().splitlines()]


def _components_table(summary: RunSummary) -> List[str]:
  """Each component's state and seconds, and the total."""
  from rich.table import Table  # pylint: disable=g-import-not-at-top
  table = Table(box=None, pad_edge=False, show_edge=False, padding=0)
  table.add_column("component", min_width=NAME_WIDTH, no_wrap=True)
  table.add_column("status", min_width=10, no_wrap=True)
  table.add_column("seconds", justify="right", min_width=9, no_wrap=True)
  for c in summary.components:
    table.add_row(c.node_id, c.state, f"{c.seconds:.1f}")
  table.add_row("total", "", f"{sum(c.seconds for c in summary.components):.1f}")
  return _plain(table)


def _metrics_table(summary: RunSummary) -> List[str]:
  """Teacher, student (and serving model) on the task's metrics, sizes and
  agreement."""
  from rich.table import Table  # pylint: disable=g-import-not-at-top
  t, s = summary.teacher, summary.student
  serving = summary.serving.metrics
  table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 0, 0, 2))
  table.add_column(f"task: {summary.task.value if summary.task else '-'}",
                   min_width=16, no_wrap=True)
  for name in ("teacher", "student") + (("serving",) if serving else ()):
    table.add_column(name, justify="right", min_width=10, no_wrap=True)
  table.add_column("", no_wrap=True)
  for metric in (summary.task.metrics if summary.task else ()):
    values = [t.metrics.get(metric.name), s.metrics.get(metric.name)]
    values += [serving.get(metric.name)] if serving else []
    table.add_row(metric.title, *(_fmt(v, ".4f") for v in values), "")
  pad = [""] if serving else []
  mb = lambda b: None if b is None else b / 1e6  # pylint: disable=unnecessary-lambda-assignment
  table.add_row("parameters", _fmt(t.params, ",d"), _fmt(s.params, ",d"), *pad,
                ratio(t.params, s.params, "fewer", f"more{_BIGGER}"))
  table.add_row("SavedModel (MB)", _fmt(mb(t.saved_model_bytes), ".2f"),
                _fmt(mb(s.saved_model_bytes), ".2f"), *pad,
                ratio(t.saved_model_bytes, s.saved_model_bytes, "smaller",
                      f"larger{_BIGGER}"))
  if summary.agreement is not None:  # classification: same predicted class
    table.add_row("agreement", "", _fmt(summary.agreement, ".4f"), *pad, "")
  return _plain(table)


_RUNTIME_TITLES = {"teacher": "teacher SavedModel", "student": "student SavedModel",
                   "litert_float32": "student LiteRT float32",
                   "litert_int8": "student LiteRT int8"}


def runtimes_rows(summary: RunSummary) -> List[List[str]]:
  """The compression table as text cells: model, file KB, own KB (without
  the Transform), parameters, ms at batch 1 and at the largest batch."""
  rows = []
  for row in summary.compression:
    ms = {int(k): v for k, v in row.get("latency_ms", {}).items()}
    kb = lambda b: None if b is None else b / 1e3  # pylint: disable=unnecessary-lambda-assignment
    rows.append([_RUNTIME_TITLES.get(row["model"], row["model"]),
                 _fmt(kb(row.get("file_bytes")), ",.1f"),
                 _fmt(kb(row.get("own_bytes")), ",.1f"),
                 _fmt(row.get("params"), ",d"),
                 _fmt(ms.get(1), ".3f"), _fmt(ms.get(max(ms), None) if ms else None, ".3f")])
  return rows


def _runtimes_table(summary: RunSummary) -> List[str]:
  """Teacher, student SavedModel and LiteRT files, measured alike, and what
  the int8 file buys against the teacher."""
  from rich.table import Table  # pylint: disable=g-import-not-at-top
  if not summary.compression:
    return []
  batches = sorted({int(k) for r in summary.compression for k in r.get("latency_ms", {})})
  table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 0, 0, 2))
  for title, justify in (("runtimes", "left"), ("file KB", "right"),
                         ("own KB", "right"), ("parameters", "right"),
                         ("ms @1", "right"), (f"ms @{batches[-1] if batches else '-'}",
                                              "right")):
    table.add_column(title, justify=justify, no_wrap=True)
  for cells in runtimes_rows(summary):
    table.add_row(*cells)
  line = runtimes_line(summary)
  return _plain(table) + ([line] if line else [])


def runtimes_line(summary: RunSummary) -> str:
  """What the int8 file buys against the teacher, from this run's figures."""
  by = {r["model"]: r for r in summary.compression}
  teacher, int8 = by.get("teacher"), by.get("litert_int8")
  if not teacher or not int8:
    return ""
  t_ms, s_ms = teacher.get("latency_ms", {}), int8.get("latency_ms", {})
  speed = ratio(t_ms.get("1"), s_ms.get("1"), "faster", "slower")
  return (f"int8 student vs teacher: "
          f"{ratio(teacher['file_bytes'], int8['file_bytes'], 'smaller', 'larger')} file"
          + (f", {speed} at batch 1 (features computed; teacher in graph)" if speed else "")
          + f"; int8 kind: {summary.litert_mode}")


def _metric(summary: RunSummary, name: Optional[str]):
  return summary.task.metric(name) if summary.task and name else None


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
               + "; " + eval_rows(summary) + ")")
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


def eval_rows(summary: RunSummary) -> str:
  """'eval split', or 'eval split, first N rows' when the Distiller scored
  the students on no more (defaults.SCORED_ROWS)."""
  scored = summary.scored_eval_examples
  if scored is not None and scored >= defaults.SCORED_ROWS:
    return f"eval split, first {scored:,} rows"
  return "eval split"


def litert_figures(summary: RunSummary) -> str:
  """' (AUC 0.9466 vs 0.9470)': the gate metric of the int8 and float32 files."""
  metric = _metric(summary, summary.choice_metric) or (
      summary.task.metrics[0] if summary.task else None)
  int8 = summary.litert_metrics.get(names.LITERT_INT8, {}).get(metric.name) if metric else None
  base = summary.litert_metrics.get(names.LITERT_FLOAT32, {}).get(metric.name) if metric else None
  if int8 is None or base is None:
    return ""
  return f" ({metric.title} {int8:.4f} vs {base:.4f})"


def _gate_lines(summary: RunSummary) -> List[str]:
  lines = ["gates:"]
  if summary.data_anomalies:
    lines.append("  data validation: FAILED, the examples break the schema")
    lines += [f"    - {line}" for line in summary.data_anomalies]
  for gate in summary.gates + ([summary.litert_gate] if summary.litert_gate else []):
    verdict = gate.verdict
    if gate.verdict == "passed" and gate.no_baseline:
      verdict = "passed (no serving model yet: first run, only its bounds held)"
    elif gate.verdict == "failed" and gate.no_baseline:
      verdict = "failed (no serving model yet: on its own bounds)"
    elif gate.verdict == "not run":
      verdict = "not run (the fidelity gate failed)"
    if gate is summary.litert_gate:
      verdict += litert_figures(summary)
    lines.append(f"  {gate.title}: {verdict}")
    lines += [f"    - {line}" for line in gate.failures[:_MAX_FAILURES]]
    if len(gate.failures) > _MAX_FAILURES:
      lines.append(f"    - and {len(gate.failures) - _MAX_FAILURES} more")
  lines.append("blessed: " + {True: "yes", False: "no", None: "-"}[summary.blessed])
  gate = summary.litert_gate
  if gate and gate.verdict == "failed":
    lines.append("  (the LiteRT gate holds back only the int8 file; the student "
                 "SavedModel goes on)")
  return lines


def _push_line(summary: RunSummary) -> Optional[str]:
  if summary.pushed_missing:
    return (f"pushed:  NOT SERVED: the pushed model at {summary.pushed_missing} "
            "is missing (deleted since the Pusher ran); rerun with --no-cache "
            "to push it again")
  if summary.pushed_to:
    return f"pushed:  {summary.pushed_to}" + (
        f" (with {', '.join(summary.litert_pushed)} in {LITERT_PUSHED_DIR}/)"
        if summary.litert_pushed else "")
  if summary.held_for_no_gain:
    return "pushed:  nothing (--require-gain: the teacher did not help)"
  if summary.stopped_by:
    return f"pushed:  nothing (stopped by the {summary.stopped_by} gate)"
  if summary.gates or summary.failed:
    return "pushed:  nothing"
  return None


def render(summary: RunSummary, components: bool = True) -> str:
  """Plain-text report: component table (or, with `components=False`, when
  the console showed them live, one line), then teacher vs student."""
  if not components:
    total = sum(c.seconds for c in summary.components)
    lines = [f"Pipeline {summary.pipeline_name}, run {summary.run_id}: "
             f"{len(summary.components)} components, {total:.1f}s"]
  else:
    lines = [f"Pipeline {summary.pipeline_name}, run {summary.run_id}", "",
             *_components_table(summary)]
  lines += ["", *_metrics_table(summary)]
  if summary.teachers > 1:
    lines.append(f"teacher: the mean of {summary.teachers} teachers (the gate "
                 "compares with the first)")
  if summary.examples:
    lines.append("student learnt from: " + " + ".join(
        f"{n:,} {kind}" for kind, n in summary.examples.items()) + " rows")
  lines += choice_lines(summary)
  runtimes = _runtimes_table(summary)
  if runtimes:
    lines += ["", *runtimes]
  lines += ["", *_gate_lines(summary)]
  push = _push_line(summary)
  if push:
    lines.append(push)
  if summary.failed:
    lines.append("FAILED: " + ", ".join(summary.failed))
  return "\n".join(lines)
