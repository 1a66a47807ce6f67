"""The transfer set (unlabeled and synthetic rows) and several teachers averaged."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import path_utils

from conftest import TRAIN_ROWS, examples_artifact, fn_args_for, raw_examples
from conftest import run_distiller
from distill_components.distiller import export
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import transfer
from distill_components.distiller.tasks import Task
from distill_pipelines.taxi import features

UNLABELED_TRAIN, UNLABELED_EVAL = 500, 300


def _batch(rows=200):
  values = np.arange(rows, dtype=np.float32)
  return {"a": tf.constant(values), "b": tf.constant(values * 10 + 1),
          "v": tf.constant(np.stack([values, -values], axis=1))}


def test_a_synthetic_row_takes_each_feature_from_a_real_row():
  batch = _batch()
  mixed, base = transfer.synthesize(batch, 5000, tf.random.Generator.from_seed(1))
  a, b, v = (mixed[k].numpy() for k in ("a", "b", "v"))
  assert a.shape == (5000,) and v.shape == (5000, 2)
  # Every value is some real row's value of that feature ...
  assert set(a) <= set(batch["a"].numpy()) and set(b) <= set(batch["b"].numpy())
  # ... a vector feature travels whole ...
  np.testing.assert_array_equal(v[:, 1], -v[:, 0])
  # ... most of a row's features are its base row's ...
  assert np.mean(a == base.numpy()) == pytest.approx(1 - transfer.SWAP_PROBABILITY,
                                                     abs=0.03)
  # ... and each feature comes from another row with probability p: a and b
  # (b = 10 a + 1 within a real row) disagree when either was swapped, in
  # 1 - (1 - p)^2 of the rows (less the rare swaps that draw the base row).
  swapped = np.mean(b != a * 10 + 1)
  p = transfer.SWAP_PROBABILITY
  assert swapped == pytest.approx(1 - (1 - p) ** 2, abs=0.03)


def test_synthetic_rows_add_up_to_the_ratio_however_batched():
  batches = [(_batch(rows), tf.zeros([rows])) for rows in (100, 37, 63)]
  made = list(transfer.synthetic_rows(batches, lambda f, base: tf.zeros([tf.shape(f["a"])[0], 1]),
                                      ratio=1.5))
  assert sum(int(tf.shape(logits)[0]) for _, logits in made) == 300
  again = list(transfer.synthetic_rows(batches, lambda f, base: tf.zeros([tf.shape(f["a"])[0], 1]),
                                       ratio=1.5))
  np.testing.assert_array_equal(made[0][0]["a"].numpy(), again[0][0]["a"].numpy())


def test_a_negative_ratio_and_sparse_features_are_refused():
  with pytest.raises(transfer.TransferSetError, match="synthetic_ratio"):
    transfer.check_ratio(-1)
  sparse = {"s": tf.sparse.from_dense(tf.constant([[1.0], [0.0]]))}
  with pytest.raises(transfer.TransferSetError, match="'s' is sparse"):
    transfer.synthesize(sparse, 2, tf.random.Generator.from_seed(0))


def test_a_synthetic_row_is_labelled_as_its_base_row_would_be():
  """Out of fold: the teacher sees which train row each synthetic row came from."""
  batch = _batch(50)
  seen = []

  def teacher(rows, base_rows):
    seen.append((rows, base_rows))
    return tf.zeros([tf.shape(rows["a"])[0], 1])

  [(mixed, _)] = transfer.synthetic_rows([(batch, tf.zeros([50]))], teacher, ratio=2.0)
  rows, base_rows = seen[0]
  assert rows is mixed and base_rows["a"].shape == (100,)
  # Each base row is a real row, whole: its b is 10 a + 1.
  np.testing.assert_array_equal(base_rows["b"].numpy(), base_rows["a"].numpy() * 10 + 1)


def test_mixed_batches_hold_both_sets_in_proportion(tmp_path):
  spec = {"a": tf.TensorSpec([None], tf.float32)}
  labelled = tf.data.Dataset.from_tensor_slices(
      ({"a": tf.ones([300])}, tf.ones([300], tf.int64), tf.ones([300, 1]))).batch(50)
  labelled.save(str(tmp_path / "labelled"))
  labelled_rows = lambda n: teacher_cache.read(str(tmp_path / "labelled"), n)
  counts = transfer.write(
      {transfer.UNLABELED: lambda: iter([({"a": tf.zeros([100])}, -tf.ones([100, 1]))]),
       transfer.SYNTHETIC: lambda: iter([({"a": tf.zeros([500])}, -tf.ones([500, 1]))])},
      spec, 1, str(tmp_path / "transfer"))
  assert counts == {transfer.UNLABELED: 100, transfer.SYNTHETIC: 500}
  transfer_rows = lambda n: teacher_cache.read(str(tmp_path / "transfer"), n)
  data = transfer.mix(labelled_rows, 300, [(transfer_rows, 600)], batch_size=900)
  features_, labels, logits, labelled_ = next(iter(data))
  flag = labelled_.numpy()
  assert flag.sum() == 300 and flag.size == 900  # 300 of 900 rows are labelled
  # A labelled row is the labelled cache's, a transfer row the teacher's only.
  np.testing.assert_array_equal(labels.numpy(), flag.astype(np.int64))
  np.testing.assert_array_equal(logits.numpy()[:, 0], np.where(flag == 1, 1.0, -1.0))
  np.testing.assert_array_equal(features_["a"].numpy(), flag)
  # However few the labelled rows, every batch has one of each.
  few = transfer.mix(labelled_rows, 1, [(transfer_rows, 10_000)], batch_size=8)
  assert float(tf.reduce_sum(next(iter(few))[3])) == 1.0
  with pytest.raises(transfer.TransferSetError, match="at least 2 rows"):
    transfer.mix(labelled_rows, 1, [(transfer_rows, 1)], 1)
  # Two transfer sources (unlabeled rows labelled on Beam, synthetic ones in
  # process): each in proportion, one row at least.
  three = transfer.mix(labelled_rows, 300, [(transfer_rows, 600), (transfer_rows, 3)],
                       batch_size=90)
  assert float(tf.reduce_sum(next(iter(three))[3])) == 30.0
  assert transfer.shares([300, 600, 3], 90) == [30, 59, 1]


def test_shares_add_up_to_the_batch():
  for counts, size in (([1, 1], 2), ([10, 0, 5], 7), ([7, 3, 1000], 256), ([5], 3)):
    rows = transfer.shares(counts, size)
    assert sum(rows) == size and min(rows) >= 1


@pytest.fixture(scope="module")
def unlabeled_dir(taxi_transform, tmp_path_factory):
  """Taxi rows without the label's columns, as an ExampleGen over them writes them."""
  root = tmp_path_factory.mktemp("unlabeled_examples")
  rows, types = taxi_transform["rows"], taxi_transform["types"]
  for split, part in (("train", rows[:UNLABELED_TRAIN]),
                      ("eval", rows[-UNLABELED_EVAL:])):
    os.makedirs(root / f"Split-{split}")
    with tf.io.TFRecordWriter(str(root / f"Split-{split}" / "data_tfrecord-00000.gz"),
                              options="GZIP") as writer:
      for record in raw_examples(part, types, drop=features.RAW_LABEL_KEYS):
        writer.write(record)
  return str(root)


@pytest.fixture(scope="module")
def with_transfer_set(taxi_transform, teacher_model, unlabeled_dir, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("transfer_run"))
  outputs = {}
  model = run_distiller(taxi_transform, teacher_model, out,
                        {"unlabeled_examples": [examples_artifact(unlabeled_dir)]},
                        outputs, synthetic_ratio=0.5, teacher_labelling="beam")
  return model, out, outputs


def test_the_teacher_labels_the_unlabeled_rows_on_beam(with_transfer_set, taxi_transform,
                                                       teacher_model, unlabeled_dir):
  """Beam's RunInference writes each unlabeled row, untransformed, with the
  teacher's logits on its transformed features: those the in-process path
  (data.unlabeled_dataset, then the teacher) gives."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import data  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import labelling  # pylint: disable=g-import-not-at-top
  _, _, outputs = with_transfer_set
  soft_labels = outputs["soft_labels"]
  assert json.loads(soft_labels.split_names) == ["train", transfer.UNLABELED]
  output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  spec = export.model_input_spec(output, features.LABEL_KEY)
  teacher = teacher_lib.Teacher(path_utils.serving_model_dir(teacher_model), spec,
                                task=Task.BINARY)
  in_process = data.unlabeled_dataset(
      [os.path.join(unlabeled_dir, "Split-*", "*")], output, features.RAW_LABEL_KEYS,
      spec, batch_size=10_000)
  want = np.sort(np.concatenate([teacher.logits(f).numpy().ravel()
                                 for f, _ in in_process]))
  files = tf.io.gfile.glob(os.path.join(soft_labels.uri, "Split-unlabeled", "*.gz"))
  got = np.sort(np.concatenate([
      tf.io.parse_example(batch, {labelling.TEACHER_LOGITS: tf.io.FixedLenFeature(
          [1], tf.float32)})[labelling.TEACHER_LOGITS].numpy().ravel()
      for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(512)]))
  assert got.size == UNLABELED_TRAIN + UNLABELED_EVAL
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_student_records_how_many_examples_of_each_kind_it_learnt_from(
    with_transfer_set):
  model, _, _ = with_transfer_set
  props = model.mlmd_artifact.custom_properties
  # The train rows but those of the validation cut (which choose the student).
  labelled = props["labelled_examples"].int_value
  assert labelled + props["validation_examples"].int_value == TRAIN_ROWS
  assert 0.8 * TRAIN_ROWS < labelled < TRAIN_ROWS
  # Every split of the unlabeled artifact, and half a synthetic row per train row.
  assert props["unlabeled_examples"].int_value == UNLABELED_TRAIN + UNLABELED_EVAL
  assert props["synthetic_examples"].int_value == round(labelled / 2)
  assert props["cache_teacher_outputs"].int_value == 1
  assert 0.5 < props["eval_agreement"].double_value <= 1.0


def test_a_student_with_a_transfer_set_serves_raw_examples_and_leaves_no_scratch(
    with_transfer_set, taxi_transform):
  model, out, _ = with_transfer_set
  loaded = tf.saved_model.load(path_utils.serving_model_dir(model.uri))
  serialized = raw_examples(taxi_transform["rows"][:4], taxi_transform["types"],
                            drop=features.RAW_LABEL_KEYS)
  probs = loaded.signatures["serving_default"](examples=tf.constant(serialized))
  assert next(iter(probs.values())).shape == (4, 1)
  assert not [d for d, _, _ in os.walk(os.path.join(out, "tmp"))
              if "transfer_set" in d or "teacher_outputs" in d]


def test_without_a_transfer_set_nothing_is_counted_as_one(taxi_transform, teacher_model,
                                                         tmp_path):
  model = run_distiller(taxi_transform, teacher_model, str(tmp_path))
  props = model.mlmd_artifact.custom_properties
  assert props["unlabeled_examples"].int_value == 0
  assert props["synthetic_examples"].int_value == 0
  assert "labelled_examples" not in props  # not counted: nothing was cached
  assert props["teachers"].int_value == 1


def test_unlabeled_examples_are_transformed_as_serving_transforms_them(
    taxi_transform, teacher_model, unlabeled_dir):
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import data  # pylint: disable=g-import-not-at-top
  output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  spec = export.model_input_spec(output, features.LABEL_KEY)
  dataset = data.unlabeled_dataset(
      [os.path.join(unlabeled_dir, "Split-eval", "*")], output, features.RAW_LABEL_KEYS,
      spec, batch_size=UNLABELED_EVAL)
  batch, serialized = next(iter(dataset))
  assert set(batch) == set(spec) and serialized.shape == (UNLABELED_EVAL,)
  # The same rows with their labels, through the fixture's transformed eval
  # split (the unlabeled eval rows are its last rows).
  from tfx_bsl.public import tfxio  # pylint: disable=g-import-not-at-top
  labelled = next(iter(tfxio.TFExampleRecord(
      os.path.join(taxi_transform["examples_dir"], "Split-eval", "*"),
      schema=output.transformed_metadata.schema).TensorFlowDataset(
          tfxio.TensorFlowDatasetOptions(batch_size=taxi_transform["num_eval"],
                                         num_epochs=1, shuffle=False))))
  for name in spec:
    np.testing.assert_allclose(
        tf.reshape(batch[name], [UNLABELED_EVAL, -1]).numpy(),
        tf.reshape(labelled[name], [taxi_transform["num_eval"], -1]).numpy()[
            -UNLABELED_EVAL:], rtol=1e-5, err_msg=name)


def test_synthetic_rows_need_a_teacher_of_this_runs_transform(
    taxi_transform, teacher_model, tmp_path, unlabeled_dir):
  with pytest.raises(transfer.TransferSetError, match="another Transform"):
    run_distiller(taxi_transform, teacher_model, str(tmp_path),
                  {"raw_examples": [examples_artifact(unlabeled_dir)]},
                  synthetic_ratio=1.0)


@pytest.mark.parametrize("labelling", ["in_process", "beam"])
def test_unlabeled_examples_without_rows_are_refused(taxi_transform, teacher_model,
                                                     tmp_path, labelling):
  """An empty transfer set is an error, whichever labels it: not a run that
  quietly learns from nothing more than its train rows."""
  for split in ("train", "eval"):
    os.makedirs(tmp_path / "empty" / f"Split-{split}")
    with tf.io.TFRecordWriter(str(tmp_path / "empty" / f"Split-{split}" /
                                  "data_tfrecord-00000.gz"), options="GZIP"):
      pass
  with pytest.raises(transfer.TransferSetError, match="unlabeled_examples hold no rows"):
    run_distiller(taxi_transform, teacher_model, str(tmp_path / "out"),
                  {"unlabeled_examples": [examples_artifact(str(tmp_path / "empty"))]},
                  teacher_labelling=labelling)


@pytest.fixture(scope="module")
def second_teacher(taxi_transform, tmp_path_factory):
  """Another taxi teacher, narrower and trained for fewer steps."""
  from distill_pipelines.taxi import teacher  # pylint: disable=g-import-not-at-top
  uri = str(tmp_path_factory.mktemp("second_teacher"))
  teacher.run_fn(fn_args_for(taxi_transform, uri, tmp_path_factory,
                             custom_config={"hidden_units": [16]}, train_steps=20))
  return uri


def test_several_teachers_are_read_as_the_mean_of_their_logits(
    taxi_transform, teacher_model, second_teacher):
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  spec = export.model_input_spec(output, features.LABEL_KEY)
  members = [teacher_lib.Teacher(path_utils.serving_model_dir(uri), spec, task=Task.BINARY)
             for uri in (teacher_model, second_teacher)]
  ensemble = teacher_lib.one_or_ensemble(members)
  batch = {name: tf.zeros([3, *s.shape[1:]], s.dtype) + 1 for name, s in spec.items()}
  each = [m.logits(batch).numpy() for m in members]
  assert not np.allclose(each[0], each[1])
  np.testing.assert_allclose(ensemble.logits(batch).numpy(), (each[0] + each[1]) / 2,
                             rtol=1e-6)
  assert ensemble.width == 1 and ensemble.source.startswith("the mean of 2 teachers")
  assert ensemble.num_params == sum(m.num_params for m in members)
  assert teacher_lib.one_or_ensemble(members[:1]) is members[0]


def test_the_distiller_learns_from_several_teachers(taxi_transform, teacher_model,
                                                    second_teacher, tmp_path):
  model = run_distiller(taxi_transform, [teacher_model, second_teacher], str(tmp_path))
  props = model.mlmd_artifact.custom_properties
  assert props["teachers"].int_value == 2
  assert json.loads(props["teacher_uris"].string_value) == [teacher_model, second_teacher]
  assert props["teacher_source"].string_value.startswith("the mean of 2 teachers")
  assert os.path.isdir(path_utils.serving_model_dir(model.uri))


def test_teachers_of_different_widths_are_refused():
  class Three:  # a stand-in for a 3-class teacher
    width, source = 3, "a three-class teacher"
  with pytest.raises(teacher_lib.TeacherContractError, match=r"different widths \[1, 3\]"):
    teacher_lib.Ensemble([Three(), type("One", (), {"width": 1, "source": "one"})()])
