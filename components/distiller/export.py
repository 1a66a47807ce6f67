"""The serving contract shared by teacher and student, and SavedModel sizing.

A model saved with `save_model` has three signatures:

- `serving_default`: serialized raw `tf.Example`s (key `examples`) ->
  {'probabilities': [batch, K]} (sigmoid of one logit, softmax of K;
  regression: {'predictions': ...}), the Transform graph inside. This is what
  TFMA and a serving system call.
- `transform_features`: serialized raw `tf.Example`s -> the transformed
  features (TFMA uses it to find the transformed label).
- `transformed_logits` (TRANSFORMED_LOGITS_SIGNATURE): transformed features,
  one keyword argument each -> {'logits': [batch, K]}. The Distiller reads a
  teacher through it; a student exports it too, so it can teach in turn.

Teacher and student saved by the same function serve identically, which is
what makes the student a drop-in replacement. The model must emit logits:
`save_model` refuses a classifier whose output is visibly a sigmoid or softmax
(`outputs.head`), which serving would apply a second time.
"""

import os
from typing import Callable, Dict, Iterable

import tensorflow as tf
import tensorflow_transform as tft
from tfx.dsl.io import fileio

from distill_components.distiller import outputs
from distill_components.distiller import tasks

TRANSFORMED_LOGITS_SIGNATURE = "transformed_logits"
LOGITS_OUTPUT = "logits"
PROBABILITIES_OUTPUT = "probabilities"


def model_input_spec(tf_transform_output: tft.TFTransformOutput,
                     label_key: str) -> Dict[str, tf.TensorSpec]:
  """TensorSpecs of the transformed features a model reads (label excluded)."""
  specs = {}
  for name, feature in tf_transform_output.transformed_feature_spec().items():
    if name == label_key:
      continue
    if not isinstance(feature, tf.io.FixedLenFeature):
      raise ValueError(
          f"Transformed feature {name!r} is {type(feature).__name__}; the "
          "Distiller needs fixed-length (dense) transformed features.")
    specs[name] = tf.TensorSpec([None, *feature.shape], feature.dtype, name)
  return specs


def serving_signatures(model: tf.keras.Model,
                       tf_transform_output: tft.TFTransformOutput, *,
                       label_key: str, raw_label_keys: Iterable[str],
                       task: tasks.Task) -> Dict[str, Callable]:
  """The three signatures above for a Keras model that emits logits."""
  # Tracked as an attribute so the Transform graph's assets are saved.
  model.tft_layer = tf_transform_output.transform_features_layer()
  raw_spec = tf_transform_output.raw_feature_spec()
  serving_spec = {k: v for k, v in raw_spec.items() if k not in set(raw_label_keys)}
  examples_spec = tf.TensorSpec([None], tf.string, name="examples")

  @tf.function(input_signature=[examples_spec])
  def serve(examples):
    transformed = model.tft_layer(tf.io.parse_example(examples, serving_spec))
    transformed.pop(label_key, None)
    return {task.serving_output: serving_outputs(model(transformed), task)}

  @tf.function(input_signature=[examples_spec])
  def transform_features(examples):
    return model.tft_layer(tf.io.parse_example(examples, raw_spec))

  @tf.function
  def transformed_logits(**features):
    return {LOGITS_OUTPUT: model(features)}

  return {
      "serving_default": serve,
      "transform_features": transform_features,
      TRANSFORMED_LOGITS_SIGNATURE: transformed_logits.get_concrete_function(
          **model_input_spec(tf_transform_output, label_key)),
  }


def serving_outputs(logits: tf.Tensor, task: tasks.Task) -> tf.Tensor:
  """What serving returns: sigmoid of one logit, softmax of K, predictions."""
  if not task.is_classification:
    return logits
  return tf.sigmoid(logits) if logits.shape[-1] == 1 else tf.nn.softmax(logits)


def save_model(model: tf.keras.Model, export_dir: str,
               tf_transform_output: tft.TFTransformOutput, *, label_key: str,
               raw_label_keys: Iterable[str],
               task: tasks.Task = tasks.Task.BINARY) -> None:
  """Saves `model` (which emits logits) with the serving contract above.

  Raises:
    ValueError: for a classifier whose output is a sigmoid or softmax.
  """
  signatures = serving_signatures(
      model, tf_transform_output, label_key=label_key,
      raw_label_keys=raw_label_keys, task=task)
  # Read the traced graph, not the layer configs: it also sees a final
  # Activation layer, a Lambda or a subclassed model's call.
  head = outputs.head(signatures[TRANSFORMED_LOGITS_SIGNATURE])
  if task.is_classification and head.kind == outputs.PROBABILITIES:
    raise ValueError(
        f"save_model expects a model that emits logits, but {head} (activation "
        f"{head.activation}): serving would apply a {head.activation} to "
        f"probabilities. Remove the final activation and train with "
        "`from_logits=True`.")
  tf.saved_model.save(model, export_dir, signatures=signatures)


def saved_model_bytes(export_dir: str) -> int:
  """Total size of every file under a SavedModel directory."""
  total = 0
  for dirpath, _, filenames in fileio.walk(export_dir):
    for filename in filenames:
      total += fileio.stat(os.path.join(dirpath, filename)).length
  return total
