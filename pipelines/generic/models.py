"""The generic teacher and student, sized from the Transform's output.

Both read every transformed feature except the label: an int64 feature with
a known number of buckets (a vocabulary's output) through an embedding, any
other feature, from the head of the train split (`fit_to_train_sample`), as
ids if it holds small non-negative integers, else as a number standardized by
its mean and standard deviation. A preprocessing module of your own may hand
on unscaled numbers and raw codes (TFX's taxi module passes census tracts,
about 1.7e10, and hours of the day through as ints): unscaled, the first
would swamp a small network; as numbers, the second cost it many steps.

Both emit logits (`Task.output_width(num_classes)` of them); a regression
model emits one prediction in the label's units: its last layer rescales by
the label's mean and standard deviation, so training need not first move a
bias across the label's whole scale.

Sizes: the teacher is a wide MLP (TEACHER_HIDDEN_UNITS, dropout, 16-wide
embeddings); the student a small one (STUDENT_HIDDEN_UNITS) whose embedding
width (4, 2 or 1) is chosen per feature so that each feature costs it at
least MIN_COMPRESSION times fewer weights than the teacher. With the default
layer widths the whole student is then at least MIN_COMPRESSION times
smaller than the teacher, whatever the features.
"""
import dataclasses
import logging
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from distill_components.distiller import data
from distill_components.distiller import export
from distill_components.distiller import tasks
from distill_pipelines.generic import config

TEACHER_HIDDEN_UNITS = (512, 256, 128)
TEACHER_DROPOUT = 0.2
TEACHER_EMBEDDING_DIM = 16
STUDENT_HIDDEN_UNITS = (32, 16)
STUDENT_EMBEDDING_DIMS = (4, 2, 1)  # The widest that keeps MIN_COMPRESSION.
MIN_COMPRESSION = 10
# Labels (and features) read from the train split for the regression scale,
# the label checks and the features' scales.
LABEL_SAMPLE_SIZE = 8192
# An integer feature without a Transform domain, all of whose sampled values
# are below this, is read as ids.
MAX_ID_BUCKETS = 100


Scale = Tuple[float, float]  # (mean, standard deviation)


@dataclasses.dataclass(frozen=True)
class Feature:
  """A transformed feature a model reads."""
  name: str
  dtype: tf.dtypes.DType
  shape: Tuple[int, ...]
  num_buckets: Optional[int]  # None: read as a number.


def features(tf_transform_output: tft.TFTransformOutput,
             label_key: str) -> List[Feature]:
  """The transformed features (label excluded), sorted by name.

  What the models read is what the Distiller feeds a student:
  `export.model_input_spec` (dense features only, the label left out).
  """
  result = []
  for name, spec in sorted(export.model_input_spec(tf_transform_output,
                                                   label_key).items()):
    buckets = None
    if spec.dtype.is_integer:
      try:
        buckets = tf_transform_output.num_buckets_for_transformed_feature(name)
      except ValueError:  # No [0, n) domain: the feature is read as a number.
        buckets = None
    result.append(Feature(name, spec.dtype, tuple(spec.shape[1:]), buckets))
  if not result:
    raise ValueError(f"The Transform outputs no feature besides the label "
                     f"{label_key!r}.")
  return result


def num_classes(cfg: config.Config,
                tf_transform_output: tft.TFTransformOutput) -> Optional[int]:
  """Classes of the label: the config's, else the transformed label's domain."""
  if not cfg.task.is_classification:
    return None
  if cfg.num_classes:
    return cfg.num_classes
  try:
    return tf_transform_output.num_buckets_for_transformed_feature(
        cfg.label_key)
  except ValueError:
    raise ValueError(
        f"The number of classes of the {cfg.task.value} label {cfg.label_key!r} "
        f"is unknown: set custom_config[{config.NUM_CLASSES!r}] or "
        f"[{config.LABEL_VALUES!r}].") from None


def student_embedding_dim(num_buckets: int,
                          teacher_units: int = TEACHER_HIDDEN_UNITS[0],
                          student_units: int = STUDENT_HIDDEN_UNITS[0]) -> int:
  """The widest student embedding costing >= MIN_COMPRESSION x fewer weights.

  A feature with n buckets embedded d wide costs d * n embedding weights and
  d * units weights in the first dense layer.
  """
  teacher_cost = TEACHER_EMBEDDING_DIM * (num_buckets + teacher_units)
  for dim in STUDENT_EMBEDDING_DIMS:
    if teacher_cost >= MIN_COMPRESSION * dim * (num_buckets + student_units):
      return dim
  return STUDENT_EMBEDDING_DIMS[-1]


def _layer_name(name: str) -> str:
  name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
  return name if re.match(r"[A-Za-z0-9.]", name) else "f" + name


@tf.keras.utils.register_keras_serializable(package="distill_generic")
class ClipIds(tf.keras.layers.Layer):
  """Clips ids into [0, size): an unexpected id reads a valid embedding row."""

  def __init__(self, size: int, **kwargs):
    super().__init__(**kwargs)
    self.size = int(size)

  def call(self, ids):  # pylint: disable=arguments-differ
    # Not tf.clip_by_value: clipping int64 to [0, 6] becomes a Relu6 on
    # int64, which LiteRT has no kernel for.
    top = tf.constant(self.size - 1, ids.dtype)
    return tf.where(ids < 0, tf.zeros_like(ids), tf.where(ids > top, top, ids))

  def get_config(self):
    return {**super().get_config(), "size": self.size}


def keras_inputs(feats: Sequence[Feature]) -> Dict[str, tf.Tensor]:
  """One Keras input per feature, keyed by the feature's name."""
  return {f.name: tf.keras.layers.Input(
      shape=f.shape, dtype=f.dtype, name=_layer_name(f.name)) for f in feats}


def encoded(inputs: Dict[str, tf.Tensor], feats: Sequence[Feature],
            embedding_dim, scales: Optional[Dict[str, Scale]] = None) -> tf.Tensor:
  """Numbers (standardized by `scales`, where given) and embeddings of
  bucketed ints, concatenated.

  `embedding_dim(num_buckets)` gives each embedding's width.
  """
  parts = []
  for f in feats:
    x = inputs[f.name]
    if f.num_buckets is None:
      x = tf.cast(x, tf.float32) if x.dtype != tf.float32 else x
      if scales and f.name in scales:
        mean, std = scales[f.name]
        x = tf.keras.layers.Rescaling(scale=1.0 / std, offset=-mean / std,
                                      name=f"{_layer_name(f.name)}_standardized")(x)
      parts.append(tf.keras.layers.Flatten()(x))
      continue
    ids = ClipIds(f.num_buckets)(x)
    parts.append(tf.keras.layers.Flatten()(tf.keras.layers.Embedding(
        f.num_buckets, embedding_dim(f.num_buckets),
        name=f"{_layer_name(f.name)}_embedding")(ids)))
  return parts[0] if len(parts) == 1 else tf.keras.layers.concatenate(parts)


def _head(x: tf.Tensor, task: tasks.Task, classes: Optional[int],
          label_scale: Tuple[float, float]) -> tf.Tensor:
  width = task.output_width(classes)
  if task.is_classification:
    return tf.keras.layers.Dense(width, name="logits")(x)
  mean, std = label_scale
  standardized = tf.keras.layers.Dense(1, name="standardized_prediction")(x)
  return tf.keras.layers.Rescaling(scale=std, offset=mean,
                                   name="prediction")(standardized)


def build_teacher(feats: Sequence[Feature], task: tasks.Task,
                  num_classes: Optional[int] = None,  # pylint: disable=redefined-outer-name
                  label_scale: Scale = (0.0, 1.0),
                  hidden_units: Optional[Sequence[int]] = None,
                  scales: Optional[Dict[str, Scale]] = None) -> tf.keras.Model:
  """The wide MLP teacher (uncompiled), emitting logits / predictions."""
  inputs = keras_inputs(feats)
  x = encoded(inputs, feats, lambda _: TEACHER_EMBEDDING_DIM, scales)
  for units in hidden_units or TEACHER_HIDDEN_UNITS:
    x = tf.keras.layers.Dense(int(units), activation="relu")(x)
    x = tf.keras.layers.Dropout(TEACHER_DROPOUT)(x)
  return tf.keras.Model(inputs, _head(x, task, num_classes, label_scale),
                        name="teacher")


def build_student(feats: Sequence[Feature], task: tasks.Task,
                  num_classes: Optional[int] = None,  # pylint: disable=redefined-outer-name
                  label_scale: Scale = (0.0, 1.0),
                  hidden_units: Optional[Sequence[int]] = None,
                  scales: Optional[Dict[str, Scale]] = None) -> tf.keras.Model:
  """The small MLP student (uncompiled), emitting logits / predictions."""
  hidden_units = tuple(hidden_units or STUDENT_HIDDEN_UNITS)
  inputs = keras_inputs(feats)
  x = encoded(inputs, feats, lambda n: student_embedding_dim(
      n, student_units=hidden_units[0] if hidden_units else 1), scales)
  for units in hidden_units:
    x = tf.keras.layers.Dense(int(units), activation="relu")(x)
  return tf.keras.Model(inputs, _head(x, task, num_classes, label_scale),
                        name="student")


def label_sample(fn_args, tf_transform_output: tft.TFTransformOutput,
                 label_key: str, limit: int = LABEL_SAMPLE_SIZE) -> np.ndarray:
  """Up to `limit` transformed labels from the head of the train split."""
  return data.read_labels(fn_args, tf_transform_output.transformed_metadata.schema,
                          label_key, limit, batch_size=1024)


def label_scale(labels: np.ndarray) -> Scale:
  """(mean, std) of regression labels; (0, 1) when they give no scale."""
  labels = np.asarray(labels, np.float64)
  labels = labels[np.isfinite(labels)]
  if labels.size == 0:
    return 0.0, 1.0
  mean, std = float(labels.mean()), float(labels.std())
  return mean, (std if std > 0 else 1.0)


def fit_to_train_sample(fn_args, tf_transform_output: tft.TFTransformOutput,
                        feats: Sequence[Feature], limit: int = LABEL_SAMPLE_SIZE
                        ) -> Tuple[List[Feature], Dict[str, Scale]]:
  """The features as the generic networks read them, and the scales of those
  read as numbers, from up to `limit` values at the head of the train split.

  An integer feature without a Transform domain whose values there all lie in
  [0, MAX_ID_BUCKETS) is read as ids (hours, weekdays, months, small codes a
  preprocessing module passes through), through an embedding; every other
  feature without a domain is a number standardized by its (mean, std).
  Without train data (fn_args has none): the features as they are, no scales.
  """
  unknown = [f.name for f in feats if f.num_buckets is None]
  if not unknown or getattr(fn_args, "data_accessor", None) is None or not getattr(
      fn_args, "train_files", None):
    return list(feats), {}
  sample = data.read_columns(
      fn_args, tf_transform_output.transformed_metadata.schema, unknown, limit)
  fitted, scales = [], {}
  for f in feats:
    values = sample.get(f.name)
    if values is not None and f.dtype.is_integer and values.size and (
        values.min() >= 0 and values.max() < MAX_ID_BUCKETS):
      f = dataclasses.replace(f, num_buckets=int(values.max()) + 1)
    elif values is not None:
      scales[f.name] = label_scale(values)
    fitted.append(f)
  return fitted, scales


def regression_scale(fn_args, tf_transform_output: tft.TFTransformOutput,
                     cfg: config.Config) -> Scale:
  """The label's (mean, std) for a regression model; (0, 1) otherwise."""
  if cfg.task.is_classification:
    return 0.0, 1.0
  if getattr(fn_args, "data_accessor", None) is None or not getattr(
      fn_args, "train_files", None):
    logging.warning("No train data to read the label's scale from: the "
                    "regression model starts at mean 0, std 1.")
    return 0.0, 1.0
  return label_scale(label_sample(fn_args, tf_transform_output, cfg.label_key))
