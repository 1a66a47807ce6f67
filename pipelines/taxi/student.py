"""Distiller module file: the taxi student, many times smaller than the teacher."""
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from distill_pipelines.taxi import layers

HIDDEN_UNITS = (32, 16)
EMBEDDING_DIM = 2


def build_student(fn_args: FnArgs) -> tf.keras.Model:
  """Small embeddings and a two-layer MLP emitting one logit (uncompiled)."""
  hparams = fn_args.custom_config or {}
  inputs = layers.keras_inputs()
  x = layers.embedded(inputs, int(hparams.get("embedding_dim", EMBEDDING_DIM)))
  for units in hparams.get("hidden_units", HIDDEN_UNITS):
    x = tf.keras.layers.Dense(int(units), activation="relu")(x)
  logits = tf.keras.layers.Dense(1, name="logits")(x)
  return tf.keras.Model(inputs, logits, name="student")
