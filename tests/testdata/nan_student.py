"""A student whose outputs turn NaN: the Distiller must stop, not export."""
import tensorflow as tf


def build_student(fn_args):
  del fn_args
  x = tf.keras.layers.Input(name="fare_xf", shape=(1,))
  logits = tf.keras.layers.Dense(1)(x)
  nan = tf.keras.layers.Lambda(lambda t: t + tf.math.log(-tf.ones_like(t)))(logits)
  return tf.keras.Model({"fare_xf": x}, nan)
