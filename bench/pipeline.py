"""Wall time of our pipeline against the stock TFX taxi pipeline, in one run.

    .venv/bin/python bench/pipeline.py [--out bench/results]

Runs, one after the other in this process (TFX imported once), with
LocalDagRunner on the embedded taxi CSV, each in a fresh pipeline root (no
cache), with the same Beam arguments:

- the stock pipeline that ships in the `tfx` package
  (`tfx.examples.chicago_taxi_pipeline.taxi_pipeline_native_keras`: its
  Trainer runs 1000 steps, then Evaluator and Pusher);
- ours with the teacher at the same 1000 steps, plus the Distiller
  (1000 steps) and the student-vs-teacher Evaluator.

Reports each pipeline's wall time, their ratio and a per-component breakdown
from MLMD's execution times. Writes pipeline.json and pipeline.md.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from distill_pipelines import cli  # pylint: disable=g-import-not-at-top
from distill_pipelines import report  # pylint: disable=g-import-not-at-top

BEAM_ARGS = ["--direct_num_workers=1"]
STEPS = 1000


def _stock(root: str) -> float:
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as stock  # pylint: disable=g-import-not-at-top
  examples_dir = os.path.dirname(stock.__file__)
  definition = stock._create_pipeline(  # pylint: disable=protected-access
      pipeline_name="stock-taxi", pipeline_root=root,
      data_root=cli.embedded_data_root(),
      module_file=os.path.join(examples_dir, "taxi_utils_native_keras.py"),
      serving_model_dir=os.path.join(root, "serving_model"),
      metadata_path=os.path.join(root, "metadata.sqlite"),
      beam_pipeline_args=BEAM_ARGS)
  start = time.monotonic()
  tfx.orchestration.LocalDagRunner().run(definition)
  return time.monotonic() - start


def _ours(root: str) -> float:
  start = time.monotonic()
  with contextlib.redirect_stdout(io.StringIO()):
    code = cli.main(["run", "--pipeline-root", root, "--pipeline-name", "ours",
                     "--train-steps", str(STEPS), "--distill-steps", str(STEPS),
                     *[f"--beam-arg={a}" for a in BEAM_ARGS]])
  if code != 0:
    raise SystemExit(f"our pipeline failed (exit {code})")
  return time.monotonic() - start


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--work", default=os.path.join("bench", "work", "pipeline"))
  args = parser.parse_args(argv)
  shutil.rmtree(args.work, ignore_errors=True)
  roots = {"stock": os.path.abspath(os.path.join(args.work, "stock")),
           "ours": os.path.abspath(os.path.join(args.work, "ours"))}
  import tfx.v1  # pylint: disable=g-import-not-at-top,unused-import  # import cost outside both timings
  wall = {"stock": _stock(roots["stock"]), "ours": _ours(roots["ours"])}
  components = {
      name: {c.node_id: round(c.seconds, 1) for c in report.summarize(
          os.path.join(root, "metadata.sqlite"),
          "stock-taxi" if name == "stock" else "ours").components}
      for name, root in roots.items()}
  result = {"wall_seconds": wall, "ratio_ours_to_stock": wall["ours"] / wall["stock"],
            "components_seconds": components, "steps": STEPS, "beam_args": BEAM_ARGS}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "pipeline.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)
  names = list(dict.fromkeys([*components["stock"], *components["ours"]]))
  lines = ["| component | stock taxi (s) | ours (s) |", "|---|---|---|"]
  lines += [f"| {n} | {components['stock'].get(n, '')} | {components['ours'].get(n, '')} |"
            for n in names]
  lines.append(f"| **wall time** | **{wall['stock']:.0f}** | **{wall['ours']:.0f}** "
               f"({result['ratio_ours_to_stock']:.2f}x) |")
  table = "\n".join(lines)
  with open(os.path.join(args.out, "pipeline.md"), "w", encoding="utf-8") as f:
    f.write(table + "\n")
  print(table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
