"""TFX's own example modules, unchanged, as the teacher: gated at the default bounds.

"Any Keras teacher a TFX Trainer saved, unchanged" is what lets a TFX team
adopt the Distiller without touching its Trainer. Each module that ships in
`tfx/examples` and runs on data the package or this repo has is run here as
a user runs it (`tfx-distill run`, default gate bounds) and must end with the
exact exit status the README promises:

- `chicago_taxi_pipeline/taxi_utils_native_keras.py` as the Transform and
  Trainer module, on the taxi CSV that ships in tfx (its model: a dict of
  float32 and int32 inputs, a Sigmoid then a Reshape);
- `penguin/penguin_utils_keras.py` as the Transform and Trainer module, on
  generated penguins (the module's data does not ship); then the teacher it
  trained imported as an existing model, alone and with a second teacher;
- `penguin/penguin_utils_tfdf_experimental.py`, a TF-DF tree ensemble, as
  the teacher.
"""
import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

import datasets
from conftest import column_types, raw_examples, read_taxi_rows
from distill_pipelines import exits
from distill_pipelines import names
from distill_pipelines import report
from runs import artifact, fidelity_validation, run_cli, summary

pytestmark = pytest.mark.pipeline

EXAMPLES = os.path.join(os.path.dirname(tf.__file__), "..", "tfx", "examples")
TAXI_MODULE = os.path.abspath(os.path.join(
    EXAMPLES, "chicago_taxi_pipeline", "taxi_utils_native_keras.py"))
PENGUIN_MODULE = os.path.abspath(os.path.join(EXAMPLES, "penguin", "penguin_utils_keras.py"))
PENGUIN_TFDF_MODULE = os.path.abspath(os.path.join(
    EXAMPLES, "penguin", "penguin_utils_tfdf_experimental.py"))
PENGUIN_ROWS = 1500
# The default fidelity bound for binary AUC and multi-class accuracy.
DEFAULT_MAX_DROP = 0.01


@pytest.fixture(scope="module")
def taxi(tmp_path_factory):
  """TFX's taxi module as a new user runs it: no --teacher-outputs, no
  loosened gate, 300 steps each for the teacher and the student."""
  root = str(tmp_path_factory.mktemp("runs") / "taxi_native_keras")
  result = run_cli("--preprocessing-module", TAXI_MODULE, "--teacher-module", TAXI_MODULE,
                   "--label", "tips", "--label-key", "tips_xf", "--task", "binary",
                   "--train-steps", "300", "--distill-steps", "300",
                   "--pipeline-root", root, "--pipeline-name", "taxi_native_keras")
  return root, result, summary(root, "taxi_native_keras")


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
  data = str(tmp_path_factory.mktemp("penguin_data"))
  # Enough rows that one eval example (about 1/500) is well inside the default
  # bound of 0.01 accuracy.
  datasets.penguins(data, rows=PENGUIN_ROWS)
  root = str(tmp_path_factory.mktemp("runs") / "penguins")
  flags = ["--data-root", data, "--label", "species", "--label-key", "species_xf",
           "--task", "multiclass", "--num-classes", "3", "--preprocessing-module",
           PENGUIN_MODULE, "--pipeline-root", root, "--pipeline-name", "penguins",
           "--eval-steps", "5"]

  def elsewhere(name):
    """The same flags in a root (and pipeline) of its own."""
    other = str(tmp_path_factory.mktemp("runs") / name)
    return other, [other if f == root else name if f == "penguins" else f for f in flags]

  trained = run_cli(*flags, "--teacher-module", PENGUIN_MODULE, "--train-steps", "200")
  trained_summary = summary(root, "penguins")
  teacher = artifact(root, names.TRAINER, "model").uri
  # The same teacher as an existing model: the bare SavedModel directory.
  bare = os.path.join(str(tmp_path_factory.mktemp("existing")), "penguin_teacher")
  shutil.copytree(os.path.join(teacher, "Format-Serving"), bare)
  imported = run_cli(*flags, "--teacher-model", bare)
  imported_summary = summary(root, "penguins")
  # Two existing teachers, averaged: the bare copy and the Trainer's artifact.
  pair_root, pair_flags = elsewhere("penguin_pair")
  pair = run_cli(*pair_flags, "--teacher-model", bare, "--teacher-model", teacher)
  # TFX's own TF-DF module, unchanged, as the teacher.
  trees_root, tree_flags = elsewhere("penguin_trees")
  trees = run_cli(*tree_flags, "--teacher-module", PENGUIN_TFDF_MODULE,
                  "--teacher-imports", "tensorflow_decision_forests",
                  "--teacher-outputs", "probabilities")
  return {"root": root, "trained": trained, "trained_summary": trained_summary,
          "imported": imported, "imported_summary": imported_summary,
          "bare": bare, "trees": trees, "trees_root": trees_root,
          "pair": pair, "pair_root": pair_root, "teacher": teacher,
          "pair_summary": summary(pair_root, "penguin_pair"),
          "trees_summary": summary(trees_root, "penguin_trees")}


def _blessed_and_pushed(result, run_summary):
  code, out, err = result
  assert code == 0, out + err[-3000:]
  assert run_summary.blessed is True and "blessed: yes" in out
  assert run_summary.pushed_to and tf.saved_model.contains_saved_model(
      run_summary.pushed_to)
  assert {g.verdict for g in run_summary.gates} == {"passed"}


# --- TFX's taxi module: preprocessing and teacher ------------------------------

def test_taxi_module_is_distilled_blessed_and_pushed(taxi):
  root, result, run_summary = taxi
  _blessed_and_pushed(result, run_summary)
  states = {c.node_id: c.state for c in run_summary.components}
  assert states["Trainer"] == states["Distiller"] == "complete"
  assert fidelity_validation(root).validation_ok
  teacher, student = run_summary.teacher.metrics, run_summary.student.metrics
  # Within the default fidelity bound of the teacher, on the gate's metric
  # (AUC) and on accuracy.
  assert student["auc"] >= teacher["auc"] - DEFAULT_MAX_DROP
  assert student["binary_accuracy"] >= teacher["binary_accuracy"] - DEFAULT_MAX_DROP
  # The module's teacher learnt something (0.5 is chance), and the student
  # with it.
  assert teacher["auc"] > 0.8 and student["auc"] > 0.8


def test_taxi_module_teacher_is_read_as_probabilities(taxi):
  root, _, _ = taxi
  props = artifact(root, names.DISTILLER, "model").custom_properties
  # The module's head: Dense(1, 'sigmoid') then Reshape((1,)). (Keras numbers
  # layer names per process: dense_4 in a fresh one.)
  assert re.fullmatch(r"Keras model \(layer 'dense(_\d+)?' ends in Sigmoid, activation "
                      r"sigmoid -> probabilities\)", props["teacher_source"].string_value)


def test_taxi_module_student_serves_raw_examples_like_the_teacher(taxi):
  """The module's teacher at 300 steps is weaker than the student trained
  alone (measured: AUC 0.88 against 0.94 on eval, 0.87 against 0.95 on the
  validation cut): the run pushes the student alone and says so. It still
  answers the teacher's raw requests, one probability per example."""
  root, (_, out, _), run_summary = taxi
  assert run_summary.student_chosen == "alone"
  assert "the teacher did not help on this data: pushing the student trained alone" in out
  teacher = tf.saved_model.load(os.path.join(
      artifact(root, names.TRAINER, "model").uri, "Format-Serving"))
  student = tf.saved_model.load(run_summary.pushed_to)
  rows = read_taxi_rows(256, start=700)
  serialized = tf.constant(raw_examples(rows, column_types(read_taxi_rows(2000)),
                                        drop=("tips",)))
  want = teacher.signatures["serving_default"](examples=serialized)["outputs"].numpy()
  got = student.signatures["serving_default"](examples=serialized)["probabilities"].numpy()
  assert got.shape == want.shape == (256, 1)
  # The same raw requests in, the same kind of answer out; the pushed
  # student right more often than the teacher on these rows.
  tips = np.array([[bool(r["fare"]) and float(r["tips"] or 0) > 0.2 * float(r["fare"])]
                   for r in rows])  # the module's label: a tip above 20% of the fare
  assert np.mean((got > 0.5) == tips) > np.mean((want > 0.5) == tips)


# --- TFX's penguin modules -------------------------------------------------------

def test_penguin_module_is_distilled_blessed_and_pushed(penguins):
  run_summary = penguins["trained_summary"]
  _blessed_and_pushed(penguins["trained"], run_summary)
  states = {c.node_id: c.state for c in run_summary.components}
  assert states["Trainer"] == states["Distiller"] == "complete"
  teacher = run_summary.teacher.metrics["sparse_categorical_accuracy"]
  student = run_summary.student.metrics["sparse_categorical_accuracy"]
  assert student >= teacher - DEFAULT_MAX_DROP and student > 0.9
  # The first run's student: its teacher trained on this run's Transform, read
  # as a Keras model ending in a linear layer.
  # (The newest run in this root is the imported one: read the first's.)
  store = report.open_store(os.path.join(penguins["root"], "metadata.sqlite"))
  students = sorted((a for a in store.get_artifacts_by_type("Model")
                     if "/Distiller/" in a.uri), key=lambda a: a.id)
  assert students[0].custom_properties["teacher_source"].string_value.startswith(
      "Keras model (layer 'dense_")
  assert "-> logits" in students[0].custom_properties["teacher_source"].string_value


def test_existing_teacher_is_imported_not_trained(penguins):
  run_summary = penguins["imported_summary"]
  # The second run in this root: gated against the first run's pushed student
  # too, which it must not be worse than.
  _blessed_and_pushed(penguins["imported"], run_summary)
  states = {c.node_id: c.state for c in run_summary.components}
  assert "Trainer" not in states and states["TeacherImporter"] in ("complete", "cached")
  assert states["Distiller"] == "complete"
  importer = artifact(penguins["root"], names.TEACHER_IMPORTER, "result")
  assert os.path.realpath(os.path.join(importer.uri, "Format-Serving")) == penguins["bare"]
  assert importer.state == metadata_store_pb2.Artifact.LIVE
  # It reads raw examples through the serving_default the module wrote.
  assert artifact(penguins["root"], names.DISTILLER, "model").custom_properties[
      "teacher_source"].string_value == (
          "its serving_default on raw examples ('outputs', logits), not this run's "
          "Transform")
  assert len(os.listdir(os.path.dirname(run_summary.pushed_to))) == 2


def test_two_existing_teachers_are_imported_and_averaged(penguins):
  run_summary = penguins["pair_summary"]
  _blessed_and_pushed(penguins["pair"], run_summary)
  states = {c.node_id: c.state for c in run_summary.components}
  assert states["TeacherImporter"] == states["TeacherImporter_2"] == "complete"
  student = artifact(penguins["pair_root"], names.DISTILLER, "model").custom_properties
  assert student["teachers"].int_value == 2
  uris = json.loads(student["teacher_uris"].string_value)
  assert os.path.realpath(os.path.join(uris[0], "Format-Serving")) == penguins["bare"]
  assert uris[1] == penguins["teacher"]
  assert student["teacher_source"].string_value.startswith("the mean of 2 teachers")


def test_tfx_tf_df_module_teaches_a_keras_student(penguins):
  run_summary = penguins["trees_summary"]
  _blessed_and_pushed(penguins["trees"], run_summary)
  states = {c.node_id: c.state for c in run_summary.components}
  assert states["Trainer"] == states["Distiller"] == "complete"
  student = artifact(penguins["trees_root"], names.DISTILLER, "model")
  # TF-DF's softmax is not visible in its graph: --teacher-outputs says it.
  assert student.custom_properties["teacher_source"].string_value.endswith(
      "teacher_outputs='probabilities')")
  assert "teacher_params" not in student.custom_properties  # trees: no weights
  teacher = run_summary.teacher.metrics["sparse_categorical_accuracy"]
  assert run_summary.student.metrics["sparse_categorical_accuracy"] >= (
      teacher - DEFAULT_MAX_DROP)
  # The pushed student serves without TF-DF's ops: a plain Keras network.
  ops = {node.op for f in tf.saved_model.load(run_summary.pushed_to).signatures[
      "serving_default"].graph.as_graph_def().library.function for node in f.node_def}
  assert not any(op.startswith("SimpleML") for op in ops)


def test_exit_status_is_the_summary_s(taxi, penguins):
  """The exit status the README promises is the one the summary implies."""
  assert taxi[1][0] == exits.status(taxi[2]) == 0
  for run in ("trained", "imported", "trees"):
    assert penguins[run][0] == exits.status(penguins[f"{run}_summary"]) == 0
