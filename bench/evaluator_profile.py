"""Where the gates' Evaluator time goes, per eval example.

    .venv/bin/python bench/evaluator_profile.py --pipeline-root ROOT [--rows 5000 50000]

Takes a pipeline run of ours (e.g. bench/scale.py's
bench/work/scale/<rows>/pipeline): its student, its teacher, ExampleGen's
eval split and the Scorer's scored eval split. For each size, the first N
examples of each (repeated when the split is shorter) are copied to a file
and TFMA's `run_model_analysis` (what TFX's Evaluator runs) evaluates them:

- the fidelity gate as it was before the Scorer: TFMA runs student and
  teacher on raw examples, through their Transform graphs;
- the fidelity gate as it is: the Scorer's predictions, no model;
- the fidelity gate scored, less its plots, less its slices (overall only),
  and with each of the task's metrics alone: what each part costs;
- the no-regression gate on a first run (the student alone), scored;
- the two scored gates again on Beam's multi-process DirectRunner with two
  workers (`--direct_running_mode=multi_processing --direct_num_workers=2`).

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

TWO_WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


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


def _in_models(config, label_key):
  """`config` with TFMA running the models, as before the Scorer."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  before = tfma.EvalConfig()
  before.CopyFrom(config)
  for spec in before.model_specs:
    spec.Clear()
  for spec, original in zip(before.model_specs, config.model_specs):
    spec.name, spec.is_baseline = original.name, original.is_baseline
    spec.signature_name, spec.label_key = "serving_default", label_key
    spec.preprocessing_function_names.append("transform_features")
  return before


def _without(config, plots=False, slices=False, keep=None):
  """`config` less its plots, its slices, or every metric but `keep` (and
  the example count): what each costs."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  less = tfma.EvalConfig()
  less.CopyFrom(config)
  for spec in less.metrics_specs:
    kept = [m for m in spec.metrics
            if not (plots and m.class_name.endswith("Plot"))
            and (keep is None or m.class_name in ("ExampleCount", keep.class_name))]
    del spec.metrics[:]
    spec.metrics.extend(kept)
    if slices:
      for metric in spec.metrics:
        for bound in metric.per_slice_thresholds:
          del bound.slicing_specs[1:]
  if keep is not None:  # the per-class specs go too
    del less.metrics_specs[1:]
  if slices:
    del less.slicing_specs[1:]
  return less


def variants(settings):
  """name -> (EvalConfig, models, data: raw or scored, Beam arguments)."""
  fidelity = gates.fidelity_config(settings)
  alone = _single_model(gates.no_regression_config(settings))
  student, both = [names.STUDENT], [names.STUDENT, names.TEACHER]
  return {
      "fidelity gate, TFMA runs the models (before the Scorer)": (
          _in_models(fidelity, settings.transformed_label), both, "raw", []),
      "fidelity gate, scored": (fidelity, both, "scored", []),
      "no-regression gate, first run, scored": (alone, student, "scored", []),
      "fidelity gate, scored, no plots": (_without(fidelity, plots=True), both,
                                          "scored", []),
      "fidelity gate, scored, overall only (no slices)": (
          _without(fidelity, slices=True), both, "scored", []),
      **{f"fidelity gate, scored, {metric.title} alone (and the example count)": (
          _without(fidelity, keep=metric), both, "scored", [])
         for metric in settings.task.metrics},
      "fidelity gate, scored, 2 worker processes": (fidelity, both, "scored",
                                                   TWO_WORKERS),
      "no-regression gate, first run, scored, 2 worker processes": (
          alone, student, "scored", TWO_WORKERS),
  }


def _head(pattern: str, rows: int, path: str) -> int:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  records = tf.data.TFRecordDataset(sorted(glob.glob(pattern)), compression_type="GZIP")
  count = 0
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for record in records.repeat().take(rows):
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
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  root = os.path.abspath(args.pipeline_root)
  store = report.open_store(os.path.join(root, "metadata.sqlite"))
  models = {names.STUDENT: _common.newest_artifact(store, "Model", "Distiller"),
            names.TEACHER: _common.newest_artifact(store, "Model", "Trainer")}
  splits = {"raw": _common.newest_artifact(store, "Examples", "CsvExampleGen"),
            "scored": _common.newest_artifact(store, "Examples", names.SCORER)}
  settings = taxi.settings(pipeline_root=root, data_root=root)
  work = tempfile.mkdtemp(prefix="evaluator-profile-")

  def evaluate(config, model_names, data, beam_args):
    shared = [tfma.default_eval_shared_model(
        eval_saved_model_path=path_utils.serving_model_path(models[n].uri),
        model_name=n, eval_config=config) for n in model_names]
    start = time.monotonic()
    tfma.run_model_analysis(
        eval_shared_model=shared if len(shared) > 1 else shared[0], eval_config=config,
        data_location=data, output_path=tempfile.mkdtemp(dir=work),
        file_format="tfrecords", pipeline_options=PipelineOptions(beam_args))
    return time.monotonic() - start

  files = {}
  for kind, examples in splits.items():
    for rows in args.rows:
      path = os.path.join(work, f"{kind}-{rows}.gz")
      _head(os.path.join(examples.uri, "Split-eval", "*"), rows, path)
      files[kind, rows] = path
  configs = variants(settings)
  first = next(iter(configs.values()))
  evaluate(first[0], first[1], files[first[2], args.rows[0]], first[3])  # warm-up
  seconds = {name: {} for name in configs}
  for name, (config, model_names, kind, beam_args) in configs.items():
    for rows in args.rows:
      seconds[name][rows] = evaluate(config, model_names, files[kind, rows], beam_args)
      print(f"  {name}, {rows:,} rows: {seconds[name][rows]:.1f} s", file=sys.stderr)
  small, large = sorted(args.rows)
  lines = [f"| configuration | {small:,} examples (s) | {large:,} examples (s) | "
           "ms per example | fixed (s) |", "|---" * 5 + "|"]
  result = {}
  for name, by_size in seconds.items():
    per = (by_size[large] - by_size[small]) / (large - small)
    fixed = by_size[small] - per * small
    result[name] = {"seconds": by_size, "ms_per_example": per * 1e3, "fixed_seconds": fixed}
    lines.append(f"| {name} | {by_size[small]:.1f} | {by_size[large]:.1f} | "
                 f"{per * 1e3:.2f} | {fixed:.1f} |")
  _common.save(args.out, "evaluator_profile", {"root": root, "results": result}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
