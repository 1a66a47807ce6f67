"""Wall time of our pipeline against the stock TFX taxi pipeline, in one run.

    .venv/bin/python bench/pipeline.py [--out bench/results]

Runs, one after the other in this process (TFX imported once), with
LocalDagRunner on the embedded taxi CSV, each in a fresh pipeline root (no
cache), with the same Beam arguments (`--beam-arg`, repeated; default: our
pipeline's default):

- the stock pipeline that ships in the `tfx` package (bench/stock.py: its
  Trainer runs 1000 steps, then Evaluator and Pusher);
- ours with the teacher at the same 1000 steps, plus the Distiller
  (1000 steps) and the student-vs-teacher Evaluator;
- ours again with `--cache-teacher-outputs`.

Reports each pipeline's wall time, their ratio and a per-component breakdown
from MLMD's execution times. Writes pipeline.json and pipeline.md.
"""
import argparse
import contextlib
import io
import os
import shutil
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
import stock  # pylint: disable=g-bad-import-order  # bench/stock.py
from distill_cli import main as cli  # pylint: disable=g-import-not-at-top
from distill_pipelines import report  # pylint: disable=g-import-not-at-top
from distill_pipelines import settings  # pylint: disable=g-import-not-at-top
from distill_pipelines.taxi import config as configs  # pylint: disable=g-import-not-at-top

STEPS = 1000


def _ours(root: str, beam_args, *flags: str) -> float:
  start = time.monotonic()
  with contextlib.redirect_stdout(io.StringIO()):
    code = cli.main(["run", "--pipeline-root", root, "--pipeline-name", "ours",
                     "--train-steps", str(STEPS), "--distill-steps", str(STEPS),
                     *[f"--beam-arg={a}" for a in beam_args], *flags])
  if code != 0:
    raise SystemExit(f"our pipeline failed (exit {code})")
  return time.monotonic() - start


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--work", default=os.path.join("bench", "work", "pipeline"))
  parser.add_argument("--beam-arg", action="append", dest="beam_args", default=None,
                      help="a Beam argument for both pipelines (repeat); default: "
                      "our pipeline's default Beam arguments")
  parser.add_argument("--name", default="pipeline", help="results file name")
  args = parser.parse_args(argv)
  beam_args = args.beam_args or settings.Settings.model_fields["beam_args"].get_default(
      call_default_factory=True)
  shutil.rmtree(args.work, ignore_errors=True)
  roots = {name: os.path.abspath(os.path.join(args.work, name.replace(", ", "_")))
           for name in ("stock", "ours", "ours, cached teacher")}
  import tfx.v1  # pylint: disable=g-import-not-at-top,unused-import  # import cost outside every timing
  wall = {"stock": stock.run(roots["stock"], configs.embedded_data_root(), beam_args),
          "ours": _ours(roots["ours"], beam_args),
          "ours, cached teacher": _ours(roots["ours, cached teacher"], beam_args,
                                        "--cache-teacher-outputs")}
  components = {
      name: {c.node_id: round(c.seconds, 1) for c in report.summarize(
          os.path.join(root, "metadata.sqlite"),
          stock.NAME if name == "stock" else "ours").components}
      for name, root in roots.items()}
  result = {"wall_seconds": wall,
            "ratio_to_stock": {k: v / wall["stock"] for k, v in wall.items()},
            "components_seconds": components, "steps": STEPS, "beam_args": beam_args}
  names = list(dict.fromkeys(n for c in components.values() for n in c))
  lines = ["| component (s) | " + " | ".join(components) + " |",
           "|---" * (len(components) + 1) + "|"]
  lines += [f"| {n} | " + " | ".join(str(c.get(n, "")) for c in components.values())
            + " |" for n in names]
  lines.append("| **wall time (s)** | " + " | ".join(
      f"**{wall[k]:.0f}** ({result['ratio_to_stock'][k]:.2f}x)" for k in components)
               + " |")
  lines.append(f"\nBeam arguments (both pipelines): {' '.join(beam_args)}")
  _common.save(args.out, args.name, result, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
