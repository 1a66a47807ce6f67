"""Where the Distiller component's time goes.

    .venv/bin/python bench/distiller_profile.py [--pipeline-root bench/work/quality]

Reads a pipeline run (run bench/quality.py first): its newest Distiller
execution's properties, the Transform's outputs and the Trainer's teacher.
Runs the Distiller's executor on them in this process, once online and once
with `cache_teacher_outputs`, and splits its wall time into stages by timing
the functions that do them (wrapped where the executor looks them up; no
profiler, whose overhead would inflate the tracing-heavy stages). The component's
time in MLMD, for the same pipeline run, minus the executor's is what TFX's
launcher adds around it (resolving artifacts, installing the module-file
wheel with pip). Writes distiller_profile.json and distiller_profile.md.
"""
import argparse
import contextlib
import functools
import json
import os
import shutil
import sys
import time

from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as std

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_components.distiller import executor
from distill_components.distiller import export
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import training
from distill_components.distiller import spec as spec_lib
from distill_pipelines.taxi import config as configs
from distill_pipelines import report

# Stage -> (owner, attribute) of the function that does it; the executor
# reaches each through its module, so a timing wrapper put there sees it.
STAGES = {
    "load the teacher SavedModel": (teacher_lib.Teacher, "__init__"),
    "write the teacher-output cache": (teacher_cache, "write"),
    "train (Distillation.fit)": (training.Distillation, "fit"),
    "score the eval split": (training.Distillation, "evaluate"),
    "export the student (with the Transform graph)": (export, "save_model"),
    "SavedModel sizes on disk": (export, "saved_model_bytes"),
}


@contextlib.contextmanager
def _timed_stages():
  """Wall seconds spent in each stage's function while the block runs."""
  seconds = {stage: 0.0 for stage in STAGES}
  originals = {stage: getattr(owner, name) for stage, (owner, name) in STAGES.items()}

  def wrap(stage, fn):
    @functools.wraps(fn)
    def timed(*args, **kwargs):
      start = time.perf_counter()
      try:
        return fn(*args, **kwargs)
      finally:
        seconds[stage] += time.perf_counter() - start
    return timed

  for stage, (owner, name) in STAGES.items():
    setattr(owner, name, wrap(stage, originals[stage]))
  try:
    yield seconds
  finally:
    for stage, (owner, name) in STAGES.items():
      setattr(owner, name, originals[stage])


def _exec_properties(store):
  """The newest Distiller execution's properties, with the module file."""
  [execution_type] = [t for t in store.get_execution_types() if t.name.endswith(".Distiller")]
  execution = max(store.get_executions_by_type(execution_type.name), key=lambda e: e.id)
  properties = {}
  for name, value in execution.custom_properties.items():
    kind = value.WhichOneof("value")
    properties[name] = getattr(value, kind)
  # The launcher installed a module file as a wheel; here the file is loaded.
  # A student named by Python path (today's demo) is imported as it is.
  if properties.pop("module_path", None) or properties.get(std.MODULE_FILE_KEY):
    properties[std.MODULE_FILE_KEY] = configs.STUDENT_MODULE
  return properties


def _profiled_run(inputs, properties, out_dir):
  shutil.rmtree(out_dir, ignore_errors=True)
  model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
  model.uri, model_run.uri = os.path.join(out_dir, "model"), os.path.join(out_dir, "run")
  soft_labels = standard_artifacts.Examples()
  soft_labels.uri = os.path.join(out_dir, "soft_labels")
  context = base_beam_executor.BaseBeamExecutor.Context(
      tmp_dir=os.path.join(out_dir, "tmp"), unique_id="profile",
      beam_pipeline_args=["--direct_num_workers=1"])
  with _timed_stages() as stages:
    start = time.perf_counter()
    executor.Executor(context).Do(
        inputs, {"model": [model], "model_run": [model_run], "soft_labels": [soft_labels]},
        properties)
    total = time.perf_counter() - start
  stages = dict(stages)
  stages["other (student module, input checks, datasets, first batch, metadata)"] = (
      total - sum(stages.values()))
  return total, stages


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", default=os.path.join("bench", "work", "quality"))
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  args = parser.parse_args(argv)
  root = os.path.abspath(args.pipeline_root)
  store = report.open_store(os.path.join(root, "metadata.sqlite"))
  inputs = {"teacher_model": [_common.newest_artifact(store, "Model", "Trainer")],
            "examples": [_common.newest_artifact(store, "Examples", "Transform")],
            "transform_graph": [_common.newest_artifact(store, "TransformGraph", "Transform")]}
  properties = _exec_properties(store)
  component_seconds = {c.node_id: c.seconds for c in report.summarize(
      os.path.join(root, "metadata.sqlite"), "bench-quality").components}.get("Distiller")

  runs = {}
  for name, cached in (("online", 0), ("cached teacher outputs", 1)):
    total, stages = _profiled_run(
        inputs, dict(properties, **{spec_lib.CACHE_TEACHER_OUTPUTS_KEY: cached}),
        os.path.join(root, "distiller_profile", name.replace(" ", "_")))
    runs[name] = {"executor_seconds": total, "stages_seconds": stages}

  lines = ["| stage (s) | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
  for stage in next(iter(runs.values()))["stages_seconds"]:
    lines.append(f"| {stage} | " + " | ".join(
        f"{r['stages_seconds'][stage]:.1f}" for r in runs.values()) + " |")
  lines.append("| **executor, total** | " + " | ".join(
      f"**{r['executor_seconds']:.1f}**" for r in runs.values()) + " |")
  if component_seconds is not None:
    steps = json.loads(properties["train_args"])["num_steps"]
    cached = properties.get(spec_lib.CACHE_TEACHER_OUTPUTS_KEY, 0)
    lines += ["", f"The Distiller component of that pipeline run ({steps} steps, "
              f"cache_teacher_outputs={cached}) took {component_seconds:.1f} s in MLMD."]
  _common.save(args.out, "distiller_profile",
               {"runs": runs, "component_seconds_in_mlmd": component_seconds,
                "exec_properties": properties}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
