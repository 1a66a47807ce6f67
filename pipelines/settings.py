"""Every setting of a distillation pipeline, in one typed object.

The command line and `--config` YAML fill a `Settings`; `create_pipeline`, the
Kubeflow compiler and the summary read it. Nothing downstream re-derives a
setting from flags, file names or the data.

Pydantic checks each value's type (strictly: a YAML string "false" is not a
bool), and the cross-field rules below, with the setting's name in the error.
Nothing here imports TensorFlow or TFX.
"""

from typing import Any, Dict, List, Literal, NamedTuple, Optional, Tuple, Union

import pydantic

from distill_components.distiller.tasks import Task
from distill_components.distiller import defaults
from distill_components.distiller import metrics

# The zero-code modules, used for every role the user leaves empty.
GENERIC_PREPROCESSING = "distill_pipelines.generic.preprocessing.preprocessing_fn"
GENERIC_TEACHER = "distill_pipelines.generic.teacher.run_fn"
GENERIC_TREE_TEACHER = "distill_pipelines.generic.tree_teacher.run_fn"
GENERIC_ENSEMBLE_TEACHER = "distill_pipelines.generic.ensemble_teacher.run_fn"
GENERIC_AUTO_TEACHER = "distill_pipelines.generic.auto_teacher.run_fn"


class TeacherType(NamedTuple):
  """A zero-code teacher: its Trainer module, the modules every process that
  loads it imports first (its custom ops), whether it writes out-of-fold models."""
  run_fn: str
  imports: Tuple[str, ...]
  writes_folds: bool


# The zero-code teachers by `teacher_type`.
TEACHER_TYPES = {
    "mlp": TeacherType(GENERIC_TEACHER, (), False),
    "gbt": TeacherType(GENERIC_TREE_TEACHER, ("tensorflow_decision_forests",), True),
    "ensemble": TeacherType(GENERIC_ENSEMBLE_TEACHER, ("tensorflow_decision_forests",),
                            True),
    "auto": TeacherType(GENERIC_AUTO_TEACHER, ("tensorflow_decision_forests",), True),
}
# The zero-code teacher by task, and its out-of-fold models, from
# bench/teachers.py (3 seeds per task): students distilled from trees beat
# those distilled from the MLP on the taxi binary and multi-class labels; on
# the regression label a student learning the trees' outputs on the rows they
# were fit on is worse than one trained alone (in-sample outputs are
# over-fit), one learning their out-of-fold outputs is better than alone.
# Out of fold changes nothing that counts on the classification labels, so
# they are spared its k more fits.
#
# bench/distill.py (3 seeds, the same student): on the regression label the
# mean of the trees (out of fold) and the network teaches better than the
# trees alone (MSE 9.29 +- 0.11 vs 9.57 +- 0.37; 9.90 alone); on the binary
# and multi-class labels it teaches worse than the trees (the network's
# classifier is the weaker and drags the mean). No one kind wins on every
# table (on pixel-like features the network beats the trees), so the
# default fits all three and keeps the best on the validation cut of the
# train split (auto: generic/auto_teacher.py).
DEFAULT_TEACHER_TYPES = {Task.BINARY: "auto", Task.MULTICLASS: "auto",
                         Task.REGRESSION: "auto"}
DEFAULT_TEACHER_FOLDS = {Task.REGRESSION: 5}
GENERIC_STUDENT = "distill_pipelines.generic.student.build_student"


class Gate(pydantic.BaseModel):
  """When the Evaluator blesses the student, against the teacher.

  `metric` is a TFMA metric name of the task (see `Task.metrics`;
  default: the task's main metric). `threshold` is an absolute bound: a floor
  when higher is better, a ceiling when lower is better (None: none).
  `max_drop` is how much worse than the teacher the student may be: in the
  metric's units for a bounded metric (AUC, accuracy), as a fraction of the
  teacher's value for an unbounded one (MSE: 0.1 = 10% worse).
  """
  model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

  metric: Optional[str] = None
  threshold: Optional[float] = None
  max_drop: Optional[float] = pydantic.Field(default=None, ge=0)


class NoRegressionGate(pydantic.BaseModel):
  """When the student may replace the model that is serving.

  The baseline is the latest student this pipeline blessed (TFX's
  `LatestBlessedModelStrategy`); on a first run there is none and only the
  fidelity gate applies. The gate metric may drop at most `max_drop` (in
  the metric's units if bounded, else a fraction; default 0.01 / 10%, however
  much the fidelity gate allows); classification log loss may grow at most
  `max_log_loss_increase` (a fraction of the serving model's); a binary
  student's calibration (mean prediction / mean label) must lie within
  1 +- `calibration_tolerance`.
  """
  model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

  enabled: bool = True
  max_drop: Optional[float] = pydantic.Field(default=None, ge=0)
  max_log_loss_increase: Optional[float] = pydantic.Field(default=0.05, ge=0)
  calibration_tolerance: Optional[float] = pydantic.Field(default=0.1, gt=0)


class LiteRTGate(pydantic.BaseModel):
  """The student as LiteRT float32 and int8 files (on transformed features),
  pushed inside the student's version (assets.extra/litert/); the int8 file
  only when it is at most `max_drop` worse than the float32 one on the gate
  metric (in its units when bounded, else a fraction; default 0.005 for
  AUC and accuracy, 0.02 for MSE). `enabled` False: no files, no gate."""
  model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

  enabled: bool = True
  max_drop: Optional[float] = pydantic.Field(default=None, ge=0)


class Settings(pydantic.BaseModel):
  """One pipeline's settings. See each field's description."""
  model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

  pipeline_name: str = pydantic.Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
  pipeline_root: str = pydantic.Field(min_length=1)
  data_root: str = pydantic.Field(min_length=1)
  input_pattern: Optional[str] = None
  serving_dir: Optional[str] = None

  # The label and the task.
  label: str = pydantic.Field(
      min_length=1, description="the raw CSV column the label comes from")
  label_key: Optional[str] = pydantic.Field(
      default=None, description="the transformed label's name (default: label)")
  raw_label_keys: Optional[List[str]] = pydantic.Field(
      default=None, description="raw columns serving requests lack "
      "(default: [label])")
  task: Task
  label_values: Optional[List[str]] = pydantic.Field(
      default=None, description="classification: the raw label values in "
      "class-id order, for the generic preprocessing")
  num_classes: Optional[int] = pydantic.Field(default=None, ge=2)

  # User code: a module file (.py) or a Python path to the function. None:
  # the generic, zero-code module of that role.
  preprocessing: Optional[str] = None
  teacher: Optional[str] = None
  student: Optional[str] = None
  teacher_model: Optional[Union[str, List[str]]] = pydantic.Field(
      default=None, description="an existing teacher (a Model artifact "
      "directory holding Format-Serving/), imported instead of trained; or a "
      "list of them: several teachers whose outputs the student learns "
      "averaged (the fidelity gate compares the student with the first)")
  teacher_outputs: Optional[Literal["logits", "probabilities"]] = None
  teacher_type: Optional[Literal["auto", "mlp", "gbt", "ensemble"]] = pydantic.Field(
      default=None, description="the zero-code teacher: auto (fits the three "
      "below and keeps the best on the validation cut), mlp (a wide network), "
      "gbt (gradient-boosted trees, TF-DF) or ensemble (the mean of both); "
      "default by task, DEFAULT_TEACHER_TYPES. Only without a teacher of your own")
  teacher_imports: List[str] = pydantic.Field(
      default_factory=list, description="Python modules to import before the "
      "teacher is loaded (the Distiller, the Evaluator): those registering its "
      "custom ops, e.g. tensorflow_decision_forests for a TF-DF teacher")
  teacher_folds: Optional[int] = pydantic.Field(
      default=None, ge=0, description="k >= 2: the teacher's Trainer also fits "
      "k out-of-fold models (the zero-code tree teacher does) and the student "
      "learns each train row's soft label from the one not fit on it; 0: the "
      "teacher's own outputs; unset: DEFAULT_TEACHER_FOLDS for the zero-code "
      "tree teacher, else 0")
  custom_config: Dict[str, Any] = pydantic.Field(default_factory=dict)

  # The transfer set: examples the student learns the teacher's outputs on.
  unlabeled_root: Optional[str] = pydantic.Field(
      default=None, description="a directory of CSV files of rows without the "
      "label (its columns may be absent): the teacher labels them and the "
      "student learns its outputs on them too (soft term only)")
  synthetic_ratio: float = pydantic.Field(
      default=0.0, ge=0, description="synthetic rows per train example, each a "
      "train row with some features swapped with other rows', labelled by the "
      "teacher like the unlabeled rows; 0: none")

  # Training.
  train_steps: int = pydantic.Field(default=400, gt=0)
  eval_steps: int = pydantic.Field(default=150, gt=0)
  distill_steps: int = pydantic.Field(default=1000, gt=0)
  # The Distiller's defaults, and its range checks (the validators below).
  temperature: float = defaults.DEFAULT_TEMPERATURE
  alpha: float = defaults.DEFAULT_ALPHA  # weighs the soft (teacher) term
  batch_size: int = pydantic.Field(default=defaults.DEFAULT_BATCH_SIZE, gt=0)
  learning_rate: float = pydantic.Field(default=defaults.DEFAULT_LEARNING_RATE, gt=0)
  seed: int = pydantic.Field(
      default=0, ge=0, description="seeds Python, NumPy and TensorFlow at the "
      "start of a local run (so a Trainer module that sets no seed of its own "
      "trains the same teacher on a rerun) and in the Distiller before the "
      "student is built")
  cache_teacher_outputs: bool = False
  validation_fraction: float = pydantic.Field(
      default=0.1, gt=0, le=0.5, description="the share of train rows (by a "
      "hash of their features) no model trains on: the zero-code teacher's "
      "candidates and the two students (distilled, and the same student "
      "trained alone) are compared there, and the better goes on")
  require_gain: bool = pydantic.Field(
      default=False, description="stop before the Pusher, with its own exit "
      "status, when the student trained alone beats the distilled one on the "
      "validation cut, instead of pushing the student trained alone")
  teacher_labelling: Literal["beam", "in_process"] = pydantic.Field(
      default="in_process", description="where the Distiller's once-per-example "
      "teacher pass (cache_teacher_outputs, out-of-fold teachers, a transfer "
      "set) runs: a Beam job on the pipeline's Beam runner (beam_args; beam "
      "asks for the pass by itself), or in the Distiller's own process")

  gate: Gate = Gate()
  litert: LiteRTGate = LiteRTGate()
  no_regression: NoRegressionGate = NoRegressionGate()
  slice_by: List[str] = pydantic.Field(
      default_factory=list, description="raw columns whose every slice must "
      "pass the gates, not only the overall figure")
  min_slice_size: int = pydantic.Field(
      default=200, ge=1, description="slices of fewer eval examples are "
      "reported but do not gate")

  # Data validation and retraining.
  schema_file: Optional[str] = pydantic.Field(
      default=None, description="a curated schema (schema.pbtxt or its "
      "directory), imported instead of inferring one from each span")

  reuse_teacher_spans: int = pydantic.Field(
      default=0, ge=0, description="reuse the latest teacher the pipeline "
      "trained while the newest span is fewer than this many spans past the "
      "one it was trained on (retrained every N spans); 0: train one every run")

  # None given: Beam's DirectRunner in the pipeline's process; the gates
  # use a process per core on large eval splits (components/gates/evaluator.py).
  beam_args: List[str] = pydantic.Field(default_factory=list)
  enable_cache: bool = True

  @pydantic.field_validator("task", mode="before")
  @classmethod
  def _task(cls, value):
    return Task.parse(value)

  @pydantic.field_validator("temperature")
  @classmethod
  def _temperature(cls, value: float) -> float:
    return defaults.check_temperature(value)

  @pydantic.field_validator("alpha")
  @classmethod
  def _alpha(cls, value: float) -> float:
    return defaults.check_alpha(value)

  @pydantic.model_validator(mode="after")
  def _consistent(self) -> "Settings":
    if self.label_values is not None:
      if len(set(self.label_values)) != len(self.label_values):
        raise ValueError(f"label_values repeats a value: {self.label_values}")
      if self.num_classes not in (None, len(self.label_values)):
        raise ValueError(f"num_classes is {self.num_classes} but label_values "
                         f"lists {len(self.label_values)}")
    classes = len(self.label_values) if self.label_values else self.num_classes
    self.task.check_classes(classes)
    if self.task is Task.MULTICLASS and classes is None and self.student is None:
      raise ValueError("the generic student needs the number of classes: set "
                       "num_classes or label_values")
    if self.reuse_teacher_spans and "{SPAN}" not in (self.input_pattern or ""):
      raise ValueError("reuse_teacher_spans counts spans: input_pattern must hold "
                       "{SPAN} (e.g. 'span-{SPAN}/*.csv')")
    if self.teacher_model is not None and not self.teacher_model:
      raise ValueError("teacher_model is a directory or a non-empty list of them")
    if self.teacher_model and self.teacher:
      raise ValueError("teacher_model (an existing teacher) and teacher (code "
                       "to train one) exclude each other; give one")
    if self.teacher_type and (self.teacher or self.teacher_model):
      raise ValueError("teacher_type picks the zero-code teacher; with a "
                       "teacher of your own (teacher or teacher_model) leave it "
                       "unset, and name the modules it needs in teacher_imports")
    if self.teacher_folds == 1:
      raise ValueError("teacher_folds is 0 (off) or a number of folds, at least 2")
    if self.teacher_folds and self.teacher_model:
      raise ValueError("teacher_folds needs a teacher trained in this run; an "
                       "existing teacher (teacher_model) was fit on other rows, "
                       "so leave teacher_folds unset")
    if (self.teacher_folds and not self.teacher
        and not TEACHER_TYPES[self.zero_code_teacher].writes_folds):
      raise ValueError("teacher_folds: the zero-code MLP teacher writes no "
                       "out-of-fold models; use teacher_type gbt or ensemble, or a "
                       "teacher module that writes them "
                       "(distill_components.distiller.folds)")
    if self.synthetic_ratio and self.teacher_model:
      raise ValueError("synthetic_ratio: synthetic rows are mixed from this run's "
                       "transformed features, which an existing teacher "
                       "(teacher_model, trained on another Transform) does not "
                       "read; use unlabeled_root instead")
    if any(not m or not all(p.isidentifier() for p in m.split("."))
           for m in self.teacher_imports):
      raise ValueError(f"teacher_imports holds a name that is not a Python "
                       f"module path: {self.teacher_imports}")
    metrics.gate_metric(self.task, self.gate)  # a metric the task measures
    if self.label in self.slice_by:
      raise ValueError(f"slice_by holds the label {self.label!r}: slice by "
                       "features, not by the label")
    if len(set(self.slice_by)) != len(self.slice_by):
      raise ValueError(f"slice_by repeats a column: {self.slice_by}")
    if self.preprocessing is None and self.label_key not in (None, self.label):
      raise ValueError(f"label_key {self.label_key!r} differs from label "
                       f"{self.label!r}, but the generic preprocessing writes the "
                       "label under its own name: leave label_key unset")
    return self

  # What the rest of the code reads, derived in one place.
  @property
  def transformed_label(self) -> str:
    return self.label_key or self.label

  @property
  def teacher_models(self) -> List[str]:
    """The existing teachers to import (teacher_model as a list); [] trains one."""
    if not self.teacher_model:
      return []
    return ([self.teacher_model] if isinstance(self.teacher_model, str)
            else list(self.teacher_model))

  @property
  def serving_excluded(self) -> List[str]:
    """Raw columns serving requests do not carry."""
    return list(self.raw_label_keys if self.raw_label_keys is not None
                else [self.label])

  @property
  def classes(self) -> Optional[int]:
    if not self.task.is_classification:
      return None
    if self.task.fixed_classes:
      return self.task.fixed_classes
    return len(self.label_values) if self.label_values else self.num_classes

  @property
  def serving_model_dir(self) -> str:
    return self.serving_dir or self.pipeline_root.rstrip("/") + "/serving_model"

  @property
  def preprocessing_code(self) -> str:
    return self.preprocessing or GENERIC_PREPROCESSING

  @property
  def folds(self) -> int:
    """The out-of-fold models the teacher fits: teacher_folds, else the
    zero-code tree (or ensemble) teacher's default for the task, else 0."""
    if self.teacher_folds is not None:
      return self.teacher_folds
    if (self.teacher or self.teacher_model
        or not TEACHER_TYPES[self.zero_code_teacher].writes_folds):
      return 0
    return DEFAULT_TEACHER_FOLDS.get(self.task, 0)

  @property
  def zero_code_teacher(self) -> str:
    """The zero-code teacher's type: teacher_type, else the task's default."""
    return self.teacher_type or DEFAULT_TEACHER_TYPES[self.task]

  @property
  def teacher_code(self) -> str:
    return self.teacher or TEACHER_TYPES[self.zero_code_teacher].run_fn

  @property
  def teacher_modules(self) -> List[str]:
    """What every process loading the teacher imports first: teacher_imports,
    and the zero-code teacher's own (TF-DF's for gbt)."""
    own = () if self.teacher or self.teacher_model else (
        TEACHER_TYPES[self.zero_code_teacher].imports)
    return list(dict.fromkeys([*self.teacher_imports, *own]))

  @property
  def student_code(self) -> str:
    return self.student or GENERIC_STUDENT

  def module_config(self) -> Dict[str, Any]:
    """The `custom_config` every module receives (Transform, Trainer, Distiller).

    The generic modules read these keys (`distill_pipelines.generic.config`);
    a user's module may read them too, and the user's own custom_config wins.
    """
    from distill_pipelines.generic import config as keys  # pylint: disable=g-import-not-at-top
    values = {
        keys.LABEL: self.label,
        keys.LABEL_KEY: self.transformed_label,
        keys.RAW_LABEL_KEYS: self.serving_excluded,
        keys.TASK: self.task.value,
        keys.NUM_CLASSES: self.classes,
        keys.LABEL_VALUES: self.label_values,
        keys.BATCH_SIZE: self.batch_size,
        keys.LEARNING_RATE: self.learning_rate,
    }
    if self.folds:
      values[keys.TEACHER_FOLDS] = self.folds
    values[keys.VALIDATION_FRACTION] = self.validation_fraction
    values[keys.CHOICE_METRIC] = metrics.gate_metric(self.task, self.gate).name
    values.update(self.custom_config)
    return values

  def replace(self, **changes) -> "Settings":
    """A copy with `changes`, validated again."""
    return Settings.model_validate({**self.model_dump(), **changes})


def is_module_file(code: str) -> bool:
  """A module file path (…py), as opposed to a Python path to a function."""
  return code.endswith(".py") or "/" in code or "\\" in code


def describe_errors(error: pydantic.ValidationError, name_of=None) -> str:
  """One line per wrong setting, named by `name_of(loc)` (the command line
  gives its flag's name) or by its place in Settings."""
  lines = []
  for item in error.errors():
    name = ((name_of(item["loc"]) if name_of and item["loc"] else None)
            or ".".join(str(p) for p in item["loc"]).replace("_", "-") or "settings")
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] not in ("value_error",) and "input" in item:
      message += f" (got {item['input']!r})"
    lines.append(f"{name}: {message}")
  return "; ".join(lines)
