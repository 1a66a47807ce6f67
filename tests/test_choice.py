"""The validation cut and the choice between the distilled student and the
student trained alone (components/distiller/choice.py)."""
import numpy as np
import pytest
import tensorflow as tf

from distill_components.distiller import choice
from distill_components.distiller.tasks import Task

NAMES = ["a", "b"]


def _batches(rows=2_000, batch=100, seed=0):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(rows, 1)).astype(np.float32)
  b = rng.integers(0, 5, size=(rows, 1))
  label = (a[:, 0] > 0).astype(np.int64)
  return tf.data.Dataset.from_tensor_slices(({"a": a, "b": b}, label)).batch(batch)


def _rows(dataset):
  return sorted(float(x) for features, _ in dataset for x in features["a"].numpy().ravel())


def test_the_cut_and_the_rest_partition_the_rows_at_the_fraction():
  whole = _rows(_batches())
  inside = _rows(choice.cut(_batches(), NAMES, 0.1, validation=True))
  outside = _rows(choice.cut(_batches(), NAMES, 0.1, validation=False))
  assert sorted(inside + outside) == whole
  assert 0.07 * len(whole) < len(inside) < 0.13 * len(whole)


def test_a_row_falls_on_the_same_side_whatever_its_batch_and_order():
  first = _rows(choice.cut(_batches(batch=100), NAMES, 0.2, validation=True))
  rebatched = _rows(choice.cut(_batches(batch=7).unbatch().shuffle(5_000, seed=1).batch(33),
                               NAMES, 0.2, validation=True))
  assert first == rebatched


def test_the_cut_keeps_every_member_of_a_row_aligned_and_drops_empty_batches():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(50, 1)).astype(np.float32)
  data = tf.data.Dataset.from_tensor_slices(
      ({"a": a, "b": np.zeros((50, 1), np.int64)}, a[:, 0], a * 2)).batch(1)
  batches = list(choice.cut(data, NAMES, 0.5, validation=True))
  assert 0 < len(batches) < 50  # the batches of one row outside the cut are gone
  for features, label, logits in batches:
    np.testing.assert_array_equal(features["a"].numpy()[:, 0], label.numpy())
    np.testing.assert_array_equal(logits.numpy(), 2 * features["a"].numpy())


@pytest.mark.parametrize("fraction", [0, -0.1, 0.6])
def test_a_fraction_outside_the_range_is_named(fraction):
  with pytest.raises(choice.ChoiceError, match="validation_fraction"):
    choice.check_fraction(fraction)


def test_the_better_student_on_the_validation_cut_goes_on_and_a_tie_keeps_the_distilled():
  auc, mse = Task.BINARY.metrics[0], Task.REGRESSION.metrics[0]
  figures = lambda d, a, m="auc": {choice.VALIDATION: {  # pylint: disable=g-long-lambda
      choice.DISTILLED: {m: d}, choice.ALONE: {m: a}}}
  assert choice.choose(figures(0.90, 0.91), auc) == choice.ALONE
  assert choice.choose(figures(0.91, 0.90), auc) == choice.DISTILLED
  assert choice.choose(figures(0.91, 0.91), auc) == choice.DISTILLED
  # Lower is better for MSE.
  assert choice.choose(figures(2.0, 1.5, "mean_squared_error"), mse) == choice.ALONE
  with pytest.raises(choice.ChoiceError, match="choice_metric 'f1'"):
    choice.metric_named(Task.BINARY, "f1")


def test_tfma_scores_each_student_on_each_part():
  rng = np.random.default_rng(0)
  labels = {p: rng.integers(0, 2, 400) for p in (choice.VALIDATION, choice.EVAL)}
  perfect = {p: l.astype(np.float32) * 0.8 + 0.1 for p, l in labels.items()}
  noise = {p: rng.random(400).astype(np.float32) for p in labels}
  figures = choice.score(Task.BINARY, labels, {
      p: {choice.DISTILLED: perfect[p], choice.ALONE: noise[p]} for p in labels})
  for part in labels:
    assert figures[part][choice.DISTILLED]["auc"] == pytest.approx(1.0, abs=1e-3)
    assert figures[part][choice.DISTILLED]["binary_accuracy"] == pytest.approx(1.0)
    assert 0.4 < figures[part][choice.ALONE]["auc"] < 0.6
  # Multi-class probabilities, one row each.
  probs = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]] * 0.7 + 0.1
  multi = choice.score(Task.MULTICLASS, {choice.EVAL: np.array([0, 1, 2, 0])},
                       {choice.EVAL: {choice.DISTILLED: probs, choice.ALONE: probs}})
  assert multi[choice.EVAL][choice.ALONE]["sparse_categorical_accuracy"] == pytest.approx(0.75)


def test_each_part_is_scored_on_its_first_rows_at_most():
  """A constant cost at any size: collect stops after `limit` rows, mid-batch too."""
  model = lambda features, training=False: features["a"]  # pylint: disable=unnecessary-lambda-assignment
  labels, logits = choice.collect(_batches(rows=2_000, batch=300), {"m": model}, limit=1_000)
  assert len(labels) == 1_000 and logits["m"].shape == (1_000, 1)
  everything, _ = choice.collect(_batches(rows=2_000, batch=300), {"m": model})
  np.testing.assert_array_equal(labels, everything[:1_000])
  figures, counts = choice.score_students(
      Task.BINARY, {choice.DISTILLED: model, choice.ALONE: model},
      _batches(rows=700), _batches(rows=2_000, seed=1), 0.1, limit=500)
  assert counts == {choice.VALIDATION: 500, choice.EVAL: 500}
  assert figures[choice.EVAL][choice.DISTILLED]["auc"] == pytest.approx(1.0, abs=1e-3)
  assert choice.SCORED_ROWS == 50_000
