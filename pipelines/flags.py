"""The flags of a pipeline, read into one `Settings`.

`tfx-distill run` (pipelines/cli.py) and `tfx-distill compile`
(kubeflow/cli.py) take the same pipeline flags: `add_pipeline_flags` declares
them, `apply_config` reads a YAML `--config` file whose keys are the flag
names (typed like the flags: a YAML "false" is not a switch), and
`settings_from_args` fills `Settings` (pipelines/settings.py), checking the
data where it can be read. Every check runs before TFX is imported (importing
it takes half a minute here), so a bad flag or data directory fails at once
with an `InputError` that names the problem.
"""

import argparse
import glob
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from distill_components.distiller.tasks import Task
# The demo that runs when no --label is given: the embedded Chicago taxi CSV.
from distill_pipelines.taxi import config as demo

Handler = Callable[[argparse.Namespace], int]


class InputError(ValueError):
  """A command-line input that cannot work; the message says why."""


def check_data_root(data_root: str, flag: str = "--data-root") -> List[str]:
  """Returns the CSV files under data_root; raises InputError if unusable."""
  if not os.path.isdir(data_root):
    raise InputError(f"{flag} {data_root!r} is not a directory.")
  files = sorted(glob.glob(os.path.join(data_root, "*.csv")))
  if not files:
    found = sorted(os.listdir(data_root))[:5]
    raise InputError(
        f"{flag} {data_root!r} holds no .csv file (found {found or 'nothing'}); "
        "CsvExampleGen needs CSV files with a header row.")
  return files


def check_input_pattern(data_root: str, pattern: str) -> List[str]:
  """The files ExampleGen will read for `pattern` under data_root: with
  {SPAN} (and {VERSION}), those of the newest span (and its newest version),
  as ExampleGen resolves them."""
  if not os.path.isdir(data_root):
    raise InputError(f"--data-root {data_root!r} is not a directory.")
  if "{VERSION}" in pattern and "{SPAN}" not in pattern:
    raise InputError("--input-pattern has {VERSION} without {SPAN}; ExampleGen "
                     "needs both.")
  wildcard = pattern.replace("{SPAN}", "*").replace("{VERSION}", "*")
  files = sorted(glob.glob(os.path.join(data_root, wildcard)))
  if not files:
    raise InputError(f"--input-pattern {pattern!r} matches no file under "
                     f"{data_root!r}.")
  if "{SPAN}" not in pattern:
    return files
  from distill_pipelines import table  # pylint: disable=g-import-not-at-top
  keyed = table.span_files(data_root, pattern)
  if not keyed:
    raise InputError(f"--input-pattern {pattern!r}: no file under {data_root!r} "
                     "has a number where {SPAN} is.")
  return keyed[max(keyed)]


def check_pattern_inside(pattern: str) -> None:
  """--input-pattern names files under --data-root: not an absolute path, no
  '..' climbing out (a typo or a hostile config would read other data)."""
  parts = pattern.replace("\\", "/").split("/")
  if pattern.startswith("/") or "://" in pattern or ".." in parts:
    raise InputError(
        f"--input-pattern {pattern!r} reaches outside --data-root (an absolute "
        "path or '..'); give a pattern relative to --data-root, or pass "
        "--allow-input-outside-data-root if that is what you mean.")


def check_table(files: Sequence[str], read_columns: Sequence[str] = ()) -> None:
  """Every cell of the files ExampleGen will read, checked before any work;
  `read_columns`: columns the preprocessing reads, which may not be empty in
  every row."""
  from distill_pipelines import table  # pylint: disable=g-import-not-at-top
  try:
    table.check_cells(table.scan(files), read_columns)
  except table.TableError as e:
    raise InputError(str(e)) from e


def _whole_number(text: str) -> int:
  try:
    return int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive_int(text: str) -> int:
  value = _whole_number(text)
  if value <= 0:
    raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
  return value


def _non_negative_int(text: str) -> int:
  value = _whole_number(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
  return value


def _folds(text: str) -> int:
  value = _non_negative_int(text)
  if value == 1:
    raise argparse.ArgumentTypeError("0 (off) or a number of folds >= 2, got 1")
  return value


def _float_in(low: float, high: float, low_open: bool = False):
  def parse(text: str) -> float:
    try:
      value = float(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value > high or value < low or (low_open and value == low):
      bound = "(" if low_open else "["
      raise argparse.ArgumentTypeError(f"must lie in {bound}{low}, {high}], got {value}")
    return value
  return parse


def _code_flag(text: str) -> str:
  """A module file (checked to exist) or a Python path to a function."""
  from distill_pipelines.settings import is_module_file  # pylint: disable=g-import-not-at-top
  if is_module_file(text):
    if not os.path.isfile(text):
      raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    return os.path.abspath(text)
  if text.count(".") < 1 or not all(p.isidentifier() for p in text.split(".")):
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither a .py module file nor a Python path such as "
        "my_pkg.module.function")
  return text


def add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
  """The settings `run` and `compile` share: data, label, code, training, gate."""
  parser.add_argument("--config", help="YAML file of flag values (keys named "
                      "like the flags); flags on the command line win")
  parser.add_argument("--pipeline-name", default=None,
                      help=f"default: {demo.PIPELINE_NAME} for the demo, else "
                      "distillation")
  data = parser.add_argument_group("data and label")
  data.add_argument("--input-pattern", default=None,
                    help="files to read under --data-root; may hold {SPAN} (and "
                    "{VERSION}) so each run reads the newest span, e.g. "
                    "'span-{SPAN}/*.csv' (default: every file)")
  data.add_argument("--allow-input-outside-data-root", action="store_true",
                    default=None, help="let --input-pattern be absolute or climb "
                    "out of --data-root with '..' (refused by default)")
  data.add_argument("--serving-dir", default=None,
                    help="Pusher destination; each blessed student becomes a new "
                    "numbered version under it (default: PIPELINE_ROOT/serving_model)")
  data.add_argument("--label", default=None,
                    help="the CSV column to predict (required with --data-root)")
  data.add_argument("--label-key", default=None,
                    help="the label's name after Transform, when a preprocessing "
                    "module computes it under another name (default: --label)")
  data.add_argument("--raw-label-key", action="append", dest="raw_label_keys",
                    default=None, metavar="COLUMN",
                    help="a raw column serving requests lack; repeat for more "
                    "(default: the --label column)")
  data.add_argument("--task", choices=[t.value for t in Task], default=None,
                    help="default: inferred from the label's values")
  data.add_argument("--num-classes", type=_positive_int, default=None,
                    help="multiclass: the number of classes, when the data "
                    "cannot be read here (a remote --data-root)")
  data.add_argument("--unlabeled-root", default=None, metavar="DIR",
                    help="a transfer set: CSV files of rows without the label, "
                    "which the teacher labels for the student (soft term only)")
  data.add_argument("--synthetic-ratio", type=_float_in(0, float("inf")),
                    default=None, metavar="R",
                    help="a synthetic transfer set: R rows per train example, "
                    "each a train row with some features taken from other "
                    "rows, labelled by the teacher (default 0: none)")
  code = parser.add_argument_group(
      "your code: a module file (.py) or a Python path to the function; "
      "default: the zero-code generic module")
  code.add_argument("--preprocessing-module", type=_code_flag, default=None,
                    help="defines preprocessing_fn(inputs[, custom_config])")
  code.add_argument("--teacher-module", type=_code_flag, default=None,
                    help="a Trainer module: defines run_fn(fn_args)")
  code.add_argument("--student-module", type=_code_flag, default=None,
                    help="defines build_student(fn_args)")
  code.add_argument("--teacher-model", action="append", default=None, metavar="DIR",
                    help="an existing teacher, imported instead of trained: a "
                    "SavedModel directory, or a Model artifact holding "
                    "Format-Serving/; repeat for several teachers, whose "
                    "outputs the student learns averaged")
  code.add_argument("--teacher-type", choices=["auto", "mlp", "gbt", "ensemble"],
                    default=None,
                    help="the zero-code teacher, when you bring none: auto "
                    "(default: fits the three below, keeps the best on the "
                    "validation cut), ensemble "
                    "(the mean of the trees and the network), mlp (a "
                    "wide network) or gbt (gradient-boosted trees, TF-DF; the "
                    "distilled student still serves without TF-DF)")
  code.add_argument("--teacher-imports", action="append", default=None,
                    metavar="MODULE", help="a Python module to import before the "
                    "teacher is loaded, registering its custom ops (a TF-DF "
                    "teacher of your own: tensorflow_decision_forests); repeat "
                    "for more")
  code.add_argument("--teacher-folds", type=_folds, default=None, metavar="K",
                    help="soft labels out of fold: the tree teacher also fits K "
                    "models, each without one K-th of the train rows, and each "
                    "row's soft label comes from the one that did not see it "
                    "(K >= 2; 0: off)")
  code.add_argument("--teacher-outputs", choices=["logits", "probabilities"],
                    default=None, help="what the teacher emits, when its final "
                    "layer does not show it")
  train = parser.add_argument_group("training")
  train.add_argument("--train-steps", type=_positive_int, default=None,
                     help="an MLP teacher's training steps (a tree teacher reads the "
                     "train split once)")
  train.add_argument("--eval-steps", type=_positive_int, default=None)
  train.add_argument("--distill-steps", type=_positive_int, default=None,
                     help="student (Distiller) training steps")
  train.add_argument("--temperature", type=_float_in(0, float("inf"), low_open=True),
                     default=None)
  train.add_argument("--alpha", type=_float_in(0, 1), default=None,
                     help="weight of the soft (teacher) term; 1 = soft labels only")
  train.add_argument("--batch-size", type=_positive_int, default=None)
  train.add_argument("--learning-rate", type=_float_in(0, float("inf"), low_open=True),
                     default=None)
  train.add_argument("--seed", type=_non_negative_int, default=None,
                     help="seeds the run's process and the Distiller: a rerun on the "
                     "same data and code trains the same models (default 0)")
  train.add_argument("--validation-fraction", type=_float_in(0, 0.5, low_open=True),
                     default=None, help="the share of train rows held out to "
                     "choose the teacher (zero-code) and the student (distilled "
                     "or trained alone), by a hash of their features (default 0.1)")
  train.add_argument("--require-gain", action="store_true", default=None,
                     help="stop before the Pusher (exit 8) when the student "
                     "trained alone beats the distilled one, instead of pushing it")
  train.add_argument("--cache-teacher-outputs", action="store_true", default=None,
                     help="Distiller: compute the teacher's outputs once per "
                     "train example and reuse them every epoch")
  train.add_argument("--teacher-labelling", choices=["beam", "in_process"],
                     default=None,
                     help="where that once-per-example pass runs (also for "
                     "out-of-fold teachers and --unlabeled-root): beam (a Beam "
                     "job on the pipeline's Beam runner, --beam-arg; asks for "
                     "the pass by itself) or in_process (default: in_process, "
                     "faster on one machine)")
  gate = parser.add_argument_group(
      "gates: the fidelity gate (student vs teacher) and the no-regression "
      "gate (student vs the serving model) must both bless before a push")
  gate.add_argument("--gate-metric", default=None,
                    help="the TFMA metric that gates (default per task: auc, "
                    "sparse_categorical_accuracy, mean_squared_error)")
  gate.add_argument("--gate-threshold", "--auc-floor", type=float, default=None,
                    help="absolute bound on the gate metric: a floor when higher "
                    "is better, a ceiling when lower is better")
  gate.add_argument("--gate-max-drop", "--max-auc-drop", type=_float_in(0, float("inf")),
                    default=None,
                    help="how much worse than the teacher the student may be: in "
                    "the metric's units for AUC/accuracy, a fraction of the "
                    "teacher's value for unbounded metrics (MSE)")
  gate.add_argument("--serving-max-drop", type=_float_in(0, float("inf")),
                    default=None, help="how much worse than the serving model the "
                    "student may be on the gate metric (default 0.01, or 10%% if unbounded)")
  gate.add_argument("--max-log-loss-increase", type=_float_in(0, float("inf")),
                    default=None, help="classification: how much the log loss may "
                    "grow over the serving model's, as a fraction (default 0.05)")
  gate.add_argument("--calibration-tolerance", type=_float_in(0, float("inf"),
                                                              low_open=True),
                    default=None, help="binary: the student's mean prediction / "
                    "mean label must lie within 1 +- this (default 0.1)")
  gate.add_argument("--no-serving-gate", action="store_true", default=None,
                    help="skip the no-regression gate: push whatever the fidelity "
                    "gate blesses")
  gate.add_argument("--slice-by", action="append", default=None, metavar="COLUMN",
                    help="a raw column each of whose slices must pass the gates; "
                    "repeat for more (the demo: trip_start_day)")
  gate.add_argument("--min-slice-size", type=_positive_int, default=None,
                    help="slices with fewer eval examples are reported, not gated "
                    "(default 200)")
  retrain = parser.add_argument_group("retraining")
  retrain.add_argument("--reuse-teacher-spans", type=_positive_int, default=None,
                       metavar="N", help="reuse the latest teacher this pipeline "
                       "trained while it is fewer than N spans older than the "
                       "newest span (needs {SPAN} in --input-pattern); the "
                       "teacher is retrained every N spans (default: every run)")
  retrain.add_argument("--schema", default=None, metavar="FILE",
                       help="a curated schema.pbtxt the data is validated against "
                       "(default: the schema the pipeline's first run inferred, "
                       "kept)")
  parser.add_argument("--beam-arg", action="append", dest="beam_args", default=None,
                      metavar="--FLAG=VALUE",
                      help="a Beam pipeline argument; repeat for more "
                      "(default: --direct_num_workers=1)")
  parser.add_argument("--no-cache", action="store_true", default=None,
                      help="rerun every component even when its inputs did not change")


def apply_config(parser: argparse.ArgumentParser, argv: Sequence[str],
                  args: argparse.Namespace) -> argparse.Namespace:
  """Reparses argv with the --config file's values as defaults."""
  if not getattr(args, "config", None):
    return args
  import yaml  # pylint: disable=g-import-not-at-top
  try:
    with open(args.config, encoding="utf-8") as f:
      values = yaml.safe_load(f) or {}
  except (OSError, yaml.YAMLError) as e:
    raise InputError(f"--config {args.config!r} cannot be read: {e}") from e
  if not isinstance(values, dict):
    raise InputError(f"--config {args.config!r} must be a mapping of flag names "
                     f"to values; it holds a {type(values).__name__}.")
  sub = subparsers(parser)[args.command]
  # A setting is named like its flag: "beam-arg" (or beam_arg) for --beam-arg.
  known = {opt.lstrip("-").replace("-", "_"): a
           for a in sub._actions if a.dest not in ("help", "config")  # pylint: disable=protected-access
           for opt in a.option_strings}
  defaults = {}
  for key, value in values.items():
    name = str(key).lstrip("-").replace("-", "_")
    if name not in known:
      raise InputError(f"--config {args.config!r}: unknown setting {key!r}; known: "
                       f"{', '.join(sorted(k.replace('_', '-') for k in known))}.")
    action = known[name]
    defaults[action.dest] = _config_value(action, value, f"--config {args.config!r}: {key}")
  sub.set_defaults(**defaults)
  return parser.parse_args(argv)


def _config_value(action: argparse.Action, value, where: str):
  """A YAML value checked like its flag: a switch takes a YAML bool, a
  repeatable flag a list (or one value), every other flag one scalar."""
  if action.nargs == 0:  # a switch such as --no-cache
    if not isinstance(value, bool):
      raise InputError(f"{where}: expected true or false, got {value!r} "
                       f"({type(value).__name__}).")
    return value
  repeatable = isinstance(action, argparse._AppendAction)  # pylint: disable=protected-access
  values = value if isinstance(value, list) and repeatable else [value]
  checked = []
  for item in values:
    if isinstance(item, (list, dict, bool)) or item is None:
      raise InputError(f"{where}: expected {'a list of values' if repeatable else 'one value'}"
                       f", got {item!r}.")
    if action.type is not None:
      try:
        item = action.type(str(item))
      except (argparse.ArgumentTypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from e
    elif action.choices is not None and str(item) not in action.choices:
      raise InputError(f"{where}: expected one of {list(action.choices)}, got {item!r}.")
    checked.append(item if action.type is not None else str(item))
  return checked if repeatable else checked[0]


def subparsers(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      return action.choices
  return {}


def require(args: argparse.Namespace, *names: str) -> None:
  missing = [n for n in names if not getattr(args, n)]
  if missing:
    raise InputError(
        f"`{args.command}` needs {', '.join('--' + n.replace('_', '-') for n in missing)} "
        "(on the command line or in --config).")


def is_remote(path: str) -> bool:
  return "://" in path


# Flag dest -> Settings field, for the flags that map one to one.
_FIELDS = {
    "pipeline_name": "pipeline_name", "input_pattern": "input_pattern",
    "label_key": "label_key", "raw_label_keys": "raw_label_keys",
    "task": "task", "num_classes": "num_classes",
    "preprocessing_module": "preprocessing", "teacher_module": "teacher",
    "student_module": "student", "teacher_outputs": "teacher_outputs",
    "teacher_type": "teacher_type", "teacher_imports": "teacher_imports",
    "teacher_folds": "teacher_folds", "synthetic_ratio": "synthetic_ratio",
    "train_steps": "train_steps", "eval_steps": "eval_steps",
    "distill_steps": "distill_steps", "temperature": "temperature",
    "alpha": "alpha", "batch_size": "batch_size",
    "learning_rate": "learning_rate", "seed": "seed",
    "validation_fraction": "validation_fraction", "require_gain": "require_gain",
    "cache_teacher_outputs": "cache_teacher_outputs",
    "teacher_labelling": "teacher_labelling", "beam_args": "beam_args",
    "slice_by": "slice_by", "min_slice_size": "min_slice_size",
    "reuse_teacher_spans": "reuse_teacher_spans",
}
_NO_REGRESSION_FIELDS = {
    "serving_max_drop": "max_drop", "max_log_loss_increase": "max_log_loss_increase",
    "calibration_tolerance": "calibration_tolerance"}
_GATE_FIELDS = {"gate_metric": "metric", "gate_threshold": "threshold",
                "gate_max_drop": "max_drop"}


# The function each role's module file must define.
_MODULE_FUNCTIONS = {"preprocessing_module": "preprocessing_fn",
                     "teacher_module": "run_fn", "student_module": "build_student"}


def _check_module_files(args: argparse.Namespace) -> None:
  """Each module file defines its role's function (read as source, not run)."""
  import ast  # pylint: disable=g-import-not-at-top
  from distill_pipelines.settings import is_module_file  # pylint: disable=g-import-not-at-top
  for dest, function in _MODULE_FUNCTIONS.items():
    path = getattr(args, dest)
    if not path or not is_module_file(path):
      continue
    flag = "--" + dest.replace("_", "-")
    try:
      with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError) as e:
      raise InputError(f"{flag} {path!r} cannot be read as Python: {e}") from None
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    defined |= {a.asname or a.name for n in tree.body
                if isinstance(n, ast.ImportFrom) for a in n.names}
    if function not in defined:
      raise InputError(f"{flag} {path!r} defines no top-level `{function}`, which "
                       "TFX calls.")


def _data_files(data_root: str, input_pattern: Optional[str]) -> List[str]:
  if input_pattern:
    return check_input_pattern(data_root, input_pattern)
  return check_data_root(data_root)


def _label_task(args: argparse.Namespace, files: List[str], generic_label: bool,
                say) -> Dict[str, object]:
  """The task and classes, from the flags and, where it can, the label column.

  With the generic preprocessing the raw column is the label the model learns:
  its values are read, the task inferred when not given, and checked. A
  preprocessing module may compute the label from the column (a binary
  label from a float column, say): then only its presence is checked, and the
  Distiller checks the transformed label before training.
  """
  from distill_pipelines import table  # pylint: disable=g-import-not-at-top
  task = Task.parse(args.task) if args.task else None
  if not files:  # remote data: nothing to read here
    if task is None:
      raise InputError(f"--data-root {args.data_root!r} cannot be read from here: "
                       "give --task (and --num-classes for multiclass).")
    return {"task": task.value}
  try:
    table.check_columns(files, [args.label], "the --label column")
    if not generic_label and task is None and (args.label_key or args.label) != args.label:
      raise InputError(
          f"--task is needed: the preprocessing module computes the label "
          f"{args.label_key!r} from {args.label!r}, so the column's values do not "
          "say the task.")
    if not generic_label and task is not None:
      return {"task": task.value}
    profile = table.profile_label(files, args.label)
    if task is None:
      task = table.infer_task(profile)
      say(f"Task:     {table.describe_inference(profile, task)}")
    table.check_label(profile, task)
  except table.TableError as e:
    raise InputError(str(e)) from e
  result = {"task": task.value}
  if task.is_classification and generic_label:
    result["label_values"] = profile.values
  elif task.is_classification:
    result["num_classes"] = profile.distinct
  return result


def _teacher_model_dir(path: str, pipeline_root: str) -> Tuple[str, Optional[str]]:
  """An existing teacher as the Importer needs it: a dir holding Format-Serving/.

  Returns that directory and, for a bare SavedModel directory, the SavedModel
  to link there: it is linked (not copied) under the pipeline root as
  `imported_teacher/<hash>/Format-Serving`, the layout TFX's Evaluator and
  Pusher read a Model artifact in (`_link_teacher`, once every check passed).
  """
  import hashlib  # pylint: disable=g-import-not-at-top
  if is_remote(path):
    return path, None
  path = os.path.abspath(path)
  if os.path.isfile(os.path.join(path, "Format-Serving", "saved_model.pb")):
    return path, None
  if not os.path.isfile(os.path.join(path, "saved_model.pb")):
    raise InputError(f"--teacher-model {path!r} holds no SavedModel (no "
                     "saved_model.pb in it or in its Format-Serving/).")
  digest = hashlib.sha1(path.encode()).hexdigest()[:12]
  return os.path.join(pipeline_root, "imported_teacher", digest), path


def _link_teacher(artifact: str, saved_model: str) -> None:
  link = os.path.join(artifact, "Format-Serving")
  if os.path.realpath(link) != saved_model:
    os.makedirs(artifact, exist_ok=True)
    if os.path.islink(link):
      os.remove(link)
    os.symlink(saved_model, link)


def settings_from_args(args: argparse.Namespace, *, say=print):
  """Fills `Settings` from the flags, checking the data where it can be read.

  No --label: the demo (on its embedded CSV, or files of its shape under
  --data-root). With --label: the zero-code path, where the user's modules
  replace the generic ones role by role.
  """
  import pydantic  # pylint: disable=g-import-not-at-top
  from distill_pipelines.settings import Settings, describe_errors  # pylint: disable=g-import-not-at-top
  use_demo = args.label is None
  data_root = args.data_root or demo.embedded_data_root()
  if not is_remote(data_root):
    data_root = os.path.abspath(data_root)
  pipeline_root = args.pipeline_root
  if not is_remote(pipeline_root):
    pipeline_root = os.path.abspath(pipeline_root)
  values = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
  values = {_FIELDS[k]: v for k, v in values.items()}
  gate = {_GATE_FIELDS[k]: getattr(args, k) for k in _GATE_FIELDS
          if getattr(args, k) is not None}
  if args.no_cache is not None:
    values["enable_cache"] = not args.no_cache
  no_regression = {_NO_REGRESSION_FIELDS[k]: getattr(args, k)
                   for k in _NO_REGRESSION_FIELDS if getattr(args, k) is not None}
  if args.no_serving_gate:
    no_regression["enabled"] = False
  if args.schema and not is_remote(args.schema):
    schema = os.path.abspath(args.schema)
    if os.path.isdir(schema):
      schema = os.path.join(schema, "schema.pbtxt")
    if not os.path.isfile(schema):
      raise InputError(f"--schema {args.schema}: no such schema file (give a "
                       "schema.pbtxt or the directory holding one).")
    values["schema_file"] = schema
  elif args.schema:
    values["schema_file"] = args.schema
  values.update(pipeline_root=pipeline_root, data_root=data_root)
  if args.serving_dir:
    values["serving_dir"] = (args.serving_dir if is_remote(args.serving_dir)
                             else os.path.abspath(args.serving_dir))
  _check_module_files(args)
  if args.input_pattern and not args.allow_input_outside_data_root:
    check_pattern_inside(args.input_pattern)
  files = [] if is_remote(data_root) else _data_files(data_root, args.input_pattern)
  if files:
    # The generic preprocessing reads what SchemaGen found (an all-empty
    # column has no type and is left out); a user's module is not read here.
    check_table(files, demo.READ_COLUMNS if use_demo else
                [args.label] if args.preprocessing_module is None else [])
  if args.unlabeled_root:
    values["unlabeled_root"] = args.unlabeled_root
    if not is_remote(args.unlabeled_root):
      check_data_root(args.unlabeled_root, "--unlabeled-root")
      values["unlabeled_root"] = os.path.abspath(args.unlabeled_root)
  links = []
  if args.teacher_model:
    dirs = []
    for path in ([args.teacher_model] if isinstance(args.teacher_model, str)
                 else args.teacher_model):
      directory, link = _teacher_model_dir(path, pipeline_root)
      dirs.append(directory)
      links.append((directory, link))
    values["teacher_model"] = dirs[0] if len(dirs) == 1 else dirs
  try:
    if use_demo:
      from distill_pipelines import table  # pylint: disable=g-import-not-at-top
      try:
        table.check_columns(
            files, demo.LABEL_SOURCE_COLUMNS, "the demo computes its label "
            "from it; for your own data, name the label column with --label")
        table.check_columns(
            files, demo.READ_COLUMNS, "the demo's preprocessing reads it; for "
            "your own data, name the label column with --label")
      except table.TableError as e:
        raise InputError(str(e)) from e
      base = demo.settings(pipeline_root=pipeline_root, data_root=data_root)
      if gate:
        values["gate"] = {**base.gate.model_dump(), **gate}
      if no_regression:
        values["no_regression"] = {**base.no_regression.model_dump(),
                                   **no_regression}
      if "teacher_model" in values:  # imported instead of the demo's trained one
        values.setdefault("teacher", None)
      if "teacher_type" in values:  # the demo's own module of that type
        try:
          values.update(demo.teacher_settings(values.pop("teacher_type")))
        except ValueError as e:
          raise InputError(str(e)) from None
      settings = base.replace(**values)
    else:
      values.setdefault("pipeline_name", "distillation")
      values["label"] = args.label
      generic_label = args.preprocessing_module is None
      values.update(_label_task(args, files, generic_label, say))
      values["gate"] = gate
      values["no_regression"] = no_regression
      settings = Settings.model_validate(values)
    for directory, link in links:
      if link:
        _link_teacher(directory, link)
    return settings
  except pydantic.ValidationError as e:
    raise InputError(describe_errors(e)) from None


def dispatch(parser: argparse.ArgumentParser, handlers: Dict[str, Handler],
             argv: Optional[Sequence[str]]) -> int:
  """Parses `argv` (with its --config), runs its command's handler; an
  InputError is printed and exits 2."""
  import sys  # pylint: disable=g-import-not-at-top
  argv = list(sys.argv[1:] if argv is None else argv)
  args = parser.parse_args(argv)
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  try:
    args = apply_config(parser, argv, args)
    return handlers[args.command](args)
  except InputError as e:
    print(f"tfx-distill: error: {e}", file=sys.stderr)
    return 2
