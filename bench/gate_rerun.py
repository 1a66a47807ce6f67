"""Re-run one gate's Evaluator executor on a finished run's inputs, timed.

    .venv/bin/python bench/gate_rerun.py --pipeline-root ROOT \\
        [--node FidelityEvaluator] [--shards 4] [--in-process]

Reads the gate's newest execution from the root's MLMD (its input
artifacts and exec properties), optionally rewrites its examples in
`--shards` gzipped files (as the Scorer now writes them), and runs
`distill_components.gates.evaluator.Executor` on them with the default Beam
arguments (`--in-process`: `--direct_running_mode=in_memory`), into a
temporary directory. Prints the seconds, the blessing, and whether the
validation result and every metric of every slice equal the original run's.
"""
import argparse
import copy
import glob
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _metrics(uri):
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  return {str(key): value for key, value in tfma.load_eval_result(uri).slicing_metrics}


def _doubles(metrics):
  """(slice, output, class, metric) -> value, for every scalar metric."""
  found = {}
  for key, by_output in metrics.items():
    for output, by_class in by_output.items():
      for klass, by_metric in by_class.items():
        for name, value in by_metric.items():
          if isinstance(value, dict) and "doubleValue" in value:
            found[key, output, klass, name] = value["doubleValue"]
  return found


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", required=True)
  parser.add_argument("--node", default="FidelityEvaluator")
  parser.add_argument("--shards", type=int, default=0)
  parser.add_argument("--in-process", action="store_true")
  args = parser.parse_args(argv)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from distill_components.gates import evaluator  # pylint: disable=g-import-not-at-top
  from distill_pipelines import mlmd  # pylint: disable=g-import-not-at-top
  with mlmd.connect(os.path.join(args.pipeline_root, "metadata.sqlite")) as handle:
    [context] = [c for c in handle.store.get_contexts() if c.name.endswith("." + args.node)]
    last = handle.store.get_executions_by_context(context.id)[-1]
    run = mlmd.execution(handle, last.id)
    properties = {k: (v.string_value if v.HasField("string_value") else v.int_value)
                  for k, v in last.custom_properties.items() if not k.startswith("__")}
  work = tempfile.mkdtemp(prefix="gate-rerun-")
  inputs = dict(run.inputs)
  if args.shards:
    source = inputs["examples"][0]
    records = list(tf.data.TFRecordDataset(
        glob.glob(os.path.join(source.uri, "Split-eval", "*")),
        compression_type="GZIP").as_numpy_iterator())
    copied = copy.deepcopy(source)
    copied.uri = os.path.join(work, "examples")
    os.makedirs(os.path.join(copied.uri, "Split-eval"))
    for shard in range(args.shards):
      with tf.io.TFRecordWriter(os.path.join(copied.uri, "Split-eval", f"part-{shard}.gz"),
                                options="GZIP") as writer:
        for record in records[shard::args.shards]:
          writer.write(record)
    inputs["examples"] = [copied]
    print(f"examples: {len(records):,} in {args.shards} files")
  outputs = {}
  for key, artifacts in run.outputs.items():
    artifact = copy.deepcopy(artifacts[0])
    artifact.uri = os.path.join(work, key)
    os.makedirs(artifact.uri)
    outputs[key] = [artifact]
  beam_args = ["--direct_running_mode=in_memory"] if args.in_process else []
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_args, tmp_dir=work, unique_id="rerun")
  start = time.monotonic()
  evaluator.Executor(context).Do(inputs, outputs, properties)
  print(f"seconds: {time.monotonic() - start:.1f}")
  print(f"blessing: {os.listdir(outputs['blessing'][0].uri)}")
  new, old = (tfma.load_validation_result(outputs["evaluation"][0].uri),
              tfma.load_validation_result(run.output("evaluation").uri))
  print(f"validation ok: {new.validation_ok} (original: {old.validation_ok})")
  new, old = (_doubles(_metrics(outputs["evaluation"][0].uri)),
              _doubles(_metrics(run.output("evaluation").uri)))
  worst = max((abs(new[k] - old.get(k, float("nan"))) for k in new), default=0.0)
  print(f"metrics: {len(new)} (original {len(old)}), same keys: {set(new) == set(old)}, "
        f"largest difference: {worst}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
