"""TFX's own example modules as unchanged teachers, run as a user runs them.

    .venv/bin/python bench/tfx_examples.py [--seeds 0 1 2] [--only taxi penguin penguin-tfdf]

Each module that ships in `tfx/examples` is run with `tfx-distill run` (its
own process, default gate bounds) once per `--seed` in a fresh pipeline root.
TFX's modules set no seed of their own, so the seed (which seeds the run's
process, hence the Trainer, and the Distiller) picks the teacher as well as
the student: a run is reproducible, and the spread over seeds shows whether
the gate's margin is luck. The table holds every run in the work directory
(`--only` with no name runs nothing and re-reads them), each read back from
its ML Metadata: exit status (as `tfx-distill run` computes it), the gate
metric of teacher and student, the student's drop, what refused it. Writes
bench/results/tfx_examples.{json,md}.
"""
import argparse
import datetime
import glob
import os
import shutil
import subprocess
import sys

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
import datasets  # pylint: disable=g-import-not-at-top,wrong-import-position  # tests/datasets.py

TFX_EXAMPLES = os.path.join(REPO, ".venv", "lib", "python3.10", "site-packages", "tfx",
                            "examples")
TAXI = os.path.join(TFX_EXAMPLES, "chicago_taxi_pipeline", "taxi_utils_native_keras.py")
PENGUIN = os.path.join(TFX_EXAMPLES, "penguin", "penguin_utils_keras.py")
PENGUIN_TFDF = os.path.join(TFX_EXAMPLES, "penguin", "penguin_utils_tfdf_experimental.py")
PENGUIN_ROWS = 1500


def _penguin_flags(work: str):
  data = os.path.join(work, "penguin_data")
  if not os.path.isdir(data):
    datasets.penguins(data, rows=PENGUIN_ROWS)
  return ["--data-root", data, "--label", "species", "--label-key", "species_xf",
          "--task", "multiclass", "--num-classes", "3", "--preprocessing-module", PENGUIN,
          "--eval-steps", "5"]


# name -> (flags given the work directory, the gate metric's MLMD name)
RUNS = {
    # The command of the README's "Your own data" (and of issue 28).
    "taxi": (lambda work: ["--preprocessing-module", TAXI, "--teacher-module", TAXI,
                           "--label", "tips", "--label-key", "tips_xf", "--task", "binary",
                           "--train-steps", "300", "--distill-steps", "300"], "auc"),
    "penguin": (lambda work: [*_penguin_flags(work), "--teacher-module", PENGUIN,
                              "--train-steps", "200"], "sparse_categorical_accuracy"),
    "penguin-tfdf": (lambda work: [*_penguin_flags(work), "--teacher-module", PENGUIN_TFDF,
                                   "--teacher-imports", "tensorflow_decision_forests",
                                   "--teacher-outputs", "probabilities"],
                     "sparse_categorical_accuracy"),
}


def run(name: str, seed: int, work: str) -> None:
  """`tfx-distill run` for module `name` with `seed`, in a fresh root."""
  flags, _ = RUNS[name]
  root = os.path.join(work, f"{name}-{seed}")
  shutil.rmtree(root, ignore_errors=True)
  subprocess.run(
      [os.path.join(REPO, ".venv", "bin", "tfx-distill"), "run", *flags(work),
       "--pipeline-root", root, "--pipeline-name", f"{name}-{seed}", "--seed", str(seed)],
      capture_output=True, text=True, check=False)


def result(root: str) -> dict:
  """A finished run read back from its ML Metadata; its exit status is the
  one `tfx-distill run` returned, computed from the same summary."""
  from distill_pipelines import exits  # pylint: disable=g-import-not-at-top
  from distill_pipelines import report  # pylint: disable=g-import-not-at-top
  pipeline_name = os.path.basename(root)
  name, _, seed = pipeline_name.rpartition("-")
  metric = RUNS[name][1]
  summary = report.summarize(os.path.join(root, "metadata.sqlite"), pipeline_name)
  teacher = summary.teacher.metrics.get(metric)
  student = summary.student.metrics.get(metric)
  return {"name": name, "seed": int(seed), "exit": exits.status(summary),
          "metric": metric, "teacher": teacher, "student": student,
          "drop": None if None in (teacher, student) else teacher - student,
          "blessed": summary.blessed,
          "seconds": round(sum(c.seconds for c in summary.components), 1),
          "refused": list(summary.gate_failures)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--only", nargs="*", default=sorted(RUNS))
  parser.add_argument("--work", default=os.path.join(HERE, "work", "tfx_examples"))
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  for name in args.only:
    for seed in args.seeds:
      run(name, seed, args.work)
  # Every run in the work directory, this invocation's and earlier ones'.
  roots = sorted(os.path.dirname(p) for p in glob.glob(
      os.path.join(args.work, "*", "metadata.sqlite")))
  results = sorted((result(root) for root in roots),
                   key=lambda r: (list(RUNS).index(r["name"]), r["seed"]))
  lines = [f"TFX's example modules as unchanged teachers, default gate bounds "
           f"(`bench/tfx_examples.py`, {datetime.date.today():%Y-%m-%d}).", "",
           "| module | seed | exit | gate metric | teacher | student | drop (bound 0.01) "
           "| pipeline seconds | refused by |",
           "|---|---|---|---|---|---|---|---|---|"]
  for r in results:
    figures = [f"{v:.4f}" if v is not None else "-"
               for v in (r["teacher"], r["student"], r["drop"])]
    lines.append(f"| {r['name']} | {r['seed']} | {r['exit']} | {r['metric']} | "
                 f"{' | '.join(figures)} | {r['seconds']:.0f} | "
                 f"{'; '.join(r['refused']) or '-'} |")
  _common.save(args.out, "tfx_examples", results, lines)


if __name__ == "__main__":
  main()
