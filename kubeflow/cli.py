"""The `tfx-distill` command line: the local `run` and the Kubeflow commands.

    tfx-distill run ...                                   # here (pipelines/cli.py)
    tfx-distill compile --image IMAGE --pipeline-root gs://... --data-root gs://...
    tfx-distill submit --host URL --package PIPELINE.yaml
    tfx-distill schedule --host URL --package PIPELINE.yaml --cron "0 0 3 * * *"
    tfx-distill run-package PIPELINE.yaml --pipeline-root DIR

`compile` writes the pipeline `run` would run (the same flags, the same
`Settings`, the same `create_pipeline`) as a Kubeflow Pipelines (KFP v2)
package; `submit` starts a run of it on a KFP host and `schedule` makes that
a recurring run (kfp.Client); `run-package` executes a compiled package here,
task by task, as KFP's launcher would. Every command also reads its flags
from a YAML file (`--config`); flags on the command line win.
"""

import argparse
import os
import sys
import time
from typing import Dict, Optional, Sequence, Tuple

from distill_pipelines import cli as local_cli
from distill_pipelines import flags
from distill_pipelines.flags import InputError, is_remote, require
from distill_pipelines.taxi import config as demo

# The name Kubeflow commands use when none is given: the demo's.
DEFAULT_PIPELINE_NAME = demo.PIPELINE_NAME


def add_commands(commands) -> Dict[str, flags.Handler]:
  """Adds the Kubeflow commands to a subparsers action; returns their handlers."""
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
    sub.add_argument("--experiment", default=DEFAULT_PIPELINE_NAME,
                     help="KFP experiment, created if missing")
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
  return {"compile": _compile, "submit": _submit, "schedule": _schedule,
          "run-package": _run_package}


def _parser() -> Tuple[argparse.ArgumentParser, Dict[str, flags.Handler]]:
  parser = argparse.ArgumentParser(
      prog="tfx-distill",
      description="Distil a TFX teacher into a small student, gated by TFMA; "
      "run it here or on Kubeflow Pipelines.")
  commands = parser.add_subparsers(dest="command", required=True)
  handlers = {**local_cli.add_run_command(commands), **add_commands(commands)}
  return parser, handlers


def build_parser() -> argparse.ArgumentParser:
  """The parser of `tfx-distill`: `run` and the Kubeflow commands."""
  return _parser()[0]


def _compile(args: argparse.Namespace) -> int:
  require(args, "image", "pipeline_root", "data_root")
  if any(c.isspace() for c in args.image):
    raise InputError(f"--image {args.image!r} is not an image reference.")
  settings = flags.settings_from_args(args)
  if settings.reuse_teacher_spans:
    raise InputError(
        "--reuse-teacher-spans is decided per run from the pipeline's ML Metadata "
        "by `tfx-distill run`; a compiled package trains its teacher on every run. "
        "Leave it unset for `compile` (or import a teacher with --teacher-model).")
  if len(settings.teacher_models) > 1:
    raise InputError(
        "Several --teacher-model: the Distiller takes them as one TFX union "
        "channel, which TFX 1.16's Kubeflow V2 compiler refuses ('Only single "
        "Channel is supported'). Run them with `tfx-distill run`, or compile "
        "with one teacher.")
  output = args.output or f"{settings.pipeline_name}.yaml"
  if not output.endswith((".yaml", ".yml")):
    raise InputError(f"--output {output!r} must end in .yaml: kfp.Client refuses "
                     ".json packages.")
  from distill_kubeflow import compiler  # pylint: disable=g-import-not-at-top
  from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  try:
    definition = pipeline.create_pipeline(settings)
    path = compiler.compile_pipeline(definition, image=args.image,
                                     package_path=output)
  except ValueError as e:
    raise InputError(str(e)) from e
  package = compiler.load_package(path)
  print(f"Wrote {path}: {len(package.tasks)} tasks, {os.path.getsize(path):,} bytes, "
        f"image {args.image}, pipeline root {settings.pipeline_root}, pushing to "
        f"{settings.serving_model_dir}")
  return 0


def _check_package(args: argparse.Namespace, need_host: bool = True) -> str:
  require(args, *(("host", "package") if need_host else ("package",)))
  if not os.path.isfile(args.package):
    raise InputError(f"--package {args.package!r} does not exist; write it with "
                     "`tfx-distill compile`.")
  return os.path.abspath(args.package)


def _submit(args: argparse.Namespace) -> int:
  package = _check_package(args)
  from distill_kubeflow import client  # pylint: disable=g-import-not-at-top
  try:
    run = client.submit(args.host, package, experiment=args.experiment,
                        run_name=args.run_name)
  except client.HostError as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return 1
  print(f"Started run {run.id} in experiment {args.experiment!r}: {run.url}")
  return 0


def _schedule(args: argparse.Namespace) -> int:
  package = _check_package(args, need_host=not args.dry_run)
  require(args, "cron")
  from distill_kubeflow import client, cron  # pylint: disable=g-import-not-at-top
  try:
    expression = cron.check_cron(args.cron)
  except cron.CronError as e:
    raise InputError(f"--cron: {e}") from e
  name = args.name or f"{DEFAULT_PIPELINE_NAME}-retraining"
  if args.dry_run:
    import json  # pylint: disable=g-import-not-at-top
    body = client.recurring_run_request(
        package, name=name, cron_expression=expression,
        experiment_id=f"<id of experiment {args.experiment!r}>")
    target = client.redact(args.host) if args.host else "$KF_PIPELINES_ENDPOINT"
    print(f"POST {target}/apis/v2beta1/recurringruns (dry run: nothing sent)")
    print(json.dumps(body, indent=2, sort_keys=True))
    return 0
  try:
    job = client.schedule(args.host, package, name=name, cron_expression=expression,
                          experiment=args.experiment)
  except client.HostError as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return 1
  print(f"Scheduled {name!r} ({expression}, one run at a time, no catch-up) in "
        f"experiment {args.experiment!r}: {job.url}")
  return 0


def _run_package(args: argparse.Namespace) -> int:
  from distill_kubeflow import compiler, local_runner  # pylint: disable=g-import-not-at-top
  try:
    package = compiler.load_package(args.package)
  except compiler.PackageError as e:
    raise InputError(str(e)) from e
  root = args.pipeline_root or package.default_pipeline_root
  if is_remote(root):
    raise InputError(f"The package's pipeline root is {root!r}; give a local "
                     "--pipeline-root to run it here.")
  print(f"Package:  {package.path} ({len(package.tasks)} tasks)\nPipeline: "
        f"{os.path.abspath(root)}", flush=True)
  start = time.monotonic()
  report = lambda task, state: print(  # pylint: disable=unnecessary-lambda-assignment
      f"[{time.monotonic() - start:7.1f}s] {task:<20} {state}", flush=True)
  try:
    result = local_runner.run_package(package.path, root, run_id=args.run_id,
                                      on_task=report)
  except local_runner.TaskFailed as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return local_cli.EXIT_FAILED
  except compiler.PackageError as e:
    raise InputError(str(e)) from e
  skipped = sorted(n for n, t in result.tasks.items()
                   if t.state == local_runner.SKIPPED)
  print(f"Ran {len(result.tasks) - len(skipped)} of {len(result.tasks)} tasks in "
        f"{result.seconds:.1f}s under {result.run_root}"
        + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
  status, line = package_status(result.tasks)
  print(f"pushed:   {line}")
  return status


def package_status(tasks) -> Tuple[int, str]:
  """The exit status of a package run (the local CLI's codes) and what was
  pushed, read from the tasks' outputs: each gate's blessing, the student
  the Distiller chose, the Pusher's push."""
  from distill_components.distiller import properties  # pylint: disable=g-import-not-at-top
  from distill_kubeflow import local_runner  # pylint: disable=g-import-not-at-top
  from distill_pipelines import names  # pylint: disable=g-import-not-at-top

  def metadata(task: str, key: str) -> dict:
    run = tasks.get(task)
    found = run.artifacts(key) if run and run.state == local_runner.RAN else []
    return found[0].get("metadata", {}) if found else {}

  for gate, code in ((names.FIDELITY_EVALUATOR, local_cli.EXIT_FIDELITY),
                     (names.NO_REGRESSION_EVALUATOR, local_cli.EXIT_NO_REGRESSION)):
    blessing = metadata(gate, "blessing")
    if blessing and not blessing.get(properties.BLESSED):
      return code, f"nothing (the {names.GATES[gate]} gate did not bless the student)"
  pushed = metadata(names.PUSHER, "pushed_model")
  if pushed.get(properties.PUSHED):
    return 0, str(pushed.get(properties.PUSHED_DESTINATION))
  chosen = metadata(names.DISTILLER, "model").get(properties.STUDENT_CHOSEN)
  if names.PUSHER in tasks and chosen == properties.ALONE:
    return local_cli.EXIT_NO_GAIN, ("nothing (--require-gain: the student trained "
                                    "alone beat the distilled one)")
  if names.PUSHER not in tasks:
    return 0, "nothing (the package has no Pusher)"
  return local_cli.EXIT_FAILED, "nothing (the Pusher pushed nothing)"


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The `tfx-distill` console script: every command."""
  return flags.dispatch(*_parser(), argv)


if __name__ == "__main__":
  sys.exit(main())
