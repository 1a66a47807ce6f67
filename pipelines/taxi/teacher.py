"""Trainer module file: the teacher, a wide-and-deep network on the taxi data.

Big on purpose: it is what the Distiller compresses. It emits logits and is
saved with the Distiller's serving contract (`export.save_model`), which adds
the `transformed_logits` signature the Distiller reads.
"""
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.tfxio import dataset_options

from distill_components.distiller import export
from distill_pipelines.taxi import features as f
from distill_pipelines.taxi import layers

HIDDEN_UNITS = (1024, 512, 256)
EMBEDDING_DIM = 16
BATCH_SIZE = 256


def build_teacher(hidden_units=HIDDEN_UNITS) -> tf.keras.Model:
  """Wide (one-hot of every integer feature) and deep (embeddings + MLP)."""
  inputs = layers.keras_inputs()
  deep = layers.embedded(inputs, EMBEDDING_DIM)
  for units in hidden_units:
    deep = tf.keras.layers.Dense(units, activation="relu")(deep)
    deep = tf.keras.layers.Dropout(0.2)(deep)
  wide = tf.keras.layers.concatenate([
      tf.keras.layers.CategoryEncoding(num_tokens=size)(inputs[name])
      for name, size in f.categorical_sizes().items()
  ])
  logits = tf.keras.layers.Dense(1, name="logits")(
      tf.keras.layers.concatenate([deep, wide]))
  return tf.keras.Model(inputs, logits, name="teacher")


def _dataset(fn_args: FnArgs, files, tf_transform_output, repeat: bool):
  return fn_args.data_accessor.tf_dataset_factory(
      files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=BATCH_SIZE, label_key=f.LABEL_KEY,
          num_epochs=None if repeat else 1, shuffle=repeat, shuffle_seed=0),
      tf_transform_output.transformed_metadata.schema)


def run_fn(fn_args: FnArgs):
  """Trains the teacher and saves it to fn_args.serving_model_dir."""
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  hidden = (fn_args.custom_config or {}).get("hidden_units", HIDDEN_UNITS)
  model = build_teacher(hidden)
  model.compile(
      optimizer=tf.keras.optimizers.Adam(1e-3),
      loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
      metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")])
  model.fit(
      _dataset(fn_args, fn_args.train_files, tf_transform_output, repeat=True),
      epochs=1, steps_per_epoch=fn_args.train_steps,
      validation_data=_dataset(fn_args, fn_args.eval_files, tf_transform_output,
                               repeat=False),
      validation_steps=fn_args.eval_steps,
      callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)],
      verbose=2)
  export.save_model(model, fn_args.serving_model_dir, tf_transform_output,
                    label_key=f.LABEL_KEY, raw_label_keys=f.RAW_LABEL_KEYS)
