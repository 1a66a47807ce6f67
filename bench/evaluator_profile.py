"""Where the gates' Evaluator time goes, per eval example.

    .venv/bin/python bench/evaluator_profile.py --pipeline-root ROOT [--rows 5000 50000]

Takes a pipeline run of ours (e.g. bench/scale.py's
bench/work/scale/<rows>/pipeline): its student, its teacher and ExampleGen's
eval split. For each size, the first N eval examples are copied to a file and
TFMA's `run_model_analysis` (what TFX's Evaluator runs) evaluates them with:

- the fidelity gate's EvalConfig (student and teacher: two models);
- the no-regression gate's on a first run (the student alone);
- the same without the slices;
- only ExampleCount, no slices;
- the same without `transform_features` (the preprocessing that gives TFMA
  the transformed label).

Each variant runs once per size in this process, in that order after a
warm-up; the slope between two sizes is its cost per example (milliseconds),
the intercept what it costs whatever the data. Writes evaluator_profile.json
and evaluator_profile.md.
"""
import argparse
import glob
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_pipelines import gates  # pylint: disable=g-import-not-at-top
from distill_pipelines import names  # pylint: disable=g-import-not-at-top
from distill_pipelines import report  # pylint: disable=g-import-not-at-top
from distill_pipelines.taxi import config as taxi  # pylint: disable=g-import-not-at-top


def _single_model(config):
  """`config` for the student alone, as TFX's Evaluator runs a gate with no
  baseline: the baseline's spec and the change thresholds dropped."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  alone = tfma.EvalConfig()
  alone.CopyFrom(config)
  kept = [m for m in alone.model_specs if not m.is_baseline]
  del alone.model_specs[:]
  alone.model_specs.extend(kept)
  for spec in alone.metrics_specs:
    for metric in spec.metrics:
      for bound in metric.per_slice_thresholds:
        bound.threshold.ClearField("change_threshold")
  return alone


def variants(settings):
  """name -> (EvalConfig, models): the configurations timed."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  fidelity = gates.fidelity_config(settings)
  alone = _single_model(gates.no_regression_config(settings))
  unsliced = tfma.EvalConfig()
  unsliced.CopyFrom(alone)
  del unsliced.slicing_specs[1:]
  for spec in unsliced.metrics_specs:
    for metric in spec.metrics:
      del metric.per_slice_thresholds[:]
  unsliced.ClearField("options")
  counting = tfma.EvalConfig()
  counting.CopyFrom(unsliced)
  del counting.metrics_specs[1:]
  kept = [m for m in counting.metrics_specs[0].metrics if m.class_name == "ExampleCount"]
  del counting.metrics_specs[0].metrics[:]
  counting.metrics_specs[0].metrics.extend(kept)
  raw = tfma.EvalConfig()
  raw.CopyFrom(counting)
  raw.model_specs[0].ClearField("preprocessing_function_names")
  raw.model_specs[0].ClearField("label_key")
  student, both = [names.STUDENT], [names.STUDENT, names.TEACHER]
  return {
      "fidelity gate (student + teacher)": (fidelity, both),
      "no-regression gate, first run (student)": (alone, student),
      "student, no slices": (unsliced, student),
      "student, ExampleCount only, no slices": (counting, student),
      "student, ExampleCount only, no transform_features": (raw, student),
  }


def _head(pattern: str, rows: int, path: str) -> int:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  count = 0
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for record in tf.data.TFRecordDataset(sorted(glob.glob(pattern)),
                                          compression_type="GZIP").take(rows):
      writer.write(record.numpy())
      count += 1
  return count


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", required=True)
  parser.add_argument("--rows", type=int, nargs=2, default=[5000, 50000])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  args = parser.parse_args(argv)
  import tensorflow_decision_forests  # pylint: disable=g-import-not-at-top,unused-import  # the tree teacher's ops
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  root = os.path.abspath(args.pipeline_root)
  store = report.open_store(os.path.join(root, "metadata.sqlite"))
  models = {names.STUDENT: _common.newest_artifact(store, "Model", "Distiller"),
            names.TEACHER: _common.newest_artifact(store, "Model", "Trainer")}
  examples = _common.newest_artifact(store, "Examples", "CsvExampleGen")
  settings = taxi.settings(pipeline_root=root, data_root=root)
  work = tempfile.mkdtemp(prefix="evaluator-profile-")

  def evaluate(config, model_names, data):
    shared = [tfma.default_eval_shared_model(
        eval_saved_model_path=path_utils.serving_model_path(models[n].uri),
        model_name=n, eval_config=config) for n in model_names]
    start = time.monotonic()
    tfma.run_model_analysis(
        eval_shared_model=shared if len(shared) > 1 else shared[0], eval_config=config,
        data_location=data, output_path=tempfile.mkdtemp(dir=work),
        file_format="tfrecords")
    return time.monotonic() - start

  sizes = {}
  for rows in args.rows:
    path = os.path.join(work, f"eval-{rows}.gz")
    sizes[rows] = (_head(os.path.join(examples.uri, "Split-eval", "*"), rows, path), path)
  configs = variants(settings)
  first = next(iter(configs.values()))
  evaluate(first[0], first[1], sizes[args.rows[0]][1])  # warm-up: tracing, imports
  seconds = {name: {} for name in configs}
  for name, (config, model_names) in configs.items():
    for rows, (_, path) in sizes.items():
      seconds[name][rows] = evaluate(config, model_names, path)
      print(f"  {name}, {rows:,} rows: {seconds[name][rows]:.1f} s", file=sys.stderr)
  (small, (n_small, _)), (large, (n_large, _)) = sorted(sizes.items())
  lines = [f"| configuration | {n_small:,} examples (s) | {n_large:,} examples (s) | "
           "ms per example | fixed (s) |", "|---" * 5 + "|"]
  result = {}
  for name, by_size in seconds.items():
    per = (by_size[large] - by_size[small]) / (n_large - n_small)
    fixed = by_size[small] - per * n_small
    result[name] = {"seconds": by_size, "ms_per_example": per * 1e3, "fixed_seconds": fixed}
    lines.append(f"| {name} | {by_size[small]:.1f} | {by_size[large]:.1f} | "
                 f"{per * 1e3:.2f} | {fixed:.1f} |")
  _common.save(args.out, "evaluator_profile", {"root": root, "results": result}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
