"""The gates: EvalConfigs per task, judged by TFMA's own validator.

Fast tier: no pipeline run. Each case builds the metrics TFMA would compute
for one slice (student, baseline, and their diffs), validates them with
`tfma`'s metrics validator against the EvalConfig the pipeline uses, and reads
the verdict back the way the summary does.
"""
import collections
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_types

from distill_components.distiller.tasks import Task
from distill_components.gates import evaluator
from distill_pipelines import exits
from distill_pipelines import gates
from distill_pipelines import names
from distill_pipelines import report
from distill_pipelines.settings import Settings


def _settings(**values):
  base = dict(pipeline_name="p", pipeline_root="/r", data_root="/d", label="y",
              task="binary", slice_by=["payment_type"], min_slice_size=100)
  base.update(values)
  return Settings.model_validate(base)


def _metrics(config):
  return {m.class_name: m for spec in config.metrics_specs for m in spec.metrics}


def _metric_values(student, baseline, baseline_name):
  """TFMA's per-slice metrics dict: candidate, baseline and their diffs.

  Without a baseline TFMA evaluates one model, and names it "".
  """
  values = {}
  candidate = names.STUDENT if baseline else ""
  for name, value in student.items():
    values[metric_types.MetricKey(name, model_name=candidate)] = value
    if name in baseline:
      values[metric_types.MetricKey(name, model_name=baseline_name)] = baseline[name]
      values[metric_types.MetricKey(name, model_name=names.STUDENT, is_diff=True)] = (
          value - baseline[name])
  return values


def _validate(config, slices, baseline_name, has_baseline=True):
  """Runs TFMA's validator on every slice, as the Evaluator does; merged."""
  config = tfma.utils.update_eval_config_with_defaults(
      config, has_baseline=has_baseline, rubber_stamp=not has_baseline)
  result = tfma.ValidationResult(validation_ok=True)
  for slice_key, (student, baseline) in slices.items():
    one = metrics_validator.validate_metrics(
        (slice_key, _metric_values(student, baseline if has_baseline else {},
                                   baseline_name)), config)
    result.validation_ok &= one.validation_ok
    result.metric_validations_per_slice.extend(one.metric_validations_per_slice)
  return result


GOOD = {"auc": 0.94, "binary_crossentropy": 0.25, "calibration": 1.01,
        "binary_accuracy": 0.89, "example_count": 500}
OVERALL = ()
CASH = (("payment_type", "Cash"),)
CARD = (("payment_type", "Credit Card"),)
TINY = (("payment_type", "Prcard"),)
SIZES = {"payment_type": collections.Counter(
    {"Cash": 2000, "Credit Card": 2900, "Prcard": 7})}


def _fidelity(s):
  return evaluator.narrow_slice_thresholds(gates.fidelity_config(s), SIZES)


def _no_regression(s):
  return evaluator.narrow_slice_thresholds(gates.no_regression_config(s), SIZES)


def _slices(**changes):
  """Every slice at GOOD for both models, with `changes` {slice: student}."""
  out = {key: (dict(GOOD), dict(GOOD)) for key in (OVERALL, CASH, CARD, TINY)}
  for name, student in changes.items():
    key = {"overall": OVERALL, "cash": CASH, "card": CARD, "tiny": TINY}[name]
    out[key] = ({**GOOD, **student}, dict(GOOD))
  return out


# --- the EvalConfigs ---------------------------------------------------------

def test_fidelity_gate_compares_with_the_teacher_on_every_slice():
  config = gates.fidelity_config(_settings())
  assert [(m.name, m.is_baseline) for m in config.model_specs] == [
      (names.STUDENT, False), (names.TEACHER, True)]
  [auc_bound] = _metrics(config)["AUC"].per_slice_thresholds
  assert list(auc_bound.slicing_specs) == [
      tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["payment_type"])]
  assert auc_bound.threshold.change_threshold.absolute.value == -0.01
  # No plain `threshold`: TFMA would apply it to every slice, tiny ones too.
  assert not any(m.HasField("threshold") for m in _metrics(config).values())
  assert config.options.min_slice_size.value == 100


def test_no_regression_gate_holds_log_loss_and_calibration():
  s = _settings(no_regression={"max_drop": 0.02, "max_log_loss_increase": 0.05,
                               "calibration_tolerance": 0.1})
  config = gates.no_regression_config(s)
  assert [(m.name, m.is_baseline) for m in config.model_specs] == [
      (names.STUDENT, False), (names.SERVING, True)]
  found = _metrics(config)
  [auc] = found["AUC"].per_slice_thresholds
  assert auc.threshold.change_threshold.absolute.value == -0.02
  [log_loss] = found["BinaryCrossentropy"].per_slice_thresholds
  assert log_loss.threshold.change_threshold.relative.value == 0.05
  assert list(log_loss.slicing_specs) == [tfma.SlicingSpec()]  # overall only
  [calibration] = found["Calibration"].per_slice_thresholds
  band = calibration.threshold.value_threshold
  assert (band.lower_bound.value, band.upper_bound.value) == (0.9, 1.1)


def test_multiclass_and_regression_gates_use_their_own_metrics():
  s = _settings(task="multiclass", label_values=["a", "b", "c"])
  found = _metrics(gates.no_regression_config(s))
  assert not {"AUC", "BinaryCrossentropy", "Calibration"} & set(found)
  gated = {name for name, m in found.items() if m.per_slice_thresholds}
  assert gated == {"SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
                   "ExampleCount"}
  s = _settings(task="regression")
  found = _metrics(gates.no_regression_config(s))
  gated = {name: m.per_slice_thresholds[0].threshold.change_threshold
           for name, m in found.items()
           if m.per_slice_thresholds and name != "ExampleCount"}
  assert set(gated) == {"MeanSquaredError", "MeanAbsoluteError"}
  assert all(t.direction == tfma.MetricDirection.LOWER_IS_BETTER and
             t.relative.value == gates.DEFAULT_MAX_DROP_RELATIVE
             for t in gated.values())


def test_narrowing_keeps_slice_thresholds_on_large_slices_only():
  config = _fidelity(_settings())
  [auc] = _metrics(config)["AUC"].per_slice_thresholds
  assert list(auc.slicing_specs) == [
      tfma.SlicingSpec(),
      tfma.SlicingSpec(feature_values={"payment_type": "Cash"}),
      tfma.SlicingSpec(feature_values={"payment_type": "Credit Card"})]
  assert not config.options.HasField("min_slice_size")
  # Every slice is still computed and reported.
  assert tfma.SlicingSpec(feature_keys=["payment_type"]) in config.slicing_specs


def test_slice_sizes_refuse_an_unknown_column(tmp_path):
  from tensorflow_metadata.proto.v0 import schema_pb2
  schema = schema_pb2.Schema()
  schema.feature.add(name="fare", type=schema_pb2.FLOAT)
  with pytest.raises(ValueError, match=r"slice_by names columns the data does "
                     r"not have: \['payment_typ'\]"):
    evaluator.slice_sizes([str(tmp_path / "*.gz")], schema, ["payment_typ"])


def test_large_gates_run_on_a_process_per_core_unless_told_otherwise():
  big, small = evaluator.PROCESSES_FROM_ROWS, evaluator.PROCESSES_FROM_ROWS - 1
  parallel = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
  assert evaluator.beam_args_for([], big, 2) == parallel
  assert evaluator.beam_args_for(["--runner=DirectRunner"], big, 2) == [
      "--runner=DirectRunner", *parallel]
  # Too few rows or cores: starting the workers would cost more than they save.
  assert evaluator.beam_args_for([], small, 2) == []
  assert evaluator.beam_args_for([], big, 1) == []
  # A running mode or another runner chosen in the pipeline's arguments wins.
  for args in (["--direct_running_mode=in_memory"],
               ["--runner=DataflowRunner", "--region=us-central1"]):
    assert evaluator.beam_args_for(args, big, 2) == args


def test_rows_are_counted_up_to_the_limit(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for part in range(2):
    with tf.io.TFRecordWriter(str(tmp_path / f"p{part}.gz"), options="GZIP") as w:
      for _ in range(30):
        w.write(b"x")
  files = [str(tmp_path / "*.gz")]
  assert evaluator.rows_at_least(files, 100) == 60
  assert evaluator.rows_at_least(files, 45) == 45


# --- verdicts ----------------------------------------------------------------

def test_a_faithful_student_passes_both_gates():
  s = _settings()
  assert _validate(_fidelity(s), _slices(overall={"auc": 0.935}), names.TEACHER).validation_ok
  assert _validate(_no_regression(s), _slices(), names.SERVING).validation_ok


def test_fidelity_fails_when_the_student_drifts_from_the_teacher():
  result = _validate(_fidelity(_settings()), _slices(overall={"auc": 0.90}),
                     names.TEACHER)
  assert not result.validation_ok
  assert report.gate_failures(result, "teacher", {}) == [
      "auc (overall): the student is 0.0400 worse than the teacher; allowed 0.01"]


def test_one_bad_slice_fails_the_gate_and_is_named():
  result = _validate(_fidelity(_settings()), _slices(cash={"auc": 0.91}),
                     names.TEACHER)
  assert not result.validation_ok
  assert report.gate_failures(result, "teacher", {}) == [
      "auc (payment_type=Cash): the student is 0.0300 worse than the teacher; "
      "allowed 0.01"]


def test_a_tiny_slice_is_reported_but_does_not_gate():
  s = _settings()
  assert _validate(_fidelity(s), _slices(tiny={"auc": 0.5}), names.TEACHER).validation_ok
  # Without the narrowing, TFMA's plain per-column threshold would block it.
  raw = gates.fidelity_config(s)
  raw.options.ClearField("min_slice_size")
  assert not _validate(raw, _slices(tiny={"auc": 0.5}), names.TEACHER).validation_ok


def test_no_regression_fails_on_log_loss_even_with_a_fine_auc():
  result = _validate(_no_regression(_settings()),
                     _slices(overall={"binary_crossentropy": 0.30}), names.SERVING)
  assert not result.validation_ok
  [line] = report.gate_failures(result, "serving model",
                                {"binary_crossentropy": 0.25})
  assert line == ("binary_crossentropy (overall): the student is 0.0500 worse "
                  "than the serving model; allowed 5% of the serving model's 0.2500")


def test_no_regression_fails_on_calibration():
  result = _validate(_no_regression(_settings()),
                     _slices(overall={"calibration": 1.3}), names.SERVING)
  [line] = report.gate_failures(result, "serving model", {})
  assert line == "calibration (overall): the student's 1.3000 is not >= 0.9 and <= 1.1"


@pytest.mark.parametrize("task, extra", [
    ("binary", {}), ("multiclass", {"label_values": ["a", "b", "c"]}),
    ("regression", {})])
def test_every_gate_validates_without_a_baseline(task, extra):
  """TFX's Evaluator writes no blessing when, the baseline missing, no
  threshold is left: the first run of a task without value bounds could then
  never push, and no serving model would ever exist."""
  for config in (gates.fidelity_config(_settings(task=task, **extra)),
                 gates.no_regression_config(_settings(task=task, **extra))):
    stamped = tfma.utils.update_eval_config_with_defaults(
        config, has_baseline=False, rubber_stamp=True)
    assert tfma.metrics.metric_thresholds_from_metrics_specs(
        stamped.metrics_specs, eval_config=stamped), task


def test_an_empty_eval_split_fails_the_gate():
  result = _validate(_no_regression(_settings()), _slices(overall={"example_count": 0}),
                     names.SERVING, has_baseline=False)
  assert not result.validation_ok
  assert report.gate_failures(result, "serving model", {}) == [
      "example_count (overall): the student's 0.0000 is not >= 1"]


def test_first_run_without_a_serving_model_keeps_only_absolute_bounds():
  s = _settings()
  # Much worse than any serving model could be, but nothing serves yet.
  ok = _validate(_no_regression(s), _slices(overall={"auc": 0.6}), names.SERVING,
                 has_baseline=False)
  assert ok.validation_ok
  miscalibrated = _validate(_no_regression(s), _slices(overall={"calibration": 2.0}),
                            names.SERVING, has_baseline=False)
  assert not miscalibrated.validation_ok


# --- what the run says -------------------------------------------------------

def _summary(*gate_results, anomalies=()):
  summary = report.RunSummary("p", "r", [], report.ModelSide(), report.ModelSide(),
                              task=Task.BINARY)
  summary.gates = list(gate_results)
  summary.data_anomalies = list(anomalies)
  return summary


def _gate(evaluator_id, verdict, failures=(), no_baseline=False):
  return report.GateResult(evaluator_id, names.GATES[evaluator_id], verdict,
                           no_baseline, list(failures))


def test_exit_status_and_summary_name_the_gate():
  passed = _summary(_gate(names.FIDELITY_EVALUATOR, "passed"),
                    _gate(names.NO_REGRESSION_EVALUATOR, "passed", no_baseline=True))
  passed.pushed_to = "/serving/1"
  assert exits.status(passed) == 0 and passed.blessed
  text = report.render(passed)
  assert "no regression (student vs serving model): passed (no serving model yet" in text

  fidelity = _summary(_gate(names.FIDELITY_EVALUATOR, "failed", ["auc (overall): x"]),
                      _gate(names.NO_REGRESSION_EVALUATOR, "not run"))
  assert exits.status(fidelity) == exits.FIDELITY
  assert fidelity.blessed is False
  text = report.render(fidelity)
  assert "    - auc (overall): x" in text
  assert "not run (the fidelity gate failed)" in text
  assert "pushed:  nothing (stopped by the fidelity (student vs teacher) gate)" in text

  regression = _summary(_gate(names.FIDELITY_EVALUATOR, "passed"),
                        _gate(names.NO_REGRESSION_EVALUATOR, "failed", ["y"]))
  assert exits.status(regression) == exits.NO_REGRESSION
  assert regression.stopped_by == "no regression (student vs serving model)"

  data = _summary(anomalies=["eval split, feature 'payment_type': Unexpected "
                             "string values (...)"])
  assert exits.status(data) == exits.DATA_ANOMALIES
  assert "data validation: FAILED" in report.render(data)
  assert "stopped by the data validation gate" in report.render(data)


def test_the_summary_says_what_the_student_learnt_from():
  plain = report.render(_summary(), components=False)
  assert "learnt from" not in plain and "mean of" not in plain
  summary = _summary()
  summary.examples = {"labelled": 10_000, "unlabeled": 50_000, "synthetic": 5_000}
  summary.teachers = 2
  text = report.render(summary, components=False)
  assert "student learnt from: 10,000 labelled + 50,000 unlabeled + 5,000 synthetic rows" in text
  assert "teacher: the mean of 2 teachers (the gate compares with the first)" in text


def test_output_keys_are_tfx_own():
  """names.*_KEY are the keys TFX's components record their artifacts under."""
  from tfx.types import standard_component_specs as specs  # pylint: disable=g-import-not-at-top
  for key in ("MODEL_KEY", "BASELINE_MODEL_KEY", "MODEL_RUN_KEY", "EXAMPLES_KEY",
              "SCHEMA_KEY", "EVALUATION_KEY", "BLESSING_KEY", "PUSHED_MODEL_KEY"):
    assert getattr(names, key) == getattr(specs, key), key
