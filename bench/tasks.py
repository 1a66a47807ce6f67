"""Teacher vs student on every task the product claims, with the shipped defaults.

    .venv/bin/python bench/tasks.py [--only NAME ...] [--out bench/results]

Runs `tfx-distill run` (LocalDagRunner, the default steps, teacher 400,
Distiller 1000, eval 150) once per dataset, each in a fresh pipeline root:

- taxi-binary: the taxi demo (`make run`), label big tipper;
- taxi-multiclass: zero code, `--label payment_type` (7 classes, inferred);
- taxi-regression: zero code, `--label fare` (inferred);
- mixed: zero code, a generated table (tests/datasets.py) with string and
  numeric features, missing cells and a string label;
- penguin-tfx-module: TFX's own `penguin_utils_keras.py`, unchanged, as the
  Transform and Trainer module on a generated penguin-shaped CSV.

For each: the wall time of the process's pipeline run, the task's metrics of
teacher and student as TFMA's Evaluator computed them, parameter counts,
blessing. Writes tasks.json and tasks.md.
"""
import argparse
import contextlib
import io
import os
import shutil
import sys
import time

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import datasets  # pylint: disable=g-bad-import-order,wrong-import-position  # tests/datasets.py
from distill_cli import main as cli  # pylint: disable=wrong-import-position
from distill_pipelines import report  # pylint: disable=wrong-import-position
from distill_components.distiller.tasks import Task  # pylint: disable=wrong-import-position


def _penguin_module() -> str:
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec("tfx")
  return os.path.join(list(spec.submodule_search_locations)[0], "examples", "penguin",
                      "penguin_utils_keras.py")


def _runs(work: str):
  """name -> (flags, a function that writes the data dir, or None)."""
  mixed, penguins = os.path.join(work, "data-mixed"), os.path.join(work, "data-penguins")
  module = _penguin_module()
  return {
      "taxi-binary": ([], None),
      "taxi-multiclass": (["--label", "payment_type"], None),
      "taxi-regression": (["--label", "fare"], None),
      "mixed": (["--data-root", mixed, "--label", "outcome"],
                lambda: datasets.mixed(mixed)),
      "penguin-tfx-module": (
          ["--data-root", penguins, "--label", "species", "--label-key", "species_xf",
           "--task", "multiclass", "--num-classes", "3", "--preprocessing-module",
           module, "--teacher-module", module, "--batch-size", "32"],
          lambda: datasets.penguins(penguins)),
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--work", default=os.path.join("bench", "work", "tasks"))
  parser.add_argument("--only", nargs="*", default=None)
  args = parser.parse_args(argv)
  shutil.rmtree(args.work, ignore_errors=True)
  os.makedirs(args.work)
  import tfx.v1  # pylint: disable=g-import-not-at-top,unused-import  # import cost outside every timing
  results = {}
  for name, (flags, make_data) in _runs(os.path.abspath(args.work)).items():
    if args.only and name not in args.only:
      continue
    if make_data:
      make_data()
    root = os.path.abspath(os.path.join(args.work, name))
    start = time.monotonic()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      code = cli.main(["run", "--pipeline-root", root, "--pipeline-name", name, *flags])
    seconds = time.monotonic() - start
    summary = report.summarize(os.path.join(root, "metadata.sqlite"), name)
    results[name] = {
        "flags": flags, "exit": code, "seconds": round(seconds, 1),
        "task": summary.task.value if summary.task else None,
        "teacher": summary.teacher.metrics, "student": summary.student.metrics,
        "teacher_params": summary.teacher.params,
        "student_params": summary.student.params,
        "agreement": summary.agreement, "blessed": summary.blessed,
        "components": {c.node_id: round(c.seconds, 1) for c in summary.components},
    }
    print(f"{name}: exit {code}, {seconds:.0f} s, blessed {summary.blessed}",
          file=sys.stderr)
  lines = ["| dataset | task | metric | teacher | student | params (teacher / student) "
           "| blessed | run (s) |", "|---|---|---|---|---|---|---|---|"]
  for name, r in results.items():
    task = Task.parse(r["task"])
    shown = [m for m in task.metrics if m.name in r["student"]]
    params = (f"{r['teacher_params']:,} / {r['student_params']:,}"
              if r["student_params"] else "-")
    blessed = {True: "yes", False: "no", None: "-"}[r["blessed"]]
    for i, metric in enumerate(shown):
      first = i == 0
      lines.append(
          f"| {name if first else ''} | {r['task'] if first else ''} | {metric.title} "
          f"| {r['teacher'].get(metric.name, float('nan')):.4f} "
          f"| {r['student'].get(metric.name, float('nan')):.4f} "
          f"| {params if first else ''} | {blessed if first else ''} "
          f"| {r['seconds'] if first else ''} |")
  _common.save(args.out, "tasks", results, lines)
  return 0 if all(r["exit"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
  sys.exit(main())
