"""report.html: how one pipeline run went, on one self-contained page.

`write(sqlite_path, pipeline_name, out_path)` reads the newest run back
(`summary.summarize`, then `page.read`) and renders `templates/page.html.j2`
with jinja2: plots inline as base64 PNG, CSS inline, no script and no
external asset, so it opens from a mail or a ticket as it opens from the
pipeline root. Sections, in order:

- the verdict: run id, task, blessed and pushed where, or stopped by which
  gate (or by data validation, or a failed component);
- teacher vs student, and the serving model when the no-regression gate ran,
  on the task's metrics overall and on every slice TFMA computed, each cell
  keeping TFMA's exact value in its `data-value` attribute;
- the distilled student against the same student trained alone;
- the task's plot: calibration (binary), confusion matrix (multi-class), or
  predictions and residuals (regression: TFMA keeps no per-example
  predictions, so both models are called here);
- the student's training curves, from the TensorBoard events of its run;
- parameters and SavedModel size (the Distiller's record) and the serving
  latency of teacher and student, timed here (distill_components.measure);
- each gate's verdict, its thresholds with which held, TFMA's failures as
  sentences; the components' times.

The Python here only chooses what each section says; the markup is in the
templates. To look at a page as a browser shows it (Debian's `chromium`):

    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \\
        --screenshot=docs/report.png --window-size=1280,2400 \\
        file://$PWD/DIR/report.html
"""

import html
import math
import os
from typing import List, Optional, Tuple

import jinja2
import markupsafe

from distill_components.distiller.tasks import Metric
from distill_components.distiller.tasks import Task
from distill_components import measure
from distill_pipelines import names
from distill_pipelines.report import evaluation
from distill_pipelines.report import figures
from distill_pipelines.report import summary as summary_lib
from distill_pipelines.report.page import Page
from distill_pipelines.report.page import read

# Section titles: the page's headings, in order (the tests look for them).
SECTIONS = {
    "metrics": "Teacher vs student",
    "worth": "Distilled vs the same student alone",
    "plot": {Task.BINARY: "Calibration", Task.MULTICLASS: "Confusion matrix",
             Task.REGRESSION: "Predictions vs labels", None: "Task plot"},
    "curves": "Student training curves",
    "size": "Size and serving latency",
    "gates": "Gates",
    "components": "Components",
}
NO_CURVES = "No training curves recorded"
NOT_AVAILABLE = "not available"
_MODELS = (names.TEACHER, names.STUDENT, names.SERVING)


def _escaped(value):
  """Every {{ value }} as `html.escape` writes it (&#x27; for a quote), the
  entities the page has always had; the templates' own markup passes."""
  if isinstance(value, markupsafe.Markup):
    return value
  return markupsafe.Markup(html.escape(str(value), quote=True))


def fmt(value: Optional[float], digits: int = 4) -> str:
  if value is None:
    return "-"
  if math.isnan(value):
    return "NaN"
  return f"{value:.{digits}f}"


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("distill_pipelines.report", "templates"),
    autoescape=jinja2.select_autoescape(["html.j2"]), finalize=_escaped,
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined)
# fmt: a figure rounded ("-" when absent); num: Python's format spec;
# exact: a float as Python writes it back (the cells' data-value).
_ENVIRONMENT.filters.update(fmt=fmt, num=format, exact=repr)


# --- what each section says --------------------------------------------------------

def _verdict(s: summary_lib.RunSummary) -> Tuple[str, str]:
  """The verdict line and its colour ("ok", "bad", "none")."""
  if s.pushed_missing:
    return (f"Not served: the pushed model at {s.pushed_missing} is missing; "
            "rerun with --no-cache to push it again", "bad")
  if s.pushed_to:
    return f"Blessed by every gate and pushed to {s.pushed_to}", "ok"
  if s.held_for_no_gain:
    return ("Not pushed: --require-gain, and the student trained alone beat the "
            "distilled one", "bad")
  if s.stopped_by == "data validation":
    return "Not pushed: stopped by data validation (the DataGate)", "bad"
  if s.stopped_by:
    return f"Not pushed: stopped by the {s.stopped_by} gate", "bad"
  if s.failed:
    return f"Failed: {', '.join(s.failed)}", "bad"
  if s.blessed:
    return "Blessed by every gate; nothing pushed", "none"
  return "No gate ran: nothing pushed", "none"


def _facts(page: Page) -> List[Tuple[str, str]]:
  """The Distiller's record under the verdict, as text."""
  facts = dict(page.distillation)
  if page.summary.agreement is not None:
    facts.setdefault("agreement with the teacher (eval)", page.summary.agreement)
  shown = []
  for label, value in facts.items():
    if "cached" in label:
      value = "yes" if value else "no"
    elif isinstance(value, float):
      value = f"{value:.4f}" if "agreement" in label else f"{value:g}"
    shown.append((label, str(value)))
  return shown


def _task_metrics(page: Page) -> List[Metric]:
  metrics = list(page.summary.task.metrics if page.summary.task else ())
  if metrics:
    return metrics
  found = sorted({m for by_slice in page.metrics.values()
                  for values in by_slice.values() for m in values
                  if "/" not in m and m != "example_count"})
  return [Metric(n, n, n, True, gateable=False) for n in found]


def _worse(metric: Metric, student: Optional[float], teacher: Optional[float]) -> bool:
  if student is None or teacher is None or not metric.gateable:
    return False
  if math.isnan(student) or math.isnan(teacher) or fmt(student) == fmt(teacher):
    return False  # a difference the page does not show is not flagged
  return student < teacher if metric.higher_is_better else student > teacher


def _slice_rows(page: Page, models: List[str], metrics: List[Metric]) -> List[dict]:
  """Per slice: its example count and each (metric, model) cell."""
  rows = []
  slices = sorted({name for m in models for name in page.metrics[m]},
                  key=evaluation.slice_order)
  for where in slices:
    values = {m: page.metrics[m].get(where, {}) for m in models}
    count = next((values[m].get("example_count") for m in _MODELS
                  if m in values and values[m].get("example_count") is not None), None)
    cells = []
    for metric in metrics:
      for i, model in enumerate(models):
        value = values[model].get(metric.name)
        worse = model == names.STUDENT and _worse(
            metric, value, values.get(names.TEACHER, {}).get(metric.name))
        cells.append(dict(model=model, metric=metric.name, value=value,
                          first=not i, worse=worse))
    rows.append(dict(where=where, count=count, cells=cells))
  return rows


def _class_id(key: str) -> int:
  digits = key.split("/")[0].rpartition(":")[2]
  return int(digits) if digits.lstrip("-").isdigit() else 0


def _per_class(page: Page, models: List[str]) -> Optional[dict]:
  """Multi-class: TFMA's one-vs-rest figures per class, overall."""
  keys = sorted({k for m in models for k in page.metrics[m].get(evaluation.OVERALL, {})
                 if "/" in k}, key=lambda k: (k.split("/")[1], _class_id(k)))
  if not keys:
    return None
  return dict(classes=sorted({k.split("/")[0] for k in keys}, key=_class_id),
              measures=sorted({k.split("/")[1] for k in keys}))


def _metrics(page: Page) -> dict:
  s = page.summary
  models = [m for m in _MODELS if page.metrics.get(m)]
  metrics = _task_metrics(page)
  # No TFMA result to read: what the summary kept (overall only), if any.
  sides = {k: v for k, v in ((names.TEACHER, s.teacher.metrics),
                             (names.STUDENT, s.student.metrics),
                             (names.SERVING, s.serving.metrics)) if v}
  return dict(models=models, metrics=metrics, sides=sides,
              rows=_slice_rows(page, models, metrics) if models else [],
              per_class=_per_class(page, models) if models else None)


def _worth(page: Page) -> dict:
  s = page.summary
  metrics = _task_metrics(page)
  return dict(metrics=metrics, lines=[line for line in summary_lib.choice_lines(s)
                                      if not line.startswith("  ")],
              eval_rows=summary_lib.eval_rows(s))


def _plot(page: Page) -> dict:
  task = page.summary.task
  if not page.plots:
    return dict(kind="none")
  if "MultiClassConfusionMatrixPlot" in task.plots:
    return dict(kind="confusion", image=figures.confusion_figure(page.plots))
  image = figures.calibration_figure(page.plots, task)
  if image:
    # The plotted points as figures: per range, examples and both means.
    models = [m for m in _MODELS if m in page.plots]
    bins = {m: figures.model_bins(page.plots[m], keep_empty=True) for m in models}
    rows = []
    for i in range(figures.CALIBRATION_BINS if any(bins.values()) else 0):
      ranges = [bins[m][i][3] for m in models if bins[m]]
      rows.append(dict(range=ranges[0] if ranges else "", cells=[
          bins[m][i][:3] if bins[m] else (0, None, None) for m in models]))
    return dict(kind="calibration", image=image, models=models, rows=rows,
                bin_count=figures.CALIBRATION_BINS,
                label="positives" if task is Task.BINARY else "mean label")
  if task is Task.REGRESSION:
    residuals = []
    for model in (names.TEACHER, names.STUDENT):
      if page.predictions.get(model):
        labels, predicted = page.predictions[model]
        errors = [p - y for p, y in zip(predicted, labels)]
        residuals.append((model, len(errors), sum(errors) / len(errors),
                          sum(abs(e) for e in errors) / len(errors)))
    return dict(kind="residuals", image=figures.residual_figure(page.predictions),
                residuals=residuals)
  return dict(kind="no calibration")


def _size(page: Page) -> dict:
  s = page.summary
  batches = sorted({b for lat in page.latency.values() for b in lat.ms}) or list(
      measure.LATENCY_BATCHES)
  unread = measure.Latency(note="no model read for this run")
  rows = []
  for label, side in ((names.TEACHER, s.teacher), (names.STUDENT, s.student)):
    latency = page.latency.get(label, unread)
    rows.append(dict(label=label, side=side, latency=latency,
                     mb=side.saved_model_bytes / 1e6 if side.saved_model_bytes else None))
  ms = lambda label, b: page.latency.get(label, measure.Latency()).ms.get(b)  # pylint: disable=unnecessary-lambda-assignment
  ratios = [summary_lib.ratio(s.teacher.params, s.student.params, "fewer", "more"),
            summary_lib.ratio(s.teacher.saved_model_bytes, s.student.saved_model_bytes,
                              "smaller", "larger")]
  ratios += [summary_lib.ratio(ms(names.TEACHER, b), ms(names.STUDENT, b), "faster",
                               "slower") for b in batches]
  return dict(batches=batches, rows=rows, ratios=ratios,
              calls=measure.LATENCY_CALLS, runtimes=summary_lib.runtimes_rows(s),
              runtimes_line=summary_lib.runtimes_line(s), litert_mode=s.litert_mode,
              litert_pushed=s.litert_pushed)


# --- the page -------------------------------------------------------------------------

def render(page: Page) -> str:
  """The page's HTML, from what `read` gathered (or a bare summary)."""
  s = page.summary
  verdict, kind = _verdict(s)
  # Each section's view, in the page's order; its template is <key>.html.j2.
  views = {"metrics": _metrics(page), "worth": _worth(page), "plot": _plot(page),
           "curves": figures.curves_figure(page.curves), "size": _size(page),
           "gates": {"litert": summary_lib.litert_figures(s).strip(" ()")},
           "components": None}
  sections = [(key, SECTIONS["plot"].get(s.task, SECTIONS["plot"][None])
               if key == "plot" else SECTIONS[key], views[key]) for key in SECTIONS]
  return _ENVIRONMENT.get_template("page.html.j2").render(
      s=s, page=page, sections=sections, verdict=verdict, verdict_kind=kind,
      total=sum(c.seconds for c in s.components), facts=_facts(page),
      curve_names=figures.CURVES, NA=NOT_AVAILABLE, NO_CURVES=NO_CURVES,
      OVERALL=evaluation.OVERALL, SERVING=names.SERVING)


def write(sqlite_path: str, pipeline_name: str, out_path: str,
          summary: Optional[summary_lib.RunSummary] = None) -> str:
  """Writes the newest run's report.html at `out_path`; returns the path.

  `summary`: the run's `summarize` if the caller has it (it is read
  otherwise). A run that stopped early gets a page too, with placeholders.
  """
  if summary is None:
    summary = summary_lib.summarize(sqlite_path, pipeline_name)
  text = render(read(sqlite_path, summary))
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  with open(out_path, "w", encoding="utf-8") as f:
    f.write(text)
  return out_path


__all__ = ["NO_CURVES", "NOT_AVAILABLE", "Page", "SECTIONS", "read", "render", "write"]
