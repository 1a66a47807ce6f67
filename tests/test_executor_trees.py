"""The Distiller's executor on tree teachers (TF-DF): a student that serves
without TF-DF, the teacher's ops in a Beam worker, out-of-fold soft labels."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import path_utils

from conftest import TRAIN_ROWS, raw_examples, run_distiller
from distill_components.distiller import export
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller.tasks import Task
from distill_pipelines.taxi import features

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")


def _run(taxi_transform, teacher_uri, out_dir, **overrides):
  """Runs Executor.Do the way TFX would; returns the output Model artifact."""
  return run_distiller(taxi_transform, teacher_uri, out_dir, **overrides)


_FRESH_PROCESS = """
import base64, json, sys
import tensorflow as tf
from distill_components.distiller import export, teacher
from distill_components.distiller.tasks import Task
import tensorflow_transform as tft
spec = export.model_input_spec(tft.TFTransformOutput(sys.argv[3]), sys.argv[4])
try:
  teacher.Teacher(sys.argv[1], spec, task=Task.BINARY)
  refused = None
except teacher.TeacherContractError as e:
  refused = str(e)
student = tf.saved_model.load(sys.argv[2])
served = student.signatures["serving_default"](
    examples=tf.constant([base64.b64decode(e) for e in json.loads(sys.stdin.read())]))
print(json.dumps({"refused": refused, "served": served["probabilities"].numpy().tolist(),
                  "tf_df_imported": "tensorflow_decision_forests" in sys.modules}))
"""


@pytest.fixture(scope="module")
def tree_distilled(taxi_transform, tmp_path_factory):
  """The taxi tree teacher (TF-DF), distilled; then, in a fresh process that
  never imports TF-DF, the teacher loaded without teacher_imports and the
  student served."""
  import base64  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from conftest import fn_args_for  # pylint: disable=g-import-not-at-top
  from distill_pipelines.taxi import tree_teacher  # pylint: disable=g-import-not-at-top
  uri = str(tmp_path_factory.mktemp("tree_teacher"))
  tree_teacher.run_fn(fn_args_for(taxi_transform, uri, tmp_path_factory))
  out = str(tmp_path_factory.mktemp("tree_distilled"))
  model = _run(taxi_transform, uri, out,
               teacher_imports=json.dumps(["tensorflow_decision_forests"]))
  rows = taxi_transform["rows"][TRAIN_ROWS:TRAIN_ROWS + 20]
  serialized = raw_examples(rows, taxi_transform["types"], drop=features.RAW_LABEL_KEYS)
  fresh = subprocess.run(
      [sys.executable, "-c", _FRESH_PROCESS, path_utils.serving_model_dir(uri),
       path_utils.serving_model_dir(model.uri), taxi_transform["transform_dir"],
       features.LABEL_KEY],
      input=json.dumps([base64.b64encode(e).decode() for e in serialized]).encode(),
      capture_output=True, timeout=600, check=False,
      env=dict(os.environ, TF_USE_LEGACY_KERAS="1"))
  assert fresh.returncode == 0, fresh.stderr.decode(errors="replace")[-3000:]
  return {"teacher": uri, "model": model, "serialized": serialized,
          "fresh": json.loads(fresh.stdout.decode().strip().splitlines()[-1])}


def test_a_tree_teacher_is_distilled_into_a_student_that_serves_without_tf_df(
    tree_distilled):
  fresh = tree_distilled["fresh"]
  assert not fresh["tf_df_imported"]
  served = np.array(fresh["served"])
  assert served.shape == (20, 1) and np.all((served > 0) & (served < 1))
  # The student learned from the trees (60 steps on a small fixture).
  props = tree_distilled["model"].mlmd_artifact.custom_properties
  assert props["eval_agreement"].double_value > 0.6
  # Trees have no weights to count: no parameter count, no ratio of them.
  assert "teacher_params" not in props and "compression_ratio" not in props
  assert props["student_params"].int_value > 0


def test_a_tree_teacher_without_its_imports_names_the_op_and_the_setting(tree_distilled):
  refused = tree_distilled["fresh"]["refused"]
  assert refused is not None
  assert "uses the TensorFlow op 'SimpleML" in refused
  assert "teacher_imports" in refused and "tensorflow_decision_forests" in refused
  assert "--teacher-imports" in refused


_BEAM_WORKER = """
import sys
from apache_beam.internal import pickler
construct = pickler.loads(open(sys.argv[1], "rb").read())
before = "custom_ops_marker" in sys.modules
model = construct()
print(before, "custom_ops_marker" in sys.modules, type(model).__name__)
"""


def test_the_evaluators_model_loader_imports_the_teachers_ops_in_a_beam_worker(
    tree_distilled, tmp_path):
  """What a multi-process or Dataflow worker of the Evaluator gets: TFMA's model
  loader, pickled by Beam; unpickled in a fresh process, it imports the named
  modules before it loads the model. (TFMA itself imports TF-DF when it is
  installed; a module of the user's, here custom_ops_marker, it does not.)"""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from apache_beam.internal import pickler  # pylint: disable=g-import-not-at-top
  from distill_components.gates import evaluator  # pylint: disable=g-import-not-at-top
  config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(name="teacher", label_key="tips")])
  evaluator._model_imports[:] = ["custom_ops_marker"]  # as Executor.Do sets it
  try:
    shared = evaluator.custom_eval_shared_model(
        eval_saved_model_path=path_utils.serving_model_dir(tree_distilled["teacher"]),
        model_name="teacher", eval_config=config)
  finally:
    evaluator._model_imports[:] = []
  pickled = tmp_path / "construct_fn.pickle"
  pickled.write_bytes(pickler.dumps(shared.model_loader.construct_fn))
  worker = subprocess.run([sys.executable, "-c", _BEAM_WORKER, str(pickled)],
                          capture_output=True, timeout=600, check=False,
                          env=dict(os.environ, TF_USE_LEGACY_KERAS="1",
                                   PYTHONPATH=TESTDATA))
  assert worker.returncode == 0, worker.stderr.decode(errors="replace")[-3000:]
  before, after, _ = worker.stdout.decode().strip().splitlines()[-1].split()
  assert (before, after) == ("False", "True")
  # Without model_imports, TFMA's loader is left as it is.
  plain = evaluator.custom_eval_shared_model(
      eval_saved_model_path=path_utils.serving_model_dir(tree_distilled["teacher"]),
      model_name="teacher", eval_config=config)
  assert not isinstance(plain.model_loader.construct_fn, evaluator.custom_ops.Importing)


@pytest.fixture(scope="module")
def tree_folds(taxi_transform, tmp_path_factory):
  """The taxi tree teacher with 3 out-of-fold models, and its student."""
  from conftest import fn_args_for  # pylint: disable=g-import-not-at-top
  from distill_pipelines.taxi import tree_teacher  # pylint: disable=g-import-not-at-top
  uri = str(tmp_path_factory.mktemp("tree_folds_teacher"))
  tree_teacher.run_fn(fn_args_for(taxi_transform, uri, tmp_path_factory,
                                  custom_config={"teacher_folds": 3}))
  model = _run(taxi_transform, uri, str(tmp_path_factory.mktemp("tree_folds")),
               teacher_imports=json.dumps(["tensorflow_decision_forests"]),
               teacher_folds=3)
  return {"teacher": uri, "model": model}


def _train_split(taxi_transform):
  """Every transformed train example, one batch: (features, labels)."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  spec = tft.TFTransformOutput(taxi_transform["transform_dir"]).transformed_feature_spec()
  records = tf.data.TFRecordDataset(
      os.path.join(taxi_transform["examples_dir"], "Split-train", "data.tfrecord.gz"),
      compression_type="GZIP").batch(100_000)
  label = features.LABEL_KEY
  parsed = tf.io.parse_example(next(iter(records)), spec)
  return parsed, parsed.pop(label)


def test_each_train_row_is_labelled_by_the_fold_model_not_fit_on_it(
    tree_folds, taxi_transform):
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import folds  # pylint: disable=g-import-not-at-top
  uri = tree_folds["teacher"]
  manifest = folds.read_manifest(uri)
  assert manifest["folds"] == 3 and features.LABEL_KEY not in manifest["features"]
  x, labels = _train_split(taxi_transform)
  assert sorted(x) == manifest["features"]
  imports = ["tensorflow_decision_forests"]
  spec = export.model_input_spec(
      tft.TFTransformOutput(taxi_transform["transform_dir"]), features.LABEL_KEY)
  out_of_fold = teacher_lib.OutOfFold(uri, manifest, spec, task=Task.BINARY, imports=imports)
  oof = out_of_fold.logits(x).numpy()
  ids = folds.fold_ids(x, 3, manifest["features"]).numpy()
  for fold in range(3):
    rows = ids == fold
    assert 0.25 < rows.mean() < 0.42
    fold_model = teacher_lib.Teacher(folds.model_dir(uri, fold), spec, task=Task.BINARY,
                                     imports=imports)
    np.testing.assert_allclose(oof[rows], fold_model.logits(x).numpy()[rows], atol=1e-5)
  # A synthetic row is labelled by its base row's fold: here the rows
  # reversed, each labelled by the model that did not see its mirror row.
  mirrored = {k: tf.reverse(v, [0]) for k, v in x.items()}
  by_base = out_of_fold.logits(x, fold_rows=mirrored).numpy()
  for fold in range(3):
    rows = ids[::-1] == fold
    fold_model = teacher_lib.Teacher(folds.model_dir(uri, fold), spec, task=Task.BINARY,
                                     imports=imports)
    np.testing.assert_allclose(by_base[rows], fold_model.logits(x).numpy()[rows],
                               atol=1e-5)
  # Out of fold, the trees are less sure of the train labels than the trees
  # fit on every row are: what the student no longer learns.
  full = teacher_lib.Teacher(path_utils.serving_model_dir(uri), spec, task=Task.BINARY,
                             imports=imports).logits(x).numpy()
  def auc(z):
    metric = tf.keras.metrics.AUC(num_thresholds=2000, from_logits=True)
    metric.update_state(labels, z)
    return float(metric.result())
  assert auc(oof) < auc(full) - 0.005, (auc(oof), auc(full))


def test_the_student_records_that_its_soft_labels_were_out_of_fold(tree_folds):
  props = tree_folds["model"].mlmd_artifact.custom_properties
  assert props["teacher_folds"].int_value == 3
  assert "out of fold (3 models)" in props["teacher_source"].string_value
  assert props["eval_agreement"].double_value > 0.6  # eval: against the full trees
  assert os.path.isdir(path_utils.serving_model_dir(tree_folds["model"].uri))


def test_folds_asked_for_but_not_written_fail_before_training(
    taxi_transform, tree_distilled, tmp_path):
  with pytest.raises(teacher_lib.TeacherContractError,
                     match=r"teacher_folds=3, but the teacher at .* has no "
                     r"out-of-fold models \(OutOfFold/folds.json\)"):
    _run(taxi_transform, tree_distilled["teacher"], str(tmp_path),
         teacher_imports=json.dumps(["tensorflow_decision_forests"]), teacher_folds=3)
  assert not os.path.exists(tmp_path / "model" / "Format-Serving")
