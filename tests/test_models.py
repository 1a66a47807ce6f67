"""The taxi preprocessing, the teacher's serving contract, the student's size."""
import types

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.utils import path_utils

from conftest import TRAIN_ROWS, raw_examples
from distill_components.distiller import export
from distill_pipelines.taxi import features
from distill_pipelines.taxi import student
from distill_pipelines.taxi import teacher


def _big_tipper(row):
  """The label by hand: tip > 20% of the fare; no fare means 0."""
  if row["fare"] == "":
    return 0
  return int(float(row["tips"] or 0) > 0.2 * float(row["fare"]))


def test_preprocessing_fn_computes_label_and_features(taxi_transform):
  output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  spec = output.transformed_feature_spec()
  expected = {features.LABEL_KEY} | set(features.categorical_sizes()) | {
      features.transformed_name(k) for k in features.DENSE_FLOAT_KEYS}
  assert set(spec) == expected

  rows = taxi_transform["rows"][TRAIN_ROWS:]
  parsed = tf.io.parse_example(raw_examples(rows, taxi_transform["types"]),
                               output.raw_feature_spec())
  transformed = output.transform_features_layer()(parsed)
  labels = transformed[features.LABEL_KEY].numpy().ravel()
  assert labels.tolist() == [_big_tipper(r) for r in rows]
  assert 0.0 < labels.mean() < 1.0
  # z-scored with the train split's mean and (population) std, by hand.
  train_miles = np.array([float(r["trip_miles"] or 0)
                          for r in taxi_transform["rows"][:TRAIN_ROWS]])
  expected_z = ((np.array([float(r["trip_miles"] or 0) for r in rows])
                 - train_miles.mean()) / train_miles.std())
  np.testing.assert_allclose(transformed["trip_miles_xf"].numpy().ravel(),
                             expected_z, rtol=1e-3, atol=1e-4)
  buckets = transformed["pickup_latitude_xf"].numpy()
  assert buckets.min() >= 0 and buckets.max() < features.BUCKET_COUNT


def test_teacher_serves_raw_examples_and_returns_probabilities(
    taxi_transform, teacher_model):
  loaded = tf.saved_model.load(path_utils.serving_model_path(teacher_model))
  assert {"serving_default", "transform_features",
          export.TRANSFORMED_LOGITS_SIGNATURE} <= set(loaded.signatures)
  rows = taxi_transform["rows"][TRAIN_ROWS:TRAIN_ROWS + 50]
  # Serving requests carry no label: drop the column the label comes from.
  serialized = raw_examples(rows, taxi_transform["types"],
                            drop=features.RAW_LABEL_KEYS)
  probs = loaded.signatures["serving_default"](
      examples=tf.constant(serialized))["probabilities"].numpy()
  assert probs.shape == (50, 1)
  assert np.all((probs >= 0) & (probs <= 1))
  assert probs.std() > 0  # it does look at the features

  # The Distiller's signature gives the logits behind those probabilities.
  transformed = loaded.signatures["transform_features"](
      examples=tf.constant(raw_examples(rows, taxi_transform["types"])))
  logits_fn = loaded.signatures[export.TRANSFORMED_LOGITS_SIGNATURE]
  _, inputs = logits_fn.structured_input_signature
  logits = logits_fn(**{k: transformed[k] for k in inputs})["logits"].numpy()
  np.testing.assert_allclose(tf.sigmoid(logits).numpy(), probs, atol=1e-5)


def test_student_is_many_times_smaller_than_teacher():
  fn_args = types.SimpleNamespace(custom_config=None, hyperparameters=None)
  small = student.build_student(fn_args)
  big = teacher.build_teacher()
  assert small.output_shape == big.output_shape == (None, 1)
  assert big.count_params() >= 10 * small.count_params()
  assert not small._is_compiled  # pylint: disable=protected-access
