"""The student as LiteRT: conversion, int8 within reach of float32, a student
that cannot convert refused in one line, and the Pusher's LiteRT files."""
import os

import numpy as np
import pytest
import tensorflow as tf

from distill_components.distiller import export
from distill_components.distiller.tasks import Task
from distill_components.litert import convert

ROWS = 600


def _rows(seed=0):
  rng = np.random.default_rng(seed)
  return {"amount_xf": rng.normal(size=(ROWS, 1)).astype(np.float32),
          "hour_xf": rng.integers(0, 24, size=(ROWS, 1)).astype(np.int64)}


def _student(tmp_path, task=Task.BINARY, width=1, erf=False):
  """A small student on transformed features, saved with the signature the
  Distiller's export gives it (`transformed_logits`). Seeded: an untrained
  regression head's spread, the scale int8 is judged on, depends on the draw."""
  tf.keras.utils.set_random_seed(0)
  inputs = {"amount_xf": tf.keras.Input((1,), name="amount_xf"),
            "hour_xf": tf.keras.Input((1,), dtype=tf.int64, name="hour_xf")}
  hour = tf.keras.layers.Flatten()(tf.keras.layers.Embedding(24, 4)(inputs["hour_xf"]))
  x = tf.keras.layers.Concatenate()([inputs["amount_xf"], hour])
  x = tf.keras.layers.Dense(64, activation="relu")(x)
  x = tf.keras.layers.Dense(64, activation="relu")(x)
  if erf:  # no LiteRT builtin computes it
    x = tf.keras.layers.Lambda(tf.math.erf)(x)
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(width)(x))

  @tf.function(input_signature=[{k: tf.TensorSpec([None, 1], v.dtype, k)
                                 for k, v in inputs.items()}])
  def logits(features):
    return {export.LOGITS_OUTPUT: model(features)}

  @tf.function
  def transformed_logits(**features):
    return logits(features)

  directory = str(tmp_path / f"student-{task.value}-{erf}")
  tf.saved_model.save(model, directory, signatures={
      export.TRANSFORMED_LOGITS_SIGNATURE: transformed_logits.get_concrete_function(
          amount_xf=tf.TensorSpec([None, 1], tf.float32, "amount_xf"),
          hour_xf=tf.TensorSpec([None, 1], tf.int64, "hour_xf"))})
  expected = export.serving_outputs(model(_rows()), task).numpy()
  return directory, expected


@pytest.mark.parametrize("task,width", [(Task.BINARY, 1), (Task.MULTICLASS, 3),
                                        (Task.REGRESSION, 1)])
def test_float_reproduces_the_student_and_int8_stays_close(tmp_path, task, width):
  directory, expected = _student(tmp_path, task, width)
  rows = _rows()
  float_model = convert.convert(directory, task, convert.FLOAT32)
  convert.check_inputs(float_model, rows)
  np.testing.assert_allclose(convert.predict(float_model, rows), expected,
                             atol=convert.PARITY_TOLERANCE)
  sample = convert.representative_rows(_rows(1), 200, seed=0)
  int8_model, mode, left = convert.convert_int8(directory, task, sample)
  assert mode == convert.INT8 and left == []
  assert len(int8_model) < len(float_model)
  gap = np.abs(convert.predict(int8_model, rows) - expected)
  # Within 5% of the output's range: probabilities span 1; an untrained
  # regression head spans ~0.1-0.6, and int8's error is about 1% of it.
  scale = 1.0 if task.is_classification else float(np.ptp(expected))
  assert gap.mean() < 0.05 * scale, gap.mean()
  latency = convert.latency(int8_model, rows, batches=(1, 256))
  assert sorted(latency.ms) == [1, 256] and all(v > 0 for v in latency.ms.values())


def test_the_sample_is_clipped_and_drawn_at_random():
  rows = _rows()
  rows["amount_xf"][7] = 1e6  # one outlier must not set int8's one shared scale
  sample = convert.representative_rows(rows, 100, seed=0)
  assert len(sample["amount_xf"]) == 100 and sample["amount_xf"].max() < 10
  assert sample["hour_xf"].dtype == np.int64


def test_a_student_litert_cannot_hold_is_refused_in_one_line(tmp_path):
  directory, _ = _student(tmp_path, erf=True)
  with pytest.raises(convert.ConversionError) as info:
    convert.convert(directory, Task.BINARY, convert.FLOAT32)
  message = str(info.value)
  assert "\n" not in message and "LiteRT cannot hold this student" in message
  assert "litert=False" in message


def test_inputs_must_match_the_transformed_features_by_name(tmp_path):
  directory, _ = _student(tmp_path)
  model = convert.convert(directory, Task.BINARY, convert.FLOAT32)
  with pytest.raises(convert.ConversionError, match="must match by name"):
    convert.check_inputs(model, {"amount": _rows()["amount_xf"]})


def _artifact(uri, type_name="Model"):
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  artifact = getattr(standard_artifacts, type_name)()
  artifact.uri = str(uri)
  return artifact


@pytest.mark.parametrize("verdict", ["BLESSED", "NOT_BLESSED"])
def test_the_pusher_carries_the_files_int8_only_when_blessed(tmp_path, verdict):
  from distill_components.litert import executor  # pylint: disable=g-import-not-at-top
  model = tmp_path / "student"
  (model / "Format-Serving").mkdir(parents=True)
  (model / "Format-Serving" / "saved_model.pb").write_bytes(b"pb")
  inputs = {"model": [_artifact(model)]}
  for key in ("litert_float", "litert_int8"):
    (tmp_path / key / "Format-Serving").mkdir(parents=True)
    (tmp_path / key / "Format-Serving" / convert.TFLITE_FILE).write_bytes(key.encode())
    (tmp_path / key / "Format-Serving" / executor.FEATURES_FILE).write_text("{}")
    inputs[key] = [_artifact(tmp_path / key)]
  (tmp_path / "blessing").mkdir()
  (tmp_path / "blessing" / verdict).write_text("")
  inputs["litert_blessing"] = [_artifact(tmp_path / "blessing", "ModelBlessing")]
  pusher = executor.PusherExecutor(executor.PusherExecutor.Context(
      tmp_dir=str(tmp_path / "tmp"), unique_id="1"))
  staged = pusher.GetModelPath(inputs)
  litert = os.path.join(staged, executor.PUSHED_DIR)
  assert sorted(os.listdir(litert)) == sorted(
      ["features.json", "student_float32.tflite"]
      + (["student_int8.tflite"] if verdict == "BLESSED" else []))
  assert open(os.path.join(staged, "saved_model.pb"), "rb").read() == b"pb"
  # Without LiteRT inputs it is TFX's Pusher unchanged.
  assert pusher.GetModelPath({"model": inputs["model"]}) == str(model / "Format-Serving")


def test_the_gate_scores_the_first_transformed_eval_rows(tmp_path):
  """A constant cost at any size: the LiteRT gate's examples are the first
  GATE_ROWS eval rows, as they are, in an Examples artifact TFMA can read."""
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import properties  # pylint: disable=g-import-not-at-top
  from distill_components.litert import executor  # pylint: disable=g-import-not-at-top
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / "transformed")
  examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
  records = [tf.train.Example(features=tf.train.Features(feature={
      "x": tf.train.Feature(float_list=tf.train.FloatList(value=[i]))})).SerializeToString()
             for i in range(25)]
  os.makedirs(tmp_path / "transformed" / "Split-eval")
  for part, chunk in enumerate((records[:10], records[10:])):
    with tf.io.TFRecordWriter(str(tmp_path / "transformed" / "Split-eval" /
                                  f"part-{part}.gz"), options="GZIP") as writer:
      for record in chunk:
        writer.write(record)
  output = standard_artifacts.Examples()
  output.uri = str(tmp_path / "gate")
  assert executor.write_gate_examples(examples, output, limit=12) == 12
  assert artifact_utils.decode_split_names(output.split_names) == ["eval"]
  written = [r.numpy() for r in tf.data.TFRecordDataset(
      tf.io.gfile.glob(str(tmp_path / "gate" / "Split-eval" / "*")), compression_type="GZIP")]
  assert written == records[:12]
  assert output.get_int_custom_property(properties.GATE_EXAMPLES) == 12
  output.uri = str(tmp_path / "all")  # fewer rows than the limit: all of them
  assert executor.write_gate_examples(examples, output, limit=100) == 25
