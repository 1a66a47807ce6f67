"""What the tree teacher's speed-ups cost: fit time and eval AUC at scale.

    .venv/bin/python bench/tree_scale.py --pipeline-root ROOT [--seeds 123456 1 2] [--out bench/results]

Takes a pipeline run of ours at scale (e.g. bench/scale.py's
bench/work/scale/1000000/pipeline, taxi data): its newest Transform outputs.
For each seed and variant, the taxi tree teacher's trees are fit on the
transformed train split by the project's own `tree_teacher.fit` (what the
Trainer's run_fn calls), with its module constants set as the variant says:

- the full split, binned (numerical features in 255 buckets above
  DISCRETIZE_ABOVE_ROWS rows), both cores: no cap;
- the full split, not binned: exact splits, as the trees trained before the
  binning took effect (TF-DF's discretize flag skipped features given as
  NUMERICAL);
- the full split, binned, one thread: what the second core gives;
- uniform random samples of 400k, 250k and 100k train rows
  (`tree_teacher.sample`; binned when above DISCRETIZE_ABOVE_ROWS);
- as shipped: every constant as the module has it (MAX_TRAIN_ROWS).

Each fit is timed from reading the data (the row count included) to the
trained trees; saving is not. One warm-up fit comes first, untimed; then
every variant once per seed, in that order, in this process. Also timed:
reading the train split alone, the floor of every variant. Each model is
scored on the whole transformed eval split: AUC with 10,000 thresholds (as
TFMA, `tf.keras.metrics.AUC`; sklearn's exact `roc_auc_score` too, in the
JSON), its difference from the same seed's full split, and log loss. Writes
tree_scale.json and tree_scale.md.
"""
import argparse
import contextlib
import functools
import os
import shlex
import statistics
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # pylint: disable=g-import-not-at-top

import _common  # pylint: disable=g-bad-import-order,g-import-not-at-top  # bench/_common.py
from distill_pipelines import report  # pylint: disable=g-import-not-at-top
from distill_pipelines.generic import tree_teacher  # pylint: disable=g-import-not-at-top
from distill_pipelines.taxi import config as taxi  # pylint: disable=g-import-not-at-top
from distill_pipelines.taxi import tree_teacher as taxi_trees  # pylint: disable=g-import-not-at-top

ALL = sys.maxsize  # a cap no split reaches
FULL = "full split, binned, 2 threads (no cap)"
VARIANTS = {  # name -> tree_teacher constants set
    FULL: {"MAX_TRAIN_ROWS": ALL},
    "full split, not binned (as the trees trained before)": {
        "MAX_TRAIN_ROWS": ALL, "DISCRETIZE_ABOVE_ROWS": ALL},
    "full split, binned, 1 thread": {"MAX_TRAIN_ROWS": ALL, "NUM_THREADS": 1},
    "sample of 400k": {"MAX_TRAIN_ROWS": 400_000},
    "sample of 250k": {"MAX_TRAIN_ROWS": 250_000},
    "sample of 100k (not binned: under 200k)": {"MAX_TRAIN_ROWS": 100_000},
    f"as shipped (MAX_TRAIN_ROWS = {tree_teacher.MAX_TRAIN_ROWS:,})": {},
}
DEFAULTS = {k: getattr(tree_teacher, k)
            for k in ("MAX_TRAIN_ROWS", "DISCRETIZE_ABOVE_ROWS", "NUM_THREADS")}


@contextlib.contextmanager
def _constants(values):
  before = {k: getattr(tree_teacher, k) for k in values}
  for k, v in values.items():
    setattr(tree_teacher, k, v)
  try:
    yield
  finally:
    for k, v in before.items():
      setattr(tree_teacher, k, v)


def _fn_args(root: str):
  """TFX's FnArgs over the newest Transform outputs in `root`."""
  # pylint: disable=g-import-not-at-top
  import json
  from tfx.components.trainer import fn_args_utils
  # pylint: enable=g-import-not-at-top
  store = report.open_store(os.path.join(root, "metadata.sqlite"))
  fn_args = fn_args_utils.get_common_fn_args(
      {"examples": [_common.newest_artifact(store, "Examples", "Transform")],
       "transform_graph": [_common.newest_artifact(store, "TransformGraph", "Transform")]},
      {"train_args": json.dumps({"num_steps": 1}), "eval_args": json.dumps({"num_steps": 1}),
       "custom_config": json.dumps({})})
  fn_args.transform_output = fn_args.transform_graph_path
  fn_args.model_run_dir = None  # no TensorBoard export
  return fn_args


def _scores(labels: np.ndarray, logits: np.ndarray) -> dict:
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from sklearn.metrics import roc_auc_score
  # pylint: enable=g-import-not-at-top
  auc = tf.keras.metrics.AUC(num_thresholds=10000, from_logits=True)
  auc.update_state(labels, logits)
  return {"auc": float(auc.result()), "auc_exact": float(roc_auc_score(labels, logits)),
          "log_loss": float(np.mean(np.logaddexp(0, logits) - labels * logits))}


def _summary(values):
  return {"mean": statistics.mean(values),
          "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", required=True)
  parser.add_argument("--seeds", type=int, nargs="+",
                      default=[tree_teacher.DEFAULT_SEED, 1, 2])
  parser.add_argument("--only", nargs="*", default=None, help="variants by name")
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  args = parser.parse_args(argv)
  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft
  from tfx_bsl.tfxio import dataset_options
  # pylint: enable=g-import-not-at-top
  root = os.path.abspath(args.pipeline_root)
  settings = taxi.settings(pipeline_root=root, data_root=root)
  label_key = settings.transformed_label
  fn_args = _fn_args(root)
  tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)

  def read(files):
    return fn_args.data_accessor.tf_dataset_factory(
        files, dataset_options.TensorFlowDatasetOptions(
            batch_size=tree_teacher.READ_BATCH_SIZE, label_key=label_key,
            num_epochs=1, shuffle=False), tft_output.transformed_metadata.schema)
  evaluation = read(fn_args.eval_files).cache()
  labels = np.concatenate([y.numpy().reshape(-1) for _, y in evaluation])
  train_rows = tree_teacher._count_rows(tuple(fn_args.train_files))  # pylint: disable=protected-access
  start = time.monotonic()
  for _ in read(fn_args.train_files):
    pass
  read_seconds = time.monotonic() - start  # what every variant pays at least
  print(f"{train_rows:,} train rows (read in {read_seconds:.1f} s), "
        f"{len(labels):,} eval rows", file=sys.stderr)
  fit = functools.partial(tree_teacher.fit, fn_args, tft_output, task=settings.task,
                          usages=taxi_trees.feature_usages(), label_key=label_key,
                          width=1)
  with _constants({"MAX_TRAIN_ROWS": 10_000}):
    fit()  # warm-up: TF-DF's ops loaded and traced once, outside the timings
  runs = {name: [] for name in VARIANTS if not args.only or name in args.only}
  for seed in args.seeds:
    for name in runs:
      with _constants(VARIANTS[name]):
        start = time.monotonic()
        model = fit(seed=seed)
        seconds = time.monotonic() - start
      inspector = model.make_inspector()
      logits = model.predict(evaluation, verbose=0).reshape(-1)
      runs[name].append({"fit_seconds": seconds,
                         "rows": int(inspector.dataspec.created_num_rows),
                         "trees": int(inspector.num_trees()), **_scores(labels, logits)})
      print(f"  seed {seed}, {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
  base = runs.get(FULL)
  results = {}
  for name, rs in runs.items():
    results[name] = {k: _summary([r[k] for r in rs]) for k in rs[0]}
    results[name]["constants"] = {**DEFAULTS, **VARIANTS[name]}
    if base:  # paired: the same seed's full split, binned
      results[name]["auc_minus_full"] = _summary(
          [r["auc"] - b["auc"] for r, b in zip(rs, base)])
  command = shlex.join(["bench/tree_scale.py", *(argv if argv is not None else sys.argv[1:])])
  date = time.strftime("%Y-%m-%d")
  lines = [f"`{command}`, {date}: {train_rows:,} train rows, {len(labels):,} eval rows, "
           f"{tree_teacher.NUM_THREADS} cores; seeds {args.seeds}, mean ± std over them.", "",
           "| variant | rows trained on | fit (s) | trees | eval AUC | AUC minus full split's "
           "| eval log loss |", "|---" * 7 + "|"]

  def cell(r, key, digits):
    return f"{r[key]['mean']:.{digits}f} ± {r[key]['std']:.{digits}f}"
  for name, r in results.items():
    lines.append(f"| {name} | {r['rows']['mean']:,.0f} | {cell(r, 'fit_seconds', 1)} | "
                 f"{cell(r, 'trees', 0)} | {cell(r, 'auc', 4)} | "
                 f"{cell(r, 'auc_minus_full', 4) if base else ''} | "
                 f"{cell(r, 'log_loss', 4)} |")
  lines += ["", f"Reading the train split alone (TFXIO, no trees): {read_seconds:.1f} s, "
            "a floor for every variant. Fit: from reading the data (the row count "
            "included) to the trained trees, saving not included. Rows trained on: "
            "what TF-DF read, its early-stopping validation cut "
            f"({tree_teacher.VALIDATION_RATIO:.0%}) included. Eval AUC: 10,000 "
            "thresholds, as TFMA (sklearn's exact roc_auc_score in the JSON, "
            "`auc_exact`); AUC minus the full split's: against the same seed's "
            f"\"{FULL}\"."]
  _common.save(args.out, "tree_scale", {
      "root": root, "command": command, "date": date, "seeds": args.seeds,
      "train_rows": train_rows, "eval_rows": len(labels),
      "read_train_seconds": read_seconds, "results": results}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
