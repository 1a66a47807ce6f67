"""Transform module: a `preprocessing_fn` for any CSV, configured by custom_config.

Every raw column that is not in `raw_label_keys` becomes one feature named
`<column>_xf` (`config.transformed_name`: characters other than letters,
digits and '_' become '_'), shaped [batch, 1]:

- numeric (int or float): missing values (and NaN / inf) are replaced by the
  column's mean over the present values, then z-scored; float32. (One
  analysis pass: the mean and variance come from tft.sum.)
- string: a vocabulary of the 1,000 most frequent values plus one
  out-of-vocabulary bucket, with a missing value as a token of its own
  (MISSING_TOKEN); int64 ids, annotated with their number of buckets.

The label (raw column `label`) is written under `label_key`:

- binary / multiclass: int64 class ids. With `label_values`, class id = the
  value's index in that list (a numeric label compares numerically, so "1"
  matches 1 and 1.0; a value not in the list becomes -1). Without it, a string
  label goes through a vocabulary (no out-of-vocabulary bucket; ids by
  descending frequency; the file is config.LABEL_VOCABULARY) and an integer
  label is the class id as it is.
- regression: float32.

The label's id range is annotated as its domain ([0, num_classes - 1]), so
`TFTransformOutput.num_buckets_for_transformed_feature(label_key)` gives the
number of classes.

Inputs may be dense (a column present in every row, as SchemaGen's
`infer_feature_shape` makes it) or sparse (a column with missing values).
Transform calls `preprocessing_fn(inputs, custom_config=...)` because the
function names that argument (tfx.components.transform.executor_utils).
"""
import re
from typing import Dict, Optional, Sequence, Set, Tuple

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import schema_inference

from distill_components.distiller import tasks
from distill_pipelines.generic import config

# A string feature's missing value, a vocabulary token of its own. (The empty
# string cannot be one: tf.Transform leaves empty tokens out of vocabularies.)
MISSING_TOKEN = "__MISSING__"
VOCAB_TOP_K = 1000
NUM_OOV_BUCKETS = 1


def _scope_name(column: str) -> str:
  """`column` as a valid TensorFlow name scope / file name part."""
  name = re.sub(r"[^A-Za-z0-9_.\-]", "_", column)
  return name if re.match(r"[A-Za-z0-9.]", name) else "c" + name


def dense_and_present(x) -> Tuple[tf.Tensor, tf.Tensor]:
  """A column as [batch, 1] values and a [batch, 1] mask of the present ones.

  `x` is a dense Tensor ([batch] or [batch, n]), a SparseTensor or a
  RaggedTensor (a column with missing values). A CSV cell holds one value: of
  several, the first is kept. Missing positions hold 0 or '' (see the mask).
  """
  if isinstance(x, tf.RaggedTensor):
    x = x.to_sparse()
  if isinstance(x, tf.SparseTensor):
    first = tf.sparse.retain(x, tf.equal(x.indices[:, 1], 0))
    shape = tf.stack([x.dense_shape[0], tf.constant(1, tf.int64)])
    default = "" if x.dtype == tf.string else tf.zeros([], x.dtype)
    values = tf.sparse.to_dense(
        tf.SparseTensor(first.indices, first.values, shape), default)
    present = tf.sparse.to_dense(
        tf.SparseTensor(first.indices, tf.ones_like(first.values, tf.bool),
                        shape), False)
    return tf.reshape(values, [-1, 1]), tf.reshape(present, [-1, 1])
  if x.shape.rank != 2 or x.shape[1] != 1:
    x = tf.reshape(x, [tf.shape(x)[0], -1])[:, :1]
  x = tf.reshape(x, [-1, 1])  # A static [None, 1] shape.
  return x, tf.ones_like(x, tf.bool)


def _numeric_feature(x) -> tf.Tensor:
  """Mean-imputed, z-scored float32 [batch, 1].

  Missing values (and NaN / inf) take the mean of the present values; the
  z-score is then that of the imputed column: mean m, variance
  sum((x - m)^2 over present values) / rows. Both come from sums that one
  analysis pass computes (tft.scale_to_z_score after an imputation would need
  two passes). A constant or empty column comes out as 0.
  """
  values, present = dense_and_present(x)
  values = tf.cast(values, tf.float64)  # float64: large values scale exactly.
  present = tf.logical_and(present, tf.math.is_finite(values))
  known = tf.where(present, values, tf.zeros_like(values))
  # One analyzer: [present values, rows, sum, sum of squares] over the data.
  count, rows, total, squares = tf.unstack(tft.sum(
      tf.concat([tf.cast(present, tf.float64), tf.ones_like(values), known,
                 tf.square(known)], axis=1), reduce_instance_dims=False))
  mean = tf.math.divide_no_nan(total, count)
  variance = tf.maximum(
      tf.math.divide_no_nan(squares - count * tf.square(mean), rows), 0.0)
  centered = tf.where(present, values - mean, tf.zeros_like(values))
  return tf.cast(tf.math.divide_no_nan(centered, tf.sqrt(variance)), tf.float32)


def _string_feature(x, vocab_filename: str) -> tf.Tensor:
  """Vocabulary ids, int64 [batch, 1]; missing is MISSING_TOKEN's id."""
  values, present = dense_and_present(x)
  present = tf.logical_and(present, tf.not_equal(values, ""))
  values = tf.where(present, values, tf.fill(tf.shape(values), MISSING_TOKEN))
  # The direct output of the vocabulary: it carries the domain annotation
  # num_buckets_for_transformed_feature reads (top_k + OOV at most).
  return tft.compute_and_apply_vocabulary(
      values, top_k=VOCAB_TOP_K, num_oov_buckets=NUM_OOV_BUCKETS,
      vocab_filename=vocab_filename)


def label_ids(values: tf.Tensor, label_values: Sequence[str]) -> tf.Tensor:
  """Class ids of [batch, 1] raw labels: the index in `label_values`, else -1.

  A numeric label compares numerically with the values parsed as numbers, so
  "1" matches 1 and 1.0; a string label compares as it is.
  """
  if values.dtype == tf.string:
    keys = tf.constant(list(label_values), tf.string)
    equal = tf.equal(values, keys[tf.newaxis, :])
  else:
    try:
      numbers = [float(v) for v in label_values]
    except ValueError:
      raise ValueError(
          f"The label is numeric but {config.LABEL_VALUES} {list(label_values)} "
          "holds a value that is not a number.") from None
    keys = tf.constant(numbers, tf.float64)
    equal = tf.equal(tf.cast(values, tf.float64), keys[tf.newaxis, :])
  found = tf.reduce_any(equal, axis=1, keepdims=True)
  ids = tf.argmax(tf.cast(equal, tf.int32), axis=1, output_type=tf.int64)
  return tf.where(found, ids[:, tf.newaxis], tf.constant(-1, tf.int64))


def _annotate_classes(ids: tf.Tensor, num_classes) -> tf.Tensor:
  """Records [0, num_classes - 1] as the label's domain in the schema."""
  schema_inference.set_tensor_schema_override(
      ids, tf.constant(0, tf.int64),
      tf.cast(num_classes, tf.int64) - tf.constant(1, tf.int64))
  return ids


def _label(x, cfg: config.Config) -> tf.Tensor:
  """The transformed label: int64 class ids or float32 values, [batch, 1].

  A missing label becomes 0 (class 0, or the value 0): the pipeline's data
  check refuses missing labels before Transform runs, and serving requests,
  which carry no label, never reach this output.
  """
  values, present = dense_and_present(x)
  if cfg.task is tasks.Task.REGRESSION:
    if values.dtype == tf.string:
      raise ValueError(
          f"The regression label {cfg.label!r} holds strings; it must be a "
          "numeric column.")
    values = tf.cast(values, tf.float32)
    return tf.where(present, values, tf.zeros_like(values))

  num_classes: Optional[object] = cfg.num_classes
  if cfg.label_values:
    ids = label_ids(values, cfg.label_values)
    num_classes = len(cfg.label_values)
  elif values.dtype == tf.string:
    # '' (missing) is left out of the vocabulary and looks up as -1.
    ids = tft.compute_and_apply_vocabulary(
        values, num_oov_buckets=0, default_value=-1,
        vocab_filename=config.LABEL_VOCABULARY)
    if num_classes is None:
      num_classes = tft.get_num_buckets_for_transformed_feature(ids)
  elif values.dtype.is_floating:
    # Whole numbers are class ids; a fractional value is no class: -1, which
    # the teacher's and the Distiller's label checks refuse.
    whole = tf.equal(values, tf.round(values))
    ids = tf.where(whole, tf.cast(values, tf.int64), tf.constant(-1, tf.int64))
  else:
    ids = tf.cast(values, tf.int64)
  ids = tf.where(present, ids, tf.zeros_like(ids))
  if num_classes is not None:
    ids = _annotate_classes(ids, num_classes)
  return ids


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Dict[str, object]) -> Dict[str, tf.Tensor]:
  """Features `<column>_xf` for every non-label column, and the label."""
  cfg = config.parse(custom_config)
  if cfg.label not in inputs:
    raise ValueError(f"The label column {cfg.label!r} is not among the raw "
                     f"columns {sorted(inputs)}.")
  columns = [c for c in sorted(inputs) if c not in cfg.raw_label_keys]
  names = {}
  for column in columns:
    name = config.transformed_name(column)
    if name == cfg.label_key:
      raise ValueError(
          f"Column {column!r}'s feature would be named {name!r}, the "
          "label_key; rename the column or set another label_key.")
    if name in names:
      raise ValueError(
          f"Columns {names[name]!r} and {column!r} would both be the feature "
          f"{name!r}; rename one of them.")
    names[name] = column
  if not columns:
    raise ValueError(f"No raw column is a feature: all of {sorted(inputs)} "
                     f"are in {config.RAW_LABEL_KEYS}.")
  outputs = {}
  vocab_files: Set[str] = {config.LABEL_VOCABULARY}
  for column in columns:
    name = config.transformed_name(column)
    x = inputs[column]
    with tf.name_scope(_scope_name(column)):
      if x.dtype == tf.string:
        vocab = _scope_name(column) + "_vocabulary"
        while vocab in vocab_files:
          vocab = "_" + vocab
        vocab_files.add(vocab)
        outputs[name] = _string_feature(x, vocab)
      elif x.dtype.is_integer or x.dtype.is_floating:
        outputs[name] = _numeric_feature(x)
      else:
        raise ValueError(f"Column {column!r} has dtype {x.dtype.name}; "
                         "expected a string or a number.")
  with tf.name_scope("label"):
    outputs[cfg.label_key] = _label(inputs[cfg.label], cfg)
  return outputs
