"""Which teacher is worth distilling: MLP vs gradient-boosted trees, three tasks.

    .venv/bin/python bench/teachers.py [--seeds 0 1 2] [--only NAME ...] [--out bench/results]

For each taxi task (the demo's binary label; `--label payment_type`,
multi-class; `--label fare`, regression) one `tfx-distill run` (tiny steps)
makes the Transform outputs, then, for each seed, on those outputs:

- the MLP teacher: the pipeline's own `run_fn` for the task (the taxi
  teacher for the demo, the generic one otherwise), the shipped 400 steps;
- the tree teacher: the pipeline's gradient-boosted-trees `run_fn` (taxi
  `tree_teacher`, generic `tree_teacher`), that seed;
- the student from scratch (alpha 0) and the student distilled from each
  teacher (the shipped T = 2, alpha = 0.9), all built by the pipeline's
  `build_student` with that seed and trained by the Distiller's own training
  loop for the shipped 1000 steps of 256 on cached teacher outputs;
- the student distilled from out-of-fold tree outputs, as the pipeline makes
  them with `teacher_folds` 5: the tree `run_fn` also fits 5 models, each
  without one fifth of the train rows, and the Distiller's `OutOfFold` labels
  each row with the one that did not see it (the question whether a tree's
  over-confident outputs on its own training rows cost the student anything).

Every model is scored on the whole eval split: binary AUC (10,000
thresholds, as TFMA), accuracy, log loss; multi-class accuracy, log loss;
regression MSE, MAE. Also each teacher's training time and SavedModel size.
Writes teachers.json, teachers.md and teachers.png.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import sys
import time
from typing import Dict, List

import numpy as np

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py

METHODS = ("mlp teacher", "gbt teacher", "scratch", "from mlp", "from gbt",
           "from gbt, out-of-fold")
FOLDS = 5
READ_BATCH = 1024
TASKS = {  # name -> tfx-distill flags
    "taxi-binary": [],
    "taxi-multiclass": ["--label", "payment_type"],
    "taxi-regression": ["--label", "fare"],
}
MAIN_METRIC = {"binary": ("auc", True), "multiclass": ("accuracy", True),
               "regression": ("mse", False)}


class Task:
  """One task's Transform outputs and the pipeline's modules for it."""

  def __init__(self, name: str, flags: List[str], work: str):
    # pylint: disable=g-import-not-at-top
    import tensorflow_transform as tft
    from tfx.components.trainer import fn_args_utils
    from tfx.proto import trainer_pb2
    from tfx.utils import proto_utils
    from distill_cli import main as cli
    from distill_pipelines import report
    # pylint: enable=g-import-not-at-top
    self.name, self.work = name, os.path.join(work, name)
    root = os.path.join(self.work, "root")
    argv = ["run", "--pipeline-root", root, "--pipeline-name", name, *flags]
    self.settings = cli.settings_from_args(cli.build_parser().parse_args(argv))
    with contextlib.redirect_stdout(io.StringIO()):
      # Only its Transform outputs are used: the rest as short as it gets.
      code = cli.main([*argv, "--train-steps", "1", "--distill-steps", "1",
                       "--eval-steps", "1", "--teacher-type", "gbt"])
    store = report.open_store(os.path.join(root, "metadata.sqlite"))
    examples = _common.newest_artifact(store, "Examples", "Transform")
    graph = _common.newest_artifact(store, "TransformGraph", "Transform")
    print(f"{name}: Transform outputs ready (run exit {code})", file=sys.stderr)
    s = self.settings
    self.task = s.task
    self.label_key = s.transformed_label
    self.fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples], "transform_graph": [graph]},
        {"train_args": proto_utils.proto_to_json(
            trainer_pb2.TrainArgs(num_steps=s.train_steps)),
         "eval_args": proto_utils.proto_to_json(
             trainer_pb2.EvalArgs(num_steps=s.eval_steps)),
         "custom_config": json.dumps(s.module_config())})
    self.fn_args.transform_output = self.fn_args.transform_graph_path
    self.tft_output = tft.TFTransformOutput(self.fn_args.transform_graph_path)
    self.schema = self.tft_output.transformed_metadata.schema
    self.eval_data = self.dataset(self.fn_args.eval_files)
    self.eval_labels = np.concatenate([y.numpy().reshape(-1) for _, y in self.eval_data])

  def dataset(self, files, repeat: bool = False, seed: int = 0, batch: int = READ_BATCH):
    from tfx_bsl.tfxio import dataset_options  # pylint: disable=g-import-not-at-top
    return self.fn_args.data_accessor.tf_dataset_factory(
        files, dataset_options.TensorFlowDatasetOptions(
            batch_size=batch, label_key=self.label_key,
            num_epochs=None if repeat else 1, shuffle=repeat, shuffle_seed=seed),
        self.schema)

  def modules(self):
    """(MLP teacher run_fn, tree teacher run_fn, build_student) as shipped."""
    # pylint: disable=g-import-not-at-top
    import importlib
    from distill_pipelines import settings as settings_lib
    from distill_pipelines.taxi import config as taxi
    # pylint: enable=g-import-not-at-top
    def load(path):
      module, fn = path.rsplit(".", 1)
      return getattr(importlib.import_module(module), fn)
    demo = self.name == "taxi-binary"
    return (load(taxi.TEACHER_RUN_FN if demo else settings_lib.GENERIC_TEACHER),
            load(taxi.TREE_TEACHER_RUN_FN if demo else settings_lib.GENERIC_TREE_TEACHER),
            load(self.settings.student_code))

  def train_teacher(self, run_fn, kind: str, seed: int, folds: int = 0):
    """Trains a teacher with the pipeline's run_fn: (Teacher, its OutOfFold or
    None, seconds, SavedModel bytes). With `folds`, the run_fn also fits that
    many out-of-fold models, as the pipeline's Trainer does with teacher_folds,
    read as the Distiller reads them."""
    # pylint: disable=g-import-not-at-top
    import tensorflow as tf
    from distill_components.distiller import export
    from distill_components.distiller import folds as folds_lib
    from distill_components.distiller import teacher as teacher_lib
    from distill_components import measure
    from distill_pipelines.generic import config as keys
    # pylint: enable=g-import-not-at-top
    tf.keras.utils.set_random_seed(seed)
    # Folds as asked here, whatever the task's default (zero-code regression: 5).
    self.fn_args.custom_config = {**self.settings.module_config(), "seed": seed,
                                  keys.TEACHER_FOLDS: folds}
    uri = os.path.join(self.work, f"{kind}_{seed}")  # a Model artifact's layout
    self.fn_args.serving_model_dir = os.path.join(uri, "Format-Serving")
    self.fn_args.model_run_dir = os.path.join(self.work, f"{kind}_{seed}_logs")
    start = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
      run_fn(self.fn_args)
    seconds = time.monotonic() - start
    spec = export.model_input_spec(self.tft_output, self.label_key)
    teacher = teacher_lib.Teacher(self.fn_args.serving_model_dir, spec, task=self.task)
    out_of_fold = (teacher_lib.OutOfFold(uri, folds_lib.read_manifest(uri), spec,
                                         task=self.task) if folds else None)
    return (teacher, out_of_fold, seconds,
            measure.saved_model_bytes(uri))

  def cache(self, logits_fn, name: str) -> str:
    from distill_components.distiller import teacher_cache  # pylint: disable=g-import-not-at-top
    path = os.path.join(self.work, "cache", name)
    shutil.rmtree(path, ignore_errors=True)
    teacher_cache.write(logits_fn, self.dataset(self.fn_args.train_files), path)
    return path

  def student(self, build_student, cache_path: str, seed: int, alpha: float):
    # pylint: disable=g-import-not-at-top
    import tensorflow as tf
    from distill_components.distiller import teacher_cache
    from distill_components.distiller import training
    # pylint: enable=g-import-not-at-top
    s = self.settings
    tf.keras.utils.set_random_seed(seed)
    self.fn_args.custom_config = s.module_config()
    student = build_student(self.fn_args)
    training.Distillation(
        student, None, task=self.task, alpha=alpha,  # cached: no teacher call
        temperature=s.temperature,
        optimizer=tf.keras.optimizers.Adam(s.learning_rate),
    ).fit(teacher_cache.read(cache_path, s.batch_size, seed=seed), s.distill_steps)
    return student

  def scores(self, logits: np.ndarray) -> Dict[str, float]:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    y = self.eval_labels
    if self.task.value == "regression":
      err = logits.reshape(-1) - y
      return {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err)))}
    if self.task.value == "binary":
      z = logits.reshape(-1)
      auc = tf.keras.metrics.AUC(num_thresholds=10000, from_logits=True)
      auc.update_state(y, z)
      log_loss = np.mean(np.logaddexp(0, z) - y * z)
      return {"auc": float(auc.result()), "accuracy": float(np.mean((z > 0) == (y == 1))),
              "log_loss": float(log_loss)}
    log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    y = y.astype(int)
    return {"accuracy": float(np.mean(np.argmax(logits, 1) == y)),
            "log_loss": float(-np.mean(log_p[np.arange(len(y)), y]))}

  def eval_logits(self, model) -> np.ndarray:
    return np.concatenate([np.asarray(model(x)) for x, _ in self.eval_data])


def _summary(values: List[float]) -> Dict[str, float]:
  return {"mean": statistics.mean(values),
          "std": statistics.stdev(values) if len(values) > 1 else 0.0,
          "values": values}


def run_task(task: Task, seeds: List[int]) -> dict:
  mlp_fn, tree_fn, build_student = task.modules()
  runs: Dict[str, List[Dict[str, float]]] = {m: [] for m in METHODS}
  costs: Dict[str, List[float]] = {}
  for seed in seeds:
    start = time.monotonic()
    mlp, _, mlp_s, mlp_bytes = task.train_teacher(mlp_fn, "mlp", seed)
    gbt, _, gbt_s, gbt_bytes = task.train_teacher(tree_fn, "gbt", seed)
    costs.setdefault("mlp_train_seconds", []).append(mlp_s)
    costs.setdefault("gbt_train_seconds", []).append(gbt_s)
    costs.setdefault("mlp_saved_model_bytes", []).append(mlp_bytes)
    costs.setdefault("gbt_saved_model_bytes", []).append(gbt_bytes)
    costs.setdefault("mlp_params", []).append(mlp.num_params)
    runs["mlp teacher"].append(task.scores(task.eval_logits(mlp.logits)))
    runs["gbt teacher"].append(task.scores(task.eval_logits(gbt.logits)))
    from_mlp = task.cache(mlp.logits, f"mlp_{seed}")
    from_gbt = task.cache(gbt.logits, f"gbt_{seed}")
    print(f"  {task.name} seed {seed}: teachers {mlp_s:.0f} s (mlp), {gbt_s:.0f} s (gbt)",
          file=sys.stderr)
    _, out_of_fold, oof_s, _ = task.train_teacher(tree_fn, "gbt_oof", seed, folds=FOLDS)
    oof = task.cache(out_of_fold.logits, f"gbt_oof_{seed}")
    costs.setdefault("gbt_with_folds_train_seconds", []).append(oof_s)
    for method, path, alpha in (("scratch", from_mlp, 0.0),
                                ("from mlp", from_mlp, task.settings.alpha),
                                ("from gbt", from_gbt, task.settings.alpha),
                                ("from gbt, out-of-fold", oof, task.settings.alpha)):
      student = task.student(build_student, path, seed, alpha)
      runs[method].append(task.scores(task.eval_logits(student)))
      if method == "scratch":
        costs.setdefault("student_params", []).append(student.count_params())
    print(f"  {task.name} seed {seed}: {time.monotonic() - start:.0f} s", file=sys.stderr)
  metrics = list(runs["scratch"][0])
  return {"task": task.task.value,
          "settings": {"temperature": task.settings.temperature,
                       "alpha": task.settings.alpha,
                       "distill_steps": task.settings.distill_steps,
                       "batch_size": task.settings.batch_size,
                       "mlp_train_steps": task.settings.train_steps},
          "results": {m: {k: _summary([r[k] for r in rs]) for k in metrics}
                      for m, rs in runs.items()},
          "costs": {k: _summary(v) for k, v in costs.items()}}


def _table(results: Dict[str, dict]) -> List[str]:
  lines = ["| task | metric | " + " | ".join(METHODS) + " |",
           "|---|---|" + "---|" * len(METHODS)]
  for name, r in results.items():
    for i, metric in enumerate(r["results"]["scratch"]):
      cells = [f"{r['results'][m][metric]['mean']:.4f} ± {r['results'][m][metric]['std']:.4f}"
               for m in METHODS]
      lines.append(f"| {name if i == 0 else ''} | {metric} | " + " | ".join(cells) + " |")
  lines += ["", "| task | MLP teacher train (s) | tree teacher train (s) "
            f"| trees + {FOLDS} fold models (s) | MLP SavedModel (MB) "
            "| tree SavedModel (MB) | MLP weights | student weights |",
            "|---|---|---|---|---|---|---|---|"]
  for name, r in results.items():
    c = r["costs"]
    lines.append(
        f"| {name} | {c['mlp_train_seconds']['mean']:.1f} | {c['gbt_train_seconds']['mean']:.1f} "
        f"| {c['gbt_with_folds_train_seconds']['mean']:.1f} "
        f"| {c['mlp_saved_model_bytes']['mean'] / 1e6:.2f} "
        f"| {c['gbt_saved_model_bytes']['mean'] / 1e6:.2f} | {c['mlp_params']['mean']:,.0f} "
        f"| {c['student_params']['mean']:,.0f} |")
  return lines


def _plot(path: str, results: Dict[str, dict]) -> None:
  plt = _common.pyplot()
  fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
  for axis, (name, r) in zip(axes[0], results.items()):
    metric, _ = MAIN_METRIC[r["task"]]
    means = [r["results"][m][metric]["mean"] for m in METHODS]
    stds = [r["results"][m][metric]["std"] for m in METHODS]
    colors = ["#888888", "#888888", "#d62728", "#1f77b4", "#2ca02c", "#98df8a"]
    _common.bar_panel(axis, METHODS, means, stds, colors,
                      f"{name}: {metric} (eval, mean ± std)")
  _common.save_figure(fig, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  _common.seeded_run_flags(parser, "teachers")
  args = parser.parse_args(argv)
  work = os.path.abspath(args.work)
  shutil.rmtree(work, ignore_errors=True)
  results = {}
  for name, flags in TASKS.items():
    if args.only and name not in args.only:
      continue
    results[name] = run_task(Task(name, flags, work), args.seeds)
    results[name]["seeds"] = args.seeds
  name = "teachers" if not args.only else "teachers-" + "-".join(args.only)
  _common.save(args.out, name, results, _table(results))
  _plot(os.path.join(args.out, f"{name}.png"), results)
  return 0


if __name__ == "__main__":
  sys.exit(main())
