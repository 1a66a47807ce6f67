"""Teacher vs distilled student vs the same student from scratch, in one run.

    .venv/bin/python bench/quality.py [--out bench/results] [--pipeline-root DIR]

Runs the local pipeline twice under one pipeline root with the default
settings: first as shipped (alpha = 0.9: mostly the teacher's soft labels),
then with alpha = 0 (hard labels only: the student from scratch, same
architecture, same steps, same data). The second run takes everything up to
the Trainer from the cache, so both students learn from the same teacher and
are scored by TFMA on the same eval split. Writes quality.json and quality.md.
"""
import argparse
import contextlib
import dataclasses
import io
import os
import sys
import time


import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_pipelines import cli
from distill_pipelines import report


def _run(root: str, name: str, *flags: str) -> report.RunSummary:
  out = io.StringIO()
  start = time.monotonic()
  with contextlib.redirect_stdout(out):
    code = cli.main(["run", "--pipeline-root", root, "--pipeline-name", name, *flags])
  if code != 0:
    sys.stderr.write(out.getvalue())
    raise SystemExit(f"the pipeline run {flags} failed with exit code {code}")
  summary = report.summarize(os.path.join(root, "metadata.sqlite"), name)
  print(f"  {' '.join(flags) or 'defaults'}: {time.monotonic() - start:.0f}s",
        file=sys.stderr)
  return summary


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--pipeline-root", default=os.path.join("bench", "work", "quality"))
  args = parser.parse_args(argv)
  root = os.path.abspath(args.pipeline_root)
  name = "bench-quality"
  distilled = _run(root, name)
  scratch = _run(root, name, "--alpha", "0",
                 "--serving-dir", os.path.join(root, "scratch_serving"))
  assert scratch.teacher.auc == distilled.teacher.auc, "the teacher must be shared"
  rows = {
      "teacher": dataclasses.asdict(distilled.teacher),
      "student, distilled (alpha 0.9, T 2)": dict(
          dataclasses.asdict(distilled.student), agreement=distilled.agreement,
          blessed=distilled.blessed),
      "student, from scratch (alpha 0)": dict(
          dataclasses.asdict(scratch.student), agreement=scratch.agreement,
          blessed=scratch.blessed),
  }
  lines = ["| model | AUC | accuracy | parameters | SavedModel MB | agreement with teacher | blessed |",
           "|---|---|---|---|---|---|---|"]
  for label, r in rows.items():
    lines.append(
        f"| {label} | {r['auc']:.4f} | {r['accuracy']:.4f} | {r['params']:,} | "
        f"{r['saved_model_bytes'] / 1e6:.2f} | "
        f"{'' if r.get('agreement') is None else format(r['agreement'], '.4f')} | "
        f"{'' if r.get('blessed') is None else ('yes' if r['blessed'] else 'no')} |")
  _common.save(args.out, "quality", rows, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
