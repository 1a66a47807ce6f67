"""Distiller training throughput against a plain Keras `fit` of the same student.

    .venv/bin/python bench/throughput.py [--pipeline-root bench/work/quality] [--steps 1000]

Uses one pipeline run's artifacts (run bench/quality.py, or `make run` with
--pipeline-root, first): the Transform's transformed examples and graph and
the Trainer's teacher. In one process, on the same `tf.data` input (TFX's
DataAccessor, batch 256), it times, in alternating rounds:

- `fit`: `student.fit` with binary cross-entropy, the baseline;
- `fit, steps_per_execution=50`: the same with Keras running 50 steps per
  call, as the Distiller's loop does (`training.STEPS_PER_EXECUTION`);
- `distiller`: the Distiller's training loop, teacher run online every step;
- `distiller, cached teacher outputs`: the loop with `cache_teacher_outputs`:
  the teacher's logits written once per train example (not timed) and read
  back with each batch;
- `distiller, teacher free`: the same loop with the teacher replaced by a
  constant, which is what a step would cost if the teacher's outputs were
  cached: the upper bound for teacher-output caching.

Reports examples per second (median over rounds) and the ratios to `fit`.
Writes throughput.json, throughput.md and throughput.png.
"""
import argparse
import os
import statistics
import sys
import time

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx.utils import path_utils
from tfx.utils import proto_utils
from tfx.proto import trainer_pb2
from tfx_bsl.tfxio import dataset_options


import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_components.distiller import export
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import training
from distill_pipelines.taxi import config as configs
from distill_pipelines import report
from distill_pipelines.taxi import student as student_module

BATCH = 256


def _plot(path: str, results) -> None:
  plt = _common.pyplot()
  names = list(results)
  fig, ax = plt.subplots(figsize=(8, 3.5))
  bars = ax.barh(names, [results[n]["examples_per_second"] for n in names],
                 color=["gray" if n.startswith("fit") else "tab:blue" for n in names])
  ax.bar_label(bars, labels=[f"{results[n]['ratio_to_fit']:.2f}x" for n in names],
               padding=3)
  ax.invert_yaxis()
  ax.set_xlabel("training examples per second (median of rounds)")
  ax.set_title("Distiller training loop vs plain Keras fit")
  ax.margins(x=0.15)
  _common.save_figure(fig, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", default=os.path.join("bench", "work", "quality"))
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--steps", type=int, default=1000, help="timed steps per round")
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args(argv)
  tf.keras.utils.set_random_seed(0)

  store = report.open_store(os.path.join(args.pipeline_root, "metadata.sqlite"))
  examples = _common.newest_artifact(store, "Examples", "Transform")
  graph = _common.newest_artifact(store, "TransformGraph", "Transform")
  teacher_model = _common.newest_artifact(store, "Model", "Trainer")
  fn_args = fn_args_utils.get_common_fn_args(
      {"examples": [examples], "transform_graph": [graph]},
      {"train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=args.steps)),
       "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=1))})
  tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
  data = fn_args.data_accessor.tf_dataset_factory(
      fn_args.train_files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=BATCH, label_key=configs.LABEL_KEY, shuffle=True, shuffle_seed=0),
      tft_output.transformed_metadata.schema).prefetch(tf.data.AUTOTUNE)
  teacher = teacher_lib.Teacher(
      path_utils.serving_model_path(teacher_model.uri), export.TRANSFORMED_LOGITS_SIGNATURE,
      export.model_input_spec(tft_output, configs.LABEL_KEY))

  def distiller(teacher_fn, dataset=data):
    loop = training.Distillation(
        student_module.build_student(fn_args), teacher_fn,
        task="binary", alpha=configs.ALPHA,
        temperature=configs.TEMPERATURE, optimizer=tf.keras.optimizers.Adam(1e-3))
    return lambda steps: loop.fit(dataset, steps)

  def keras_fit(steps_per_execution=1):
    model = student_module.build_student(fn_args)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    return lambda steps: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)

  constant = lambda features: tf.zeros([tf.shape(features[  # pylint: disable=g-long-lambda
      next(iter(features))])[0], 1])
  pattern, _ = teacher_cache.write(
      teacher.logits, fn_args.train_files, tft_output.transformed_feature_spec(),
      os.path.join(args.pipeline_root, "bench_teacher_cache"))
  cached_data = fn_args.data_accessor.tf_dataset_factory(
      [pattern],
      dataset_options.TensorFlowDatasetOptions(
          batch_size=BATCH, label_key=configs.LABEL_KEY, shuffle=True, shuffle_seed=0),
      teacher_cache.extend_schema(tft_output.transformed_metadata.schema,
                                  teacher.width)).prefetch(tf.data.AUTOTUNE)
  variants = {"fit": keras_fit(),
              f"fit, steps_per_execution={training.STEPS_PER_EXECUTION}": keras_fit(
                  training.STEPS_PER_EXECUTION),
              "distiller": distiller(teacher.logits),
              "distiller, cached teacher outputs": distiller(
                  teacher_cache.from_batch, cached_data),
              "distiller, teacher free": distiller(constant)}
  for run in variants.values():  # warm-up: tracing, first batches
    run(20)
  seconds = {name: [] for name in variants}
  for _ in range(args.rounds):
    for name, run in variants.items():
      t0 = time.perf_counter()
      run(args.steps)
      seconds[name].append(time.perf_counter() - t0)
  results = {}
  for name, ts in seconds.items():
    results[name] = {"examples_per_second": args.steps * BATCH / statistics.median(ts),
                     "seconds": ts}
  base = results["fit"]["examples_per_second"]
  for r in results.values():
    r["ratio_to_fit"] = r["examples_per_second"] / base
  lines = ["| training loop | examples / s | vs `fit` |", "|---|---|---|"]
  lines += [f"| {name} | {r['examples_per_second']:,.0f} | {r['ratio_to_fit']:.2f}x |"
            for name, r in results.items()]
  _plot(os.path.join(args.out, "throughput.png"), results)
  _common.save(args.out, "throughput",
                {"batch_size": BATCH, "steps": args.steps, "rounds": args.rounds,
                 "results": results}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
