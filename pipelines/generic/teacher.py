"""Trainer module: trains the generic teacher on any transformed CSV.

Reads the label, the task and the training settings from
`fn_args.custom_config` (keys in `config`), checks the train split's labels
fit the task before training, and saves the teacher with the Distiller's
serving contract (`export.save_model`).
"""
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.tfxio import dataset_options

from distill_components.distiller import choice
from distill_components.distiller import export
from distill_components.distiller import tasks
from distill_pipelines.generic import config
from distill_pipelines.generic import models


def _loss_and_metrics(task: tasks.Task):
  if task is tasks.Task.BINARY:
    return (tf.keras.losses.BinaryCrossentropy(from_logits=True),
            [tf.keras.metrics.AUC(from_logits=True, name="auc"),
             tf.keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")])
  if task is tasks.Task.MULTICLASS:
    return (tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
  return (tf.keras.losses.MeanSquaredError(),
          [tf.keras.metrics.RootMeanSquaredError(name="rmse")])


def check_labels(labels: np.ndarray, cfg: config.Config, width: int) -> None:
  """Raises tasks.LabelError unless the train labels fit the task."""
  where = f"The transformed label {cfg.label_key!r} of the train split"
  try:
    cfg.task.check_labels(labels, width, where=where)
  except tasks.LabelError as e:
    if cfg.task.is_classification and np.any(np.asarray(labels) == -1):
      raise tasks.LabelError(
          f"{e} (The generic preprocessing writes -1 for a raw label of "
          f"{cfg.label!r} that is not in {config.LABEL_VALUES}, or, without "
          "them, for a fractional number.)") from e
    raise


def _dataset(fn_args: FnArgs, files, tf_transform_output, cfg: config.Config,
             repeat: bool, outside_cut: Optional[float] = None) -> tf.data.Dataset:
  """(features, label) batches; `outside_cut`: less that validation cut's rows."""
  rows = fn_args.data_accessor.tf_dataset_factory(
      files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=cfg.batch_size, label_key=cfg.label_key,
          num_epochs=None if repeat else 1, shuffle=repeat, shuffle_seed=0),
      tf_transform_output.transformed_metadata.schema)
  if not outside_cut:
    return rows
  names = sorted(set(tf_transform_output.transformed_feature_spec()) - {cfg.label_key})
  return choice.cut(rows, names, outside_cut, validation=False)


def build(fn_args: FnArgs, tf_transform_output: tft.TFTransformOutput,
          cfg: config.Config) -> tf.keras.Model:
  """The uncompiled teacher for fn_args' data; checks the labels first."""
  classes = models.num_classes(cfg, tf_transform_output)
  width = cfg.task.output_width(classes)
  labels = models.label_sample(fn_args, tf_transform_output, cfg.label_key)
  check_labels(labels, cfg, width)
  scale = (models.label_scale(labels) if not cfg.task.is_classification
           else (0.0, 1.0))
  feats, scales = models.fit_to_train_sample(
      fn_args, tf_transform_output, models.features(tf_transform_output, cfg.label_key))
  return models.build_teacher(
      feats, cfg.task, classes, label_scale=scale,
      hidden_units=cfg.teacher_hidden_units, scales=scales)


def train(fn_args: FnArgs, tf_transform_output: tft.TFTransformOutput,
          cfg: config.Config, outside_cut: Optional[float] = None) -> tf.keras.Model:
  """The teacher, built and trained for fn_args.train_steps (TensorBoard logs
  in fn_args.model_run_dir); `outside_cut`: not on that validation cut's rows."""
  model = build(fn_args, tf_transform_output, cfg)
  loss, metrics = _loss_and_metrics(cfg.task)
  model.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate),
                loss=loss, metrics=metrics)
  model.fit(
      _dataset(fn_args, fn_args.train_files, tf_transform_output, cfg,
               repeat=True, outside_cut=outside_cut),
      epochs=1, steps_per_epoch=fn_args.train_steps,
      validation_data=_dataset(fn_args, fn_args.eval_files, tf_transform_output,
                               cfg, repeat=False),
      validation_steps=fn_args.eval_steps,
      callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)],
      verbose=2)
  return model


def run_fn(fn_args: FnArgs) -> None:
  """Trains the teacher and saves it to fn_args.serving_model_dir."""
  cfg = config.parse(fn_args.custom_config)
  tf_transform_output = tft.TFTransformOutput(
      getattr(fn_args, "transform_output", None) or fn_args.transform_graph_path)
  model = train(fn_args, tf_transform_output, cfg)
  export.save_model(model, fn_args.serving_model_dir, tf_transform_output,
                    label_key=cfg.label_key, raw_label_keys=cfg.raw_label_keys,
                    task=cfg.task)
