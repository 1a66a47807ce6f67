"""Transform module file: tf.Transform's `preprocessing_fn` for the taxi data."""
import tensorflow as tf
import tensorflow_transform as tft

from distill_pipelines.taxi import features as f


def _dense(x: tf.Tensor) -> tf.Tensor:
  """A rank-2 [batch, 1] tensor with missing values filled with 0 or ''."""
  if isinstance(x, tf.sparse.SparseTensor):
    default = "" if x.dtype == tf.string else 0
    x = tf.sparse.to_dense(
        tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default)
  return tf.reshape(x, [-1, 1])


def preprocessing_fn(inputs):
  """Scales floats, bucketizes coordinates, builds vocabularies, adds the label."""
  outputs = {}
  for key in f.DENSE_FLOAT_KEYS:
    outputs[f.transformed_name(key)] = tft.scale_to_z_score(
        tf.cast(_dense(inputs[key]), tf.float32))
  for key in f.VOCAB_KEYS:
    outputs[f.transformed_name(key)] = tft.compute_and_apply_vocabulary(
        _dense(inputs[key]), top_k=f.VOCAB_SIZE, num_oov_buckets=f.OOV_SIZE)
  for key in f.BUCKET_KEYS:
    outputs[f.transformed_name(key)] = tft.bucketize(
        _dense(inputs[key]), f.BUCKET_COUNT)
  for key in f.CATEGORICAL_MAX_VALUES:
    outputs[f.transformed_name(key)] = tf.cast(_dense(inputs[key]), tf.int64)

  # Big tipper: the tip was more than 20% of the fare (0 when the fare is
  # missing), as in TFX's taxi examples.
  fare = tf.cast(_dense(inputs["fare"]), tf.float32)
  tips = tf.cast(_dense(inputs["tips"]), tf.float32)
  outputs[f.LABEL_KEY] = tf.where(
      tf.math.is_nan(fare), tf.zeros_like(fare, tf.int64),
      tf.cast(tips > 0.2 * fare, tf.int64))
  return outputs
