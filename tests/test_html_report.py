"""report.html (`distill_pipelines.report.html`): every section, TFMA's figures.

Fast: no pipeline runs here.

- `check_report(html_text, fidelity_evaluation, summary)` is what a page must
  satisfy against its run: every section, the verdict, each gate, and every
  figure of teacher and student equal to `tfma.load_eval_result`'s. The
  end-to-end tests call it on the page of a real run.
- A page from a bare `RunSummary` (no MLMD, no TFMA result) has every
  section, with placeholders.
- A page from a pipeline root: the one named by the environment variable
  TFX_DISTILL_REPORT_ROOT (its metadata.sqlite holds one pipeline, or set
  TFX_DISTILL_REPORT_NAME), or else a small root built here the way TFX and
  TFMA write one (MLMD through TFX's helpers, TFMA's protos, TensorBoard
  events, a tiny SavedModel): a run the fidelity gate stopped on one slice.
"""
import html
import math
import os
import re
from typing import Dict, Optional, Tuple

import pytest

from distill_components.distiller.tasks import Task
from distill_pipelines import names
from distill_pipelines import report
from distill_pipelines.report import evaluation
from distill_pipelines.report import figures
from distill_pipelines.report import html as report_html
from distill_pipelines.report import page as report_page

_CELL = re.compile(r'<td class="[^"]*" data-model="([^"]*)" data-slice="([^"]*)" '
                   r'data-metric="([^"]*)" data-value="([^"]*)">([^<]*)</td>')
_SECTION_IDS = ("verdict", "metrics", "worth", "plot", "curves", "size", "gates",
                "components")


def page_cells(html_text: str) -> Dict[Tuple[str, str, str], Tuple[float, str]]:
  """(model, slice, metric) -> (exact value, text shown) of the page's figures."""
  cells = {}
  for model, where, metric, value, shown in _CELL.findall(html_text):
    cells[(html.unescape(model), html.unescape(where), html.unescape(metric))] = (
        float(value), shown)
  return cells


def _same(a: float, b: float) -> bool:
  return (math.isnan(a) and math.isnan(b)) or a == b


def check_report(html_text: str, fidelity_evaluation: Optional[str],
                 summary: report.RunSummary) -> None:
  """Asserts the page of `summary`'s run is complete and shows TFMA's figures.

  `fidelity_evaluation`: the directory of the run's FidelityEvaluator
  `evaluation` artifact (`report_page.evaluation_uri(sqlite_path, summary)`);
  None for a run that stopped before it (the page must say so).
  """
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  # Self-contained: no script, nothing fetched.
  assert "<script" not in html_text
  assert not re.search(r'(src|href)="(?!data:image/png;base64,)', html_text)
  for section in _SECTION_IDS:
    assert f'id="{section}"' in html_text, section
  for title in (report_html.SECTIONS["metrics"], report_html.SECTIONS["curves"],
                report_html.SECTIONS["size"], report_html.SECTIONS["gates"],
                report_html.SECTIONS["plot"][summary.task]):
    assert f"<h2>{html.escape(title)}</h2>" in html_text, title
  # The verdict.
  assert html.escape(summary.run_id) in html_text
  if summary.pushed_to:
    assert html.escape(f"pushed to {summary.pushed_to}") in html_text
  elif summary.stopped_by:
    assert html.escape(summary.stopped_by) in html_text
  for gate in summary.gates:
    assert html.escape(gate.title) in html_text
    assert f">{gate.verdict}</span>" in html_text, gate.verdict
    for line in gate.failures:
      assert html.escape(line) in html_text, line
  # Size: the Distiller's record.
  for side in (summary.teacher, summary.student):
    if side.params is not None:
      assert f"{side.params:,}" in html_text
  section = lambda key: html_text.split(f'id="{key}"')[1].split("</section>")[0]
  # Both students' figures, as the Distiller recorded them.
  cells = page_cells(section("worth"))
  for part, by_student in summary.students.items():
    for student, values in by_student.items():
      for metric, value in values.items():
        assert _same(cells[(student, part, metric)][0], value), (student, part, metric)
  for line in report.choice_lines(summary):
    if not line.startswith(" "):
      assert html.escape(line) in section("worth"), line
  if fidelity_evaluation is None:
    assert report_html.NOT_AVAILABLE in section("metrics")
    assert report_html.NOT_AVAILABLE in section("plot")
    return
  # The task's plot is an image (regression: when TFMA computed one).
  plot = section("plot")
  if summary.task is not Task.REGRESSION:
    assert 'src="data:image/png;base64,' in plot
  # Every figure of teacher and student is TFMA's, on every slice.
  cells = page_cells(html_text)
  task_metrics = [m.name for m in summary.task.metrics]
  compared = 0
  for model in (names.TEACHER, names.STUDENT):  # the page's labels are TFMA's names
    result = tfma.load_eval_result(fidelity_evaluation, model_name=model)
    for slice_key, outputs in result.slicing_metrics:
      where = evaluation.slice_name(slice_key)
      for metric in task_metrics:
        value = outputs[""][""].get(metric, {}).get("doubleValue")
        if value is None:
          continue
        value = float(value)
        assert (model, where, metric) in cells, (model, where, metric)
        shown_value, shown = cells[(model, where, metric)]
        assert _same(shown_value, value), (model, where, metric, shown_value, value)
        assert shown == ("NaN" if math.isnan(value) else f"{value:.4f}")
        compared += 1
  assert compared >= 2 * len(task_metrics), compared
  # And no figure of theirs on the page that TFMA did not compute.
  for (label, where, metric), (value, _) in cells.items():
    if label in (names.TEACHER, names.STUDENT) and "/" not in metric:
      result = tfma.load_eval_result(fidelity_evaluation, model_name=label)
      found = [o[""][""][metric]["doubleValue"] for k, o in result.slicing_metrics
               if evaluation.slice_name(k) == where and metric in o[""][""]]
      assert found and _same(float(found[0]), value), (label, where, metric)


# --- a page from a bare summary ------------------------------------------------

def _summary(**changes) -> report.RunSummary:
  fidelity = report.GateResult(
      names.FIDELITY_EVALUATOR, names.GATES[names.FIDELITY_EVALUATOR],
      verdict="failed",
      failures=["auc (trip_start_day=2): the student is 0.0500 worse than the "
                "teacher; allowed 0.01"])
  no_regression = report.GateResult(
      names.NO_REGRESSION_EVALUATOR, names.GATES[names.NO_REGRESSION_EVALUATOR],
      verdict="not run")
  values = dict(
      pipeline_name="synthetic", run_id="2026-01-01T00:00:00", components=[],
      teacher=report.ModelSide({"auc": 0.91, "binary_accuracy": 0.85},
                               params=843_722, saved_model_bytes=11_108_840),
      student=report.ModelSide({"auc": 0.86, "binary_accuracy": 0.83},
                               params=5_459, saved_model_bytes=589_683),
      task=Task.BINARY, agreement=0.95, gates=[fidelity, no_regression])
  values.update(changes)
  return report.RunSummary(**values)


def _students(distilled: float, alone: float, chosen: str, **changes):
  figures = lambda d, a: {"distilled": {"auc": d, "binary_accuracy": 0.8},  # pylint: disable=g-long-lambda
                          "alone": {"auc": a, "binary_accuracy": 0.81}}
  return _summary(students={"validation": figures(distilled + 0.01, alone + 0.01),
                            "eval": figures(distilled, alone)},
                  student_chosen=chosen, choice_metric="auc", validation_examples=999,
                  **changes)


def test_the_summary_says_whether_the_teacher_helped():
  from distill_pipelines import exits  # pylint: disable=g-import-not-at-top
  helped = report.render(_students(0.9469, 0.9454, "distilled"))
  assert "distilled vs alone: AUC 0.9469 vs 0.9454 (+0.0015; eval split)" in helped
  assert ("chosen on the validation cut (999 train rows neither student trained on): "
          "distilled 0.9569, alone 0.9554 -> distilled") in helped
  assert "did not help" not in helped
  # A large eval split: the Distiller scored its first rows only, and says so.
  capped = report.render(_students(0.9469, 0.9454, "distilled", scored_eval_examples=50_000))
  assert "(+0.0015; eval split, first 50,000 rows)" in capped
  assert "(+0.0015; eval split)" in report.render(
      _students(0.9469, 0.9454, "distilled", scored_eval_examples=4_966))
  candidates = {"gbt": {"auc": 0.95}, "mlp": {"auc": 0.93}, "ensemble": {"auc": 0.94}}
  fidelity = report.GateResult(names.FIDELITY_EVALUATOR,
                               names.GATES[names.FIDELITY_EVALUATOR], verdict="passed")
  pushed = _students(0.80, 0.90, "alone", teacher_candidates=candidates,
                     teacher_chosen="gbt", gates=[fidelity], pushed_to="/serving/1")
  text = report.render(pushed)
  assert "the teacher did not help on this data: pushing the student trained alone" in text
  assert ("teacher: gbt, the best of the candidates on the validation cut (AUC: "
          "ensemble 0.9400, gbt 0.9500, mlp 0.9300)") in text
  assert exits.status(pushed) == 0
  held = _students(0.80, 0.90, "alone", gates=[fidelity], held_for_no_gain=True)
  text = report.render(held)
  assert "--require-gain stops the run before the Pusher" in text
  assert "pushed:  nothing (--require-gain: the teacher did not help)" in text
  assert exits.status(held) == exits.NO_GAIN == 8


def test_the_page_shows_both_students_and_the_teachers_candidates(tmp_path):
  candidates = {"gbt": {"auc": 0.95}, "mlp": {"auc": 0.93}, "ensemble": {"auc": 0.94}}
  summary = _students(0.80, 0.90, "alone", teacher_candidates=candidates,
                      teacher_chosen="gbt", held_for_no_gain=True, gates=[])
  out = report_html.write(str(tmp_path / "no.sqlite"), "synthetic",
                          str(tmp_path / "page" / "report.html"), summary)
  text = open(out, encoding="utf-8").read()
  worth = text.split('id="worth"')[1].split("</section>")[0]
  cells = page_cells(worth)
  assert cells[("alone", "eval", "auc")] == (0.9, "0.9000")
  assert cells[("distilled", "validation", "auc")][1] == "0.8100"
  assert cells[("gbt", "validation", "auc")] == (0.95, "0.9500")
  assert "gbt (kept)" in worth and "alone (went on)" in worth
  assert "Not pushed: --require-gain" in text
  # A run whose Distiller recorded no comparison says so.
  bare = report_html.render(report_page.Page(_summary()))
  assert "The student alone not available" in bare


def test_page_from_a_bare_summary_has_every_section_and_placeholders(tmp_path):
  summary = _summary()
  out = report_html.write(str(tmp_path / "no.sqlite"), "synthetic",
                          str(tmp_path / "page" / "report.html"), summary)
  text = open(out, encoding="utf-8").read()
  for section in _SECTION_IDS:
    assert f'id="{section}"' in text, section
  for title in ("Teacher vs student", "Calibration", "Student training curves",
                "Size and serving latency", "Gates", "Components"):
    assert f"<h2>{title}</h2>" in text, title
  assert report_html.NO_CURVES in text
  assert "not available" in text
  assert "Not pushed: stopped by the fidelity (student vs teacher) gate" in text
  assert html.escape(summary.gates[0].failures[0]) in text
  assert ">not run</span>" in text
  # The summary's overall figures, the Distiller's sizes and their ratios.
  assert "0.9100" in text and "0.8600" in text
  assert "843,722" in text and "5,459" in text and "154.6x fewer" in text
  assert "11.11" in text and "18.8x smaller" in text
  assert "<script" not in text and "http" not in text


def test_page_of_a_pushed_multiclass_run_names_where_it_went(tmp_path):
  summary = _summary(task=Task.MULTICLASS, gates=[], pushed_to="/srv/models/7",
                     teacher=report.ModelSide(), student=report.ModelSide())
  text = report_html.render(report_page.Page(summary))
  assert "Blessed by every gate and pushed to /srv/models/7" in text
  assert "<h2>Confusion matrix</h2>" in text
  assert "Metrics not available" in text
  assert "No gate ran in this run." in text


def test_regression_page_draws_residuals_of_both_models():
  summary = _summary(task=Task.REGRESSION, gates=[])
  page = report_page.Page(summary, plots={names.STUDENT: {}},
                          predictions={names.TEACHER: ([1.0, 2.0], [1.5, 2.0]),
                                       names.STUDENT: ([1.0, 2.0], [0.0, 2.0])})
  plot = report_html.render(page).split('id="plot"')[1].split("</section>")[0]
  assert "<h2>Predictions vs labels</h2>" in plot
  assert plot.count('src="data:image/png;base64,') == 1
  # mean residual and MAE per model, from the points above.
  assert "<td>teacher</td><td class='num'>2</td><td class='num'>+0.25</td>" in plot
  assert "<td>student</td><td class='num'>2</td><td class='num'>-0.5</td>" in plot


def test_calibration_bins_merge_tfma_buckets():
  # As load_eval_result gives them: zero fields left out, open end buckets.
  buckets = [
      {"lowerThresholdInclusive": "-Infinity", "numWeightedExamples": 0.0},
      {"upperThresholdExclusive": 0.05, "numWeightedExamples": 4.0,
       "totalWeightedLabel": 1.0, "totalWeightedRefinedPrediction": 0.1},
      {"lowerThresholdInclusive": 0.05, "upperThresholdExclusive": 0.1,
       "numWeightedExamples": 6.0, "totalWeightedLabel": 1.0,
       "totalWeightedRefinedPrediction": 0.5},
      {"lowerThresholdInclusive": 0.3, "upperThresholdExclusive": 0.35,
       "numWeightedExamples": 1.0, "totalWeightedRefinedPrediction": 0.3},
      {"lowerThresholdInclusive": 0.9, "upperThresholdExclusive": 1.0,
       "numWeightedExamples": 2.0, "totalWeightedLabel": 2.0,
       "totalWeightedRefinedPrediction": 1.9},
      {"lowerThresholdInclusive": 1.0, "upperThresholdExclusive": "Infinity"},
  ]
  bins = figures.calibration_bins(buckets, bins=10)
  assert [(n, round(p, 6), round(y, 6), r) for n, p, y, r in bins] == [
      (10.0, 0.06, 0.2, "0-0.1"), (1.0, 0.3, 0.0, "0.3-0.4"),
      (2.0, 0.95, 1.0, "0.9-1")]


def test_confusion_counts_read_tfma_entries():
  plot = {"multiClassConfusionMatrixAtThresholds": {"matrices": [{"entries": [
      {"numWeightedExamples": 5.0},  # actual 0, predicted 0: fields left out
      {"predictedClassId": 1, "numWeightedExamples": 2.0},
      {"actualClassId": 1, "predictedClassId": 1, "numWeightedExamples": 7.0},
      {"actualClassId": 2, "predictedClassId": -1, "numWeightedExamples": 1.0},
  ]}]}}
  classes, counts = figures.confusion_counts(plot)
  assert classes == [-1, 0, 1, 2]
  assert counts == [[0, 0, 0, 0], [0, 5, 2, 0], [0, 0, 7, 0], [1, 0, 0, 0]]


def test_training_curves_read_the_loops_names_and_keras_names(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  own = tmp_path / "own"
  with tf.summary.create_file_writer(str(own / "train")).as_default():
    for step in (100, 200):
      tf.summary.scalar("loss", 1.0 / step, step=step)
      tf.summary.scalar("agreement", 0.5 + step / 1000, step=step)
  assert figures.training_curves(str(own)) == {
      "loss": {"train": [(100, pytest.approx(0.01)), (200, pytest.approx(0.005))]},
      "agreement": {"train": [(100, pytest.approx(0.6)), (200, pytest.approx(0.7))]}}
  assert figures.training_curves(str(tmp_path / "missing")) == {}


# --- a page from a pipeline root -------------------------------------------------

_SLICES = [(), (("trip_start_day", 1),), (("trip_start_day", 2),), (("trip_start_day", 3),)]
# model -> metric -> a value per slice (NaN: TFMA's calibration with no positives).
_FIGURES = {
    names.TEACHER: {"auc": [0.9421234567, 0.95, 0.93, 0.94],
                    "binary_accuracy": [0.889213, 0.9, 0.88, 0.87],
                    "binary_crossentropy": [0.2372, 0.21, 0.25, 0.24],
                    "calibration": [1.02, 1.1, float("nan"), 0.98],
                    "example_count": [300.0, 100.0, 100.0, 100.0]},
    names.STUDENT: {"auc": [0.9437123456, 0.951, 0.88, 0.941],
                    "binary_accuracy": [0.8896, 0.91, 0.86, 0.872],
                    "binary_crossentropy": [0.2271, 0.2, 0.3, 0.22],
                    "calibration": [1.0191, 1.05, float("nan"), 0.99],
                    "example_count": [300.0, 100.0, 100.0, 100.0]},
}


def _fake_tfma_output(directory: str) -> str:
  """What TFMA writes for the fidelity gate: a run that failed on day 2.
  Returns the EvalConfig as TFX keeps it in the Evaluator's properties."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  from tensorflow_model_analysis.proto import config_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_model_analysis.proto import metrics_for_slice_pb2 as mfs  # pylint: disable=g-import-not-at-top
  from tensorflow_model_analysis.proto import validation_result_pb2 as vr  # pylint: disable=g-import-not-at-top
  os.makedirs(directory)
  auc_drop = tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
      direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -0.01}))
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(name=names.STUDENT),
                   tfma.ModelSpec(name=names.TEACHER, is_baseline=True)],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["trip_start_day"])],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount"),
          tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[
              tfma.PerSliceMetricThreshold(
                  slicing_specs=[tfma.SlicingSpec()] + [
                      tfma.SlicingSpec(feature_values={"trip_start_day": str(d)})
                      for d in (1, 2, 3)],
                  threshold=auc_drop)]),
          tfma.MetricConfig(class_name="BinaryAccuracy"),
          tfma.MetricConfig(class_name="CalibrationPlot")])])
  with open(os.path.join(directory, "eval_config.json"), "w") as f:
    f.write(json_format.MessageToJson(config_pb2.EvalRun(
        eval_config=config, version=tfma.__version__)))

  def slice_key(key):
    return mfs.SliceKey(single_slice_keys=[
        mfs.SingleSliceKey(column=c, int64_value=v) for c, v in key])

  metrics_file = os.path.join(directory, "metrics-00000-of-00001.tfrecord")
  with tf.io.TFRecordWriter(metrics_file) as w:
    for i, key in enumerate(_SLICES):
      record = mfs.MetricsForSlice(slice_key=slice_key(key))
      for model, figures in _FIGURES.items():
        for name, values in figures.items():
          entry = record.metric_keys_and_values.add()
          entry.key.name, entry.key.model_name = name, model
          entry.value.double_value.value = values[i]
          if model == names.STUDENT:  # TFMA also writes the diffs
            diff = record.metric_keys_and_values.add()
            diff.key.name, diff.key.model_name, diff.key.is_diff = name, model, True
            diff.value.double_value.value = values[i] - _FIGURES[names.TEACHER][name][i]
      w.write(record.SerializeToString())
  with tf.io.TFRecordWriter(os.path.join(directory, "plots-00000-of-00001.tfrecord")) as w:
    record = mfs.PlotsForSlice(slice_key=slice_key(()))
    for model, shift in ((names.TEACHER, 0.0), (names.STUDENT, 0.02)):
      entry = record.plot_keys_and_values.add()
      entry.key.model_name = model
      for low in range(10):
        bucket = entry.value.calibration_histogram_buckets.buckets.add()
        bucket.lower_threshold_inclusive = low / 10
        bucket.upper_threshold_exclusive = (low + 1) / 10
        bucket.num_weighted_examples.value = 30
        bucket.total_weighted_label.value = 30 * (low / 10 + 0.05)
        bucket.total_weighted_refined_prediction.value = 30 * (low / 10 + 0.05 + shift)
    w.write(record.SerializeToString())
  failure = vr.ValidationFailure(
      metric_key=mfs.MetricKey(name="auc", model_name=names.STUDENT, is_diff=True),
      metric_value=mfs.MetricValue(double_value={"value": -0.05}),
      metric_threshold=auc_drop)
  validation = vr.ValidationResult(validation_ok=False, metric_validations_per_slice=[
      vr.MetricsValidationForSlice(slice_key=slice_key((("trip_start_day", 2),)),
                                   failures=[failure])])
  with tf.io.TFRecordWriter(os.path.join(directory, "validations.tfrecord")) as w:
    w.write(validation.SerializeToString())
  return json_format.MessageToJson(config)


def _fake_pipeline_root(root: str, name: str) -> None:
  """A run as TFX records it: ExampleGen, Distiller, Scorer, FidelityEvaluator
  (failed)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable.mlmd import context_lib, execution_lib  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import properties  # pylint: disable=g-import-not-at-top

  # The eval split, and one small model serving raw tf.Examples (teacher and student).
  examples_dir = os.path.join(root, "CsvExampleGen", "examples", "1")
  os.makedirs(os.path.join(examples_dir, "Split-eval"))
  with tf.io.TFRecordWriter(os.path.join(examples_dir, "Split-eval", "data.gz"),
                            options="GZIP") as w:
    for i in range(300):
      w.write(tf.train.Example(features=tf.train.Features(feature={
          "x": tf.train.Feature(float_list=tf.train.FloatList(value=[i / 300]))}))
              .SerializeToString())

  class Serving(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
      x = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
      return {"outputs": tf.sigmoid(x)}

  model_dir = os.path.join(root, "Distiller", "model", "2")
  serving = Serving()
  tf.saved_model.save(serving, os.path.join(model_dir, "Format-Serving"),
                      signatures={"serving_default": serving.serve})
  run_dir = os.path.join(root, "Distiller", "model_run", "2")
  with tf.summary.create_file_writer(os.path.join(run_dir, "train")).as_default():
    for step in range(100, 501, 100):  # Keras' TensorBoard callback's names
      for term in ("loss", "soft_loss", "hard_loss"):
        tf.summary.scalar(f"batch_{term}", 1.0 / step, step=step)
      tf.summary.scalar("batch_agreement", 0.9 + step / 10000, step=step)
    tf.summary.scalar("epoch_loss", 0.002, step=0)
  with tf.summary.create_file_writer(os.path.join(run_dir, "validation")).as_default():
    tf.summary.scalar("evaluation_loss_vs_iterations", 0.003, step=500)
  evaluation_dir = os.path.join(root, "FidelityEvaluator", "evaluation", "3")
  eval_config = _fake_tfma_output(evaluation_dir)

  def artifact(cls, uri, **custom):
    a = cls()
    a.uri = uri
    for key, value in custom.items():
      setter = {str: a.set_string_custom_property, int: a.set_int_custom_property,
                float: a.set_float_custom_property}[type(value)]
      setter(key, value)
    return a

  examples = artifact(standard_artifacts.Examples, examples_dir)
  examples.split_names = '["eval"]'
  model = artifact(standard_artifacts.Model, model_dir, **{
      properties.TASK: "binary", properties.TEMPERATURE: 2.0, properties.ALPHA: 0.9,
      properties.TEACHER_SOURCE: "signature 'transformed_logits' (logits)",
      properties.TEACHER_URI: model_dir, properties.TEACHER_PARAMS: 843_722,
      properties.STUDENT_PARAMS: 5_459, properties.TEACHER_SAVED_MODEL_BYTES: 11_108_840,
      properties.STUDENT_SAVED_MODEL_BYTES: 589_683, properties.EVAL_AGREEMENT: 0.9634})
  teacher = artifact(standard_artifacts.Model, model_dir)
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = os.path.join(root, "metadata.sqlite")
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
  with metadata.Metadata(connection_config=config) as handle:
    pipeline = context_lib.register_context_if_not_exists(handle, "pipeline", name)
    run = context_lib.register_context_if_not_exists(
        handle, "pipeline_run", "2026-01-01T00:00:00.000001")
    handle.store.put_parent_contexts([metadata_store_pb2.ParentContext(
        child_id=run.id, parent_id=pipeline.id)])
    for node, inputs, outputs, exec_properties in (
        ("CsvExampleGen", {}, {"examples": [examples]}, {}),
        (names.DISTILLER, {"examples": [examples]},
         {"model": [model],
          "model_run": [artifact(standard_artifacts.ModelRun, run_dir)]}, {}),
        (names.SCORER, {"examples": [examples]}, {}, {}),
        (names.FIDELITY_EVALUATOR,
         {"model": [artifact(standard_artifacts.Model, model_dir)],
          "baseline_model": [teacher], "examples": [examples]},
         {"evaluation": [artifact(standard_artifacts.ModelEvaluation, evaluation_dir)],
          "blessing": [artifact(standard_artifacts.ModelBlessing,
                                os.path.join(root, "FidelityEvaluator", "blessing", "3"),
                                blessed=0)]},
         {"eval_config": eval_config}),
    ):
      context = context_lib.register_context_if_not_exists(handle, "node", f"{name}.{node}")
      execution = execution_lib.prepare_execution(
          handle, metadata_store_pb2.ExecutionType(name=node),
          metadata_store_pb2.Execution.COMPLETE, exec_properties={})
      for key, value in exec_properties.items():  # TFX keeps them as custom properties
        execution.custom_properties[key].string_value = value
      execution_lib.put_execution(handle, execution, [pipeline, run, context],
                                  input_artifacts=inputs, output_artifacts=outputs)


@pytest.fixture(scope="session")
def report_root(tmp_path_factory) -> Tuple[str, str, bool]:
  """(pipeline root, pipeline name, built here): TFX_DISTILL_REPORT_ROOT's
  root if set (e.g. a finished `make run`), else a small one built here."""
  root = os.environ.get("TFX_DISTILL_REPORT_ROOT")
  if root:
    name = os.environ.get("TFX_DISTILL_REPORT_NAME")
    if not name:
      store = report.open_store(os.path.join(root, "metadata.sqlite"))
      [name] = [c.name for c in store.get_contexts_by_type("pipeline")]
    return root, name, False
  root = str(tmp_path_factory.mktemp("report_root"))
  _fake_pipeline_root(root, "fake-distillation")
  return root, "fake-distillation", True


def test_page_of_a_pipeline_root_shows_tfma_figures(report_root, tmp_path):
  root, name, built_here = report_root
  sqlite_path = os.path.join(root, "metadata.sqlite")
  summary = report.summarize(sqlite_path, name)
  out = report_html.write(sqlite_path, name, str(tmp_path / "report.html"))
  text = open(out, encoding="utf-8").read()
  check_report(text, report_page.evaluation_uri(sqlite_path, summary), summary)
  if not built_here:
    return
  # What the built run holds: stopped on day 2, Keras curves, both latencies.
  assert "Not pushed: stopped by the fidelity (student vs teacher) gate" in text
  assert '<span class="badge bad">failed</span> trip_start_day=2' in text
  assert "at most 0.01 below the teacher&#x27;s" in text
  assert "overall; trip_start_day = 1, 2, 3" in text
  assert report_html.NO_CURVES not in text
  assert text.count('src="data:image/png;base64,') == 2  # calibration, curves
  latency = text.split('id="size"')[1].split("</section>")[0]
  # Per model: its SavedModel's MB and two latencies.
  assert len(re.findall(r"<td class='num'>\d+\.\d\d</td>", latency)) == 2 * 3
  assert "temperature</dt><dd>2</dd>" in text
  # A Keras run's per-step curve, not its one per-epoch point; eval dashed beside.
  page = report_page.read(sqlite_path, summary, latency=False)
  assert [s for s, _ in page.curves["loss"]["train"]] == [100, 200, 300, 400, 500]
  assert page.curves["loss"]["eval"] == [(500, pytest.approx(0.003))]
