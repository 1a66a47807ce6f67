"""`tfx-distill`: every command, parsed here and run by the layer that owns it.

    tfx-distill run [--data-root DIR --label COLUMN] ...   # here (LocalDagRunner)
    tfx-distill compile --image IMAGE --pipeline-root gs://... --data-root gs://...
    tfx-distill submit --host URL --package PIPELINE.yaml
    tfx-distill schedule --host URL --package PIPELINE.yaml --cron "0 0 3 * * *"
    tfx-distill run-package PIPELINE.yaml --pipeline-root DIR

`run` and `compile` take the same pipeline flags (flags.py), made into one
`Settings` by `distill_pipelines.inputs.settings_from`; `run` runs it with
`distill_pipelines.local`, the others are `distill_kubeflow.commands`. Every
command also reads its flags from a YAML file (`--config`); flags on the
command line win. A refused input exits 2 before TFX is imported; every exit
status is in `distill_pipelines.exits`.
"""

import argparse
import os
import sys
from typing import Callable, Dict, Optional, Sequence

from distill_cli import flags
from distill_cli import presets
from distill_pipelines import exits
from distill_pipelines import inputs
from distill_pipelines.inputs import InputError

Handler = Callable[[argparse.Namespace], int]


def settings_from_args(args: argparse.Namespace, say=print):
  """The `Settings` parsed `run`/`compile` flags name; no --label: the
  default preset."""
  return inputs.settings_from(flags.values(args), preset=presets.load(), say=say,
                              name_of=flags.flag_name)



def _run(args: argparse.Namespace) -> int:
  from distill_pipelines import local  # pylint: disable=g-import-not-at-top
  return local.run(settings_from_args(args), verbose=args.verbose)


def _require(args: argparse.Namespace, *names: str) -> None:
  missing = [n for n in names if not getattr(args, n)]
  if missing:
    raise InputError(
        f"`{args.command}` needs {', '.join('--' + n.replace('_', '-') for n in missing)} "
        "(on the command line or in --config).")


def _compile(args: argparse.Namespace) -> int:
  _require(args, "image", "pipeline_root", "data_root")
  from distill_kubeflow import commands  # pylint: disable=g-import-not-at-top
  return commands.compile_package(settings_from_args(args), image=args.image,
                                  output=args.output)


def _submit(args: argparse.Namespace) -> int:
  _require(args, "host", "package")
  from distill_kubeflow import commands  # pylint: disable=g-import-not-at-top
  return commands.submit(args.host, args.package, experiment=args.experiment,
                         run_name=args.run_name)


def _schedule(args: argparse.Namespace) -> int:
  _require(args, *(("package", "cron") if args.dry_run else ("host", "package", "cron")))
  from distill_kubeflow import commands  # pylint: disable=g-import-not-at-top
  return commands.schedule(args.host, args.package, cron_expression=args.cron,
                           experiment=args.experiment, name=args.name,
                           dry_run=args.dry_run)


def _run_package(args: argparse.Namespace) -> int:
  from distill_kubeflow import commands  # pylint: disable=g-import-not-at-top
  return commands.run_package(args.package, pipeline_root=args.pipeline_root,
                              run_id=args.run_id)


def build_parser() -> argparse.ArgumentParser:
  """The parser of `tfx-distill`: `run` and the Kubeflow commands."""
  parser = argparse.ArgumentParser(
      prog="tfx-distill",
      description="Distil a TFX teacher into a small student, gated by TFMA; "
      "run it here or on Kubeflow Pipelines.")
  commands = parser.add_subparsers(dest="command", required=True)
  run = commands.add_parser(
      "run", help="run the pipeline locally (LocalDagRunner, SQLite MLMD)")
  run.add_argument("--data-root", default=None,
                   help="directory of CSV files (default: the demo CSV inside tfx)")
  run.add_argument("--pipeline-root", default="tfx_pipeline_output",
                   help="where artifacts, MLMD and the pushed model go")
  flags.add_pipeline_flags(run)
  run.add_argument("--verbose", action="store_true",
                   help="show the components' own output (TensorFlow, Beam, pip) "
                   "live instead of writing it to the run's log file")

  compile_ = commands.add_parser(
      "compile", help="write the pipeline as a Kubeflow Pipelines (v2) package")
  compile_.add_argument("--image", help="container image holding this project "
                        "(built from kubeflow/Dockerfile)")
  compile_.add_argument("--pipeline-root",
                        help="where the cluster writes artifacts, e.g. gs://BUCKET/root "
                        "or s3://BUCKET/root (MinIO)")
  compile_.add_argument("--data-root", help="directory of CSV files as the cluster "
                        "sees it, e.g. gs://BUCKET/data")
  compile_.add_argument("--output", default=None,
                        help="package file, .yaml (default: PIPELINE_NAME.yaml)")
  flags.add_pipeline_flags(compile_)

  submit = commands.add_parser("submit", help="start a run of a package on a KFP host")
  schedule = commands.add_parser(
      "schedule", help="make a package a recurring run on a KFP host (one at a "
      "time, no catch-up)")
  for sub in (submit, schedule):
    sub.add_argument("--config", help="YAML file of flag values")
    sub.add_argument("--host", default=os.environ.get("KF_PIPELINES_ENDPOINT"),
                     help="KFP API endpoint, e.g. http://localhost:8080 "
                     "(default: $KF_PIPELINES_ENDPOINT)")
    sub.add_argument("--package", help="the .yaml written by `compile`")
    sub.add_argument("--experiment", default=None,
                     help="KFP experiment, created if missing (default: the "
                     "package's pipeline name)")
  submit.add_argument("--run-name", default=None)
  schedule.add_argument("--cron", help="KFP cron: 6 fields, seconds first, e.g. "
                        "'0 0 3 * * *' for 03:00 daily; or '@daily', '@every 6h'")
  schedule.add_argument("--name", default=None,
                        help="recurring run name (default: PIPELINE_NAME-retraining)")
  schedule.add_argument("--dry-run", action="store_true",
                        help="print the request and send nothing")

  run_package = commands.add_parser(
      "run-package", help="execute a compiled package here, task by task, as the "
      "KFP launcher would")
  run_package.add_argument("package")
  run_package.add_argument("--pipeline-root", default=None,
                           help="local directory for the artifacts (default: the "
                           "package's own root)")
  run_package.add_argument("--run-id", default=None)
  return parser


HANDLERS: Dict[str, Handler] = {
    "run": _run, "compile": _compile, "submit": _submit, "schedule": _schedule,
    "run-package": _run_package}


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The `tfx-distill` console script: parses `argv` (with its --config) and
  runs its command; a refused input is printed and exits 2."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  args = parser.parse_args(argv)
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  try:
    sub = flags.subparsers(parser)[args.command]
    args = flags.apply_config(parser, sub, argv, args)
    return HANDLERS[args.command](args)
  except InputError as e:
    print(f"tfx-distill: error: {e}", file=sys.stderr)
    return exits.INPUT


if __name__ == "__main__":
  sys.exit(main())
