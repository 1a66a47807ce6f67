"""The Chicago taxi features, shared by the preprocessing, teacher and student.

The label is TFX's "big tipper": the tip was more than 20% of the fare.
"""
from typing import Dict

import tensorflow as tf

# Raw columns that serving requests never carry: the label is derived from
# `tips` (and `fare`, which is also a feature).
RAW_LABEL_KEYS = ("tips",)
# Raw columns a CSV must have for the label to be computed.
LABEL_SOURCE_COLUMNS = ("tips", "fare")
LABEL_KEY = "big_tipper"

DENSE_FLOAT_KEYS = ("trip_miles", "fare", "trip_seconds")
# Categorical integer features and how many values each may take.
CATEGORICAL_MAX_VALUES = {
    "trip_start_hour": 24,
    "trip_start_day": 8,
    "trip_start_month": 13,
}
BUCKET_KEYS = ("pickup_latitude", "pickup_longitude", "dropoff_latitude",
               "dropoff_longitude")
BUCKET_COUNT = 10
VOCAB_KEYS = ("payment_type", "company")
VOCAB_SIZE = 1000
OOV_SIZE = 10


def transformed_name(key: str) -> str:
  return key + "_xf"


def categorical_sizes() -> Dict[str, int]:
  """Transformed name -> number of distinct ids, for every integer feature."""
  sizes = {transformed_name(k): n for k, n in CATEGORICAL_MAX_VALUES.items()}
  sizes.update({transformed_name(k): BUCKET_COUNT for k in BUCKET_KEYS})
  sizes.update({transformed_name(k): VOCAB_SIZE + OOV_SIZE for k in VOCAB_KEYS})
  return sizes


def keras_inputs() -> Dict[str, tf.keras.layers.Input]:
  """One Keras input per transformed feature the models read."""
  inputs = {
      transformed_name(k): tf.keras.layers.Input(
          name=transformed_name(k), shape=(1,), dtype=tf.float32)
      for k in DENSE_FLOAT_KEYS
  }
  inputs.update({
      name: tf.keras.layers.Input(name=name, shape=(1,), dtype=tf.int64)
      for name in categorical_sizes()
  })
  return inputs


def embedded(inputs: Dict[str, tf.Tensor], dim: int) -> tf.Tensor:
  """Dense floats and a `dim`-wide embedding of every integer feature, joined."""
  parts = [inputs[transformed_name(k)] for k in DENSE_FLOAT_KEYS]
  for name, size in categorical_sizes().items():
    ids = tf.keras.layers.Lambda(
        lambda x, size=size: tf.clip_by_value(x, 0, size - 1))(inputs[name])
    parts.append(tf.keras.layers.Flatten()(
        tf.keras.layers.Embedding(size, dim, name=f"{name}_embedding")(ids)))
  return tf.keras.layers.concatenate(parts)
