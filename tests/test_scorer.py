"""The Scorer's pieces: which output is the prediction, the scored schema,
the ModelSpec the gates read it with, and its refusals. (The Beam job itself
runs in every pipeline test: tests/test_pipeline_e2e.py checks its output.)"""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx

from distill_components.gates import scorer


def test_the_prediction_is_picked_as_tfma_picks_it():
  one = scorer._prediction("teacher", {"output_0": tf.constant([0.1, 0.9])})
  assert one.shape == (2, 1) and one.dtype == np.float32
  several = scorer._prediction("teacher", {
      "classes": tf.constant([[1.0], [0.0]]),
      "probabilities": tf.constant([[0.2, 0.8], [0.6, 0.4]])})
  np.testing.assert_allclose(several, [[0.2, 0.8], [0.6, 0.4]])
  with pytest.raises(ValueError, match=r"teacher model's serving_default returns "
                     r"\['a', 'b'\]; the gates need one output"):
    scorer._prediction("teacher", {"a": tf.constant([1.0]), "b": tf.constant([2.0])})


def test_the_scored_schema_holds_slices_label_and_one_column_per_model():
  raw = schema_pb2.Schema()
  raw.feature.add(name="trip_start_day", type=schema_pb2.INT)
  raw.feature.add(name="fare", type=schema_pb2.FLOAT)
  schema = scorer.scored_schema(raw, ["trip_start_day"], "tips_xf", schema_pb2.INT,
                                {"student": 1, "teacher": 3})
  features = {f.name: f for f in schema.feature}
  assert sorted(features) == sorted(["trip_start_day", "tips_xf",
                                     scorer.prediction_key("student"),
                                     scorer.prediction_key("teacher")])
  assert features["tips_xf"].type == schema_pb2.INT
  assert [d.size for d in features[scorer.prediction_key("teacher")].shape.dim] == [3]


def test_the_gates_read_the_scores_without_a_model():
  spec = scorer.model_spec("teacher", "tips_xf", is_baseline=True)
  assert spec.model_type == "materialized_prediction"
  assert spec.prediction_key == scorer.prediction_key("teacher")
  assert spec.label_key == "tips_xf" and spec.is_baseline


def test_model_names_must_name_exactly_the_models_given():
  model = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model)
  examples = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples)
  schema = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Schema)
  with pytest.raises(ValueError, match="model_names must name exactly"):
    scorer.Scorer(examples=examples, schema=schema, model=model, label_key="y",
                  model_names={"model": "student", "baseline_model": "teacher"})
  with pytest.raises(ValueError, match="label_key"):
    scorer.Scorer(examples=examples, schema=schema, model=model, label_key="",
                  model_names={"model": "student"})
  made = scorer.Scorer(examples=examples, schema=schema, model=model, label_key="y",
                       baseline_model=model, slice_by=["day"],
                       model_names={"model": "student", "baseline_model": "teacher"})
  assert made.exec_properties["slice_by"] == '["day"]'
