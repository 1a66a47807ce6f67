"""Teacher, distilled student and the same student from scratch: quality.

    .venv/bin/python bench/quality.py [--seeds 0 1 2] [--teacher-type mlp|gbt]
        [--temperatures 1 2 4 8] [--alphas 0 0.5 0.9 1] [--distill-steps N]
        [--train-steps N] [--pipeline-root bench/work/quality] [--work DIR]
        [--out bench/results]

Two parts, in one run:

1. The pipeline as shipped (`tfx-distill run` defaults, LocalDagRunner, the
   embedded taxi data; `--teacher-type`, `--train-steps` and `--distill-steps`
   passed on when given): the teacher and the distilled student as TFMA's
   Evaluator scored them on the eval split, and whether the gates blessed the
   student. One run; this is what a user sees. Its pipeline root (default
   bench/work/quality) is what bench/serving.py, bench/throughput.py and
   bench/distiller_profile.py read.
2. A sweep over temperature {1, 2, 4, 8} x alpha {0, 0.5, 0.9, 1}, each with
   3 seeds, on that run's Transform outputs. For each seed the teacher (the
   demo's shipped one, `config.TEACHER_TYPE`: gradient-boosted trees, or the
   MLP with `--teacher-type mlp`) is trained again with the pipeline's own
   `run_fn` (same settings, that seed), and every student, built by the
   pipeline's `build_student` with that seed, is trained with the Distiller's
   training loop for the Distiller's steps, batch size and learning rate,
   with the teacher's outputs cached (a test shows cached and online training
   give the same loss). alpha = 0 is the student from scratch (hard labels
   only; T plays no part, so it is trained once per seed, and always). Every
   model is scored on the whole eval split: AUC (10,000 thresholds, as TFMA),
   accuracy, log loss, and agreement with the teacher. The sweep's teachers
   and caches go to `--work` (default: the pipeline root's sweep/).

Writes quality.json, quality.md and quality.png.
"""
import argparse
import contextlib
import importlib
import io
import json
import os
import shutil
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

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
from distill_cli import main as cli
from distill_pipelines import exits
from distill_pipelines import report
from distill_pipelines.taxi import config as configs


def _settings_from(args, say=print):
  """The Settings `tfx-distill` makes of parsed flags."""
  return cli.settings_from_args(args, say=say)


NAME = "bench-quality"
TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
ALPHAS = (0.0, 0.5, 0.9, 1.0)
READ_BATCH = 1024  # reading the eval split and writing the cache; not training
METRICS = ("auc", "accuracy", "log_loss", "agreement")
# Exit codes of a run that completed but whose student a gate did not bless.
_NOT_BLESSED = (exits.FIDELITY, exits.NO_REGRESSION)


def _run_argv(root: str, args: argparse.Namespace) -> List[str]:
  argv = ["run", "--pipeline-root", root, "--pipeline-name", NAME, "--no-cache",
          "--teacher-type", args.teacher_type]
  if args.train_steps:
    argv += ["--train-steps", str(args.train_steps)]
  if args.distill_steps:
    argv += ["--distill-steps", str(args.distill_steps)]
  return argv


def _pipeline_run(argv: List[str], root: str) -> report.RunSummary:
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    code = cli.main(argv)
  if code not in (0, *_NOT_BLESSED):
    sys.stderr.write(out.getvalue())
    raise SystemExit(f"the pipeline run failed with exit code {code}")
  return report.summarize(os.path.join(root, "metadata.sqlite"), NAME)


def _scores(logits: np.ndarray, labels: np.ndarray,
            teacher_logits: np.ndarray) -> Dict[str, float]:
  z, y = logits.reshape(-1), labels.reshape(-1)
  auc = tf.keras.metrics.AUC(num_thresholds=10000, from_logits=True)
  auc.update_state(y, z)
  predicted = z > 0
  return {"auc": float(auc.result()),
          "accuracy": float(np.mean(predicted == (y > 0.5))),
          "log_loss": float(np.mean(np.logaddexp(0, z) - y * z)),
          "agreement": float(np.mean(predicted == (teacher_logits.reshape(-1) > 0)))}


def _logits(model: Callable, eval_data: tf.data.Dataset) -> np.ndarray:
  return np.concatenate([np.asarray(model(features)) for features, _ in eval_data])


def _load(path: str) -> Callable:
  module, fn = path.rsplit(".", 1)
  return getattr(importlib.import_module(module), fn)


class Sweep:
  """The sweep's inputs, read once from the pipeline run's artifacts."""

  def __init__(self, root: str, work: str, settings):
    store = report.open_store(os.path.join(root, "metadata.sqlite"))
    examples = _common.newest_artifact(store, "Examples", "Transform")
    graph = _common.newest_artifact(store, "TransformGraph", "Transform")
    self.work = work
    self.settings = settings
    self.label_key = settings.transformed_label
    self.fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples], "transform_graph": [graph]},
        {"train_args": proto_utils.proto_to_json(
            trainer_pb2.TrainArgs(num_steps=settings.train_steps)),
         "eval_args": proto_utils.proto_to_json(
             trainer_pb2.EvalArgs(num_steps=settings.eval_steps)),
         "custom_config": json.dumps(settings.module_config())})
    # What the Trainer's executor adds for a run_fn.
    self.fn_args.transform_output = self.fn_args.transform_graph_path
    self.tft_output = tft.TFTransformOutput(self.fn_args.transform_graph_path)
    self.schema = self.tft_output.transformed_metadata.schema
    self.teacher_run_fn = _load(settings.teacher_code)
    self.build_student = _load(settings.student_code)
    self.eval_data = self._dataset(self.fn_args.eval_files)
    self.labels = np.concatenate([y.numpy().reshape(-1) for _, y in self.eval_data])

  def _dataset(self, files):
    """One epoch, in file order."""
    return self.fn_args.data_accessor.tf_dataset_factory(
        files,
        dataset_options.TensorFlowDatasetOptions(
            batch_size=READ_BATCH, label_key=self.label_key, num_epochs=1,
            shuffle=False),
        self.schema).prefetch(tf.data.AUTOTUNE)

  def teacher(self, seed: int) -> teacher_lib.Teacher:
    """The pipeline's teacher `run_fn`, trained again with `seed`."""
    tf.keras.utils.set_random_seed(seed)
    self.fn_args.custom_config = {**self.settings.module_config(), "seed": seed}
    self.fn_args.serving_model_dir = os.path.join(self.work, f"teacher_{seed}")
    self.fn_args.model_run_dir = os.path.join(self.work, f"teacher_{seed}_logs")
    for path in (self.fn_args.serving_model_dir, self.fn_args.model_run_dir):
      shutil.rmtree(path, ignore_errors=True)
    with contextlib.redirect_stdout(io.StringIO()):
      self.teacher_run_fn(self.fn_args)
    return teacher_lib.Teacher(
        self.fn_args.serving_model_dir,
        export.model_input_spec(self.tft_output, self.label_key),
        task=self.settings.task, imports=self.settings.teacher_modules)

  def cache(self, teacher: teacher_lib.Teacher, seed: int) -> str:
    """The teacher's logits on the train split, written once."""
    path = os.path.join(self.work, f"teacher_{seed}_outputs")
    shutil.rmtree(path, ignore_errors=True)
    teacher_cache.write(teacher.logits, self._dataset(self.fn_args.train_files), path)
    return path

  def student(self, cache_path: str, seed: int, alpha: float, temperature: float):
    s = self.settings
    tf.keras.utils.set_random_seed(seed)
    self.fn_args.custom_config = s.module_config()
    student = self.build_student(self.fn_args)
    training.Distillation(
        student, None, task=s.task,  # cached: the teacher is not called
        alpha=alpha, temperature=temperature,
        optimizer=tf.keras.optimizers.Adam(s.learning_rate),
    ).fit(teacher_cache.read(cache_path, s.batch_size, seed=seed), s.distill_steps)
    return student


def _key(alpha: float, temperature: float) -> str:
  return f"alpha={alpha:g} T={temperature:g}"


def _summary(values: List[float]) -> Dict[str, float]:
  return {"mean": statistics.mean(values),
          "std": statistics.stdev(values) if len(values) > 1 else 0.0,
          "min": min(values), "max": max(values), "values": values}


def _sweep(sweep: Sweep, seeds: List[int], temperatures: List[float],
           alphas: List[float]) -> Dict[str, dict]:
  runs: Dict[str, List[Dict[str, float]]] = {}
  for seed in seeds:
    start = time.monotonic()
    teacher = sweep.teacher(seed)
    teacher_logits = _logits(teacher.logits, sweep.eval_data)
    runs.setdefault("teacher", []).append(
        _scores(teacher_logits, sweep.labels, teacher_logits))
    cache_path = sweep.cache(teacher, seed)
    print(f"  seed {seed}: teacher {time.monotonic() - start:.0f} s", file=sys.stderr)
    for alpha in [0.0, *alphas]:
      for temperature in temperatures[:1] if alpha == 0 else temperatures:
        student = sweep.student(cache_path, seed, alpha, temperature)
        key = "scratch" if alpha == 0 else _key(alpha, temperature)
        runs.setdefault(key, []).append(
            _scores(_logits(student, sweep.eval_data), sweep.labels, teacher_logits))
    print(f"  seed {seed}: {time.monotonic() - start:.0f} s", file=sys.stderr)
  return {key: {m: _summary([r[m] for r in rs]) for m in METRICS}
          for key, rs in runs.items()}


def _plot(path: str, sweep: Dict[str, dict], temperatures: List[float],
          alphas: List[float]) -> None:
  plt = _common.pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(14, 4))
  for ax, metric, title in zip(axes, ("auc", "log_loss", "agreement"),
                               ("Eval AUC", "Eval log loss", "Agreement with teacher")):
    for alpha in alphas:
      points = [sweep[_key(alpha, t)][metric] for t in temperatures]
      ax.errorbar(temperatures, [p["mean"] for p in points],
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
    ax.set_xticks(temperatures, [f"{t:g}" for t in temperatures])
    ax.set_xlabel("temperature T")
    ax.set_title(f"{title} (mean ± std over seeds)")
    ax.legend(fontsize=7)
  _common.save_figure(fig, path)


def _fmt(value: Optional[float], spec: str) -> str:
  return "" if value is None else format(value, spec)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--pipeline-root", default=os.path.join("bench", "work", "quality"),
                      help="the pipeline run's root (bench/serving.py, throughput.py "
                      "and distiller_profile.py read it)")
  parser.add_argument("--work", default=None,
                      help="the sweep's teachers and caches (default: "
                      "<pipeline-root>/sweep)")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--teacher-type", choices=["mlp", "gbt"],
                      default=configs.TEACHER_TYPE,
                      help=f"the demo's teacher to use (default: the demo's, "
                      f"{configs.TEACHER_TYPE})")
  parser.add_argument("--temperatures", type=float, nargs="+",
                      default=list(TEMPERATURES))
  parser.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS),
                      help="alpha 0 (the student from scratch) is always run")
  parser.add_argument("--distill-steps", type=int, default=None,
                      help=f"student steps, pipeline and sweep (default: the "
                      f"Distiller's, {configs.DISTILL_TRAIN_STEPS})")
  parser.add_argument("--train-steps", type=int, default=None,
                      help=f"the MLP teacher's steps, pipeline and sweep (default: "
                      f"{configs.TRAIN_STEPS}; the trees read the train split once)")
  args = parser.parse_args(argv)
  root = os.path.abspath(args.pipeline_root)
  work = os.path.abspath(args.work or os.path.join(root, "sweep"))
  temperatures = sorted(set(args.temperatures))
  alphas = sorted(set(a for a in args.alphas if a != 0))

  run_argv = _run_argv(root, args)
  settings = _settings_from(cli.build_parser().parse_args(run_argv))
  start = time.monotonic()
  run = _pipeline_run(run_argv, root)
  print(f"  pipeline: {time.monotonic() - start:.0f} s", file=sys.stderr)
  side = lambda s: {"auc": s.metrics.get("auc"),
                    "accuracy": s.metrics.get("binary_accuracy"),
                    "params": s.params, "saved_model_bytes": s.saved_model_bytes}
  pipeline = {"teacher": side(run.teacher),
              "student": dict(side(run.student), agreement=run.agreement,
                              blessed=run.blessed)}
  sweep = _sweep(Sweep(root, work, settings), args.seeds, temperatures, alphas)

  lines = [f"Pipeline run (`tfx-distill run`, {args.teacher_type} teacher, "
           f"T {settings.temperature:g}, alpha {settings.alpha:g}, "
           f"{settings.distill_steps} student steps), scored by TFMA's Evaluator:", "",
           "| model | AUC | accuracy | parameters | SavedModel MB | agreement | blessed |",
           "|---|---|---|---|---|---|---|"]
  for label, r in pipeline.items():
    lines.append(
        f"| {label} | {_fmt(r['auc'], '.4f')} | {_fmt(r['accuracy'], '.4f')} "
        f"| {_fmt(r['params'], ',')} "
        f"| {_fmt(r['saved_model_bytes'] and r['saved_model_bytes'] / 1e6, '.2f')} | "
        f"{_fmt(r.get('agreement'), '.4f')} | "
        f"{'' if r.get('blessed') is None else ('yes' if r['blessed'] else 'no')} |")
  lines += ["", f"Sweep, {args.teacher_type} teacher, {len(args.seeds)} seeds "
            f"(mean ± std), whole eval split, {settings.distill_steps} student steps:", "",
            "| model | AUC | accuracy | log loss | agreement with teacher |",
            "|---|---|---|---|---|"]
  for key, scores in sweep.items():
    label = {"teacher": f"teacher ({args.teacher_type})",
             "scratch": "student from scratch (alpha 0)"}.get(
                 key, f"student distilled, {key}")
    lines.append(f"| {label} | " + " | ".join(
        f"{scores[m]['mean']:.4f} ± {scores[m]['std']:.4f}" for m in METRICS) + " |")
  distilled = [k for k in sweep if k.startswith("alpha")]
  best = max(distilled, key=lambda k: sweep[k]["auc"]["mean"]) if distilled else None
  lines += ["", (f"Best distilled setting by mean AUC: {best} "
                 f"({sweep[best]['auc']['mean']:.4f}); " if best else "")
            + f"from scratch {sweep['scratch']['auc']['mean']:.4f}; teacher "
            f"{sweep['teacher']['auc']['mean']:.4f}."]
  _common.save(args.out, "quality", {
      "seeds": args.seeds,
      "settings": {"teacher_type": args.teacher_type, "temperatures": temperatures,
                   "alphas": [0.0, *alphas], "distill_steps": settings.distill_steps,
                   "batch_size": settings.batch_size,
                   "learning_rate": settings.learning_rate,
                   "mlp_train_steps": settings.train_steps},
      "pipeline": pipeline, "sweep": sweep, "best": best}, lines)
  _plot(os.path.join(args.out, "quality.png"), sweep, temperatures, alphas)
  return 0


if __name__ == "__main__":
  sys.exit(main())
