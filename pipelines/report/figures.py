"""report.html's plots, drawn with matplotlib (Agg, no pyplot state).

Each figure comes back as base64 PNG for an inline <img> (None when there
is nothing to draw): the calibration plot from TFMA's calibration histogram
(binary), the confusion matrices from TFMA's MultiClassConfusionMatrixPlot
(multi-class), the residuals of both models (regression), and the student's
training curves, read from the TensorBoard events under the Distiller's
`model_run` with `tf.compat.v1.train.summary_iterator`.
"""

import base64
import glob
import io
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

from distill_components.distiller.tasks import Task
from distill_pipelines import names
from distill_pipelines.report.evaluation import number

# The curves drawn, in order, whatever prefix Keras gives them.
CURVES = ("loss", "soft_loss", "hard_loss", "agreement")
# Calibration plot: TFMA's histogram buckets (1,000 by default) merged into this many.
CALIBRATION_BINS = 10
_COLORS = {names.TEACHER: "#4c72b0", names.STUDENT: "#dd8452", names.SERVING: "#55a868"}

Curves = Dict[str, Dict[str, List[Tuple[int, float]]]]
Predictions = Dict[str, Tuple[List[float], List[float]]]


# --- training curves, from TensorBoard events ---------------------------------------

def _scalar(value) -> Optional[float]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  kind = value.WhichOneof("value")
  if kind == "simple_value":
    return float(value.simple_value)
  if kind == "tensor":
    array = tf.make_ndarray(value.tensor)
    return float(array) if array.size == 1 and array.dtype.kind in "fiu" else None
  return None


def _curve_name(tag: str) -> Tuple[str, int]:
  """A summary tag -> (scalar name, preference: lower wins).

  The Distiller's own loop writes `loss`; Keras' TensorBoard callback writes
  `batch_loss` every `update_freq` steps, `epoch_loss` per epoch and, for
  validation, `evaluation_loss_vs_iterations`.
  """
  if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
    return tag[len("evaluation_"):-len("_vs_iterations")], 1
  if tag.startswith("batch_"):
    return tag[len("batch_"):], 1
  if tag.startswith("epoch_"):
    return tag[len("epoch_"):], 2
  return tag, 0


def training_curves(model_run_uri: Optional[str]) -> Curves:
  """name -> series ("train", "eval") -> [(step, value)] from the event files
  under `model_run_uri`; Keras' `validation` directory is the "eval" series."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not model_run_uri or not os.path.isdir(model_run_uri):
    return {}
  # (name, series) -> preference -> step -> value; the most frequent form of a
  # curve wins (the per-step one over the per-epoch one).
  found: Dict[Tuple[str, str], Dict[int, Dict[int, float]]] = {}
  for path in sorted(glob.glob(os.path.join(model_run_uri, "**", "*tfevents*"),
                               recursive=True)):
    parts = os.path.relpath(path, model_run_uri).split(os.sep)
    series = "eval" if any(p in ("validation", "eval") for p in parts[:-1]) else "train"
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        name, preference = _curve_name(value.tag)
        if name not in CURVES:
          continue
        scalar = _scalar(value)
        if scalar is not None:
          found.setdefault((name, series), {}).setdefault(preference, {})[
              int(event.step)] = scalar
  curves: Curves = {}
  for (name, series), by_preference in found.items():
    points = by_preference[min(by_preference)]
    curves.setdefault(name, {})[series] = sorted(points.items())
  return curves


# --- TFMA's plot data -----------------------------------------------------------------

def calibration_bins(buckets: Sequence[dict], bins: int = CALIBRATION_BINS,
                     keep_empty: bool = False) -> List[Tuple[float, float, float, str]]:
  """TFMA's calibration histogram merged into `bins` equal ranges of the
  prediction: [(examples, mean prediction, mean label, "0.1-0.2")], empty
  ranges left out unless `keep_empty`. TFMA omits zero fields, and its
  first and last buckets are open."""
  edges = [number(b.get(k, 0.0)) for b in buckets
           for k in ("lowerThresholdInclusive", "upperThresholdExclusive")]
  finite = [e for e in edges if e is not None and math.isfinite(e)]
  if not finite:
    return []
  low, high = min(finite), max(finite)
  width = (high - low) / bins or 1.0
  sums = [[0.0, 0.0, 0.0] for _ in range(bins)]
  for b in buckets:
    count = number(b.get("numWeightedExamples", 0.0)) or 0.0
    if not count:
      continue
    lower = number(b.get("lowerThresholdInclusive", 0.0))
    # The epsilon keeps a bucket starting on an edge (0.3 / 0.1 = 2.999...) in
    # the range it starts.
    index = (0 if lower is None or not math.isfinite(lower)
             else math.floor((lower - low) / width + 1e-9))
    entry = sums[max(0, min(index, bins - 1))]
    entry[0] += count
    entry[1] += number(b.get("totalWeightedRefinedPrediction", 0.0)) or 0.0
    entry[2] += number(b.get("totalWeightedLabel", 0.0)) or 0.0
  edge = lambda i: f"{low + i * width:.3g}"  # pylint: disable=unnecessary-lambda-assignment
  return [(n, p / n if n else 0.0, y / n if n else 0.0, f"{edge(i)}-{edge(i + 1)}")
          for i, (n, p, y) in enumerate(sums) if n or keep_empty]


def model_bins(plot: dict, keep_empty: bool = False):
  """`calibration_bins` of one model's overall plot data."""
  return calibration_bins(plot.get("calibrationHistogramBuckets", {}).get("buckets", []),
                          keep_empty=keep_empty)


def confusion_counts(plot: dict) -> Tuple[List[int], List[List[float]]]:
  """TFMA's MultiClassConfusionMatrixPlot -> (class ids, counts[true][pred]).

  Class id -1 is "no prediction" (no class above the threshold)."""
  matrices = plot.get("multiClassConfusionMatrixAtThresholds", {}).get("matrices", [])
  entries = matrices[0].get("entries", []) if matrices else []
  actual = lambda e: int(e.get("actualClassId", 0))  # pylint: disable=unnecessary-lambda-assignment
  predicted = lambda e: int(e.get("predictedClassId", 0))  # pylint: disable=unnecessary-lambda-assignment
  classes = sorted({actual(e) for e in entries} | {predicted(e) for e in entries})
  index = {c: i for i, c in enumerate(classes)}
  counts = [[0.0] * len(classes) for _ in classes]
  for e in entries:
    counts[index[actual(e)]][index[predicted(e)]] += number(
        e.get("numWeightedExamples", 0.0)) or 0.0
  return classes, counts


# --- the figures ------------------------------------------------------------------------

def _png(figure) -> str:
  """A matplotlib Figure as base64 PNG."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  return base64.b64encode(buffer.getvalue()).decode("ascii")


def calibration_figure(plots: Dict[str, dict], task: Optional[Task]) -> Optional[str]:
  """Mean label against mean prediction per range of the prediction, per
  model, over the share of examples in each range."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  series = {label: model_bins(data) for label, data in plots.items()}
  series = {label: points for label, points in series.items() if points}
  if not series:
    return None
  figure = Figure(figsize=(6.0, 4.9))
  top, bottom = figure.subplots(2, 1, sharex=True,
                                gridspec_kw={"height_ratios": [3, 1]})
  values = [v for points in series.values() for _, p, y, _ in points for v in (p, y)]
  low, high = min(values + [0.0]), max(values + [1.0])
  top.plot([low, high], [low, high], color="#999", linestyle="--", linewidth=1,
           label="perfectly calibrated")
  for label, points in series.items():
    total = sum(n for n, _, _, _ in points)
    predicted = [p for _, p, _, _ in points]
    top.plot(predicted, [y for _, _, y, _ in points], marker="o", label=label,
             color=_COLORS.get(label))
    bottom.plot(predicted, [n / total for n, _, _, _ in points], marker=".",
                color=_COLORS.get(label))
  binary = task is Task.BINARY
  top.set_ylabel("fraction of positives" if binary else "mean label")
  top.set_title(f"{CALIBRATION_BINS} ranges of the prediction, eval split, "
                "overall", fontsize=10)
  top.legend(loc="upper left", fontsize=9)
  top.grid(alpha=0.3)
  bottom.set_yscale("log")
  bottom.set_ylabel("share of\nexamples")
  bottom.set_xlabel("mean predicted probability" if binary else "mean prediction")
  bottom.grid(alpha=0.3)
  return _png(figure)


def confusion_figure(plots: Dict[str, dict]) -> Optional[str]:
  """Student and teacher side by side: counts, shaded by the share of each
  true class (so recall reads along the diagonal)."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  shown = [(label, *confusion_counts(plots[label]))
           for label in (names.STUDENT, names.TEACHER) if label in plots]
  shown = [s for s in shown if s[1]]
  if not shown:
    return None
  size = max(len(classes) for _, classes, _ in shown)
  side = min(3.6 + 0.2 * size, 6.0)
  figure = Figure(figsize=(side * len(shown), side * 0.9))
  axes = figure.subplots(1, len(shown), squeeze=False)[0]
  for axis, (label, classes, counts) in zip(axes, shown):
    shares = [[c / (sum(row) or 1.0) for c in row] for row in counts]
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if len(classes) <= 15:
      for i, row in enumerate(counts):
        for j, value in enumerate(row):
          axis.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if shares[i][j] > 0.6 else "black")
    ticks = ["none" if c == -1 else str(c) for c in classes]
    axis.set_xticks(range(len(classes)), ticks)
    axis.set_yticks(range(len(classes)), ticks)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.set_title(label)
  figure.tight_layout()
  return _png(figure)


def residual_figure(predictions: Predictions) -> Optional[str]:
  """Per model: prediction against label, and the residual (prediction -
  label) against the label, so a bias over part of the range shows."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  shown = [(m, *predictions[m]) for m in (names.TEACHER, names.STUDENT)
           if predictions.get(m)]
  if not shown:
    return None
  figure = Figure(figsize=(10.0, 4.2))
  scatter, residual = figure.subplots(1, 2)
  values = [v for _, labels, predicted in shown for v in (*labels, *predicted)]
  low, high = min(values), max(values)
  scatter.plot([low, high], [low, high], color="#999", linestyle="--", linewidth=1,
               label="prediction = label")
  residual.axhline(0.0, color="#999", linestyle="--", linewidth=1)
  for model, labels, predicted in shown:
    style = dict(s=6, alpha=0.35, color=_COLORS.get(model), label=model)
    scatter.scatter(labels, predicted, **style)
    residual.scatter(labels, [p - y for p, y in zip(predicted, labels)], **style)
  scatter.set_xlabel("label (transformed)")
  scatter.set_ylabel("prediction")
  residual.set_xlabel("label (transformed)")
  residual.set_ylabel("prediction - label")
  for axis in (scatter, residual):
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", markerscale=2)
  figure.suptitle(f"first {len(shown[0][1]):,} eval examples", fontsize=10)
  figure.tight_layout()
  return _png(figure)


def curves_figure(curves: Curves) -> Optional[str]:
  """The curves side by side (they share the step axis); eval dashed."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  shown = [name for name in CURVES if curves.get(name)]
  if not shown:
    return None
  figure = Figure(figsize=(3.3 * len(shown), 2.8))
  axes = figure.subplots(1, len(shown), squeeze=False).ravel()
  for axis, name in zip(axes, shown):
    for series, points in sorted(curves[name].items(), reverse=True):
      steps, values = zip(*points)
      axis.plot(steps, values, marker="." if len(points) < 30 else None,
                linestyle="-" if series == "train" else "--", label=series,
                color="#dd8452" if series == "train" else "#4c72b0")
    axis.set_title(name.replace("_", " "), fontsize=10)
    axis.set_xlabel("step")
    axis.grid(alpha=0.3)
    if len(curves[name]) > 1:
      axis.legend(fontsize=8)
  figure.tight_layout()
  return _png(figure)
