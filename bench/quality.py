"""Teacher, distilled student and the same student from scratch: quality.

    .venv/bin/python bench/quality.py [--seeds 0 1 2] [--out bench/results]

Two parts, in one run:

1. The pipeline as shipped (`tfx-distill run` defaults, LocalDagRunner, the
   embedded taxi data): the teacher and the distilled student as TFMA's
   Evaluator scored them on the eval split, and whether it blessed the
   student. One run; this is what a user sees.
2. A sweep over temperature {1, 2, 4, 8} x alpha {0, 0.5, 0.9, 1}, each with
   3 seeds, on that run's Transform outputs. For each seed the teacher is
   trained again with the pipeline's own `run_fn` (same steps, that seed), and
   every student, built by the pipeline's `build_student` with that seed, is
   trained with the Distiller's training loop for the Distiller's steps, batch
   size and learning rate, with the teacher's outputs cached (a test shows
   cached and online training give the same loss). alpha = 0 is the student
   from scratch (hard labels only; T plays no part, so it is trained once per
   seed). Every model is scored on the whole eval split: AUC (10,000
   thresholds, as TFMA), accuracy, log loss, and agreement with the teacher.

Writes quality.json, quality.md and quality.png.
"""
import argparse
import contextlib
import dataclasses
import io
import os
import statistics
import sys
import time
from typing import Callable, Dict, List

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx.proto import trainer_pb2
from tfx.utils import proto_utils
from tfx_bsl.tfxio import dataset_options

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_components.distiller import export
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import training
from distill_pipelines import cli
from distill_pipelines.taxi import config as configs
from distill_pipelines import report
from distill_pipelines.taxi import student as student_module
from distill_pipelines.taxi import teacher as teacher_module

NAME = "bench-quality"
TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
ALPHAS = (0.0, 0.5, 0.9, 1.0)
BATCH = 256  # the Distiller's default batch_size
LEARNING_RATE = 1e-3  # and learning_rate
METRICS = ("auc", "accuracy", "log_loss", "agreement")


def _pipeline_run(root: str) -> report.RunSummary:
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    code = cli.main(["run", "--pipeline-root", root, "--pipeline-name", NAME, "--no-cache"])
  if code != 0:
    sys.stderr.write(out.getvalue())
    raise SystemExit(f"the pipeline run failed with exit code {code}")
  return report.summarize(os.path.join(root, "metadata.sqlite"), NAME)


def _scores(logits: np.ndarray, labels: np.ndarray,
            teacher_logits: np.ndarray) -> Dict[str, float]:
  auc = tf.keras.metrics.AUC(num_thresholds=10000, from_logits=True)
  auc.update_state(labels, logits)
  log_loss = tf.keras.losses.BinaryCrossentropy(from_logits=True)(labels, logits)
  predicted = logits > 0
  return {"auc": float(auc.result()),
          "accuracy": float(np.mean(predicted == (labels > 0.5))),
          "log_loss": float(log_loss),
          "agreement": float(np.mean(predicted == (teacher_logits > 0)))}


def _logits(model: Callable, eval_data: tf.data.Dataset) -> np.ndarray:
  return np.concatenate([model(features).numpy() for features, _ in eval_data])


class Sweep:
  """The sweep's inputs, read once from the pipeline run's artifacts."""

  def __init__(self, root: str):
    store = report.open_store(os.path.join(root, "metadata.sqlite"))
    examples = _common.newest_artifact(store, "Examples", "Transform")
    graph = _common.newest_artifact(store, "TransformGraph", "Transform")
    self.work = os.path.join(root, "sweep")
    self.fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples], "transform_graph": [graph]},
        {"train_args": proto_utils.proto_to_json(
            trainer_pb2.TrainArgs(num_steps=configs.TRAIN_STEPS)),
         "eval_args": proto_utils.proto_to_json(
             trainer_pb2.EvalArgs(num_steps=configs.EVAL_STEPS))})
    # What the Trainer's executor adds for a run_fn.
    self.fn_args.transform_output = self.fn_args.transform_graph_path
    self.tft_output = tft.TFTransformOutput(self.fn_args.transform_graph_path)
    self.schema = self.tft_output.transformed_metadata.schema
    self.eval_data = self._dataset(self.fn_args.eval_files, self.schema, repeat=False)
    self.labels = np.concatenate([l.numpy() for _, l in self.eval_data]).reshape(-1, 1)

  def _dataset(self, files, schema, repeat: bool, seed: int = 0):
    return self.fn_args.data_accessor.tf_dataset_factory(
        files,
        dataset_options.TensorFlowDatasetOptions(
            batch_size=BATCH, label_key=configs.LABEL_KEY,
            num_epochs=None if repeat else 1, shuffle=repeat, shuffle_seed=seed),
        schema).prefetch(tf.data.AUTOTUNE)

  def teacher(self, seed: int) -> teacher_lib.Teacher:
    """The pipeline's teacher `run_fn`, trained again with `seed`."""
    tf.keras.utils.set_random_seed(seed)
    self.fn_args.serving_model_dir = os.path.join(self.work, f"teacher_{seed}")
    self.fn_args.model_run_dir = os.path.join(self.work, f"teacher_{seed}_logs")
    with contextlib.redirect_stdout(io.StringIO()):
      teacher_module.run_fn(self.fn_args)
    return teacher_lib.Teacher(
        self.fn_args.serving_model_dir, export.TRANSFORMED_LOGITS_SIGNATURE,
        export.model_input_spec(self.tft_output, configs.LABEL_KEY))

  def cached_train_data(self, teacher: teacher_lib.Teacher, seed: int):
    pattern, _ = teacher_cache.write(
        teacher.logits, self.fn_args.train_files,
        self.tft_output.transformed_feature_spec(),
        os.path.join(self.work, f"teacher_{seed}_outputs"))
    return self._dataset([pattern], teacher_cache.extend_schema(self.schema, teacher.width),
                         repeat=True, seed=seed)

  def student(self, train_data, seed: int, alpha: float, temperature: float):
    tf.keras.utils.set_random_seed(seed)
    student = student_module.build_student(self.fn_args)
    training.Distillation(
        student, teacher_cache.from_batch, task="binary",
        alpha=alpha, temperature=temperature,
        optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
    ).fit(train_data, configs.DISTILL_TRAIN_STEPS)
    return student


def _summary(values: List[float]) -> Dict[str, float]:
  return {"mean": statistics.mean(values),
          "std": statistics.stdev(values) if len(values) > 1 else 0.0,
          "min": min(values), "max": max(values), "values": values}


def _sweep(root: str, seeds: List[int]) -> Dict[str, dict]:
  sweep = Sweep(root)
  runs: Dict[str, List[Dict[str, float]]] = {}
  for seed in seeds:
    start = time.monotonic()
    teacher = sweep.teacher(seed)
    teacher_logits = _logits(teacher.logits, sweep.eval_data)
    runs.setdefault("teacher", []).append(
        _scores(teacher_logits, sweep.labels, teacher_logits))
    train_data = sweep.cached_train_data(teacher, seed)
    for alpha in ALPHAS:
      for temperature in TEMPERATURES[:1] if alpha == 0 else TEMPERATURES:
        student = sweep.student(train_data, seed, alpha, temperature)
        key = "scratch" if alpha == 0 else f"alpha={alpha:g} T={temperature:g}"
        runs.setdefault(key, []).append(
            _scores(_logits(student, sweep.eval_data), sweep.labels, teacher_logits))
    print(f"  seed {seed}: {time.monotonic() - start:.0f} s", file=sys.stderr)
  return {key: {m: _summary([r[m] for r in rs]) for m in METRICS}
          for key, rs in runs.items()}


def _plot(path: str, sweep: Dict[str, dict]) -> None:
  plt = _common.pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(14, 4))
  for ax, metric, title in zip(axes, ("auc", "log_loss", "agreement"),
                               ("Eval AUC", "Eval log loss", "Agreement with teacher")):
    for alpha in ALPHAS[1:]:
      points = [sweep[f"alpha={alpha:g} T={t:g}"][metric] for t in TEMPERATURES]
      ax.errorbar(TEMPERATURES, [p["mean"] for p in points],
                  yerr=[p["std"] for p in points], marker="o", capsize=3,
                  label=f"distilled, alpha {alpha:g}")
    for key, style in (("scratch", "k--"), ("teacher", "r:")):
      if key == "teacher" and metric == "agreement":
        continue  # 1 by definition
      mean, std = sweep[key][metric]["mean"], sweep[key][metric]["std"]
      ax.axhline(mean, color=style[0], linestyle=style[1:],
                 label=f"{'from scratch (alpha 0)' if key == 'scratch' else key} "
                       f"{mean:.4f} ± {std:.4f}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(TEMPERATURES, [f"{t:g}" for t in TEMPERATURES])
    ax.set_xlabel("temperature T")
    ax.set_title(f"{title} (mean ± std over seeds)")
    ax.legend(fontsize=7)
  _common.save_figure(fig, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--pipeline-root", default=os.path.join("bench", "work", "quality"))
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  args = parser.parse_args(argv)
  root = os.path.abspath(args.pipeline_root)

  start = time.monotonic()
  run = _pipeline_run(root)
  print(f"  pipeline: {time.monotonic() - start:.0f} s", file=sys.stderr)
  pipeline = {"teacher": dataclasses.asdict(run.teacher),
              "student": dict(dataclasses.asdict(run.student), agreement=run.agreement,
                              blessed=run.blessed)}
  sweep = _sweep(root, args.seeds)

  lines = [f"Pipeline run (`tfx-distill run`, T {configs.TEMPERATURE:g}, alpha "
           f"{configs.ALPHA:g}), scored by TFMA's Evaluator:", "",
           "| model | AUC | accuracy | parameters | SavedModel MB | agreement | blessed |",
           "|---|---|---|---|---|---|---|"]
  for label, r in pipeline.items():
    lines.append(
        f"| {label} | {r['auc']:.4f} | {r['accuracy']:.4f} | {r['params']:,} | "
        f"{r['saved_model_bytes'] / 1e6:.2f} | "
        f"{'' if r.get('agreement') is None else format(r['agreement'], '.4f')} | "
        f"{'' if r.get('blessed') is None else ('yes' if r['blessed'] else 'no')} |")
  lines += ["", f"Sweep, {len(args.seeds)} seeds (mean ± std), whole eval split, "
            f"{configs.DISTILL_TRAIN_STEPS} student steps:", "",
            "| model | AUC | accuracy | log loss | agreement with teacher |",
            "|---|---|---|---|---|"]
  for key, scores in sweep.items():
    label = {"teacher": "teacher", "scratch": "student from scratch (alpha 0)"}.get(
        key, f"student distilled, {key}")
    lines.append(f"| {label} | " + " | ".join(
        f"{scores[m]['mean']:.4f} ± {scores[m]['std']:.4f}" for m in METRICS) + " |")
  best = max((k for k in sweep if k.startswith("alpha")),
             key=lambda k: sweep[k]["auc"]["mean"])
  lines += ["", f"Best distilled setting by mean AUC: {best} "
            f"({sweep[best]['auc']['mean']:.4f}); from scratch "
            f"{sweep['scratch']['auc']['mean']:.4f}; teacher "
            f"{sweep['teacher']['auc']['mean']:.4f}."]
  _common.save(args.out, "quality", {"seeds": args.seeds, "pipeline": pipeline,
                                     "sweep": sweep, "best": best}, lines)
  _plot(os.path.join(args.out, "quality.png"), sweep)
  return 0


if __name__ == "__main__":
  sys.exit(main())
