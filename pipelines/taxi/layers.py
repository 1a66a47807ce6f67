"""Keras inputs and the shared input encoding for the taxi teacher and student."""
from typing import Dict

import tensorflow as tf

from distill_pipelines.taxi import features as f


def keras_inputs() -> Dict[str, tf.keras.layers.Input]:
  """One Keras input per transformed feature the models read."""
  inputs = {
      f.transformed_name(k): tf.keras.layers.Input(
          name=f.transformed_name(k), shape=(1,), dtype=tf.float32)
      for k in f.DENSE_FLOAT_KEYS
  }
  inputs.update({
      name: tf.keras.layers.Input(name=name, shape=(1,), dtype=tf.int64)
      for name in f.categorical_sizes()
  })
  return inputs


def embedded(inputs: Dict[str, tf.Tensor], dim: int) -> tf.Tensor:
  """Dense floats and a `dim`-wide embedding of every integer feature, joined."""
  parts = [inputs[f.transformed_name(k)] for k in f.DENSE_FLOAT_KEYS]
  for name, size in f.categorical_sizes().items():
    ids = tf.keras.layers.Lambda(
        lambda x, size=size: tf.clip_by_value(x, 0, size - 1))(inputs[name])
    parts.append(tf.keras.layers.Flatten()(
        tf.keras.layers.Embedding(size, dim, name=f"{name}_embedding")(ids)))
  return tf.keras.layers.concatenate(parts)
