"""The zero-code modules (distill_pipelines.generic) on synthetic CSV rows.

Runs the generic preprocessing_fn through tf.Transform for each task (no TFX
pipeline), then the generic teacher's run_fn through TFX's own FnArgs, and
serves the saved model with raw tf.Examples.
"""
import functools
import json
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_decision_forests as tfdf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils
from tfx.components.trainer import fn_args_utils
from tfx.utils import path_utils
from tfx_bsl.tfxio import dataset_options
from yggdrasil_decision_forests.dataset import data_spec_pb2

from conftest import examples_artifact, transform_graph_artifact
from distill_components.distiller import tasks
from distill_components.litert import features as litert_features
from distill_pipelines.generic import config
from distill_pipelines.generic import auto_teacher
from distill_pipelines.generic import ensemble_teacher
from distill_pipelines.generic import models
from distill_pipelines.generic import preprocessing
from distill_pipelines.generic import student
from distill_pipelines.generic import teacher
from distill_pipelines.generic import tree_teacher
from distill_pipelines.taxi.raw_data import column_types
from distill_pipelines.taxi.raw_data import serialize

NUM_ROWS, NUM_TRAIN = 600, 450
COLORS = ("red", "green", "blue")
CITIES = ("north", "south", "east", "west")
LABELS = ("y_bin", "y_multi", "y_fare")
FEATURES = ("x_num", "x_gap", "n_int", "city")
# Columns SchemaGen (infer_feature_shape) would make dense: never missing.
ALWAYS_PRESENT = ("x_num", "n_int", "y_bin", "y_multi", "y_fare")


def _rows():
  """CSV-like rows (every cell a string, '' = missing), fixed seed."""
  rng = np.random.default_rng(0)
  x_num = rng.normal(50.0, 10.0, NUM_ROWS)
  x_gap = rng.lognormal(6.0, 0.5, NUM_ROWS)
  n_int = rng.integers(0, 21, NUM_ROWS)
  city = rng.integers(0, len(CITIES), NUM_ROWS)
  gap_missing = rng.random(NUM_ROWS) < 0.15
  city_missing = rng.random(NUM_ROWS) < 0.1
  z = (x_num - 50.0) / 10.0 + 0.8 * (city == 1) - 0.05 * (n_int - 10)
  y_bin = (z + rng.normal(0, 0.5, NUM_ROWS) > 0).astype(int)
  y_multi = np.digitize(z + rng.normal(0, 0.3, NUM_ROWS), [-0.5, 0.5])
  # A regression label on a large scale: mean ~1000, std ~300.
  y_fare = 1000.0 + 300.0 * z + rng.normal(0, 30.0, NUM_ROWS)
  rows = []
  for i in range(NUM_ROWS):
    rows.append({
        "x_num": f"{x_num[i]:.4f}",
        "x_gap": "" if gap_missing[i] else f"{x_gap[i]:.3f}",
        "n_int": str(n_int[i]),
        "city": "" if city_missing[i] else CITIES[city[i]],
        "y_bin": str(y_bin[i]),
        "y_multi": COLORS[y_multi[i]],
        "y_fare": f"{y_fare[i]:.2f}",
    })
  return rows


ROWS = _rows()
TYPES = column_types(ROWS)

TASK_CONFIGS = {
    # An integer label used as the class id as it is; dense inputs.
    "binary": {"label": "y_bin", "task": "binary", "num_classes": 2},
    # A string label mapped through label_values, in that order.
    "multiclass": {"label": "y_multi", "task": "multiclass", "num_classes": 3,
                   "label_values": ["red", "green", "blue"]},
    # A string label through a vocabulary; classes from the label's domain.
    "multiclass_vocab": {"label": "y_multi", "task": "multiclass"},
    "regression": {"label": "y_fare", "task": "regression"},
}


def _custom_config(name, **extra):
  return {**TASK_CONFIGS[name], "raw_label_keys": list(LABELS), **extra}


def _run_transform(root, custom_config, dense_columns=(), preprocessing_fn=None):
  """preprocessing_fn (the generic one unless given) through tf.Transform, the
  way conftest.taxi_transform does.

  Columns in `dense_columns` are FixedLen [1] (as SchemaGen's
  infer_feature_shape makes a column present in every row); others VarLen.
  """
  dtypes = {int: tf.int64, float: tf.float32, bytes: tf.string}
  feature_spec = {
      c: (tf.io.FixedLenFeature([1], dtypes[t]) if c in dense_columns
          else tf.io.VarLenFeature(dtypes[t])) for c, t in TYPES.items()}
  instances = [{c: ([] if v == "" else [v.encode() if TYPES[c] is bytes else TYPES[c](v)])
                for c, v in row.items()} for row in ROWS]
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(feature_spec))
  transform_dir = os.path.join(root, "transform_graph")
  fn = preprocessing_fn or functools.partial(preprocessing.preprocessing_fn,
                                             custom_config=custom_config)
  with tft_beam.Context(temp_dir=tempfile.mkdtemp(dir=root)):
    (train, transformed_metadata), transform_fn = (
        (instances[:NUM_TRAIN], metadata)
        | tft_beam.AnalyzeAndTransformDataset(fn))
    evaluation, _ = (((instances[NUM_TRAIN:], metadata), transform_fn)
                     | tft_beam.TransformDataset())
    _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
  metadata_io.write_metadata(
      metadata, os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
  examples_dir = os.path.join(root, "transformed_examples")
  for split, data in (("train", train), ("eval", evaluation)):
    os.makedirs(os.path.join(examples_dir, f"Split-{split}"))
    path = os.path.join(examples_dir, f"Split-{split}", "data.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
      for instance in data:
        writer.write(coder.encode(instance))
  return {"transform_dir": transform_dir, "examples_dir": examples_dir,
          "train": train, "eval": evaluation, "config": custom_config,
          "output": tft.TFTransformOutput(transform_dir)}


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
  """Each task's transform, run once for the module."""
  results = {}
  for name in TASK_CONFIGS:
    root = str(tmp_path_factory.mktemp(f"generic_{name}"))
    dense = ALWAYS_PRESENT if name == "binary" else ()
    results[name] = _run_transform(root, _custom_config(name), dense)
  return results


def _fn_args(result, tmp_path_factory, train_steps, **extra_config):
  uri = str(tmp_path_factory.mktemp("generic_model"))
  fn_args = fn_args_utils.get_common_fn_args(
      {"examples": [examples_artifact(result["examples_dir"])],
       "transform_graph": [transform_graph_artifact(result["transform_dir"])]},
      {"train_args": json.dumps({"num_steps": train_steps}),
       "eval_args": json.dumps({"num_steps": 2}),
       "custom_config": json.dumps({**result["config"], **extra_config})})
  fn_args.transform_output = fn_args.transform_graph_path
  fn_args.serving_model_dir = path_utils.serving_model_dir(uri)
  fn_args.model_run_dir = str(tmp_path_factory.mktemp("generic_run"))
  return fn_args


def _column(instances, name):
  return np.array([np.ravel(i[name])[0] for i in instances])


# --- config ----------------------------------------------------------------

def test_config_defaults_and_errors():
  cfg = config.parse({"label": "y", "task": "binary"})
  assert (cfg.label_key, cfg.raw_label_keys, cfg.num_classes) == ("y", ("y",), 2)
  assert cfg.batch_size == 256 and cfg.learning_rate == 1e-3
  cfg = config.parse({"label": "y", "task": "multiclass",
                      "label_values": ["a", "b", "c"], "raw_label_keys": ["z"]})
  assert cfg.num_classes == 3 and cfg.raw_label_keys == ("y", "z")
  with pytest.raises(ValueError, match="label"):
    config.parse({"task": "binary"})
  with pytest.raises(ValueError, match="regression"):
    config.parse({"label": "y", "task": "regression", "label_values": ["1"]})
  with pytest.raises(ValueError, match="num_classes"):
    config.parse({"label": "y", "task": "multiclass", "num_classes": 4,
                  "label_values": ["a", "b", "c"]})
  with pytest.raises(ValueError, match="task must be one of"):
    config.parse({"label": "y", "task": "ranking"})


# --- preprocessing ---------------------------------------------------------

def test_label_ids_match_label_values_numerically_and_as_strings():
  ids = preprocessing.label_ids(tf.constant([[1], [0], [2]], tf.int64),
                                ["0", "1.0"])
  assert ids.numpy().ravel().tolist() == [1, 0, -1]
  ids = preprocessing.label_ids(tf.constant([[1.0], [0.0], [0.5]]), ["1", "0"])
  assert ids.numpy().ravel().tolist() == [0, 1, -1]
  ids = preprocessing.label_ids(tf.constant([["b"], ["a"], ["z"]]), ["a", "b"])
  assert ids.numpy().ravel().tolist() == [1, 0, -1]
  with pytest.raises(ValueError, match="not a number"):
    preprocessing.label_ids(tf.constant([[1]], tf.int64), ["yes", "no"])


def test_dense_and_present_handles_dense_sparse_and_ragged():
  values, present = preprocessing.dense_and_present(tf.constant([3.0, 4.0]))
  assert values.shape == (2, 1) and present.numpy().all()
  sparse = tf.SparseTensor([[0, 0], [2, 0], [2, 1]], ["a", "b", "c"], [3, 2])
  values, present = preprocessing.dense_and_present(sparse)
  assert values.numpy().ravel().tolist() == [b"a", b"", b"b"]
  assert present.numpy().ravel().tolist() == [True, False, True]
  values, present = preprocessing.dense_and_present(
      tf.ragged.constant([[1], [], [5]], tf.int64))
  assert values.numpy().ravel().tolist() == [1, 0, 5]
  assert present.numpy().ravel().tolist() == [True, False, True]


def test_feature_names_are_valid_signature_arguments():
  assert config.transformed_name("trip_miles") == "trip_miles_xf"
  assert config.transformed_name("Trip miles (km)") == "Trip_miles__km__xf"
  assert config.transformed_name("2nd") == "f2nd_xf"
  assert config.transformed_name("_id") == "f_id_xf"


def test_feature_names_colliding_with_the_label_or_each_other_are_refused():
  with tf.Graph().as_default():
    inputs = {"a": tf.compat.v1.placeholder(tf.float32, [None, 1]),
              "a b": tf.compat.v1.placeholder(tf.float32, [None, 1]),
              "y": tf.compat.v1.placeholder(tf.int64, [None, 1])}
    with pytest.raises(ValueError, match="label_key"):
      preprocessing.preprocessing_fn(
          inputs, {"label": "y", "label_key": "a_xf", "task": "binary"})
    inputs["a_b"] = inputs["a b"]
    with pytest.raises(ValueError, match="both be the feature 'a_b_xf'"):
      preprocessing.preprocessing_fn(inputs, {"label": "y", "task": "binary"})


def test_features_are_dense_z_scored_and_vocabularies(transformed):
  for name, result in transformed.items():
    output = result["output"]
    spec = output.transformed_feature_spec()
    label_key = result["config"]["label"]
    assert set(spec) == {config.transformed_name(c) for c in FEATURES} | {label_key}
    for feature_name, feature in spec.items():
      assert isinstance(feature, tf.io.FixedLenFeature), (name, feature_name)
      assert list(feature.shape) == [1], (name, feature_name)
    for column in ("x_num", "x_gap", "n_int"):
      values = _column(result["train"], config.transformed_name(column))
      assert spec[config.transformed_name(column)].dtype == tf.float32
      assert not np.isnan(values).any(), (name, column)
      assert abs(values.mean()) < 1e-3 and abs(values.std() - 1) < 1e-3, column
    # 4 cities, the missing token, one OOV bucket.
    assert spec["city_xf"].dtype == tf.int64
    assert output.num_buckets_for_transformed_feature("city_xf") == 6
    cities = _column(result["train"] + result["eval"], "city_xf")
    assert cities.min() >= 0 and cities.max() < 6


def test_missing_values_are_imputed_and_a_token_of_their_own(transformed):
  result = transformed["multiclass"]
  output = result["output"]
  x_gap = _column(result["train"], "x_gap_xf")
  missing = np.array([r["x_gap"] == "" for r in ROWS[:NUM_TRAIN]])
  assert missing.any()
  np.testing.assert_allclose(x_gap[missing], 0.0, atol=1e-5)  # The mean.
  # The z-score uses the mean of the present values only.
  present = np.array([float(r["x_gap"]) for r in ROWS[:NUM_TRAIN] if r["x_gap"]])
  imputed = np.where(missing, present.mean(), 0.0)
  imputed[~missing] = present
  np.testing.assert_allclose(x_gap, (imputed - imputed.mean()) / imputed.std(),
                             rtol=1e-3, atol=1e-4)
  vocab = output.vocabulary_by_name(
      [v for v in os.listdir(os.path.join(result["transform_dir"],
                                          "transform_fn", "assets"))
       if v.startswith("city")][0])
  cities = _column(result["train"], "city_xf")
  city_missing = np.array([r["city"] == "" for r in ROWS[:NUM_TRAIN]])
  assert {vocab[i] for i in cities[city_missing]} == {
      preprocessing.MISSING_TOKEN.encode()}

  # A raw example missing every feature still transforms, without NaN.
  raw = tf.io.parse_example(
      serialize([{c: "" for c in ROWS[0]}], TYPES), output.raw_feature_spec())
  features = output.transform_features_layer()(raw)
  for column in ("x_num", "x_gap", "n_int"):
    value = features[config.transformed_name(column)].numpy()
    assert value.shape == (1, 1) and np.isfinite(value).all()
  assert vocab[features["city_xf"].numpy()[0, 0]] == preprocessing.MISSING_TOKEN.encode()


def test_features_json_gives_each_z_score_its_shift_and_scale(transformed):
  """features.json (LiteRT apps): the z-score constants TFT folded into the
  graph are found by probing, dense (binary) and VarLen (regression) inputs."""
  for name in ("binary", "regression"):
    result = transformed[name]
    described = litert_features.describe(result["output"], result["config"]["label"])
    scales = described["scales"]
    assert set(scales) == {config.transformed_name(c) for c in ("x_num", "x_gap", "n_int")}
    for column in ("x_num", "x_gap", "n_int"):
      present = np.array([float(r[column]) for r in ROWS[:NUM_TRAIN] if r[column]])
      scale = scales[config.transformed_name(column)]
      assert scale["raw"] == column
      np.testing.assert_allclose(scale["shift"], present.mean(), rtol=1e-4)
      # The formula reproduces the Transform's own output (the scale is the
      # std with missing values imputed, not of the present ones alone).
      values = _column(result["train"], config.transformed_name(column))
      raw = np.array([float(r[column]) if r[column] else np.nan for r in ROWS[:NUM_TRAIN]])
      np.testing.assert_allclose(((raw - scale["shift"]) / scale["scale"])[~np.isnan(raw)],
                                 values[~np.isnan(raw)], atol=1e-4)
    assert described["computed_by_transform"] == ["city_xf"]
    assert any(k.startswith("city") for k in described["vocabularies"])


def test_labels_follow_label_values_vocabulary_or_ids(transformed):
  raw = {c: [r[c] for r in ROWS] for c in LABELS}
  both = lambda result, key: _column(result["train"] + result["eval"], key)

  binary = transformed["binary"]
  assert binary["output"].transformed_feature_spec()["y_bin"].dtype == tf.int64
  assert both(binary, "y_bin").tolist() == [int(v) for v in raw["y_bin"]]

  multi = transformed["multiclass"]
  assert both(multi, "y_multi").tolist() == [COLORS.index(v) for v in raw["y_multi"]]
  assert multi["output"].num_buckets_for_transformed_feature("y_multi") == 3

  vocab_result = transformed["multiclass_vocab"]
  vocab = [v.decode() for v in vocab_result["output"].vocabulary_by_name(
      config.LABEL_VOCABULARY)]
  assert sorted(vocab) == sorted(COLORS)
  ids = both(vocab_result, "y_multi")
  assert [vocab[i] for i in ids] == raw["y_multi"]
  assert vocab_result["output"].num_buckets_for_transformed_feature("y_multi") == 3

  regression = transformed["regression"]
  assert regression["output"].transformed_feature_spec()["y_fare"].dtype == tf.float32
  np.testing.assert_allclose(both(regression, "y_fare"),
                             [float(v) for v in raw["y_fare"]], rtol=1e-6)


# --- models ----------------------------------------------------------------

def _synthetic_features(num_floats, vocab_sizes):
  feats = [models.Feature(f"f{i}_xf", tf.float32, (1,), None)
           for i in range(num_floats)]
  feats += [models.Feature(f"v{i}_xf", tf.int64, (1,), n)
            for i, n in enumerate(vocab_sizes)]
  return feats


FEATURE_SETS = {
    "one_float": lambda _: _synthetic_features(1, []),
    "many_floats": lambda _: _synthetic_features(100, []),
    "wide_vocabularies": lambda _: _synthetic_features(2, [1001] * 40),
    "huge_vocabulary": lambda _: _synthetic_features(0, [100_000, 3]),
    "generic_transform": lambda t: models.features(
        t["binary"]["output"], "y_bin"),
}


@pytest.mark.parametrize("feature_set", sorted(FEATURE_SETS))
@pytest.mark.parametrize("task,classes", [(tasks.Task.BINARY, 2),
                                          (tasks.Task.MULTICLASS, 5),
                                          (tasks.Task.REGRESSION, None)])
def test_student_is_at_least_ten_times_smaller(transformed, feature_set, task,
                                                classes):
  feats = FEATURE_SETS[feature_set](transformed)
  big = models.build_teacher(feats, task, classes, label_scale=(100.0, 20.0))
  small = models.build_student(feats, task, classes, label_scale=(100.0, 20.0))
  width = task.output_width(classes)
  assert big.output_shape == small.output_shape == (None, width)
  assert big.count_params() >= models.MIN_COMPRESSION * small.count_params(), (
      big.count_params(), small.count_params())


def test_generic_models_read_every_feature_and_embed_vocabularies(transformed):
  feats = {f.name: f for f in models.features(
      transformed["binary"]["output"], "y_bin")}
  assert set(feats) == {config.transformed_name(c) for c in FEATURES}
  assert feats["city_xf"].num_buckets == 6
  assert feats["x_num_xf"].num_buckets is None


@pytest.mark.parametrize("name,width", [("binary", 1), ("multiclass", 3),
                                        ("multiclass_vocab", 3),
                                        ("regression", 1)])
def test_build_student_for_the_distiller(transformed, tmp_path_factory, name,
                                         width):
  fn_args = _fn_args(transformed[name], tmp_path_factory, train_steps=1)
  model = student.build_student(fn_args)
  assert model.output_shape == (None, width)
  assert not model._is_compiled  # pylint: disable=protected-access
  batch = next(iter(fn_args.data_accessor.tf_dataset_factory(
      fn_args.train_files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=8, label_key=transformed[name]["config"]["label"],
          num_epochs=1, shuffle=False),
      transformed[name]["output"].transformed_metadata.schema)))
  outputs = model(batch[0]).numpy()
  assert outputs.shape == (8, width) and np.isfinite(outputs).all()
  if name == "regression":  # Already in the label's units before training.
    assert 300 < outputs.mean() < 3000


def _pass_through_fn(inputs):
  """A user's preprocessing that hands raw numbers on: no domains, no scaling
  (as TFX's taxi module does with hours and census tracts)."""
  return {"n_int_xf": inputs["n_int"],                      # small codes, 0-20
          "tract_xf": inputs["n_int"] * 1_000_003 + 17_031_000_000,  # huge ids
          "x_num_xf": inputs["x_num"],                      # about 50 +- 10
          "y_bin": inputs["y_bin"]}


def test_generic_networks_fit_numbers_a_preprocessing_module_did_not_scale(
    tmp_path_factory):
  result = _run_transform(str(tmp_path_factory.mktemp("pass_through")),
                          _custom_config("binary"), ALWAYS_PRESENT, _pass_through_fn)
  fn_args = _fn_args(result, tmp_path_factory, train_steps=1)
  raw = models.features(result["output"], "y_bin")
  assert {f.name: f.num_buckets for f in raw} == {
      "n_int_xf": None, "tract_xf": None, "x_num_xf": None}
  feats, scales = models.fit_to_train_sample(fn_args, result["output"], raw)
  n_int = [int(r["n_int"]) for r in ROWS[:NUM_TRAIN]]
  # Small non-negative integers become ids; the rest numbers with their scale.
  assert {f.name: f.num_buckets for f in feats} == {
      "n_int_xf": max(n_int) + 1, "tract_xf": None, "x_num_xf": None}
  x_num = [float(r["x_num"]) for r in ROWS[:NUM_TRAIN]]
  np.testing.assert_allclose(scales["x_num_xf"], (np.mean(x_num), np.std(x_num)),
                             rtol=1e-4)
  assert scales["tract_xf"][0] > 1.7e10 and "n_int_xf" not in scales
  model = student.build_student(fn_args)
  assert "n_int_xf_embedding" in {layer.name for layer in model.layers}
  batch = next(iter(fn_args.data_accessor.tf_dataset_factory(
      fn_args.train_files, dataset_options.TensorFlowDatasetOptions(
          batch_size=64, label_key="y_bin", num_epochs=1, shuffle=False),
      result["output"].transformed_metadata.schema)))
  # Standardized inputs: an untrained network's logits stay small (unscaled,
  # the 1.7e10 ids alone would make them about 1e9).
  assert np.abs(model(batch[0]).numpy()).max() < 20


# --- teacher run_fn --------------------------------------------------------

@pytest.mark.parametrize("module", [teacher, tree_teacher, ensemble_teacher,
                                    auto_teacher],
                         ids=["mlp", "gbt", "ensemble", "auto"])
@pytest.mark.parametrize("name,output,width,steps", [
    ("binary", "probabilities", 1, 20),
    ("multiclass", "probabilities", 3, 20),
    ("regression", "predictions", 1, 40),
])
def test_teacher_run_fn_trains_and_serves_raw_examples(
    transformed, tmp_path_factory, module, name, output, width, steps):
  result = transformed[name]
  fn_args = _fn_args(result, tmp_path_factory, steps, batch_size=64)
  module.run_fn(fn_args)
  loaded = tf.saved_model.load(fn_args.serving_model_dir)
  rows = ROWS[NUM_TRAIN:]
  # Serving requests carry no label (nor the other label columns).
  serialized = serialize(rows, TYPES, drop=LABELS)
  served = loaded.signatures["serving_default"](
      examples=tf.constant(serialized))[output].numpy()
  assert served.shape == (len(rows), width)
  assert np.isfinite(served).all()
  if name == "regression":
    label_mean = np.mean([float(r["y_fare"]) for r in rows])
    assert label_mean / 2 < served.mean() < label_mean * 2
  else:
    assert np.all((served >= 0) & (served <= 1))
    if width > 1:
      np.testing.assert_allclose(served.sum(axis=1), 1.0, rtol=1e-5)
  assert served.std() > 0  # It does look at the features.


@pytest.mark.parametrize("name,metric", [("multiclass", "sparse_categorical_accuracy"),
                                         ("regression", "mean_squared_error")])
def test_the_auto_teacher_keeps_the_best_candidate_on_the_validation_cut(
    transformed, tmp_path_factory, name, metric):
  """Three candidates scored on the train rows none was fit on; the best kept,
  with its out-of-fold models; every candidate's figures written for MLMD."""
  from distill_components.distiller import choice  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import folds  # pylint: disable=g-import-not-at-top
  fn_args = _fn_args(transformed[name], tmp_path_factory, 40, batch_size=64,
                     teacher_folds=2, validation_fraction=0.3)
  auto_teacher.run_fn(fn_args)
  uri = os.path.dirname(fn_args.serving_model_dir)
  with open(os.path.join(uri, choice.CANDIDATES_FILE)) as f:
    written = json.load(f)
  scores = {k: v[metric] for k, v in written["candidates"].items()}
  assert sorted(scores) == ["ensemble", "gbt", "mlp"] and written["metric"] == metric
  best = (max if name == "multiclass" else min)(scores.values())
  assert scores[written["chosen"]] == best
  assert folds.read_manifest(uri)["folds"] == 2
  assert tf.saved_model.load(fn_args.serving_model_dir).signatures["transformed_logits"]


def test_the_ensemble_teacher_is_the_mean_of_the_trees_and_the_network(
    transformed, tmp_path_factory):
  from distill_components.distiller import folds  # pylint: disable=g-import-not-at-top
  result = transformed["regression"]
  fn_args = _fn_args(result, tmp_path_factory, 40, batch_size=64, teacher_folds=2)
  ensemble_teacher.run_fn(fn_args)
  uri = os.path.dirname(fn_args.serving_model_dir)
  assert folds.read_manifest(uri)["folds"] == 2
  tft_output = tft.TFTransformOutput(result["transform_dir"])
  feats = models.features(tft_output, "y_fare")
  inputs = {f.name: tf.zeros([3, *f.shape], f.dtype) + 1 for f in feats}
  whole = tf.saved_model.load(fn_args.serving_model_dir).signatures["transformed_logits"]
  fold = tf.saved_model.load(folds.model_dir(uri, 0)).signatures["transformed_logits"]
  # A fold model differs from the whole in its trees only.
  assert not np.allclose(whole(**inputs)["logits"].numpy(), fold(**inputs)["logits"].numpy())
  # The mean, member by member.
  a = tf.keras.Sequential([tf.keras.layers.Dense(1, kernel_initializer="ones")])
  b = tf.keras.Sequential([tf.keras.layers.Dense(1, kernel_initializer="zeros",
                                                 bias_initializer="ones")])
  names = [f.name for f in feats]

  def member(model):
    ins = models.keras_inputs(feats)
    x = tf.keras.layers.concatenate(
        [tf.reshape(tf.cast(ins[n], tf.float32), [-1, 1]) for n in names])
    return tf.keras.Model(ins, model(x))
  pair = [member(a), member(b)]
  mean = ensemble_teacher.average(pair, feats)(inputs).numpy()
  np.testing.assert_allclose(mean, (pair[0](inputs).numpy() + pair[1](inputs).numpy()) / 2,
                             rtol=1e-6)


def test_teacher_refuses_labels_outside_label_values():
  # A raw label not in label_values transforms to -1 (see
  # test_label_ids_match_label_values_numerically_and_as_strings); the teacher
  # refuses it before training, saying why.
  cfg = config.parse(_custom_config("multiclass"))
  with pytest.raises(tasks.LabelError, match="not in label_values"):
    teacher.check_labels(np.array([0, 1, -1, 2]), cfg, 3)  # pylint: disable=protected-access
  with pytest.raises(tasks.LabelError, match="fractional"):
    teacher.check_labels(np.array([0.5, 1.0]), config.parse(  # pylint: disable=protected-access
        _custom_config("binary")), 1)


def test_the_tree_teachers_sample_is_uniform_seeded_and_keeps_rows_whole():
  rows = 20_000
  batches = tf.data.Dataset.from_tensor_slices(
      ({"x": tf.range(rows), "y": -tf.range(rows)}, tf.range(rows))).batch(512)

  def kept(seed):
    sampled = [(x["x"].numpy(), x["y"].numpy(), label.numpy())
               for x, label in tree_teacher.sample(batches, 0.1, seed)]
    for x, y, label in sampled:  # a row's features and label stay together
      np.testing.assert_array_equal(x, label)
      np.testing.assert_array_equal(y, -label)
    return np.concatenate([label for _, _, label in sampled])
  first = kept(7)
  assert 1_800 < len(first) < 2_200  # about 10% (the binomial sd: 42 rows)
  np.testing.assert_array_equal(kept(7), first)  # the same rows for a seed
  assert not np.array_equal(kept(8)[:100], first[:100])
  # From the whole split, not its first rows.
  assert 9_000 < first.mean() < 11_000 and first.max() > 19_000


def test_a_large_tree_teacher_bins_the_features_given_as_numerical():
  semantic = tfdf.keras.FeatureSemantic
  usages = [tfdf.keras.FeatureUsage("x", semantic=semantic.NUMERICAL),
            tfdf.keras.FeatureUsage("city", semantic=semantic.CATEGORICAL)]
  rng = np.random.default_rng(0)
  x = rng.normal(size=2000).astype(np.float32)
  rows = tf.data.Dataset.from_tensor_slices(
      ({"x": x, "city": rng.integers(0, 4, 2000)}, (x > 0).astype(np.int64))).batch(500)
  for large, kind in ((False, "NUMERICAL"), (True, "DISCRETIZED_NUMERICAL")):
    trees = tree_teacher.build(tasks.Task.BINARY, usages, large=large)
    trees.fit(rows, verbose=0)
    columns = {c.name: c.type for c in trees.make_inspector().dataspec.columns}
    assert columns["x"] == getattr(data_spec_pb2.ColumnType, kind)
    assert columns["city"] == data_spec_pb2.ColumnType.CATEGORICAL
