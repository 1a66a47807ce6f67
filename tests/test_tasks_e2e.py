"""End to end on data other than the taxi label: three tasks, your own modules.

Each dataset runs the whole pipeline once (tiny step counts) and every test
reads that run back:
- taxi `payment_type` as a multi-class label, zero code, by the command line;
- taxi `fare` as a regression label, zero code, through `create_pipeline`;
- a generated table with string and numeric features, missing cells and a
  string label, zero code, by the command line, with a transfer set (rows
  of the same table without the label, and synthetic rows).

No run loosens a gate: each runs at the default bounds (README, "Gates and
retraining") and its outcome is asserted exactly, the exit status the README
gives for it and blessed or not. The runs are seeded (`--seed`, default 0) but
not bit for bit the same (the taxi runs' metrics move a little from run to
run), so the inputs are chosen to put each gate metric clear of its bound by
far more than that (the margins measured are at each fixture), and each test
asserts the margin too: an outcome that came close to flipping fails there.

TFX's own example modules as teachers: tests/test_tfx_examples_e2e.py.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

import datasets
from conftest import column_types, raw_examples, read_taxi_rows
from distill_components.distiller import choice
from distill_pipelines import exits
from distill_pipelines import local
from distill_pipelines import names
from distill_pipelines import pipeline
from distill_pipelines import report
from distill_pipelines.report import html as report_html
from distill_pipelines.report import page as report_page
from distill_pipelines.settings import Gate, NoRegressionGate, Settings
from distill_pipelines.taxi import config as taxi
from runs import artifact, fidelity_validation, run_cli, summary

# A whole pipeline runs here: the slow tier (`make test-fast` leaves it out).
pytestmark = pytest.mark.pipeline

UNLABELED_ROWS = 2000
STEPS = ["--train-steps", "150", "--distill-steps", "300", "--eval-steps", "20",
         "--batch-size", "64"]
MULTICLASS_DISTILL_STEPS = 600  # the last --distill-steps wins: see taxi_multiclass


def _auto_teacher_kept_the_best(summary_):
  """Zero code: the auto teacher fitted its three candidates, kept the best
  on the validation cut, and the summary and MLMD say which."""
  candidates = summary_.teacher_candidates
  assert set(candidates) == {"gbt", "mlp", "ensemble"}, candidates
  metric = choice.metric_named(summary_.task, summary_.choice_metric)
  best = max(candidates, key=lambda name: candidates[name][metric.name]
             * (1 if metric.higher_is_better else -1))
  assert candidates[summary_.teacher_chosen][metric.name] == candidates[best][metric.name]
  # Only the trees have no weights to count.
  assert (summary_.teacher.params is None) == (summary_.teacher_chosen == "gbt")


@pytest.fixture(scope="module")
def taxi_multiclass(tmp_path_factory):
  """At the default gate bounds (no gate flag): pushed, exit 0.

  The fidelity gate allows the student's accuracy 0.01 below the teacher's.
  With STEPS' 300 distill steps the student came 0.00987, then 0.01007, below
  (49 or 50 of 4,966 eval rows: blessed or not by one row); with 600 it is
  0.0034-0.0036 below (teacher 0.9762, student 0.9726-0.9728: 32-33 rows
  clear of the bound) in about the same time.
  """
  root = str(tmp_path_factory.mktemp("runs") / "multiclass")
  result = run_cli("--data-root", taxi.embedded_data_root(), "--label", "payment_type",
                   "--pipeline-root", root, "--pipeline-name", "multiclass",
                   *STEPS, "--distill-steps", str(MULTICLASS_DISTILL_STEPS))
  return root, result, summary(root, "multiclass")


@pytest.fixture(scope="module")
def taxi_regression(tmp_path_factory):
  """`fare` through create_pipeline: the API a TFX team calls from its own runner.

  At the default gate bounds (no `gate`): the fidelity gate refuses the
  student, exit 4 (README, "Exit status"). Its MSE may be at most 10% above
  the teacher's; with 300 distill steps it was 30-80% above in six runs
  (teacher 7.32-10.08, student 13.06-14.21; the 30% on 2026-12-06, when the
  teacher came out at 10.08): a refusal by far, whose message the tests read.
  """
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  root = str(tmp_path_factory.mktemp("runs") / "regression")
  settings = Settings(
      pipeline_name="regression", pipeline_root=root,
      data_root=taxi.embedded_data_root(), label="fare", task="regression",
      train_steps=150, distill_steps=300, eval_steps=20, batch_size=64)
  definition = pipeline.create_pipeline(
      settings, tfx.orchestration.metadata.sqlite_metadata_connection_config(
          os.path.join(root, "metadata.sqlite")))
  # Seeded as `tfx-distill run` seeds its run (local.py): the teacher's MSE
  # was 8.53 in both runs of this whole file (unseeded: 9.36, 7.32, 8.52), but
  # 8.66 in a run of this fixture alone. The outcome holds by its margin.
  tf.keras.utils.set_random_seed(settings.seed)
  with local.argv_parsed():
    tfx.orchestration.LocalDagRunner().run(definition)
  return root, settings, summary(root, "regression")


@pytest.fixture(scope="module")
def mixed_table(tmp_path_factory):
  """At the default gate bounds (no gate flag): pushed, exit 0.

  Measured: the student's AUC 0.9535 is above the teacher's 0.9474 (0.01
  below allowed: 0.016 clear); the no-regression gate's first-run bound, the
  calibration within 1 +- 0.1, holds at 1.030.
  """
  data = str(tmp_path_factory.mktemp("mixed_data"))
  datasets.mixed(data)
  unlabeled = str(tmp_path_factory.mktemp("mixed_unlabeled"))
  datasets.mixed(unlabeled, rows=UNLABELED_ROWS, seed=1, with_label=False)
  root = str(tmp_path_factory.mktemp("runs") / "mixed")
  result = run_cli("--data-root", data, "--label", "outcome", "--pipeline-root", root,
                "--pipeline-name", "mixed", "--unlabeled-root", unlabeled,
                "--synthetic-ratio", "0.5", *STEPS)
  return data, root, result, summary(root, "mixed")


# --- multi-class ------------------------------------------------------------

def test_multiclass_zero_code_run_uses_multiclass_metrics(taxi_multiclass):
  root, (code, out, err), summary = taxi_multiclass
  # Default bounds, a first run: both gates pass, the student is pushed.
  assert code == exits.OK, out + err[-3000:]
  assert exits.status(summary) == exits.OK
  assert "Task:     multiclass (inferred: 'payment_type' holds" in out
  assert summary.task.value == "multiclass"
  for side in (summary.teacher, summary.student):
    assert "sparse_categorical_accuracy" in side.metrics
    assert not {"auc", "binary_accuracy", "binary_crossentropy"} & set(side.metrics)
  # Most trips are cash or card: both models beat always answering one class.
  assert summary.teacher.metrics["sparse_categorical_accuracy"] > 0.6
  assert summary.student.metrics["sparse_categorical_accuracy"] > 0.6
  assert "accuracy" in out and "top-2 accuracy" in out and "AUC" not in out
  # The fidelity gate's 0.01 of accuracy, with room to spare (measured
  # 0.0034-0.0036 below the teacher): a student within a few rows of the bound
  # would make this outcome a coin toss, so that fails here, not at random.
  drop = (summary.teacher.metrics["sparse_categorical_accuracy"]
          - summary.student.metrics["sparse_categorical_accuracy"])
  assert drop < 0.01 - 0.003, drop
  assert summary.blessed is True and summary.pushed_to
  assert "blessed: yes" in out
  fidelity, no_regression = summary.gates
  assert fidelity.verdict == "passed" and fidelity_validation(root).validation_ok
  assert no_regression.verdict == "passed" and no_regression.no_baseline


def test_multiclass_student_serves_one_probability_per_class(taxi_multiclass):
  root, _, summary = taxi_multiclass
  student = artifact(root, names.DISTILLER, "model")
  model = tf.saved_model.load(os.path.join(student.uri, "Format-Serving"))
  rows = read_taxi_rows(16, start=300)
  serialized = raw_examples(rows, column_types(read_taxi_rows(2000)),
                            drop=("payment_type",))
  probs = model.signatures["serving_default"](
      examples=tf.constant(serialized))["probabilities"].numpy()
  classes = len({r["payment_type"] for r in read_taxi_rows(15002)})
  assert probs.shape == (16, classes)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
  _auto_teacher_kept_the_best(summary)
  assert summary.student.params > 0


def test_multiclass_report_has_a_confusion_matrix_and_tfma_figures(taxi_multiclass):
  from test_html_report import check_report  # pylint: disable=g-import-not-at-top
  root, _, summary = taxi_multiclass
  page = open(os.path.join(root, "report.html"), encoding="utf-8").read()
  check_report(page, report_page.evaluation_uri(os.path.join(root, "metadata.sqlite"),
                                                summary), summary)
  assert "<h2>Confusion matrix</h2>" in page and "<h2>Calibration</h2>" not in page


# --- regression -------------------------------------------------------------

def test_regression_through_create_pipeline(taxi_regression):
  root, settings, summary = taxi_regression
  assert {c.state for c in summary.components} == {"complete"}, summary.components
  assert {"Distiller", "FidelityEvaluator"} <= {c.node_id for c in summary.components}
  assert summary.task.value == "regression" and summary.agreement is None
  # The zero-code teacher: the best of the trees, the network and their mean
  # on the validation cut; where it holds trees, their part out of fold.
  assert settings.teacher_code.endswith("auto_teacher.run_fn") and settings.folds == 5
  _auto_teacher_kept_the_best(summary)
  if summary.teacher_chosen != "mlp":  # the trees, alone or in the mean
    props = artifact(root, names.DISTILLER, "model").custom_properties
    assert props["teacher_folds"].int_value == 5
    assert "out of fold (5 models)" in props["teacher_source"].string_value
    teacher_uri = artifact(root, names.TRAINER, "model").uri
    assert sorted(os.listdir(os.path.join(teacher_uri, "OutOfFold"))) == [
        *(f"fold-{i}" for i in range(5)), "folds.json"]
  fares = np.array([float(r["fare"]) for r in read_taxi_rows(15002) if r["fare"]])
  for side in (summary.teacher, summary.student):
    assert {"mean_squared_error", "root_mean_squared_error",
            "mean_absolute_error"} <= set(side.metrics)
    assert not {"auc", "sparse_categorical_accuracy"} & set(side.metrics)
    # Better than always predicting the mean fare.
    assert side.metrics["mean_squared_error"] < fares.var()
  rendered = report.render(summary)
  assert "MSE" in rendered and "MAE" in rendered and "AUC" not in rendered
  # Default bounds: the fidelity gate refuses the student (exit 4), by far
  # (measured 30-80% above the teacher's MSE, 10% allowed), and says why in the
  # task's terms; the no-regression gate does not run, nothing is pushed.
  assert settings.gate == Gate() and settings.no_regression == NoRegressionGate()
  assert exits.status(summary) == exits.FIDELITY
  mse = {side: getattr(summary, side).metrics["mean_squared_error"]
         for side in ("teacher", "student")}
  assert mse["student"] > 1.2 * mse["teacher"], mse
  assert summary.blessed is False and summary.pushed_to is None
  fidelity, no_regression = summary.gates
  assert fidelity.verdict == "failed" and not fidelity_validation(root).validation_ok
  assert no_regression.verdict == "not run"
  assert [f.split(": ", 1)[1].split(": ")[0] for f in summary.gate_failures] == [
      "mean_squared_error (overall)"], summary.gate_failures
  assert "allowed 10% of the teacher's" in summary.gate_failures[0]
  assert "pushed:  nothing (stopped by the fidelity (student vs teacher) gate)" in rendered


def test_regression_report_shows_tfma_errors(taxi_regression, tmp_path):
  """A run through create_pipeline gets its page from report.html.write."""
  from test_html_report import check_report  # pylint: disable=g-import-not-at-top
  root, _, summary = taxi_regression
  sqlite_path = os.path.join(root, "metadata.sqlite")
  out = report_html.write(sqlite_path, "regression", str(tmp_path / "report.html"))
  page = open(out, encoding="utf-8").read()
  check_report(page, report_page.evaluation_uri(sqlite_path, summary), summary)
  assert "<h2>Predictions vs labels</h2>" in page
  plot = page.split('id="plot"')[1].split("</section>")[0]
  assert 'src="data:image/png;base64,' in plot  # TFMA has none: called here
  assert "mean residual" in plot and f"{report_page.RESIDUAL_EXAMPLES:,}" in plot


def test_regression_student_predicts_fares(taxi_regression):
  root, _, _ = taxi_regression
  student = artifact(root, names.DISTILLER, "model")
  model = tf.saved_model.load(os.path.join(student.uri, "Format-Serving"))
  rows = read_taxi_rows(64, start=500)
  serialized = raw_examples(rows, column_types(read_taxi_rows(2000)), drop=("fare",))
  predictions = model.signatures["serving_default"](
      examples=tf.constant(serialized))["predictions"].numpy()
  assert predictions.shape == (64, 1)
  fares = np.array([float(r["fare"]) for r in rows])
  assert np.corrcoef(predictions.ravel(), fares)[0, 1] > 0.5


# --- your own table: strings, numbers, missing cells --------------------------

def test_mixed_table_zero_code(mixed_table):
  _, root, (code, out, err), summary = mixed_table
  assert code == exits.OK, out + err[-3000:]
  assert exits.status(summary) == exits.OK
  assert "Task:     binary (inferred: 'outcome' holds 2 text values" in out
  assert summary.teacher.metrics["auc"] > 0.75
  assert summary.student.metrics["auc"] > 0.75
  # Clear of the fidelity gate's 0.01 of AUC and of the calibration band.
  assert summary.student.metrics["auc"] > summary.teacher.metrics["auc"] - 0.01 + 0.005
  assert abs(summary.student.metrics["calibration"] - 1) < 0.1 - 0.03
  assert summary.blessed is True and summary.pushed_to
  fidelity, no_regression = summary.gates
  assert fidelity.verdict == "passed" and fidelity_validation(root).validation_ok
  assert no_regression.verdict == "passed" and no_regression.no_baseline
  _auto_teacher_kept_the_best(summary)
  assert summary.student.params > 0


def test_mixed_table_student_learnt_from_the_transfer_set(mixed_table):
  _, root, _, _ = mixed_table
  unlabeled = artifact(root, names.UNLABELED_EXAMPLE_GEN, "examples")
  assert unlabeled.properties["split_names"].string_value == '["unlabeled"]'
  props = artifact(root, names.DISTILLER, "model").custom_properties
  labelled = props["labelled_examples"].int_value
  assert 700 < labelled < 900  # ~2/3 of the 1,200 rows: the train split
  assert props["unlabeled_examples"].int_value == UNLABELED_ROWS
  assert props["synthetic_examples"].int_value == round(0.5 * labelled)


def test_mixed_table_student_serves_rows_with_missing_cells(mixed_table):
  data, _, _, summary = mixed_table
  model = tf.saved_model.load(summary.pushed_to)
  features = {"plan": b"pro", "region": b"east", "tenure_months": 3.0,
              "monthly_spend": 80.0, "tickets": 4}
  examples = []
  for drop in (None, "region", "tenure_months"):
    feature = {}
    for key, value in features.items():
      if key == drop:
        continue
      if isinstance(value, bytes):
        feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
      elif isinstance(value, int):
        feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
      else:
        feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    examples.append(tf.train.Example(
        features=tf.train.Features(feature=feature)).SerializeToString())
  probs = model.signatures["serving_default"](
      examples=tf.constant(examples))["probabilities"].numpy()
  assert probs.shape == (3, 1) and np.all(np.isfinite(probs))
  assert os.path.isfile(os.path.join(data, "customers.csv"))
