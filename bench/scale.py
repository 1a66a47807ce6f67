"""Pipeline wall time and peak memory as the data grows, against stock TFX.

    .venv/bin/python bench/scale.py [--rows 15002 150000 1000000] [--stock]
        [--beam-arg A ...] [--run-arg A ...]

For each size it writes taxi-like data with bench/taxi_synth.py (the embedded
CSV is the first size, as it ships; the larger ones draw every label afresh,
so eval rows are not copies of train rows), then runs our pipeline on it with
`tfx-distill run` (its defaults, gate bounds included; no cache) in a fresh
pipeline root, and with `--stock` the stock TFX taxi pipeline (bench/stock.py)
on the same rows with the same Beam arguments; each in a subprocess, and
samples the resident memory of that process and all its children (TFX's pip
installs) every 0.2 s. Training steps are fixed, so only the data-bound
components should grow with the rows. Reports wall time, the per-component
times from MLMD and their cost per million rows (least squares over the
sizes), peak RSS (overall and while each component ran), teacher and student
AUC beside the generator's ceiling, ours / stock, and writes scale.json,
scale.md and scale.png, after every size. The pipeline roots are kept
(bench/work/scale/<rows>/): bench/labelling.py reads them.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Dict, List

import psutil

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
import stock  # pylint: disable=g-bad-import-order  # bench/stock.py
import taxi_synth  # pylint: disable=g-bad-import-order  # bench/taxi_synth.py
from distill_pipelines import report
from distill_pipelines import settings as settings_lib
from distill_pipelines.taxi import config as configs
from distill_pipelines.taxi import raw_data

NAME = "scale"
# The components whose time and memory the tables show: the data-bound ones,
# the teacher's Trainer and the Distiller.
_DATA_BOUND = ("CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Distiller",
               "FidelityEvaluator", "NoRegressionEvaluator")


def _tree_rss(process: psutil.Process) -> int:
  total = 0
  for p in [process, *process.children(recursive=True)]:
    try:
      total += p.memory_info().rss
    except psutil.Error:  # exited between listing and reading
      pass
  return total


def run_measured(command: List[str], log_path: str, ok=(0,)) -> Dict[str, object]:
  """Runs `command`; returns its wall seconds, the peak RSS of its process
  tree, the (epoch seconds, RSS bytes) samples and its exit code (one of
  `ok`, else it fails)."""
  samples = []
  with open(log_path, "w", encoding="utf-8") as log:
    start = time.monotonic()
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with
    process = psutil.Process(child.pid)
    done = threading.Event()

    def sample():
      while not done.is_set():
        try:
          samples.append((time.time(), _tree_rss(process)))
        except psutil.Error:
          pass
        done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    seconds = time.monotonic() - start
    done.set()
    sampler.join()
  if code not in ok:
    raise SystemExit(f"{' '.join(command)} failed (exit {code}); see {log_path}")
  return {"wall_seconds": seconds, "exit_code": code,
          "peak_rss_bytes": max((rss for _, rss in samples), default=0),
          "samples": samples}


def _component_peaks(store, summary, samples) -> Dict[str, int]:
  """Peak RSS while each component's execution ran (MLMD's start and end)."""
  executions = {e.id: e for e in store.get_executions_by_id(
      [c.execution_id for c in summary.components])}
  peaks = {}
  for c in summary.components:
    e = executions[c.execution_id]
    start, end = e.create_time_since_epoch / 1e3, e.last_update_time_since_epoch / 1e3
    peaks[c.node_id] = max((rss for t, rss in samples if start <= t <= end), default=0)
  return peaks


def _line(xs: List[float], ys: List[float]):
  """Least-squares intercept and slope, and R^2."""
  n = len(xs)
  mx, my = sum(xs) / n, sum(ys) / n
  sxx = sum((x - mx) ** 2 for x in xs)
  slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
  intercept = my - slope * mx
  ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
  ss_tot = sum((y - my) ** 2 for y in ys)
  return intercept, slope, 1 - ss_res / ss_tot if ss_tot else 1.0


def _auc(measured: dict, key: str) -> str:
  value = measured.get(key)
  return "" if value is None else f"{value:.4f}"


def _plot(path: str, rows: List[int], results: Dict[int, dict]) -> None:
  plt = _common.pyplot()
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
  millions = [r / 1e6 for r in rows]
  left.plot(millions, [results[r]["wall_seconds"] for r in rows], "o-", label="pipeline")
  stock_rows = [r for r in rows if "stock" in results[r]]
  if stock_rows:
    left.plot([r / 1e6 for r in stock_rows],
              [results[r]["stock"]["wall_seconds"] for r in stock_rows], "s-k",
              label="stock TFX pipeline")
  for component in _DATA_BOUND:
    left.plot(millions, [results[r]["components_seconds"].get(component, 0) for r in rows],
              ".--", label=component)
  left.set_xlabel("rows (millions)")
  left.set_ylabel("seconds")
  left.set_title("Wall time")
  left.legend(fontsize=8)
  right.plot(millions, [results[r]["peak_rss_bytes"] / 2**30 for r in rows], "o-",
             label="ours")
  if stock_rows:
    right.plot([r / 1e6 for r in stock_rows],
               [results[r]["stock"]["peak_rss_bytes"] / 2**30 for r in stock_rows],
               "s--k", label="stock TFX pipeline")
    right.legend(fontsize=8)
  right.set_xlabel("rows (millions)")
  right.set_ylabel("GiB")
  right.set_ylim(bottom=0)
  right.set_title("Peak RSS (process tree)")
  _common.save_figure(fig, path)


def _report(out: str, results: Dict[int, dict]) -> None:
  """Writes scale.json, scale.md and scale.png for the sizes measured so far."""
  sizes = sorted(results)
  fit = _line(sizes, [results[r]["wall_seconds"] for r in sizes]) if len(sizes) > 1 else None
  base = results[sizes[0]]
  lines = ["| rows | wall time (s) | vs smallest | " + " | ".join(_DATA_BOUND)
           + " | peak RSS (GiB) | vs smallest | teacher AUC | student AUC | "
           "ceiling AUC |",
           "|---" * (8 + len(_DATA_BOUND)) + "|"]
  for r in sizes:
    m = results[r]
    lines.append(
        f"| {r:,} | {m['wall_seconds']:.0f} | {m['wall_seconds'] / base['wall_seconds']:.2f}x | "
        + " | ".join(str(m["components_seconds"].get(c, "")) for c in _DATA_BOUND)
        + f" | {m['peak_rss_bytes'] / 2**30:.2f} | "
        f"{m['peak_rss_bytes'] / base['peak_rss_bytes']:.2f}x | {_auc(m, 'teacher_auc')} | "
        f"{_auc(m, 'student_auc')} | {_auc(m, 'ceiling_auc')} |")
  lines += ["", "(ceiling: the AUC of the generator's own probability of a big tip; "
            "none for the embedded CSV.)"]
  if all("components_peak_rss_bytes" in results[r] for r in sizes):
    lines += ["", "Peak RSS of the pipeline's process tree while each component ran "
              "(GiB; what earlier components left in the process counts too):", "",
              "| rows | " + " | ".join(_DATA_BOUND) + " |",
              "|---" * (1 + len(_DATA_BOUND)) + "|"]
    lines += [f"| {r:,} | " + " | ".join(
        f"{results[r]['components_peak_rss_bytes'].get(c, 0) / 2**30:.2f}"
        for c in _DATA_BOUND) + " |" for r in sizes]
  stock_sizes = [r for r in sizes if "stock" in results[r]]
  if stock_sizes:
    lines += ["", "Against the stock TFX taxi pipeline on the same rows, same Beam "
              "arguments:", "", "| rows | ours (s) | stock (s) | ours / stock | "
              "ours peak RSS (GiB) | stock peak RSS (GiB) | our run's exit |",
              "|---" * 7 + "|"]
    lines += [f"| {r:,} | {results[r]['wall_seconds']:.0f} | "
              f"{results[r]['stock']['wall_seconds']:.0f} | "
              f"{results[r]['wall_seconds'] / results[r]['stock']['wall_seconds']:.2f}x | "
              f"{results[r]['peak_rss_bytes'] / 2**30:.2f} | "
              f"{results[r]['stock']['peak_rss_bytes'] / 2**30:.2f} | "
              f"{results[r].get('exit_code', 0)} |" for r in stock_sizes]
    lines += ["", "(exit 0: blessed and pushed; 4 or 5: a gate refused, the "
              "components after it did not run.)"]
    lines += ["", "Stock pipeline, seconds per component:", "",
              "| rows | " + " | ".join(results[stock_sizes[0]]["stock"]["components_seconds"])
              + " |", "|---" * (1 + len(results[stock_sizes[0]]["stock"]["components_seconds"]))
              + "|"]
    lines += [f"| {r:,} | " + " | ".join(
        str(v) for v in results[r]["stock"]["components_seconds"].values()) + " |"
              for r in stock_sizes]
  if fit and len(sizes) > 2:
    lines += ["", f"Least-squares line: wall time = {fit[0]:.0f} s + "
              f"{fit[1] * 1e6:.0f} s per million rows (R^2 = {fit[2]:.3f})."]
  if len(sizes) > 1:
    lines += ["", "Seconds per million rows of each component (least-squares slope "
              "over the sizes):", "", "| pipeline | component | s per million rows |",
              "|---|---|---|"]
    for who, get in (("ours", lambda r: results[r]), ("stock", lambda r: results[r].get("stock"))):
      measured = [r for r in sizes if get(r)]
      if len(measured) < 2:
        continue
      for component in get(measured[0])["components_seconds"]:
        slope = _line(measured, [get(r)["components_seconds"].get(component, 0.0)
                                 for r in measured])[1]
        lines.append(f"| {who} | {component} | {slope * 1e6:.0f} |")
  _common.save(out, "scale", {
      "results": {str(r): results[r] for r in sizes},
      "line": None if not fit else {"intercept_seconds": fit[0],
                                    "seconds_per_row": fit[1], "r2": fit[2]}}, lines)
  _plot(os.path.join(out, "scale.png"), sizes, results)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  embedded = len(raw_data.read_rows(n=10**9))
  parser.add_argument("--rows", type=int, nargs="+",
                      default=[embedded, 150_000, 1_000_000],
                      help=f"sizes; {embedded} (the embedded CSV's rows) uses it as is")
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--work", default=os.path.join("bench", "work", "scale"))
  parser.add_argument("--stock", action="store_true",
                      help="also run the stock TFX taxi pipeline on each size")
  parser.add_argument("--beam-arg", action="append", dest="beam_args", default=None,
                      help="a Beam argument for every pipeline (repeat); default: "
                      "our pipeline's default Beam arguments")
  parser.add_argument("--run-arg", action="append", dest="run_args", default=[],
                      help="one more `tfx-distill run` flag for our pipeline (repeat); "
                      "the published figures use none: the default gate bounds")
  parser.add_argument("--report-only", action="store_true",
                      help="measure nothing: rewrite the table and plot from scale.json")
  args = parser.parse_args(argv)
  if args.report_only:
    with open(os.path.join(args.out, "scale.json"), encoding="utf-8") as f:
      _report(args.out, {int(k): v for k, v in json.load(f)["results"].items()})
    return 0
  tfx_distill = os.path.join(os.path.dirname(sys.executable), "tfx-distill")
  beam_args = args.beam_args or settings_lib.Settings.model_fields[
      "beam_args"].get_default(call_default_factory=True)
  results = {}
  for rows in sorted(args.rows):
    work = os.path.abspath(os.path.join(args.work, str(rows)))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ceiling = None
    if rows == embedded:
      data_root = configs.embedded_data_root()
    else:
      data_root = os.path.join(work, "data")
      ceiling = taxi_synth.generate(rows, data_root)["ceiling_auc"]
    root = os.path.join(work, "pipeline")
    measured = run_measured(
        [tfx_distill, "run", "--data-root", data_root, "--pipeline-root", root,
         "--pipeline-name", NAME, "--serving-dir", os.path.join(work, "serving"),
         "--no-cache", *[f"--beam-arg={a}" for a in beam_args], *args.run_args],
        # A gate's refusal (exit 4 or 5) is a result: its components ran.
        os.path.join(work, "run.log"), ok=(0, 4, 5))
    metadata = os.path.join(root, "metadata.sqlite")
    summary = report.summarize(metadata, NAME)
    measured["components_seconds"] = {c.node_id: round(c.seconds, 1)
                                      for c in summary.components}
    measured["components_peak_rss_bytes"] = _component_peaks(
        report.open_store(metadata), summary, measured.pop("samples"))
    measured["student_auc"] = summary.student.metrics.get("auc")
    measured["teacher_auc"] = summary.teacher.metrics.get("auc")
    measured["ceiling_auc"] = ceiling
    measured["beam_args"] = beam_args
    measured["run_args"] = args.run_args
    results[rows] = measured
    if args.stock:
      stock_root = os.path.join(work, "stock")
      theirs = run_measured(
          [sys.executable, stock.__file__, "--data-root", data_root,
           "--pipeline-root", stock_root, *[f"--beam-arg={a}" for a in beam_args]],
          os.path.join(work, "stock.log"))
      stock_summary = report.summarize(os.path.join(stock_root, "metadata.sqlite"),
                                       stock.NAME)
      theirs["components_seconds"] = {c.node_id: round(c.seconds, 1)
                                      for c in stock_summary.components}
      theirs["components_peak_rss_bytes"] = _component_peaks(
          report.open_store(os.path.join(stock_root, "metadata.sqlite")),
          stock_summary, theirs.pop("samples"))
      measured["stock"] = theirs
      print(f"  {rows:,} rows, stock: {theirs['wall_seconds']:.0f} s, peak RSS "
            f"{theirs['peak_rss_bytes'] / 2**30:.2f} GiB", file=sys.stderr)
    print(f"  {rows:,} rows: {measured['wall_seconds']:.0f} s, peak RSS "
          f"{measured['peak_rss_bytes'] / 2**30:.2f} GiB", file=sys.stderr)
    shutil.rmtree(os.path.join(work, "data"), ignore_errors=True)
    _report(args.out, results)  # after every size: a long run keeps what it measured

  return 0


if __name__ == "__main__":
  sys.exit(main())
