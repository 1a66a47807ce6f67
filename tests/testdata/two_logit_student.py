"""A student whose width (2 logits) disagrees with the binary teacher's (1)."""
import tensorflow as tf


def build_student(fn_args):
  del fn_args
  x = tf.keras.layers.Input(name="fare_xf", shape=(1,))
  return tf.keras.Model({"fare_xf": x}, tf.keras.layers.Dense(2)(x))
