"""Defaults for the taxi distillation pipeline; every runner can override them."""
import os

from distill_pipelines.taxi import features

PIPELINE_NAME = "taxi-distillation"

# The taxi modules sit beside this file, so they are found in a source checkout,
# an installed wheel and the Kubeflow image alike.
_TAXI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "taxi")
PREPROCESSING_MODULE = os.path.join(_TAXI_DIR, "preprocessing.py")
TEACHER_MODULE = os.path.join(_TAXI_DIR, "teacher.py")
STUDENT_MODULE = os.path.join(_TAXI_DIR, "student.py")
# The same functions by Python path, for images with this project installed.
PREPROCESSING_FN = "distill_pipelines.taxi.preprocessing.preprocessing_fn"
TEACHER_RUN_FN = "distill_pipelines.taxi.teacher.run_fn"
BUILD_STUDENT = "distill_pipelines.taxi.student.build_student"

LABEL_KEY = features.LABEL_KEY
RAW_LABEL_KEYS = features.RAW_LABEL_KEYS
LABEL_SOURCE_COLUMNS = features.LABEL_SOURCE_COLUMNS

# The 843k-weight teacher overfits the 10k-row train split past ~400 steps of
# 256 examples (eval AUC 0.94 at 300 steps, 0.93 at 1000).
TRAIN_STEPS = 400
EVAL_STEPS = 150
DISTILL_TRAIN_STEPS = 1000
TEMPERATURE = 2.0
ALPHA = 0.9

# Blessing: the student's AUC must reach AUC_FLOOR and lie no more than
# MAX_AUC_DROP below the teacher's.
AUC_FLOOR = 0.6
MAX_AUC_DROP = 0.01

