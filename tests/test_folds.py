"""Which fold a row is in, and the rows a fold model is fit on (folds.py)."""
import numpy as np
import pytest
import tensorflow as tf

from distill_components.distiller import folds


def _batch(n=600, seed=0):
  rng = np.random.default_rng(seed)
  return ({"a": tf.constant(rng.normal(size=(n, 1)), tf.float32),
           "b": tf.constant(rng.integers(0, 5, size=(n, 1)), tf.int64),
           "c": tf.constant(rng.choice([b"x", b"y", b"z"], size=(n,)))},
          tf.constant(rng.integers(0, 2, size=(n,)), tf.int64))


def test_a_rows_fold_is_its_values_not_its_place_in_the_batch():
  features, _ = _batch(4000)
  names = ["a", "b", "c"]
  ids = folds.fold_ids(features, 4, names).numpy()
  assert all(abs(np.mean(ids == i) - 0.25) < 0.04 for i in range(4))  # ~6 sigma
  order = np.random.default_rng(1).permutation(len(ids))
  shuffled = {k: tf.gather(v, order) for k, v in features.items()}
  np.testing.assert_array_equal(folds.fold_ids(shuffled, 4, names).numpy(), ids[order])
  # A feature outside `names` (the label, say) does not move a row.
  np.testing.assert_array_equal(
      folds.fold_ids({**features, "other": tf.zeros([len(ids), 1])}, 4, names).numpy(), ids)


def test_a_fold_model_is_fit_on_every_row_but_its_folds():
  features, labels = _batch()
  names = sorted(features)
  ids = folds.fold_ids(features, 3, names).numpy()
  data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(64)
  kept = 0
  for fold in range(3):
    for x, y in folds.without_fold(data, fold, 3, names):
      assert not np.any(folds.fold_ids(x, 3, names).numpy() == fold)
      assert x["a"].shape[0] == y.shape[0]
      kept += int(y.shape[0])
  assert kept == 2 * len(ids)  # each row is left out by exactly one fold


def test_a_missing_feature_is_named():
  features, _ = _batch(10)
  with pytest.raises(ValueError, match="hashes feature 'd'"):
    folds.fold_ids(features, 3, ["a", "d"])


@pytest.mark.parametrize("k", [1, -2])
def test_one_fold_is_refused(k):
  with pytest.raises(ValueError, match="at least 2"):
    folds.check_folds(k)


def test_no_manifest_means_no_folds(tmp_path):
  assert folds.read_manifest(str(tmp_path)) is None
  (tmp_path / folds.DIR).mkdir()
  folds.write_manifest(str(tmp_path), 3, ["b_xf", "a_xf"])
  assert folds.read_manifest(str(tmp_path)) == {"folds": 3, "features": ["a_xf", "b_xf"]}
