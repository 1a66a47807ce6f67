"""The taxi demo's settings: the embedded Chicago taxi CSV, its modules, its label.

`tfx-distill run` with no `--data-root` and no `--label` runs this.
"""
import importlib.util
import os
from typing import Any

from distill_components.distiller import defaults
from distill_pipelines.settings import Settings
from distill_pipelines.taxi import features

PIPELINE_NAME = "taxi-distillation"

# The taxi modules by Python path: importable wherever this project is
# installed (the local venv, the Kubeflow image).
PREPROCESSING_FN = "distill_pipelines.taxi.preprocessing.preprocessing_fn"
TEACHER_RUN_FN = "distill_pipelines.taxi.teacher.run_fn"
TREE_TEACHER_RUN_FN = "distill_pipelines.taxi.tree_teacher.run_fn"
BUILD_STUDENT = "distill_pipelines.taxi.student.build_student"
# The student as a module file, for tests and benchmarks that use that form.
STUDENT_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "student.py")

# The raw column the label is computed from, and the label's name after
# Transform: big tipper, tips > 20% of the fare.
LABEL = "tips"
LABEL_KEY = features.LABEL_KEY
RAW_LABEL_KEYS = features.RAW_LABEL_KEYS
LABEL_SOURCE_COLUMNS = features.LABEL_SOURCE_COLUMNS
READ_COLUMNS = features.READ_COLUMNS

# The demo's teacher: gradient-boosted trees (TF-DF), fixed, chosen by
# bench/teachers.py over the MLP teacher (`--teacher-type mlp`): on the taxi
# table the trees generalise better, and the student distilled from them beats
# the same student trained alone. Fixed rather than the zero-code `auto`
# choice, so the demo's teacher is the same on every run. Loading them needs
# TF-DF's ops imported.
TEACHER_TYPE = "gbt"
# The MLP teacher's steps (the trees read the train split once): its 843k
# weights overfit the 10k-row train split past ~400 steps of 256 examples
# (eval AUC 0.94 at 300 steps, 0.93 at 1000).
TRAIN_STEPS = 400
EVAL_STEPS = 150
DISTILL_TRAIN_STEPS = 1000
# From bench/distill.py's T x alpha grid over four tasks (the smallest worst
# gap to each task's best cell, in seed spreads): the project's defaults.
TEMPERATURE = defaults.DEFAULT_TEMPERATURE
ALPHA = defaults.DEFAULT_ALPHA

# Every day of the week must pass the gates on its own: a student that serves
# weekend trips worse is not pushed. Not payment_type: cash trips carry no
# recorded tips (4 positives in 9,909), so a cash slice's AUC is noise.
SLICE_BY = ["trip_start_day"]

# Blessing: the student's AUC must reach AUC_FLOOR and lie no more than
# MAX_AUC_DROP below the teacher's.
AUC_FLOOR = 0.6
MAX_AUC_DROP = 0.01


def embedded_data_root() -> str:
  """The Chicago taxi CSV directory that ships inside the tfx package.

  Found without importing tfx, which is slow.
  """
  spec = importlib.util.find_spec("tfx")
  if spec is None or not spec.submodule_search_locations:
    raise ValueError("The tfx package is not installed; run `make env`.")
  return os.path.join(list(spec.submodule_search_locations)[0], "examples",
                      "chicago_taxi_pipeline", "data", "simple")


def teacher_settings(teacher_type: str) -> dict:
  """The demo's teacher of `teacher_type` ("mlp" or "gbt") as settings."""
  if teacher_type == "gbt":
    return {"teacher": TREE_TEACHER_RUN_FN,
            "teacher_imports": ["tensorflow_decision_forests"]}
  if teacher_type == "mlp":
    return {"teacher": TEACHER_RUN_FN, "teacher_imports": []}
  raise ValueError(f"The taxi demo's teachers are 'mlp' and 'gbt', not "
                   f"{teacher_type!r}; the zero-code auto and ensemble teachers are "
                   "for your own data (--label).")


def settings(**overrides: Any) -> Settings:
  """The taxi demo's `Settings`; `overrides` (pipeline_root, data_root, ...) win."""
  values = dict(
      pipeline_name=PIPELINE_NAME, label=LABEL, label_key=LABEL_KEY,
      raw_label_keys=list(RAW_LABEL_KEYS), task="binary",
      preprocessing=PREPROCESSING_FN, **teacher_settings(TEACHER_TYPE),
      student=BUILD_STUDENT, train_steps=TRAIN_STEPS, eval_steps=EVAL_STEPS,
      distill_steps=DISTILL_TRAIN_STEPS, temperature=TEMPERATURE, alpha=ALPHA,
      gate={"metric": "auc", "threshold": AUC_FLOOR, "max_drop": MAX_AUC_DROP},
      slice_by=list(SLICE_BY))
  values.update(overrides)
  return Settings.model_validate(values)
