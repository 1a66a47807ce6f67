"""Run a compiled KFP package here, task by task, as a KFP launcher would.

No cluster runs on a laptop or a CI machine, yet what we deploy must be what
runs. This walks the package's DAG in dependency order and, for each task,
does what the KFP v2 launcher does around a container:

1. It builds the task's `ExecutorInput`: the compile-time parameters, the
   upstream tasks' output artifacts (URI, metadata, type) and fresh output
   artifacts under `PIPELINE_ROOT/PIPELINE_NAME/RUN_ID/TASK/OUTPUT`, plus the
   `outputFile` where the container reports its `ExecutorOutput`.
2. If the executor has a `preCacheCheck` command (TFX's ExampleGen driver,
   which resolves `{SPAN}` patterns and fingerprints the input), it runs it
   first and folds what it reports into the task's parameters and output
   artifacts, as Vertex AI Pipelines does.
3. It runs the container's own command and arguments, unchanged but for the
   `{{$}}` placeholder, in a subprocess of this machine's Python (which must
   have the image's packages: this project and the lock file).
4. It reads the `ExecutorOutput` back; those artifacts, with the metadata the
   executor wrote, are what downstream tasks receive.

Tasks that are not containers are done as KFP's driver does them: an
importer's artifact is registered from its URI; a task with a trigger
condition (a `tfx.dsl.Cond`) runs only when its CEL expression, evaluated with
`cel-python` on the task's inputs, is true, and is skipped otherwise (so is
anything downstream of a skipped task). A resolver task queries ML Metadata on
a cluster; here there is none, so it finds nothing, as on a pipeline's first
run (the no-regression gate then runs without a baseline).

It does not emulate KFP's step cache: every task runs.
"""
import copy
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import celpy
from google.protobuf import json_format
from google.protobuf import struct_pb2

from distill_kubeflow import compiler

PLACEHOLDER = "{{$}}"


class TaskFailed(RuntimeError):
  """A task's container exited non-zero or reported nothing."""

  def __init__(self, task: str, message: str, log_path: str):
    super().__init__(f"Task {task} failed: {message} (log: {log_path})")
    self.task = task
    self.log_path = log_path


# TaskRun.state
RAN, IMPORTED, RESOLVED, SKIPPED = "ran", "imported", "resolved", "skipped"


@dataclasses.dataclass
class TaskRun:
  name: str
  seconds: float
  executor_input: dict
  executor_output: dict
  log_path: str
  state: str = RAN
  # Why a skipped task did not run.
  reason: str = ""

  def artifacts(self, key: str) -> List[dict]:
    """Every artifact of output `key` (none for a skipped or empty resolver)."""
    return self.executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [])

  def output(self, key: str) -> dict:
    """The output artifact `key` as the executor reported it."""
    found = self.artifacts(key)
    if not found:
      raise KeyError(f"Task {self.name} ({self.state}) has no {key!r} artifact.")
    return found[0]


@dataclasses.dataclass
class PackageRun:
  run_id: str
  run_root: str
  tasks: Dict[str, TaskRun]
  seconds: float


def _substitute(args: List[str], executor_input: dict) -> List[str]:
  serialized = json.dumps(executor_input, sort_keys=True)
  out = []
  for arg in args:
    if arg == PLACEHOLDER:
      out.append(serialized)
    elif "{{$" in arg:
      raise compiler.PackageError(
          f"The local runner only fills the whole-input placeholder {PLACEHOLDER}; "
          f"found {arg!r}.")
    else:
      out.append(arg)
  return out


def _exec(command: List[str], log_path: str, env: Dict[str, str]) -> int:
  with open(log_path, "ab") as log:
    log.write(("$ " + " ".join(c if len(c) < 200 else c[:200] + "..."
                               for c in command) + "\n").encode())
    log.flush()
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                          env=env, check=False).returncode


def _tail(path: str, lines: int = 25) -> str:
  with open(path, encoding="utf-8", errors="replace") as f:
    return "".join(f.readlines()[-lines:])


def _read_json(path: str) -> dict:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def run_package(package_path: str, pipeline_root: Optional[str] = None,
                run_id: Optional[str] = None,
                on_task: Optional[Callable[[str, str], None]] = None) -> PackageRun:
  """Runs every task of the package at `package_path`; see the module doc.

  Args:
    package_path: a package written by `compiler.compile_pipeline`.
    pipeline_root: a local directory for the run's artifacts; default: the
      package's `defaultPipelineRoot`.
    run_id: names the run's directory; default: a timestamp.
    on_task: called with (task name, "running" | "complete (N s)").

  Raises:
    TaskFailed: a task failed; nothing downstream of it ran.
  """
  package = compiler.load_package(package_path)
  pipeline_root = os.path.abspath(pipeline_root or package.default_pipeline_root)
  run_id = run_id or datetime.datetime.now().strftime("run-%Y%m%d-%H%M%S")
  run_root = os.path.join(pipeline_root, package.name, run_id)
  env = dict(os.environ)
  # The container's `python` is this interpreter.
  env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
  env.setdefault("TF_USE_LEGACY_KERAS", "1")
  on_task = on_task or (lambda name, state: None)

  runs: Dict[str, TaskRun] = {}
  start = time.monotonic()
  for task in package.tasks:
    task_root = os.path.join(run_root, task.name)
    os.makedirs(task_root, exist_ok=True)
    log_path = os.path.join(task_root, "log.txt")
    output_file = os.path.join(task_root, "executor_output.json")
    skipped_upstream = [u for u in task.upstream if runs[u].state == SKIPPED]
    executor_input = {
        "inputs": {
            "parameterValues": dict(task.input_parameters),
            "artifacts": {
                name: {"artifacts": [
                    dict(artifact, type={"schemaTitle": task.input_artifact_types[name]})
                    for artifact in runs[producer].artifacts(key)]}
                for name, (producer, key) in task.input_artifacts.items()
            },
        },
        "outputs": {
            "artifacts": {
                key: {"artifacts": [{
                    "name": f"{package.name}/{run_id}/{task.name}/{key}",
                    "type": {"schemaTitle": title},
                    "uri": os.path.join(task_root, key),
                }]}
                for key, title in task.output_artifacts.items()
            },
            "outputFile": output_file,
        },
    }
    if skipped_upstream or (task.condition and
                            not _condition_holds(task, executor_input)):
      reason = (f"upstream {', '.join(skipped_upstream)} skipped" if skipped_upstream
                else f"condition false: {task.condition}")
      runs[task.name] = TaskRun(task.name, 0.0, executor_input, {}, log_path,
                                state=SKIPPED, reason=reason)
      on_task(task.name, f"skipped ({reason})")
      continue
    if task.kind == "resolver":
      runs[task.name] = TaskRun(
          task.name, 0.0, executor_input,
          {"artifacts": {key: {"artifacts": []} for key in task.output_artifacts}},
          log_path, state=RESOLVED)
      on_task(task.name, "resolved nothing (no ML Metadata here, as on a first run)")
      continue
    if task.kind == "importer":
      [(key, title)] = task.output_artifacts.items()
      artifact = {"name": f"{package.name}/{run_id}/{task.name}/{key}",
                  "type": {"schemaTitle": title}, "uri": task.importer_uri,
                  "metadata": dict(task.importer_metadata)}
      runs[task.name] = TaskRun(task.name, 0.0, executor_input,
                                {"artifacts": {key: {"artifacts": [artifact]}}},
                                log_path, state=IMPORTED)
      on_task(task.name, f"imported {task.importer_uri}")
      continue
    on_task(task.name, "running")
    t0 = time.monotonic()
    if task.pre_cache_check:
      code = _exec(_substitute(task.pre_cache_check, executor_input), log_path, env)
      if code != 0 or not os.path.exists(output_file):
        raise TaskFailed(task.name, f"its preCacheCheck exited {code}:\n"
                         + _tail(log_path), log_path)
      executor_input = _fold_driver_output(executor_input, _read_json(output_file))
    code = _exec(task.command + _substitute(task.args, executor_input), log_path, env)
    if code != 0:
      raise TaskFailed(task.name, f"its container exited {code}:\n" + _tail(log_path),
                       log_path)
    if not os.path.exists(output_file):
      raise TaskFailed(task.name, "it wrote no executor output", log_path)
    executor_output = _read_json(output_file)
    # An output the executor reported nothing about keeps what it was given.
    reported = executor_output.setdefault("artifacts", {})
    for key, given in executor_input["outputs"]["artifacts"].items():
      reported.setdefault(key, copy.deepcopy(given))
      for artifact in reported[key]["artifacts"]:
        artifact.setdefault("name", given["artifacts"][0]["name"])
    seconds = time.monotonic() - t0
    runs[task.name] = TaskRun(task.name, seconds, executor_input, executor_output,
                              log_path)
    on_task(task.name, f"complete ({seconds:.1f}s)")
  return PackageRun(run_id=run_id, run_root=run_root, tasks=runs,
                    seconds=time.monotonic() - start)


def _as_struct(value):
  """`value` as KFP holds it: a protobuf Struct, where every number is a double."""
  return json_format.MessageToDict(json_format.ParseDict({"v": value},
                                                         struct_pb2.Struct()))["v"]


def _condition_holds(task: compiler.Task, executor_input: dict) -> bool:
  """Evaluates the task's trigger condition (CEL) as KFP's driver does."""
  inputs = executor_input["inputs"]
  activation = {"inputs": celpy.json_to_cel(_as_struct({
      "artifacts": inputs["artifacts"],
      "parameter_values": inputs["parameterValues"]}))}
  environment = celpy.Environment()
  try:
    result = environment.program(environment.compile(task.condition)).evaluate(
        activation)
  except celpy.CELParseError as e:
    raise compiler.PackageError(
        f"Task {task.name}: cannot read its condition {task.condition!r}: {e}") from e
  except celpy.CELEvalError as e:
    result = e
  if isinstance(result, celpy.CELEvalError):
    raise compiler.PackageError(
        f"Task {task.name}: its condition {task.condition!r} cannot be evaluated "
        f"on its inputs: {result.args[0]}") from None
  return bool(result)


def _fold_driver_output(executor_input: dict, driver_output: dict) -> dict:
  """What the service does with a preCacheCheck's ExecutorOutput."""
  updated = copy.deepcopy(executor_input)
  updated["inputs"]["parameterValues"].update(
      driver_output.get("parameterValues", {}))
  for key, artifact_list in driver_output.get("artifacts", {}).items():
    given = updated["outputs"]["artifacts"][key]["artifacts"][0]
    reported = artifact_list["artifacts"][0]
    given["metadata"] = dict(given.get("metadata", {}),
                             **reported.get("metadata", {}))
  return updated
