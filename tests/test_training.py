"""The Distiller's training loop: several steps per call change nothing but speed."""
import glob

import numpy as np
import pytest
import tensorflow as tf

from distill_components.distiller import training


def _data(nan_at_batch=None, batches=40, batch=8):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(batches * batch, 3)).astype(np.float32)
  teacher = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32))
  if nan_at_batch is not None:
    teacher[nan_at_batch * batch] = np.nan
  labels = (teacher > 0).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(
      ({"x": x, "teacher": teacher}, labels)).batch(batch)


def _loop(seed=0):
  tf.keras.utils.set_random_seed(seed)
  inputs = {"x": tf.keras.Input(shape=(3,), name="x")}
  hidden = tf.keras.layers.Dense(4, activation="relu")(inputs["x"])
  student = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(hidden))
  return training.Distillation(
      student, lambda features: features["teacher"],
      task="binary", alpha=0.5, temperature=2.0,
      optimizer=tf.keras.optimizers.Adam(0.05))


@pytest.mark.parametrize("steps_per_execution", [7, 50])
def test_steps_per_execution_trains_the_same_weights(steps_per_execution):
  one, many = _loop(), _loop()
  last_one = one.fit(_data(), 23, steps_per_execution=1)
  last_many = many.fit(_data(), 23, steps_per_execution=steps_per_execution)
  for a, b in zip(one.student.get_weights(), many.student.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert last_one == pytest.approx(last_many, rel=1e-5)
  assert set(last_many) == {"loss", "soft_loss", "hard_loss", "agreement"}


def test_the_first_non_finite_step_is_named_though_steps_run_in_one_call():
  # Batch 11 (0-based) carries a NaN teacher logit: step 12 of one call of 50.
  with pytest.raises(FloatingPointError,
                     match=r"loss became nan at step 12 \(soft_loss=nan"):
    _loop().fit(_data(nan_at_batch=11), 30, steps_per_execution=50)


def test_summaries_at_every_interval_and_the_last_step(tmp_path):
  _loop().fit(_data(), 12, summary_dir=str(tmp_path), summary_every=5,
              steps_per_execution=4)
  steps = set()
  for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      steps.update(event.step for v in event.summary.value if v.tag == "loss")
  assert steps == {5, 10, 12}


def test_steps_per_execution_must_be_positive():
  with pytest.raises(ValueError, match="steps_per_execution must be >= 1"):
    _loop().fit(_data(), 3, steps_per_execution=0)
