"""What the student alone costs: the Distiller with and without it, against
the whole pipeline's time, on the taxi demo.

    .venv/bin/python bench/worth_cost.py [--repeats 3]

Runs `tfx-distill run` once (the demo, its defaults) in a fresh pipeline
root, then that run's Distiller executor again in this process on the same
inputs (bench/distiller_profile.py's way), alternately with the student
alone (the default: trained in the same loop on the same batches, both
students scored by TFMA) and without it (`compare_alone=0`: no validation
cut, no scoring), `--repeats` times each. The extra time is the difference
of the medians; the share is that over the pipeline run's own time (the sum
of its components in MLMD). Writes worth_cost.json and worth_cost.md.
"""
import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import time

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
import distiller_profile  # pylint: disable=g-bad-import-order  # bench/distiller_profile.py
from distill_components.distiller import spec as spec_lib
from distill_cli import main as cli
from distill_pipelines import report

NAME = "worth-cost"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--work", default=os.path.join("bench", "work", "worth_cost"))
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  root = os.path.abspath(args.work)
  shutil.rmtree(root, ignore_errors=True)
  import tfx.v1  # pylint: disable=g-import-not-at-top,unused-import  # import cost outside every timing
  start = time.monotonic()
  with contextlib.redirect_stdout(io.StringIO()):
    code = cli.main(["run", "--pipeline-root", root, "--pipeline-name", NAME])
  process_seconds = time.monotonic() - start
  sqlite = os.path.join(root, "metadata.sqlite")
  summary = report.summarize(sqlite, NAME)
  pipeline_seconds = sum(c.seconds for c in summary.components)
  distiller_seconds = next(c.seconds for c in summary.components if c.node_id == "Distiller")
  store = report.open_store(sqlite)
  inputs = {"teacher_model": [_common.newest_artifact(store, "Model", "Trainer")],
            "examples": [_common.newest_artifact(store, "Examples", "Transform")],
            "transform_graph": [_common.newest_artifact(store, "TransformGraph",
                                                        "Transform")]}
  properties = distiller_profile._exec_properties(store)  # pylint: disable=protected-access
  seconds = {"with the student alone": [], "without": []}
  for repeat in range(args.repeats):
    for name, compare in (("with the student alone", 1), ("without", 0)):
      total, _ = distiller_profile._profiled_run(  # pylint: disable=protected-access
          inputs, dict(properties, **{spec_lib.COMPARE_ALONE_KEY: compare}),
          os.path.join(root, "executor", f"{compare}-{repeat}"))
      seconds[name].append(total)
      print(f"{name}, repeat {repeat}: {total:.1f} s", file=sys.stderr)
  medians = {name: statistics.median(values) for name, values in seconds.items()}
  extra = medians["with the student alone"] - medians["without"]
  lines = [
      f"The taxi demo (`tfx-distill run`, exit {code}): the pipeline's components "
      f"{pipeline_seconds:.1f} s (the process {process_seconds:.1f} s with TFX "
      f"imported), its Distiller {distiller_seconds:.1f} s.", "",
      "| Distiller executor, same inputs | runs (s) | median (s) |", "|---|---|---|"]
  for name, values in seconds.items():
    lines.append(f"| {name} | {', '.join(f'{v:.1f}' for v in values)} "
                 f"| {medians[name]:.1f} |")
  lines += ["", f"The student alone and the scoring add {extra:.1f} s: "
            f"{extra / pipeline_seconds:.1%} of the pipeline's {pipeline_seconds:.1f} s."]
  _common.save(args.out, "worth_cost", {
      "exit": code, "pipeline_seconds": pipeline_seconds,
      "process_seconds": process_seconds, "distiller_seconds": distiller_seconds,
      "executor_seconds": seconds, "extra_seconds": extra,
      "extra_share": extra / pipeline_seconds}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
