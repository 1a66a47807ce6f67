"""Distiller training throughput: the Keras loop against the hand-written one.

    .venv/bin/python bench/throughput.py [--pipeline-root bench/work/quality] [--steps 1000]

Uses one pipeline run's artifacts (run bench/quality.py, or `make run` with
--pipeline-root, first): the Transform's transformed examples and graph and
the Trainer's teacher. In one process, on the same `tf.data` input (TFX's
DataAccessor, batch 256), it times, in alternating rounds:

- `fit`: `student.fit` with binary cross-entropy, the baseline;
- `fit, steps_per_execution=50`: the same with Keras running 50 steps per
  call, as the Distiller's loop does (`training.STEPS_PER_EXECUTION`);
- `distiller`: the Distiller's training loop (`training.Distillation`: a
  tf-keras Model trained by `fit`, 50 steps per call, with its callbacks),
  the teacher run online every step;
- `hand-written loop`: the loop it replaced (until 2026-11-24; copied below
  as `HandWrittenLoop`), 50 steps per `tf.function` call in a
  `tf.while_loop`, same teacher;
- the same two with the teacher replaced by a constant (`teacher free`):
  what the loops themselves cost, which the teacher's forward pass hides;
- `distiller, cached teacher outputs`: `cache_teacher_outputs`: the
  teacher's logits computed once per train example (`teacher_cache.write`,
  not timed) and read back with each batch (`teacher_cache.read`).

Reports examples per second (median over rounds) and the ratios to `fit`
and, for the Keras loop, to the hand-written loop. Then, each in a fresh
process, the wall time of the first 50-step `fit` (tracing included) of the
Keras loop as shipped (its steps not converted by AutoGraph), of the same
with AutoGraph converting them, of the hand-written loop and of plain Keras
`fit`. Writes throughput.json, throughput.md and throughput.png.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx.utils import path_utils
from tfx.utils import proto_utils
from tfx.proto import trainer_pb2
from tfx_bsl.tfxio import dataset_options


import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_components.distiller import export
from distill_components.distiller import losses
from distill_components.distiller import tasks
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import training
from distill_pipelines.taxi import config as configs
from distill_pipelines import report
from distill_pipelines.taxi import student as student_module

BATCH = 256
KERAS_LOOP, HAND_WRITTEN = "distiller", "hand-written loop"
STARTUP_STEPS = 50
STARTUP_VARIANTS = ("distiller (as shipped)", "distiller, AutoGraph converting its steps",
                    HAND_WRITTEN, "fit, steps_per_execution=50")


class HandWrittenLoop:
  """The Distiller's training loop until 2026-11-24 (its `fit`), the yardstick.

  `steps_per_execution` steps per `tf.function` call in a `tf.while_loop`;
  the first non-finite step tracked by hand; metrics read back, logged and
  written as summaries every `summary_every` steps.
  """

  def __init__(self, student, teacher_logits, *, task, alpha, temperature,
               optimizer):
    self.student = student
    self.task = task
    self.alpha, self.temperature = float(alpha), float(temperature)
    self._teacher_logits = teacher_logits
    self._optimizer = optimizer
    self.train_steps = tf.function(self._train_steps, autograph=False)

  def _metrics(self, features, labels, train):
    teacher = tf.stop_gradient(self._teacher_logits(features))
    student = self.student(features, training=train)
    values = losses.distillation_loss(
        labels, teacher, student, task=self.task, alpha=self.alpha,
        temperature=self.temperature)
    values["agreement"] = tf.reduce_mean(tf.cast(tf.equal(
        training.predicted_class(teacher), training.predicted_class(student)),
        tf.float32))
    return values

  def _train_step(self, features, labels):
    with tf.GradientTape() as tape:
      values = self._metrics(features, labels, train=True)
    variables = self.student.trainable_variables
    self._optimizer.apply_gradients(
        zip(tape.gradient(values["loss"], variables), variables))
    return values

  def _train_steps(self, iterator, count):
    def step(index, first_bad, at_bad):
      values = self._train_step(*iterator.get_next())
      bad = tf.logical_and(first_bad < 0,
                           tf.logical_not(tf.math.is_finite(values["loss"])))
      at_bad = {k: tf.where(bad, values[k], v) for k, v in at_bad.items()}
      return values, tf.where(bad, index, first_bad), at_bad

    def body(index, values, first_bad, at_bad):
      del values  # only the last step's are returned
      return (index + 1, *step(index, first_bad, at_bad))

    first = step(tf.constant(0), tf.constant(-1),
                 {k: tf.constant(0.0) for k in ("loss", "soft_loss", "hard_loss")})
    _, values, first_bad, at_bad = tf.while_loop(
        lambda index, *_: index < count, body, (tf.constant(1), *first))
    return values, first_bad, at_bad

  def fit(self, train_data, steps, summary_dir=None, summary_every=100,
          steps_per_execution=training.STEPS_PER_EXECUTION):
    writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None
    iterator = iter(train_data)
    values, done = {}, 0
    while done < steps:
      count = min(steps_per_execution, steps - done,
                  summary_every - done % summary_every)
      values, first_bad, at_bad = self.train_steps(iterator, tf.constant(count))
      if int(first_bad) >= 0:
        raise FloatingPointError(
            f"The distillation loss became {float(at_bad['loss'])} at step "
            f"{done + int(first_bad) + 1}.")
      values = {k: float(v) for k, v in values.items()}
      done += count
      if done % summary_every == 0 or done == steps:
        if writer:
          with writer.as_default(step=done):
            for name, value in values.items():
              tf.summary.scalar(name, value)
        logging.info("Distillation step %d/%d: %s", done, steps, values)
    return values


class _Inputs:
  """The pipeline run's train input, teacher and student builder."""

  def __init__(self, pipeline_root: str, steps: int):
    store = report.open_store(os.path.join(pipeline_root, "metadata.sqlite"))
    examples = _common.newest_artifact(store, "Examples", "Transform")
    graph = _common.newest_artifact(store, "TransformGraph", "Transform")
    teacher_model = _common.newest_artifact(store, "Model", "Trainer")
    self.fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples], "transform_graph": [graph]},
        {"train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=steps)),
         "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=1))})
    self.tft_output = tft.TFTransformOutput(self.fn_args.transform_graph_path)
    self.teacher = teacher_lib.Teacher(
        path_utils.serving_model_path(teacher_model.uri),
        export.model_input_spec(self.tft_output, configs.LABEL_KEY), task=tasks.Task.BINARY)

  def dataset(self, repeat=True, batch_size=BATCH):
    return self.fn_args.data_accessor.tf_dataset_factory(
        self.fn_args.train_files,
        dataset_options.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=configs.LABEL_KEY,
            num_epochs=None if repeat else 1, shuffle=repeat, shuffle_seed=0),
        self.tft_output.transformed_metadata.schema).prefetch(tf.data.AUTOTUNE)

  def loop(self, teacher_fn, dataset, loop_class=training.Distillation):
    """steps -> runs `steps` training steps of a new student."""
    loop = loop_class(
        student_module.build_student(self.fn_args), teacher_fn,
        task=tasks.Task.BINARY, alpha=configs.ALPHA,
        temperature=configs.TEMPERATURE, optimizer=tf.keras.optimizers.Adam(1e-3))
    return lambda steps: loop.fit(dataset, steps)

  def keras_fit(self, dataset, steps_per_execution=1):
    model = student_module.build_student(self.fn_args)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    return lambda steps: model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)


def _constant_teacher(features):
  return tf.zeros([tf.shape(features[next(iter(features))])[0], 1])


def _startup(inputs: _Inputs, variant: str) -> float:
  """Seconds of the first `fit` of `variant` in this (fresh) process."""
  data = inputs.dataset()
  if variant == STARTUP_VARIANTS[0]:
    run = inputs.loop(inputs.teacher.logits, data)
  elif variant == STARTUP_VARIANTS[1]:
    class Converted(training.DistillationModel):  # steps without do_not_convert
      train_step = training.DistillationModel.train_step.__wrapped__
      test_step = training.DistillationModel.test_step.__wrapped__
    training.DistillationModel = Converted
    run = inputs.loop(inputs.teacher.logits, data)
  elif variant == HAND_WRITTEN:
    run = inputs.loop(inputs.teacher.logits, data, HandWrittenLoop)
  else:
    run = inputs.keras_fit(data, training.STEPS_PER_EXECUTION)
  start = time.perf_counter()
  run(STARTUP_STEPS)
  return time.perf_counter() - start


def _startup_in_fresh_processes(pipeline_root: str):
  seconds = {}
  for variant in STARTUP_VARIANTS:
    out = subprocess.run(
        [sys.executable, __file__, "--pipeline-root", pipeline_root,
         "--startup-variant", variant],
        capture_output=True, text=True, check=True).stdout
    seconds[variant] = json.loads(out.strip().splitlines()[-1])["seconds"]
  return seconds


def _plot(path: str, results) -> None:
  plt = _common.pyplot()
  names = list(results)
  fig, ax = plt.subplots(figsize=(8, 4))
  bars = ax.barh(names, [results[n]["examples_per_second"] for n in names],
                 color=["gray" if n.startswith("fit") else
                        "tab:orange" if n.startswith(HAND_WRITTEN) else "tab:blue"
                        for n in names])
  ax.bar_label(bars, labels=[f"{results[n]['ratio_to_fit']:.2f}x" for n in names],
               padding=3)
  ax.invert_yaxis()
  ax.set_xlabel("training examples per second (median of rounds); x: ratio to fit")
  ax.set_title("Distiller training loop (Keras fit) vs the hand-written loop")
  ax.margins(x=0.15)
  _common.save_figure(fig, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", default=os.path.join("bench", "work", "quality"))
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--steps", type=int, default=1000, help="timed steps per round")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--startup-variant", choices=STARTUP_VARIANTS,
                      help=argparse.SUPPRESS)  # one startup timing, for main
  args = parser.parse_args(argv)
  tf.keras.utils.set_random_seed(0)
  inputs = _Inputs(args.pipeline_root, args.steps)
  if args.startup_variant:
    print(json.dumps({"seconds": _startup(inputs, args.startup_variant)}))
    return 0

  os.makedirs(args.out, exist_ok=True)
  data = inputs.dataset()
  cache_dir = os.path.join(args.pipeline_root, "bench_teacher_cache")
  shutil.rmtree(cache_dir, ignore_errors=True)
  teacher_cache.write(inputs.teacher.logits, inputs.dataset(repeat=False, batch_size=1024),
                      cache_dir)
  variants = {
      "fit": inputs.keras_fit(data),
      f"fit, steps_per_execution={training.STEPS_PER_EXECUTION}": inputs.keras_fit(
          data, training.STEPS_PER_EXECUTION),
      KERAS_LOOP: inputs.loop(inputs.teacher.logits, data),
      HAND_WRITTEN: inputs.loop(inputs.teacher.logits, data, HandWrittenLoop),
      f"{KERAS_LOOP}, teacher free": inputs.loop(_constant_teacher, data),
      f"{HAND_WRITTEN}, teacher free": inputs.loop(_constant_teacher, data,
                                                   HandWrittenLoop),
      f"{KERAS_LOOP}, cached teacher outputs": inputs.loop(
          inputs.teacher.logits, teacher_cache.read(cache_dir, BATCH)),
  }
  for run in variants.values():  # warm-up: tracing, first batches
    run(100)
  seconds = {name: [] for name in variants}
  for _ in range(args.rounds):
    for name, run in variants.items():
      t0 = time.perf_counter()
      run(args.steps)
      seconds[name].append(time.perf_counter() - t0)
  shutil.rmtree(cache_dir, ignore_errors=True)
  results = {}
  for name, ts in seconds.items():
    results[name] = {"examples_per_second": args.steps * BATCH / statistics.median(ts),
                     "seconds": ts}
  base = results["fit"]["examples_per_second"]
  for r in results.values():
    r["ratio_to_fit"] = r["examples_per_second"] / base
  ratios = {
      "online teacher": (results[KERAS_LOOP]["examples_per_second"]
                         / results[HAND_WRITTEN]["examples_per_second"]),
      "teacher free": (results[f"{KERAS_LOOP}, teacher free"]["examples_per_second"]
                       / results[f"{HAND_WRITTEN}, teacher free"]["examples_per_second"])}
  startup = _startup_in_fresh_processes(args.pipeline_root)

  lines = ["| training loop | examples / s | vs `fit` |", "|---|---|---|"]
  lines += [f"| {name} | {r['examples_per_second']:,.0f} | {r['ratio_to_fit']:.2f}x |"
            for name, r in results.items()]
  lines += ["", "| Keras loop vs hand-written loop | throughput ratio |", "|---|---|"]
  lines += [f"| {name} | {ratio:.2f}x |" for name, ratio in ratios.items()]
  lines += ["", f"| first `fit` of {STARTUP_STEPS} steps in a fresh process "
            "(tracing included) | seconds |", "|---|---|"]
  lines += [f"| {name} | {s:.1f} |" for name, s in startup.items()]
  _plot(os.path.join(args.out, "throughput.png"), results)
  _common.save(args.out, "throughput",
               {"batch_size": BATCH, "steps": args.steps, "rounds": args.rounds,
                "pipeline_root": args.pipeline_root, "results": results,
                "keras_loop_to_hand_written": ratios,
                "first_fit_seconds": {"steps": STARTUP_STEPS, **startup}}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
