"""Compile the pipeline for Kubeflow Pipelines (KFP v2) and read it back.

The package is TFX's own `KubeflowV2DagRunner` output for the same
`create_pipeline(...)` the local runner uses, in the KFP pipeline-spec schema
2.1 that KFP 2 backends and Vertex AI Pipelines read, as YAML (`kfp.Client`
refuses `.json` packages). TFX keeps the pipeline root only in a PipelineJob's
runtime config, which a YAML package does not carry, so the root is written
into the spec's `defaultPipelineRoot`, where KFP looks for it when a run does
not name one.
"""
import dataclasses
import graphlib
import os
import tempfile
from typing import Dict, List, Mapping, Sequence

import yaml
from google.protobuf import json_format
from kfp import components as kfp_components
from kfp.pipeline_spec import pipeline_spec_pb2

# Where the default image's Dockerfile lives, relative to the repository root.
DOCKERFILE = os.path.join("kubeflow", "Dockerfile")


class PackageError(ValueError):
  """A pipeline package that cannot be compiled or read; the message says why."""


def compile_pipeline(pipeline, *, image: str, package_path: str) -> str:
  """Writes `pipeline` as a KFP v2 package at `package_path` (.yaml / .yml).

  Args:
    pipeline: a `tfx.dsl.Pipeline` (from `create_pipeline`).
    image: the container image every task runs in; it must hold this project
      (see kubeflow/Dockerfile).
    package_path: the file to write.

  Returns:
    The absolute path written.
  """
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  if not package_path.endswith((".yaml", ".yml")):
    raise PackageError(
        f"The package must be a .yaml file (kfp.Client refuses .json); got "
        f"{package_path!r}.")
  package_path = os.path.abspath(package_path)
  os.makedirs(os.path.dirname(package_path), exist_ok=True)
  # Written beside the target and moved into place only when complete: a
  # failed compile leaves no half-written package behind.
  with tempfile.TemporaryDirectory(dir=os.path.dirname(package_path)) as staging:
    staged = os.path.join(staging, os.path.basename(package_path))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),
        output_dir=staging, output_filename=os.path.basename(package_path))
    runner.run(pipeline)
    _set_default_pipeline_root(staged, pipeline.pipeline_info.pipeline_root)
    os.replace(staged, package_path)
  return package_path


def _set_default_pipeline_root(package_path: str, pipeline_root: str) -> None:
  with open(package_path, encoding="utf-8") as f:
    text = f.read()
  header = "".join(line for line in text.splitlines(keepends=True)
                   if line.startswith("#"))
  spec = yaml.safe_load(text)
  spec["defaultPipelineRoot"] = pipeline_root
  with open(package_path, "w", encoding="utf-8") as f:
    f.write(header)
    yaml.safe_dump(spec, f, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class Task:
  """One task of a compiled package, as a KFP launcher would see it."""
  name: str
  upstream: List[str]
  # "container" (a TFX executor in the image), "importer" (an artifact
  # registered from a URI) or "resolver" (an ML Metadata query, no container).
  kind: str
  image: str
  command: List[str]
  args: List[str]
  # The command KFP runs before the cache check (TFX's ExampleGen driver,
  # which resolves spans), or empty.
  pre_cache_check: List[str]
  executor_class_path: str
  # input name -> (producer task, its output key)
  input_artifacts: Dict[str, tuple]
  # input name -> the constant given at compile time (JSON value)
  input_parameters: Dict[str, object]
  # output name -> artifact schema title, e.g. "tfx.Model"
  output_artifacts: Dict[str, str]
  # input name -> artifact schema title
  input_artifact_types: Dict[str, str]
  # The CEL expression KFP checks before running the task (a `tfx.dsl.Cond`),
  # or empty: the task always runs once its upstream tasks did.
  condition: str = ""
  # resolver: output name -> the ML Metadata filter KFP queries with.
  resolver_queries: Dict[str, str] = dataclasses.field(default_factory=dict)
  # importer: the artifact's URI and the metadata it is registered with.
  importer_uri: str = ""
  importer_metadata: Dict[str, object] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Package:
  path: str
  spec: pipeline_spec_pb2.PipelineSpec
  tasks: List[Task]  # in an order where every task follows its producers

  @property
  def name(self) -> str:
    return self.spec.pipeline_info.name

  @property
  def default_pipeline_root(self) -> str:
    return self.spec.default_pipeline_root

  def task(self, name: str) -> Task:
    for t in self.tasks:
      if t.name == name:
        return t
    raise KeyError(name)


def _schema_title(artifact_spec) -> str:
  kind = artifact_spec.artifact_type.WhichOneof("kind")
  if kind == "schema_title":
    return artifact_spec.artifact_type.schema_title
  return yaml.safe_load(artifact_spec.artifact_type.instance_schema)["title"]


def _flag_value(args: Sequence[str], flag: str) -> str:
  for i, arg in enumerate(args[:-1]):
    if arg == flag:
      return args[i + 1]
  return ""


def load_package(package_path: str) -> Package:
  """Reads a compiled package back with `kfp` and lists its tasks in order."""
  if not os.path.isfile(package_path):
    raise PackageError(f"No pipeline package at {package_path!r}; run "
                       "`tfx-distill compile` first.")
  spec = kfp_components.load_component_from_file(package_path).pipeline_spec
  deployment = pipeline_spec_pb2.PipelineDeploymentConfig()
  json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                        deployment, ignore_unknown_fields=True)
  tasks = {}
  for name, task_spec in spec.root.dag.tasks.items():
    component = spec.components[task_spec.component_ref.name]
    executor = deployment.executors[component.executor_label]
    kind = executor.WhichOneof("spec")
    if kind not in ("container", "importer", "resolver"):
      raise PackageError(f"Task {name} is a {kind} task; this project compiles "
                         "only containers, importers and resolvers.")
    container = executor.container
    inputs = {k: (v.task_output_artifact.producer_task,
                  v.task_output_artifact.output_artifact_key)
              for k, v in task_spec.inputs.artifacts.items()}
    parameters = {
        k: json_format.MessageToDict(v.runtime_value.constant)
        for k, v in task_spec.inputs.parameters.items()
        if v.runtime_value.HasField("constant")}
    pre = container.lifecycle.pre_cache_check
    tasks[name] = Task(
        name=name,
        upstream=sorted(set(task_spec.dependent_tasks) |
                        {p for p, _ in inputs.values()}),
        kind=kind,
        image=container.image,
        command=list(container.command),
        args=list(container.args),
        pre_cache_check=list(pre.command) + list(pre.args),
        executor_class_path=_flag_value(container.args, "--executor_class_path"),
        input_artifacts=inputs,
        input_parameters=parameters,
        output_artifacts={k: _schema_title(v) for k, v in
                          component.output_definitions.artifacts.items()},
        input_artifact_types={k: _schema_title(v) for k, v in
                              component.input_definitions.artifacts.items()},
        condition=task_spec.trigger_policy.condition,
        resolver_queries={k: q.filter for k, q in
                          executor.resolver.output_artifact_queries.items()},
        importer_uri=json_format.MessageToDict(
            executor.importer.artifact_uri.constant) if kind == "importer" else "",
        importer_metadata=json_format.MessageToDict(executor.importer.metadata))
  return Package(path=os.path.abspath(package_path), spec=spec,
                 tasks=_in_dependency_order(tasks))


def _in_dependency_order(tasks: Mapping[str, Task]) -> List[Task]:
  """Producers first; among tasks ready together, by name (a stable order)."""
  graph = graphlib.TopologicalSorter({n: tasks[n].upstream for n in sorted(tasks)})
  try:
    graph.prepare()
  except graphlib.CycleError as e:
    raise PackageError(f"The package's tasks form a cycle: {e.args[1]}") from None
  ordered = []
  while graph.is_active():
    ready = sorted(graph.get_ready())
    ordered.extend(tasks[n] for n in ready)
    graph.done(*ready)
  return ordered
