"""The Kubeflow commands: compile, submit, schedule, run a package here.

    tfx-distill compile --image IMAGE --pipeline-root gs://... --data-root gs://...
    tfx-distill submit --host URL --package PIPELINE.yaml
    tfx-distill schedule --host URL --package PIPELINE.yaml --cron "0 0 3 * * *"
    tfx-distill run-package PIPELINE.yaml --pipeline-root DIR

`compile_package` writes the pipeline `tfx-distill run` would run (the same
`Settings`, the same `create_pipeline`) as a Kubeflow Pipelines (KFP v2)
package; `submit` starts a run of it on a KFP host and `schedule` makes that
a recurring run (kfp.Client); `run_package` executes a compiled package here,
task by task, as KFP's launcher would. The command line (distill_cli) parses
the flags; these take plain values and return an exit status (`exits`).
"""

import os
import sys
import time
from typing import Optional, Tuple

from distill_pipelines import exits
from distill_pipelines.inputs import InputError, is_remote
from distill_pipelines.settings import Settings


def compile_package(settings: Settings, *, image: str,
                    output: Optional[str] = None) -> int:
  """Writes the package of `settings` for `image`; prints what it wrote."""
  if any(c.isspace() for c in image):
    raise InputError(f"--image {image!r} is not an image reference.")
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
  output = output or f"{settings.pipeline_name}.yaml"
  if not output.endswith((".yaml", ".yml")):
    raise InputError(f"--output {output!r} must end in .yaml: kfp.Client refuses "
                     ".json packages.")
  from distill_kubeflow import compiler  # pylint: disable=g-import-not-at-top
  from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  try:
    definition = pipeline.create_pipeline(settings)
    path = compiler.compile_pipeline(definition, image=image, package_path=output)
  except ValueError as e:
    raise InputError(str(e)) from e
  package = compiler.load_package(path)
  print(f"Wrote {path}: {len(package.tasks)} tasks, {os.path.getsize(path):,} bytes, "
        f"image {image}, pipeline root {settings.pipeline_root}, pushing to "
        f"{settings.serving_model_dir}")
  return exits.OK


def check_package(package: str):
  """The compiled package at `package` (InputError if there is none)."""
  from distill_kubeflow import compiler  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(package):
    raise InputError(f"--package {package!r} does not exist; write it with "
                     "`tfx-distill compile`.")
  try:
    return compiler.load_package(os.path.abspath(package))
  except compiler.PackageError as e:
    raise InputError(str(e)) from e


def submit(host: str, package: str, *, experiment: Optional[str] = None,
           run_name: Optional[str] = None) -> int:
  """Starts a run of `package` on `host` (experiment: the pipeline's name)."""
  loaded = check_package(package)
  experiment = experiment or loaded.name
  from distill_kubeflow import client  # pylint: disable=g-import-not-at-top
  try:
    run = client.submit(host, loaded.path, experiment=experiment, run_name=run_name)
  except client.HostError as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return exits.FAILED
  print(f"Started run {run.id} in experiment {experiment!r}: {run.url}")
  return exits.OK


def schedule(host: Optional[str], package: str, *, cron_expression: str,
             experiment: Optional[str] = None, name: Optional[str] = None,
             dry_run: bool = False) -> int:
  """Makes `package` a recurring run on `host` (one at a time, no catch-up);
  `dry_run` prints the request and sends nothing."""
  loaded = check_package(package)
  experiment = experiment or loaded.name
  name = name or f"{loaded.name}-retraining"
  from distill_kubeflow import client, cron  # pylint: disable=g-import-not-at-top
  try:
    expression = cron.check_cron(cron_expression)
  except cron.CronError as e:
    raise InputError(f"--cron: {e}") from e
  if dry_run:
    import json  # pylint: disable=g-import-not-at-top
    body = client.recurring_run_request(
        loaded.path, name=name, cron_expression=expression,
        experiment_id=f"<id of experiment {experiment!r}>")
    target = client.redact(host) if host else "$KF_PIPELINES_ENDPOINT"
    print(f"POST {target}/apis/v2beta1/recurringruns (dry run: nothing sent)")
    print(json.dumps(body, indent=2, sort_keys=True))
    return exits.OK
  try:
    job = client.schedule(host, loaded.path, name=name, cron_expression=expression,
                          experiment=experiment)
  except client.HostError as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return exits.FAILED
  print(f"Scheduled {name!r} ({expression}, one run at a time, no catch-up) in "
        f"experiment {experiment!r}: {job.url}")
  return exits.OK


def run_package(package: str, *, pipeline_root: Optional[str] = None,
                run_id: Optional[str] = None) -> int:
  """Executes a compiled package here, task by task; returns its exit status."""
  from distill_kubeflow import compiler, local_runner  # pylint: disable=g-import-not-at-top
  loaded = check_package(package)
  root = pipeline_root or loaded.default_pipeline_root
  if is_remote(root):
    raise InputError(f"The package's pipeline root is {root!r}; give a local "
                     "--pipeline-root to run it here.")
  print(f"Package:  {loaded.path} ({len(loaded.tasks)} tasks)\nPipeline: "
        f"{os.path.abspath(root)}", flush=True)
  start = time.monotonic()
  report = lambda task, state: print(  # pylint: disable=unnecessary-lambda-assignment
      f"[{time.monotonic() - start:7.1f}s] {task:<20} {state}", flush=True)
  try:
    result = local_runner.run_package(loaded.path, root, run_id=run_id,
                                      on_task=report)
  except local_runner.TaskFailed as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return exits.FAILED
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
  """The exit status of a package run (the same codes as a local run) and
  what was pushed, read from the tasks' outputs: each gate's blessing, the
  student the Distiller chose, the Pusher's push."""
  from distill_components.distiller import properties  # pylint: disable=g-import-not-at-top
  from distill_kubeflow import local_runner  # pylint: disable=g-import-not-at-top
  from distill_pipelines import names  # pylint: disable=g-import-not-at-top

  def metadata(task: str, key: str) -> dict:
    run = tasks.get(task)
    found = run.artifacts(key) if run and run.state == local_runner.RAN else []
    return found[0].get("metadata", {}) if found else {}

  for gate, code in ((names.FIDELITY_EVALUATOR, exits.FIDELITY),
                     (names.NO_REGRESSION_EVALUATOR, exits.NO_REGRESSION)):
    blessing = metadata(gate, names.BLESSING_KEY)
    if blessing and not blessing.get(properties.BLESSED):
      return code, f"nothing (the {names.GATES[gate]} gate did not bless the student)"
  pushed = metadata(names.PUSHER, names.PUSHED_MODEL_KEY)
  if pushed.get(properties.PUSHED):
    return exits.OK, str(pushed.get(properties.PUSHED_DESTINATION))
  chosen = metadata(names.DISTILLER, names.MODEL_KEY).get(properties.STUDENT_CHOSEN)
  if names.PUSHER in tasks and chosen == properties.ALONE:
    return exits.NO_GAIN, ("nothing (--require-gain: the student trained "
                           "alone beat the distilled one)")
  if names.PUSHER not in tasks:
    return exits.OK, "nothing (the package has no Pusher)"
  return exits.FAILED, "nothing (the Pusher pushed nothing)"
