"""What the LiteRT student buys: size and latency of teacher, student
SavedModel, LiteRT float32 and int8, side by side in each run, and int8's
gate metric against float32's.

    .venv/bin/python bench/litert.py [--only taxi-binary ...] [--out bench/results]

Each run is `tfx-distill run` with the shipped defaults in a fresh pipeline
root: taxi-binary (the demo: its tree teacher), taxi-multiclass (zero code,
`--label payment_type`), taxi-regression (zero code, `--label fare`). The
figures are the run's own: the LiteRTExport component measures every model
alike on transformed eval rows (SavedModels through `transformed_logits`, in
graph; LiteRT files in the interpreter, features computed), and the
LiteRTEvaluator (TFMA, `tf_lite` models) scores int8 and float32 on the eval
split. Checks the issue's targets: int8 file <= 1/20 of the tree teacher's
SavedModel, int8 batch-1 latency <= 1/5 of the trees' in-graph batch-1
latency, int8 within 0.002 of float32 on binary and multi-class.
Writes litert.json and litert.md.
"""
import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_cli import main as cli
from distill_pipelines import names
from distill_pipelines import report

RUNS = {"taxi-binary": [], "taxi-multiclass": ["--label", "payment_type"],
        "taxi-regression": ["--label", "fare"]}
TITLES = {"teacher": "teacher SavedModel", "student": "student SavedModel",
          "litert_float32": "LiteRT float32", "litert_int8": "LiteRT int8"}


def _one(work: str, name: str, flags) -> dict:
  root = os.path.join(work, name)
  started = time.monotonic()
  with contextlib.redirect_stdout(io.StringIO()):
    code = cli.main(["run", "--pipeline-root", root, "--pipeline-name", name, *flags])
  s = report.summarize(os.path.join(root, "metadata.sqlite"), name)
  metric = s.choice_metric or (s.task.metrics[0].name if s.task else None)
  return {"exit": code, "seconds": round(time.monotonic() - started, 1),
          "task": s.task.value if s.task else None, "metric": metric,
          "teacher_chosen": s.teacher_chosen, "compression": s.compression,
          "litert_mode": s.litert_mode,
          "litert_gate": s.litert_gate.verdict if s.litert_gate else None,
          "int8": s.litert_metrics.get(names.LITERT_INT8, {}).get(metric),
          "float32": s.litert_metrics.get(names.LITERT_FLOAT32, {}).get(metric),
          "student": s.student.metrics.get(metric),
          "pushed": s.litert_pushed}


def _table(results: dict) -> list:
  lines = ["| run | model | file KB | own KB | parameters | ms @1 | ms @256 |",
           "|---|---|---:|---:|---:|---:|---:|"]
  for name, r in results.items():
    for row in r["compression"]:
      ms = row["latency_ms"]
      lines.append(
          f"| {name} | {TITLES.get(row['model'], row['model'])} | "
          f"{row['file_bytes'] / 1e3:,.1f} | {row['own_bytes'] / 1e3:,.1f} | "
          f"{'-' if row['params'] is None else format(row['params'], ',d')} | "
          f"{ms.get('1', float('nan')):.3f} | {ms.get('256', float('nan')):.3f} |")
  lines += ["", "| run | exit | teacher | int8 kind | gate metric | SavedModel student | "
            "float32 | int8 | int8 - float32 | LiteRT gate | pushed |",
            "|---|---:|---|---|---|---:|---:|---:|---:|---|---|"]
  for name, r in results.items():
    diff = (r["int8"] - r["float32"]) if None not in (r["int8"], r["float32"]) else None
    cell = lambda v: "-" if v is None else f"{v:.4f}"  # pylint: disable=unnecessary-lambda-assignment
    lines.append(f"| {name} | {r['exit']} | {r['teacher_chosen'] or 'the demo trees'} | "
                 f"{r['litert_mode']} | {r['metric']} | {cell(r['student'])} | "
                 f"{cell(r['float32'])} | {cell(r['int8'])} | "
                 f"{'-' if diff is None else f'{diff:+.4f}'} | {r['litert_gate']} | "
                 f"{', '.join(r['pushed']) or '-'} |")
  lines += ["", *_targets(results)]
  return lines


def _targets(results: dict) -> list:
  lines = ["Targets (issue 25):"]
  binary = results.get("taxi-binary")
  if binary:
    by = {r["model"]: r for r in binary["compression"]}
    size = by["teacher"]["file_bytes"] / by["litert_int8"]["file_bytes"]
    speed = by["teacher"]["latency_ms"]["1"] / by["litert_int8"]["latency_ms"]["1"]
    lines.append(f"- int8 file vs the tree teacher's SavedModel: 1/{size:.1f} "
                 f"({'met' if size >= 20 else 'MISSED'}: <= 1/20)")
    lines.append(f"- int8 batch-1 latency vs the trees in graph: 1/{speed:.1f} "
                 f"({'met' if speed >= 5 else 'MISSED'}: <= 1/5)")
  for name in ("taxi-binary", "taxi-multiclass"):
    r = results.get(name)
    if r and None not in (r["int8"], r["float32"]):
      gap = r["float32"] - r["int8"]
      lines.append(f"- {name}: int8 {r['metric']} {gap:+.4f} below float32 "
                   f"({'met' if gap <= 0.002 else 'MISSED'}: <= 0.002)")
  return lines


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--only", nargs="*", choices=list(RUNS), default=list(RUNS))
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
  args = parser.parse_args(argv)
  work = tempfile.mkdtemp(prefix="bench-litert-")
  try:
    results = {}
    for name in args.only:
      print(f"{name} ...", file=sys.stderr, flush=True)
      results[name] = _one(work, name, RUNS[name])
    results["_command"] = "bench/litert.py " + " ".join(argv or sys.argv[1:])
    results["_date"] = time.strftime("%Y-%m-%d")
    table = _table({k: v for k, v in results.items() if not k.startswith("_")})
    _common.save(args.out, "litert", results,
                 [f"`{results['_command']}`, {results['_date']}", "", *table])
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
