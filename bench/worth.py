"""Is distilling worth it? The distilled student vs the same student alone,
and what each run pushed, on the taxi labels and three public tables.

    .venv/bin/python bench/worth.py [--seeds 0 1 2] [--only NAME ...]

Every run is `tfx-distill run` with the shipped defaults and `--seed S`, in a
fresh pipeline root (LocalDagRunner, one process, TensorFlow imported once):

- taxi-binary: the taxi demo (`make run`; its fixed teacher, the trees);
- taxi-multiclass: zero code, `--label payment_type`;
- taxi-regression: zero code, `--label fare`;
- digits: scikit-learn's 8x8 handwritten digits (1,797 rows, 64 pixel
  columns, 10 classes): pixel-like features, where a network is expected
  to beat the trees;
- breast-cancer: scikit-learn's Wisconsin diagnostic table (569 rows, 30
  numeric columns, binary): a small numeric table;
- penguins: the Palmer penguins (`palmerpenguins` on PyPI, 344 rows; string
  columns island and sex, missing cells, a string label species).

The zero-code runs use the auto teacher (the trees, the network, their mean;
the best on the validation cut). Per run, read back from ML Metadata: the
teacher kept and its validation score, the eval-split figure (the task's gate
metric) of the teacher, the distilled student, the student alone and the one
pushed (the one the gates held), the exit status, and the extra time of the
student alone and the scoring (`choice_seconds`) against the run's wall time.
Writes worth.json and worth.md.
"""
import argparse
import contextlib
import csv
import io
import os
import shutil
import statistics
import sys
import time

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_components.distiller import properties
from distill_components.distiller.tasks import Task
from distill_cli import main as cli
from distill_pipelines import mlmd
from distill_pipelines import names
from distill_pipelines import report


def _write(path, header, rows):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "data.csv"), "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def _digits(path):
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  d = datasets.load_digits()
  _write(path, [f"p{i}" for i in range(64)] + ["digit"],
         [[int(v) for v in x] + [int(y)] for x, y in zip(d.data, d.target)])


def _breast_cancer(path):
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  d = datasets.load_breast_cancer()
  header = [n.replace(" ", "_") for n in d.feature_names] + ["malignant"]
  _write(path, header, [list(x) + [int(y == 0)] for x, y in zip(d.data, d.target)])


def _penguins(path):
  import palmerpenguins  # pylint: disable=g-import-not-at-top
  frame = palmerpenguins.load_penguins()
  os.makedirs(path, exist_ok=True)
  frame.to_csv(os.path.join(path, "data.csv"), index=False)  # NA cells as ""


def _runs(work):
  """name -> (flags, a function writing the data directory, or None)."""
  data = lambda name: os.path.join(work, "data-" + name)  # pylint: disable=unnecessary-lambda-assignment
  return {
      "taxi-binary": ([], None),
      "taxi-multiclass": (["--label", "payment_type"], None),
      "taxi-regression": (["--label", "fare"], None),
      "digits": (["--data-root", data("digits"), "--label", "digit", "--task",
                  "multiclass", "--num-classes", "10"],
                 lambda: _digits(data("digits"))),
      "breast-cancer": (["--data-root", data("breast-cancer"), "--label", "malignant",
                         "--task", "binary"],
                        lambda: _breast_cancer(data("breast-cancer"))),
      "penguins": (["--data-root", data("penguins"), "--label", "species",
                    "--task", "multiclass", "--num-classes", "3"],
                   lambda: _penguins(data("penguins"))),
  }


def _one(root, name, flags, seed):
  start = time.monotonic()
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    code = cli.main(["run", "--pipeline-root", root, "--pipeline-name", name,
                     "--seed", str(seed), *flags])
  seconds = time.monotonic() - start
  s = report.summarize(os.path.join(root, "metadata.sqlite"), name)
  metric = s.choice_metric
  model = mlmd.newest_output(os.path.join(root, "metadata.sqlite"), name,
                             names.DISTILLER, "model")
  scoring_seconds = mlmd.custom(model, properties.SCORING_SECONDS)
  evaluated = s.students.get("eval", {})
  return {
      "exit": code, "seconds": round(seconds, 1), "task": s.task.value if s.task else None,
      "metric": metric, "teacher_chosen": s.teacher_chosen,
      "teacher_validation": (s.teacher_candidates.get(s.teacher_chosen, {}).get(metric)
                             if s.teacher_chosen else None),
      "teacher_candidates": s.teacher_candidates,
      "teacher": s.teacher.metrics.get(metric),
      "distilled": evaluated.get("distilled", {}).get(metric),
      "alone": evaluated.get("alone", {}).get(metric),
      "validation": {k: v.get(metric) for k, v in s.students.get("validation", {}).items()},
      "chosen": s.student_chosen, "pushed": s.student.metrics.get(metric) if s.pushed_to else None,
      "gated": s.student.metrics.get(metric), "blessed": s.blessed,
      "scoring_seconds": scoring_seconds,
      "components": {c.node_id: round(c.seconds, 1) for c in s.components},
  }


def _cell(values, spec=".4f"):
  values = [v for v in values if v is not None]
  if not values:
    return "-"
  if len(values) == 1:
    return format(values[0], spec)
  return f"{statistics.mean(values):{spec}} ± {statistics.stdev(values):{spec}}"


def _table(results):
  lines = ["| table | task, metric | teacher kept (validation) | teacher | distilled "
           "| alone | went on (which) | exit statuses |",
           "|---|---|---|---|---|---|---|---|"]
  for name, by_seed in results.items():
    runs = list(by_seed.values())
    if not runs:
      continue
    first = runs[0]
    task = Task.parse(first["task"])
    title = next((m.title for m in task.metrics if m.name == first["metric"]),
                 first["metric"])
    kept = ", ".join(f"{r['teacher_chosen']} {r['teacher_validation']:.4f}"
                     for r in runs if r["teacher_chosen"]) or "fixed (the demo's trees)"
    chosen = ", ".join(r["chosen"] or "-" for r in runs)
    lines.append(
        f"| {name} | {first['task']}, {title} | {kept} | {_cell(r['teacher'] for r in runs)} "
        f"| {_cell(r['distilled'] for r in runs)} | {_cell(r['alone'] for r in runs)} "
        f"| {_cell(r['gated'] for r in runs)} ({chosen}) "
        f"| {', '.join(str(r['exit']) for r in runs)} |")
  return lines


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--work", default=os.path.join("bench", "work", "worth"))
  parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
  parser.add_argument("--only", nargs="*", default=None)
  args = parser.parse_args(argv)
  shutil.rmtree(args.work, ignore_errors=True)
  os.makedirs(args.work)
  import tfx.v1  # pylint: disable=g-import-not-at-top,unused-import  # import cost outside every timing
  work = os.path.abspath(args.work)
  runs = {k: v for k, v in _runs(work).items() if not args.only or k in args.only}
  for flags, make_data in runs.values():
    if make_data:
      make_data()
  results = {name: {} for name in runs}
  for seed in args.seeds:  # every table once per seed: a partial run covers all
    for name, (flags, _) in runs.items():
      root = os.path.join(work, f"{name}-seed{seed}")
      results[name][seed] = _one(root, name, flags, seed)
      r = results[name][seed]
      print(f"{name} seed {seed}: exit {r['exit']}, {r['seconds']:.0f} s, distilled "
            f"{r['distilled']}, alone {r['alone']}, chose {r['chosen']}", file=sys.stderr)
      _common.save(args.out, "worth", results, _table(results))
  return 0


if __name__ == "__main__":
  sys.exit(main())
