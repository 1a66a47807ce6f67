"""Serving cost: teacher vs student SavedModels from one pipeline run.

    .venv/bin/python bench/serving.py [--pipeline-root bench/work/quality] [--out bench/results]

Takes the newest teacher (Trainer) and student (Distiller) models recorded in
the run's MLMD (run bench/quality.py, or `make run` with --pipeline-root,
first), and measures for each: SavedModel bytes, parameters (from the
Distiller's record), and the latency of `serving_default` on serialized raw
taxi examples at batch 1 and 256 (p50 and p99 over repeated calls, after a
warm-up), alternating teacher and student call by call so that machine noise
hits both alike. Writes serving.json and serving.md.
"""
import argparse
import os
import sys
import time

import numpy as np
import tensorflow as tf


import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_components.distiller import export
from distill_pipelines import report
from distill_pipelines.taxi import features
from distill_pipelines.taxi import raw_data
from tfx.utils import path_utils

BATCHES = (1, 256)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", default=os.path.join("bench", "work", "quality"))
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--calls", type=int, default=200,
                      help="timed calls per model and batch size")
  args = parser.parse_args(argv)
  store = report.open_store(os.path.join(args.pipeline_root, "metadata.sqlite"))
  student = _common.newest_artifact(store, "Model", "Distiller")
  teacher = _common.newest_artifact(store, "Model", "Trainer")
  models = {
      "teacher": (path_utils.serving_model_path(teacher.uri),
                  student.get_int_custom_property("teacher_params")),
      "student": (path_utils.serving_model_path(student.uri),
                  student.get_int_custom_property("student_params")),
  }
  saved = {k: tf.saved_model.load(p) for k, (p, _) in models.items()}
  loaded = {k: m.signatures["serving_default"] for k, m in saved.items()}
  # Profile: the student's own parsing and Transform graph, which serving
  # runs before any model weight is touched.
  loaded["student transform_features"] = saved["student"].signatures["transform_features"]
  rows = raw_data.read_rows(max(BATCHES), start=1000)
  examples = raw_data.serialize(rows, raw_data.column_types(raw_data.read_rows(2000)),
                                drop=features.RAW_LABEL_KEYS)
  results = {k: {"saved_model_bytes": export.saved_model_bytes(p), "params": n}
             for k, (p, n) in models.items()}
  results["student transform_features"] = {}
  for batch in BATCHES:
    inputs = tf.constant(examples[:batch])
    for fn in loaded.values():  # warm-up: tracing and first-call costs
      for _ in range(5):
        fn(examples=inputs)
    times = {k: [] for k in loaded}
    calls = args.calls if batch == 1 else max(args.calls // 4, 20)
    for _ in range(calls):
      for name, fn in loaded.items():
        t0 = time.perf_counter()
        next(iter(fn(examples=inputs).values())).numpy()
        times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
      results[name][f"batch_{batch}"] = {
          "p50_ms": float(np.percentile(ts, 50) * 1e3),
          "p99_ms": float(np.percentile(ts, 99) * 1e3),
          "calls": calls}
  ratios = {
      "saved_model_smaller": results["teacher"]["saved_model_bytes"]
      / results["student"]["saved_model_bytes"],
      "params_fewer": results["teacher"]["params"] / results["student"]["params"],
  }
  for batch in BATCHES:
    for q in ("p50_ms", "p99_ms"):
      ratios[f"batch_{batch}_{q}_faster"] = (
          results["teacher"][f"batch_{batch}"][q] / results["student"][f"batch_{batch}"][q])
  for batch in BATCHES:
    ratios[f"batch_{batch}_p50_transform_share_of_student"] = (
        results["student transform_features"][f"batch_{batch}"]["p50_ms"]
        / results["student"][f"batch_{batch}"]["p50_ms"])
  t, s = results["teacher"], results["student"]
  lines = ["| | teacher | student | teacher / student |", "|---|---|---|---|",
           f"| SavedModel MB | {t['saved_model_bytes'] / 1e6:.2f} | "
           f"{s['saved_model_bytes'] / 1e6:.2f} | {ratios['saved_model_smaller']:.1f}x |",
           f"| parameters | {t['params']:,} | {s['params']:,} | {ratios['params_fewer']:.1f}x |"]
  for batch in BATCHES:
    for q in ("p50_ms", "p99_ms"):
      lines.append(
          f"| serving_default, batch {batch}, {q[:3]} (ms) | "
          f"{t[f'batch_{batch}'][q]:.2f} | {s[f'batch_{batch}'][q]:.2f} | "
          f"{ratios[f'batch_{batch}_{q}_faster']:.1f}x |")
  for batch in BATCHES:
    lines.append(
        f"| of which parsing + Transform graph, batch {batch}, p50 (ms) | | "
        f"{results['student transform_features'][f'batch_{batch}']['p50_ms']:.2f} "
        f"({ratios[f'batch_{batch}_p50_transform_share_of_student']:.0%}) | |")
  _common.save(args.out, "serving", {"models": results, "ratios": ratios}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
