"""Settings, the task-aware gate, and the label checks: pure logic, no pipeline run."""

import pydantic
import pytest

from distill_components.distiller.tasks import LabelError, Task
from distill_pipelines import table
from distill_pipelines.settings import Settings, describe_errors
from distill_pipelines.taxi import config as taxi


def _settings(**values):
  base = dict(pipeline_name="p", pipeline_root="/r", data_root="/d", label="y",
              task="binary")
  base.update(values)
  return Settings.model_validate(base)


# --- Settings ---------------------------------------------------------------

def test_defaults_are_the_zero_code_modules():
  s = _settings()
  assert s.preprocessing_code == "distill_pipelines.generic.preprocessing.preprocessing_fn"
  assert s.teacher_code == "distill_pipelines.generic.auto_teacher.run_fn"
  assert s.student_code == "distill_pipelines.generic.student.build_student"
  assert s.transformed_label == "y" and s.serving_excluded == ["y"]
  assert s.serving_model_dir == "/r/serving_model"
  assert s.classes == 2


TREES = ("distill_pipelines.generic.tree_teacher.run_fn", ["tensorflow_decision_forests"])
MLP = ("distill_pipelines.generic.teacher.run_fn", [])
ENSEMBLE = ("distill_pipelines.generic.ensemble_teacher.run_fn",
            ["tensorflow_decision_forests"])
AUTO = ("distill_pipelines.generic.auto_teacher.run_fn", ["tensorflow_decision_forests"])


@pytest.mark.parametrize("task, teacher_type, code, modules", [
    ("binary", None, *AUTO), ("multiclass", None, *AUTO), ("regression", None, *AUTO),
    ("binary", "gbt", *TREES),
    ("binary", "mlp", *MLP), ("regression", "mlp", *MLP),
    ("binary", "ensemble", *ENSEMBLE), ("regression", "ensemble", *ENSEMBLE),
])
def test_teacher_type_picks_the_zero_code_teacher_and_its_imports(task, teacher_type, code,
                                                                  modules):
  extra = {"num_classes": 3} if task == "multiclass" else {}
  s = _settings(task=task, teacher_type=teacher_type, teacher_imports=["my_ops"], **extra)
  assert s.teacher_code == code
  # Loaded wherever the teacher is: the user's modules and the teacher's own.
  assert s.teacher_modules == ["my_ops", *modules]


def test_a_teacher_of_your_own_imports_only_what_you_name():
  s = _settings(teacher="my_pkg.trees.run_fn", teacher_imports=["tensorflow_decision_forests"])
  assert s.teacher_modules == ["tensorflow_decision_forests"]
  assert _settings(teacher="my_pkg.mlp.run_fn").teacher_modules == []


def test_taxi_demo_tree_teacher():
  s = taxi.settings(pipeline_root="/r", data_root="/d", **taxi.teacher_settings("gbt"))
  assert s.teacher_code == taxi.TREE_TEACHER_RUN_FN
  assert s.teacher_modules == ["tensorflow_decision_forests"]


def test_taxi_demo_settings():
  s = taxi.settings(pipeline_root="/r", data_root="/d")
  assert (s.label, s.transformed_label, s.serving_excluded) == ("tips", "big_tipper", ["tips"])
  assert s.task is Task.BINARY and s.gate.metric == "auc"
  assert s.student_code == taxi.BUILD_STUDENT


@pytest.mark.parametrize("values, message", [
    ({"no_cache": True}, "no-cache: Extra inputs are not permitted"),
    ({"enable_cache": "false"}, "enable-cache: Input should be a valid boolean"),
    ({"train_steps": [1, 2]}, "train-steps: Input should be a valid integer"),
    ({"train_steps": 0}, "train-steps: Input should be greater than 0"),
    ({"alpha": 1.5}, "alpha: alpha weighs the soft (teacher) term and must lie in "
     "[0, 1]; got 1.5."),
    ({"temperature": 0.0}, "temperature: temperature must be > 0; got 0.0."),
    ({"task": "ranking"}, "task must be one of ['binary', 'multiclass', 'regression']"),
    ({"task": "binary", "label_values": ["a", "b", "c"]},
     "the binary task has 2 classes, not 3; use task multiclass"),
    ({"task": "multiclass", "label_values": ["a", "b"]},
     "the multiclass task needs >= 3 classes, not 2"),
    ({"task": "multiclass"}, "the generic student needs the number of classes"),
    ({"task": "regression", "num_classes": 3}, "a regression label has no classes"),
    ({"task": "binary", "num_classes": 3},
     "the binary task has 2 classes, not 3; use task multiclass"),
    ({"teacher_model": "/t", "teacher": "t.py"}, "exclude each other"),
    ({"label_key": "y_xf"}, "the generic preprocessing writes the label under its own name"),
    ({"gate": {"metric": "mean_squared_error"}},
     "The gate metric 'mean_squared_error' cannot gate the binary task; choose one of"),
    ({"gate": {"max_drop": -1.0}}, "gate.max-drop: Input should be greater than or equal to 0"),
    ({"teacher_outputs": "logit"}, "teacher-outputs: Input should be 'logits' or 'probabilities'"),
    ({"teacher_type": "forest"}, "teacher-type: Input should be 'auto', 'mlp', 'gbt' or 'ensemble'"),
    ({"teacher_type": "gbt", "teacher": "t.py"}, "teacher_type picks the zero-code teacher"),
    ({"teacher_folds": 1}, "teacher_folds is 0 (off) or a number of folds, at least 2"),
    ({"teacher_folds": -3}, "teacher-folds: Input should be greater than or equal to 0"),
    ({"teacher_folds": 5, "teacher_model": "/t"}, "teacher_folds needs a teacher trained in this run"),
    ({"teacher_folds": 5, "teacher_type": "mlp"}, "the zero-code MLP teacher writes no out-of-fold models"),
    ({"synthetic_ratio": -0.5}, "synthetic-ratio: Input should be greater than or equal to 0"),
    ({"synthetic_ratio": 1.0, "teacher_model": "/t"},
     "synthetic rows are mixed from this run's transformed features"),
    ({"teacher_imports": ["tensorflow decision forests"]},
     "teacher_imports holds a name that is not a Python module path"),
])
def test_bad_settings_name_the_setting(values, message):
  with pytest.raises(pydantic.ValidationError) as info:
    _settings(**values)
  assert message in describe_errors(info.value)


def test_teacher_labelling_defaults_to_in_process_and_reaches_the_distiller():
  from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  assert _settings().teacher_labelling == "in_process"  # bench/labelling.py
  s = taxi.settings(pipeline_root="/r", data_root="/d", teacher_labelling="beam",
                    cache_teacher_outputs=True)
  [distiller] = [c for c in pipeline.create_pipeline(s).components
                 if c.id == "Distiller"]
  assert distiller.exec_properties["teacher_labelling"] == "beam"
  with pytest.raises(pydantic.ValidationError) as info:
    _settings(teacher_labelling="spark")
  assert "teacher-labelling" in describe_errors(info.value)


def test_teacher_folds_reach_the_teacher_module_and_the_distiller():
  assert "teacher_folds" not in _settings().module_config()
  s = _settings(teacher_folds=5)  # binary: the zero-code trees
  assert s.folds == 5 and s.module_config()["teacher_folds"] == 5
  own = _settings(teacher="my_pkg.trees.run_fn", teacher_folds=3)
  assert own.module_config()["teacher_folds"] == 3


def test_zero_code_regression_trees_learn_out_of_fold_by_default():
  regression = _settings(task="regression")
  assert regression.folds == 5 and regression.module_config()["teacher_folds"] == 5
  assert _settings(task="regression", teacher_folds=0).folds == 0
  assert _settings(task="regression", teacher_type="mlp").folds == 0
  assert _settings(task="regression", teacher_type="ensemble").folds == 5
  assert _settings(teacher_type="ensemble", teacher_folds=3).folds == 3
  assert _settings(task="regression", teacher="my_pkg.run_fn").folds == 0
  assert _settings(task="regression", teacher_model="/t").folds == 0
  assert _settings(task="multiclass", num_classes=3).folds == 0


def test_module_config_carries_the_task_to_every_module():
  s = _settings(task="multiclass", label_values=["a", "b", "c"],
                custom_config={"hidden": 3})
  config = s.module_config()
  assert config["task"] == "multiclass" and config["num_classes"] == 3
  assert config["label_values"] == ["a", "b", "c"] and config["hidden"] == 3
  assert config["label_key"] == "y" and config["raw_label_keys"] == ["y"]


# --- the gate metrics per task (the EvalConfigs: tests/test_gates.py) -----

def test_every_task_has_a_gateable_main_metric():
  for task, listed in ((t, t.metrics) for t in Task):
    assert listed[0].gateable, task


# --- the label column and the task -----------------------------------------

def _csv(tmp_path, name, header, rows):
  path = tmp_path / name
  path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
  return str(path)


@pytest.mark.parametrize("values, task, listed", [
    (["0", "1", "1", "0"], Task.BINARY, ["0", "1"]),
    (["yes", "no", "no"], Task.BINARY, ["no", "yes"]),
    (["red", "green", "blue", "red"], Task.MULTICLASS, ["blue", "green", "red"]),
    (["3", "1", "2", "10"], Task.MULTICLASS, ["1", "2", "3", "10"]),
    (["1.5", "2.25", "3"], Task.REGRESSION, None),
    ([str(i) for i in range(50)], Task.REGRESSION, None),
])
def test_task_inferred_from_the_label_values(tmp_path, values, task, listed):
  path = _csv(tmp_path, "d.csv", "x,y", [f"{i},{v}" for i, v in enumerate(values)])
  profile = table.profile_label([path], "y")
  assert table.infer_task(profile) is task
  if listed:
    assert profile.values == listed
  assert task.value in table.describe_inference(profile, task)


def test_profile_reads_every_file_and_counts_missing(tmp_path):
  a = _csv(tmp_path, "a.csv", "\ufeffy,x", ["1,a", ",b"])  # BOM on the header
  b = _csv(tmp_path, "b.csv", "x,y", ["c,2.5", "d,3"])
  assert table.header(a) == ["y", "x"]
  profile = table.profile_label([a, b], "y")
  assert (profile.rows, profile.missing, profile.numeric) == (4, 1, True)
  assert not profile.whole_numbers


@pytest.mark.parametrize("values, task, message", [
    (["1", "1", "1"], Task.BINARY, "has one value (1)"),
    (["a", "b", "c", "d", "e"], Task.BINARY, "--task binary, but the label column 'y' has 5 values"),
    (["a", "b"], Task.MULTICLASS, "--task multiclass, but the label column 'y' has "
     "2 values (a, b): the multiclass task needs >= 3 classes, not 2; use task binary."),
    (["a", "b", "c"], Task.REGRESSION, "a regression label must be numeric"),
    (["0.5", "1.5"], Task.BINARY, "fractional numbers: that is a regression label"),
    (["1", "", "0"], Task.BINARY, "is empty in 1 of 3 rows"),
    (["7", "7"], Task.REGRESSION, "has one value (7)"),
])
def test_labels_that_cannot_be_learned(tmp_path, values, task, message):
  path = _csv(tmp_path, "d.csv", "x,y", [f"{i},{v}" for i, v in enumerate(values)])
  with pytest.raises(table.TableError) as info:
    table.check_label(table.profile_label([path], "y"), task)
  assert message in str(info.value)


def test_non_utf8_header_is_named(tmp_path):
  path = tmp_path / "latin.csv"
  path.write_bytes("caf\xe9,y\n1,2\n".encode("latin-1"))
  with pytest.raises(table.TableError, match="latin.csv is not UTF-8"):
    table.header(str(path))


# --- the transformed label, checked by the Distiller before training --------

@pytest.mark.parametrize("task, width, labels, message", [
    (Task.BINARY, 1, [0.0, 1.0, 0.25], "fractional values (e.g. 0.25): that is a regression label"),
    (Task.BINARY, 1, [0, 1, 2], "class id 2 but the binary model predicts 2 classes"),
    (Task.MULTICLASS, 3, [0, 1, 5], "class id 5 but the multiclass model predicts 3 classes"),
    (Task.MULTICLASS, 3, [0, -1], "class id -1"),
    (Task.REGRESSION, 1, [1.0, float("nan")], "labels must be finite numbers"),
    (Task.REGRESSION, 1, [b"a", b"b"], "needs numbers"),
    (Task.BINARY, 1, [], "has no values"),
    (Task.BINARY, 1, [0, 0, 0], "has one value (0) in all 3 examples"),
    (Task.REGRESSION, 1, [2.5] * 4, "has one value (2.5) in all 4 examples"),
])
def test_transformed_labels_that_do_not_fit_the_task(task, width, labels, message):
  with pytest.raises(LabelError) as info:
    task.check_labels(labels, width, where="label 'y'")
  assert message in str(info.value)


def test_every_chunk_of_a_label_stream_is_checked():
  """A split read batch by batch: a bad label in the last batch is found, and
  one value across every batch is one value."""
  with pytest.raises(LabelError, match="class id 2"):
    Task.BINARY.check_label_chunks([[0, 1]] * 50 + [[1, 2]], 1)
  with pytest.raises(LabelError, match="one value .* in all 6 examples"):
    Task.BINARY.check_label_chunks([[1, 1], [], [1, 1], [1, 1]], 1)
  assert Task.BINARY.check_label_chunks([[1, 1], [1, 0]], 1) == 4


def test_labels_that_fit():
  Task.BINARY.check_labels([0, 1, 1.0], 1)
  Task.MULTICLASS.check_labels([0, 1, 2, 2], 3)
  Task.REGRESSION.check_labels([0.5, 1e6, -3.0], 1)
  assert Task.MULTICLASS.output_width(4) == 4 and Task.BINARY.output_width(2) == 1
  with pytest.raises(ValueError, match="emits 1"):
    Task.MULTICLASS.check_width(1)


@pytest.mark.parametrize("task, classes, message", [
    (Task.BINARY, 3, "the binary task has 2 classes, not 3; use task multiclass"),
    (Task.BINARY, 1, "a classifier needs at least 2 classes, not 1"),
    (Task.MULTICLASS, 2, "the multiclass task needs >= 3 classes, not 2; use task binary"),
    (Task.REGRESSION, 2, "a regression label has no classes (got 2)"),
])
def test_the_class_count_rule_says_which_task_to_use(task, classes, message):
  """The one statement of the rule, which settings, custom_config, the CSV
  label check and the model widths all ask."""
  for check in (task.check_classes, task.output_width):
    with pytest.raises(ValueError) as info:
      check(classes)
    assert message in str(info.value)
  for fits, count in ((Task.BINARY, 2), (Task.MULTICLASS, 3), (Task.MULTICLASS, 10),
                      (Task.BINARY, None), (Task.MULTICLASS, None),
                      (Task.REGRESSION, None)):
    fits.check_classes(count)


def test_the_task_owns_its_metrics_plots_and_classes():
  assert [m.name for m in Task.BINARY.metrics][:2] == ["auc", "binary_accuracy"]
  assert Task.REGRESSION.metric("auc") is None
  assert not Task.REGRESSION.metric("mean_squared_error").higher_is_better
  assert Task.MULTICLASS.plots == ("MultiClassConfusionMatrixPlot",)
  assert Task.REGRESSION.plots == ()
  assert [t.fixed_classes for t in Task] == [2, None, None]
  assert [t.per_class for t in Task] == [False, True, False]
