"""`tfx-distill`: the command line.

    tfx-distill run [--data-root DIR] [--pipeline-root DIR] [--train-steps N] ...

Every input is checked before TFX is imported (importing it takes half a
minute here), so a bad flag or data directory fails at once with a message
that names the problem.
"""

import argparse
import csv
import glob
import importlib.util
import os
import sys
from typing import List, Optional, Sequence

from distill_pipelines import configs


class InputError(ValueError):
  """A command-line input that cannot work; the message says why."""


def embedded_data_root() -> str:
  """The Chicago taxi CSV directory that ships inside the tfx package.

  Found without importing tfx, which is slow.
  """
  spec = importlib.util.find_spec("tfx")
  if spec is None or not spec.submodule_search_locations:
    raise InputError("The tfx package is not installed; run `make env`.")
  return os.path.join(list(spec.submodule_search_locations)[0], "examples",
                      "chicago_taxi_pipeline", "data", "simple")


def check_data_root(data_root: str, required_columns: Sequence[str]) -> List[str]:
  """Returns the CSV files under data_root; raises InputError if unusable."""
  if not os.path.isdir(data_root):
    raise InputError(f"--data-root {data_root!r} is not a directory.")
  files = sorted(glob.glob(os.path.join(data_root, "*.csv")))
  if not files:
    found = sorted(os.listdir(data_root))[:5]
    raise InputError(
        f"--data-root {data_root!r} holds no .csv file (found {found or 'nothing'}); "
        "CsvExampleGen needs CSV files with a header row.")
  for path in files:
    with open(path, newline="", encoding="utf-8") as f:
      header = next(csv.reader(f), [])
    missing = [c for c in required_columns if c not in header]
    if missing:
      raise InputError(
          f"{path} has no column {', '.join(map(repr, missing))}, which the label "
          f"(big tipper: tips > 20% of fare) is computed from; its header is "
          f"{header}.")
  return files


def _positive_int(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
  if value <= 0:
    raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
  return value


def _float_in(low: float, high: float, low_open: bool = False):
  def parse(text: str) -> float:
    try:
      value = float(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value > high or value < low or (low_open and value == low):
      bound = "(" if low_open else "["
      raise argparse.ArgumentTypeError(f"must lie in {bound}{low}, {high}], got {value}")
    return value
  return parse


def _add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--pipeline-name", default=configs.PIPELINE_NAME)
  parser.add_argument("--train-steps", type=_positive_int, default=configs.TRAIN_STEPS,
                      help="teacher training steps")
  parser.add_argument("--eval-steps", type=_positive_int, default=configs.EVAL_STEPS)
  parser.add_argument("--distill-steps", type=_positive_int,
                      default=configs.DISTILL_TRAIN_STEPS,
                      help="student (Distiller) training steps")
  parser.add_argument("--temperature", type=_float_in(0, float("inf"), low_open=True),
                      default=configs.TEMPERATURE)
  parser.add_argument("--alpha", type=_float_in(0, 1), default=configs.ALPHA,
                      help="weight of the soft (teacher) term; 1 = soft labels only")
  parser.add_argument("--auc-floor", type=_float_in(0, 1), default=configs.AUC_FLOOR,
                      help="the student's AUC must reach this to be blessed")
  parser.add_argument("--max-auc-drop", type=_float_in(0, 1),
                      default=configs.MAX_AUC_DROP,
                      help="the student's AUC may lie at most this far below the teacher's")
  parser.add_argument("--beam-arg", action="append", dest="beam_args", default=None,
                      metavar="--FLAG=VALUE",
                      help="a Beam pipeline argument; repeat for more "
                      "(default: --direct_num_workers=1)")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="tfx-distill",
      description="Distil a TFX teacher into a small student, gated by TFMA.")
  commands = parser.add_subparsers(dest="command", required=True)
  run = commands.add_parser(
      "run", help="run the pipeline locally (LocalDagRunner, SQLite MLMD)")
  run.add_argument("--data-root", default=None,
                   help="directory of CSV files (default: the taxi CSV inside tfx)")
  run.add_argument("--pipeline-root", default="tfx_pipeline_output",
                   help="where artifacts, MLMD and the pushed model go")
  run.add_argument("--serving-dir", default=None,
                   help="Pusher destination (default: PIPELINE_ROOT/serving_model)")
  run.add_argument("--student-module", default=configs.STUDENT_MODULE,
                   help="module file defining build_student(fn_args) "
                   "(default: the taxi student)")
  run.add_argument("--no-cache", action="store_true",
                   help="rerun every component even when its inputs did not change")
  _add_pipeline_flags(run)
  return parser


def _define(args: argparse.Namespace, *, data_root: str, pipeline_root: str,
            serving_dir: str, metadata_path: str, student_module: str):
  """The pipeline for `run`, from the flags. Imports TFX (slow)."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.create_pipeline(
      pipeline_name=args.pipeline_name,
      pipeline_root=pipeline_root,
      data_root=data_root,
      preprocessing_module=configs.PREPROCESSING_MODULE,
      teacher_module=configs.TEACHER_MODULE,
      student_module=student_module,
      serving_model_dir=serving_dir,
      label_key=configs.LABEL_KEY,
      raw_label_keys=configs.RAW_LABEL_KEYS,
      train_steps=args.train_steps,
      eval_steps=args.eval_steps,
      distill_train_steps=args.distill_steps,
      temperature=args.temperature,
      alpha=args.alpha,
      auc_floor=args.auc_floor,
      max_auc_drop=args.max_auc_drop,
      beam_pipeline_args=args.beam_args or ["--direct_num_workers=1"],
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              metadata_path)),
      enable_cache=not args.no_cache)


def _run(args: argparse.Namespace) -> int:
  data_root = os.path.abspath(args.data_root or embedded_data_root())
  check_data_root(data_root, configs.LABEL_SOURCE_COLUMNS)
  student_module = os.path.abspath(args.student_module)
  if not os.path.isfile(student_module):
    raise InputError(f"--student-module {student_module!r} does not exist.")
  pipeline_root = os.path.abspath(args.pipeline_root)
  serving_dir = os.path.abspath(
      args.serving_dir or os.path.join(pipeline_root, "serving_model"))
  metadata_path = os.path.join(pipeline_root, "metadata.sqlite")
  print(f"Data:     {data_root}\nPipeline: {pipeline_root}", flush=True)

  # Imported here: the checks above must not wait for TFX.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from distill_pipelines import report  # pylint: disable=g-import-not-at-top

  os.makedirs(pipeline_root, exist_ok=True)
  try:
    definition = _define(args, data_root=data_root, pipeline_root=pipeline_root,
                         serving_dir=serving_dir, metadata_path=metadata_path,
                         student_module=student_module)
  except ValueError as e:  # A component refused its settings: nothing ran yet.
    raise InputError(str(e)) from e
  error = None
  with report.ProgressReporter(metadata_path, args.pipeline_name):
    try:
      tfx.orchestration.LocalDagRunner().run(definition)
    except Exception as e:  # pylint: disable=broad-except
      error = e
  summary = report.summarize(metadata_path, args.pipeline_name)
  print("\n" + report.render(summary), flush=True)
  if error is not None:
    print(f"\ntfx-distill: the pipeline failed: {type(error).__name__}: {error}",
          file=sys.stderr)
    return 1
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  try:
    if args.command == "run":
      return _run(args)
  except InputError as e:
    print(f"tfx-distill: error: {e}", file=sys.stderr)
    return 2
  return 2


if __name__ == "__main__":
  sys.exit(main())
