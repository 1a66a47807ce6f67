"""Shared fixtures: a small real slice of the taxi data, transformed once by TFT.

Everything here runs in the one pytest process, so TensorFlow, TFT and TFX are
imported once for the whole suite.
"""
import glob
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pytest  # pylint: disable=g-import-not-at-top

from distill_pipelines.taxi.raw_data import column_types  # pylint: disable=g-import-not-at-top,unused-import
from distill_pipelines.taxi.raw_data import read_rows as read_taxi_rows
from distill_pipelines.taxi.raw_data import serialize as raw_examples  # pylint: disable=unused-import

# Rows of the embedded CSV the fast tests use: 1,200 for training, 400 for eval.
TRAIN_ROWS, EVAL_ROWS = 1200, 400


@pytest.fixture(scope="session")
def taxi_transform(tmp_path_factory):
  """Runs the project's preprocessing_fn through tf.Transform on real taxi rows.

  Returns a dict with `transform_dir` (a TransformGraph artifact's contents),
  `examples_dir` (transformed examples in Split-train / Split-eval, gzipped
  TFRecords as Transform writes them) and the raw `rows`.
  """
  import tempfile  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  import tensorflow_transform.beam as tft_beam  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import dataset_metadata  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import metadata_io  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import schema_utils  # pylint: disable=g-import-not-at-top
  from distill_pipelines.taxi import preprocessing  # pylint: disable=g-import-not-at-top

  root = tmp_path_factory.mktemp("taxi_transform")
  rows = read_taxi_rows(TRAIN_ROWS + EVAL_ROWS)
  types = column_types(rows)
  dtypes = {int: tf.int64, float: tf.float32, bytes: tf.string}
  feature_spec = {c: tf.io.VarLenFeature(dtypes[t]) for c, t in types.items()}
  instances = [{c: ([] if v == "" else [v.encode() if types[c] is bytes else types[c](v)])
                for c, v in row.items()} for row in rows]
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(feature_spec))

  transform_dir = str(root / "transform_graph")
  with tft_beam.Context(temp_dir=tempfile.mkdtemp(dir=root)):
    (train, transformed_metadata), transform_fn = (
        (instances[:TRAIN_ROWS], metadata)
        | tft_beam.AnalyzeAndTransformDataset(preprocessing.preprocessing_fn))
    evaluation, _ = (((instances[TRAIN_ROWS:], metadata), (transform_fn))
                     | tft_beam.TransformDataset())
    _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
  # Transform also keeps the raw schema beside the graph; serving parses with it.
  metadata_io.write_metadata(
      metadata, os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR))

  coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
  examples_dir = root / "transformed_examples"
  for split, data in (("train", train), ("eval", evaluation)):
    os.makedirs(examples_dir / f"Split-{split}")
    path = str(examples_dir / f"Split-{split}" / "data.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
      for instance in data:
        writer.write(coder.encode(instance))
  return {"transform_dir": transform_dir, "examples_dir": str(examples_dir),
          "rows": rows, "types": types, "num_train": len(train), "num_eval": len(evaluation)}


def only_file(pattern: str) -> str:
  matches = glob.glob(pattern)
  assert len(matches) == 1, (pattern, matches)
  return matches[0]


def examples_artifact(examples_dir: str):
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  examples = standard_artifacts.Examples()
  examples.uri = examples_dir
  examples.split_names = '["train", "eval"]'
  return examples


def transform_graph_artifact(transform_dir: str):
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  graph = standard_artifacts.TransformGraph()
  graph.uri = transform_dir
  return graph


def model_artifact(uri: str):
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  model = standard_artifacts.Model()
  model.uri = uri
  return model


def fn_args_for(taxi_transform, uri: str, tmp_path_factory, custom_config=None,
                train_steps: int = 40):
  """TFX's own FnArgs for a Trainer run_fn on the taxi fixture, saving to `uri`."""
  import json  # pylint: disable=g-import-not-at-top
  from tfx.components.trainer import fn_args_utils  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  fn_args = fn_args_utils.get_common_fn_args(
      {"examples": [examples_artifact(taxi_transform["examples_dir"])],
       "transform_graph": [transform_graph_artifact(taxi_transform["transform_dir"])]},
      {"train_args": json.dumps({"num_steps": train_steps}),
       "eval_args": json.dumps({"num_steps": 2}),
       "custom_config": json.dumps(custom_config)})
  fn_args.transform_output = fn_args.transform_graph_path
  fn_args.serving_model_dir = path_utils.serving_model_dir(uri)
  fn_args.model_run_dir = str(tmp_path_factory.mktemp("teacher_run"))
  return fn_args


def run_distiller(taxi_transform, teacher_uri, out_dir, inputs=None, outputs=None,
                  **overrides):
  """Runs the Distiller's Executor.Do the way TFX would on the taxi fixture.

  `teacher_uri`: a Model artifact's URI, or a list of them (several
  teachers); `inputs`: more input artifacts by key; `outputs`: a dict the
  output artifacts are put in, by key; `overrides`: exec properties.
  Returns the output Model artifact.
  """
  import json  # pylint: disable=g-import-not-at-top
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import executor  # pylint: disable=g-import-not-at-top
  from distill_pipelines.taxi import config as configs  # pylint: disable=g-import-not-at-top
  from distill_pipelines.taxi import features  # pylint: disable=g-import-not-at-top
  context = base_beam_executor.BaseBeamExecutor.Context(
      tmp_dir=os.path.join(out_dir, "tmp"), unique_id="1",
      beam_pipeline_args=["--direct_num_workers=1"])
  model = standard_artifacts.Model()
  model.uri = os.path.join(out_dir, "model")
  model_run = standard_artifacts.ModelRun()
  model_run.uri = os.path.join(out_dir, "model_run")
  soft_labels = standard_artifacts.Examples()
  soft_labels.uri = os.path.join(out_dir, "soft_labels")
  exec_properties = {
      "train_args": json.dumps({"num_steps": 60}),
      "eval_args": json.dumps({"num_steps": 2}),
      "module_file": configs.STUDENT_MODULE,
      "label_key": features.LABEL_KEY,
      "raw_label_keys": json.dumps(list(features.RAW_LABEL_KEYS)),
      "temperature": 2.0,
      "alpha": 0.9,
      "task": None,  # binary, from the teacher's one output
      "batch_size": 64,
      "learning_rate": 0.01,
      "teacher_signature": None,
      "custom_config": "null",
  }
  exec_properties.update(overrides)
  uris = [teacher_uri] if isinstance(teacher_uri, str) else list(teacher_uri)
  all_inputs = {
      "teacher_model": [model_artifact(uri) for uri in uris],
      "examples": [examples_artifact(taxi_transform["examples_dir"])],
      "transform_graph": [transform_graph_artifact(taxi_transform["transform_dir"])],
      **(inputs or {})}
  output_dict = {"model": [model], "model_run": [model_run],
                 "soft_labels": [soft_labels]}
  executor.Executor(context).Do(all_inputs, output_dict, exec_properties)
  if outputs is not None:
    outputs.update({key: artifacts[0] for key, artifacts in output_dict.items()})
  return model


@pytest.fixture(scope="session")
def teacher_model(taxi_transform, tmp_path_factory):
  """The taxi teacher's module file run through TFX's own FnArgs, few steps.

  Returns the Model artifact's URI (the SavedModel is in Format-Serving).
  """
  from distill_pipelines.taxi import teacher  # pylint: disable=g-import-not-at-top

  uri = str(tmp_path_factory.mktemp("teacher_model"))
  fn_args = fn_args_for(taxi_transform, uri, tmp_path_factory,
                        custom_config={"hidden_units": [128, 64]})
  teacher.run_fn(fn_args)
  return uri


def pytest_collection_modifyitems(items):
  """Marks the slow tier and starts the slowest files first.

  Tests of a compiled package's local run are slow tier too (see pytest.ini).
  `make test` hands whole files to two processes (pytest-xdist, loadfile,
  --no-loadscope-reorder): the longest files go first, so none is left for the
  end while the other process idles. The order within a file is kept.
  """
  for item in items:
    if "local_run" in getattr(item, "fixturenames", ()):
      item.add_marker(pytest.mark.pipeline)
  items.sort(key=lambda item: _LONGEST_FIRST.get(item.path.name, len(_LONGEST_FIRST)))


# Test files by their time in CI (--durations), longest first; the rest follow.
_LONGEST_FIRST = {name: rank for rank, name in enumerate([
    "test_tasks_e2e.py", "test_tfx_examples_e2e.py", "test_retraining_e2e.py", "test_kubeflow.py",
    "test_choice_e2e.py",
    "test_faults_e2e.py", "test_pipeline_e2e.py", "test_executor.py",
    "test_transfer.py", "test_distribute.py", "test_training.py", "test_generic.py"])}
