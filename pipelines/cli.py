"""`tfx-distill`: the command line.

    tfx-distill run [--pipeline-root DIR] [--train-steps N] ...   # the demo
    tfx-distill run --data-root DIR --label COLUMN [--task binary|multiclass|regression]
        [--preprocessing-module F] [--teacher-module F] [--student-module F]
        [--teacher-model DIR] ...                             # your own CSV
    tfx-distill compile --image IMAGE --pipeline-root gs://... --data-root gs://...
    tfx-distill submit --host URL --package PIPELINE.yaml
    tfx-distill schedule --host URL --package PIPELINE.yaml --cron "0 0 3 * * *"
    tfx-distill run-package PIPELINE.yaml --pipeline-root DIR

`run` runs the pipeline here with LocalDagRunner. `compile` writes the same
pipeline as a Kubeflow Pipelines (KFP v2) package, `submit` starts a run of it
on a KFP host and `schedule` makes that a recurring run; `run-package`
executes a compiled package here, task by task, as KFP's launcher would.
Every command also reads its flags from a YAML file (`--config`), whose keys
are the flag names; flags on the command line win. `run` and `compile` fill
one `Settings` (pipelines/settings.py) and build the same `create_pipeline`.

Every input is checked before TFX is imported (importing it takes half a
minute here), so a bad flag or data directory fails at once with a message
that names the problem.
"""

import argparse
import contextlib
import glob
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from distill_components.distiller.tasks import Task
# The demo that runs when no --label is given: the embedded Chicago taxi CSV.
from distill_pipelines.taxi import config as demo

# The name Kubeflow commands use when none is given: the demo's.
DEFAULT_PIPELINE_NAME = demo.PIPELINE_NAME


class InputError(ValueError):
  """A command-line input that cannot work; the message says why."""


def check_data_root(data_root: str) -> List[str]:
  """Returns the CSV files under data_root; raises InputError if unusable."""
  if not os.path.isdir(data_root):
    raise InputError(f"--data-root {data_root!r} is not a directory.")
  files = sorted(glob.glob(os.path.join(data_root, "*.csv")))
  if not files:
    found = sorted(os.listdir(data_root))[:5]
    raise InputError(
        f"--data-root {data_root!r} holds no .csv file (found {found or 'nothing'}); "
        "CsvExampleGen needs CSV files with a header row.")
  return files


def check_input_pattern(data_root: str, pattern: str) -> List[str]:
  """The files `pattern` (with {SPAN} / {VERSION}) can match under data_root."""
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
  return files


def _positive_int(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
  if value <= 0:
    raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
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


def _add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
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
  code = parser.add_argument_group(
      "your code: a module file (.py) or a Python path to the function; "
      "default: the zero-code generic module")
  code.add_argument("--preprocessing-module", type=_code_flag, default=None,
                    help="defines preprocessing_fn(inputs[, custom_config])")
  code.add_argument("--teacher-module", type=_code_flag, default=None,
                    help="a Trainer module: defines run_fn(fn_args)")
  code.add_argument("--student-module", type=_code_flag, default=None,
                    help="defines build_student(fn_args)")
  code.add_argument("--teacher-model", default=None, metavar="DIR",
                    help="an existing teacher, imported instead of trained: a "
                    "SavedModel directory, or a Model artifact holding "
                    "Format-Serving/")
  code.add_argument("--teacher-outputs", choices=["logits", "probabilities"],
                    default=None, help="what the teacher emits, when its final "
                    "layer does not show it")
  train = parser.add_argument_group("training")
  train.add_argument("--train-steps", type=_positive_int, default=None,
                     help="teacher training steps")
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
  train.add_argument("--cache-teacher-outputs", action="store_true", default=None,
                     help="Distiller: compute the teacher's outputs once per "
                     "train example and reuse them every epoch")
  gate = parser.add_argument_group("gate: when the student is blessed")
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
  parser.add_argument("--beam-arg", action="append", dest="beam_args", default=None,
                      metavar="--FLAG=VALUE",
                      help="a Beam pipeline argument; repeat for more "
                      "(default: --direct_num_workers=1)")
  parser.add_argument("--no-cache", action="store_true", default=None,
                      help="rerun every component even when its inputs did not change")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="tfx-distill",
      description="Distil a TFX teacher into a small student, gated by TFMA.")
  commands = parser.add_subparsers(dest="command", required=True)
  run = commands.add_parser(
      "run", help="run the pipeline locally (LocalDagRunner, SQLite MLMD)")
  run.add_argument("--data-root", default=None,
                   help="directory of CSV files (default: the demo CSV inside tfx)")
  run.add_argument("--pipeline-root", default="tfx_pipeline_output",
                   help="where artifacts, MLMD and the pushed model go")
  _add_pipeline_flags(run)

  compile_ = commands.add_parser(
      "compile", help="write the pipeline as a Kubeflow Pipelines (v2) package")
  compile_.add_argument("--image", help="container image holding this project "
                        "(built from kubeflow/Dockerfile)")
  compile_.add_argument("--pipeline-root",
                        help="where the cluster writes artifacts, e.g. gs://BUCKET/root "
                        "or s3://BUCKET/root (MinIO)")
  compile_.add_argument("--data-root", help="directory of CSV files as the cluster "
                        "sees it, e.g. gs://BUCKET/data")
  compile_.add_argument("--output", default=None,
                        help="package file, .yaml (default: PIPELINE_NAME.yaml)")
  _add_pipeline_flags(compile_)

  submit = commands.add_parser("submit", help="start a run of a package on a KFP host")
  schedule = commands.add_parser(
      "schedule", help="make a package a recurring run on a KFP host (one at a "
      "time, no catch-up)")
  for sub in (submit, schedule):
    sub.add_argument("--config", help="YAML file of flag values")
    sub.add_argument("--host", default=os.environ.get("KF_PIPELINES_ENDPOINT"),
                     help="KFP API endpoint, e.g. http://localhost:8080 "
                     "(default: $KF_PIPELINES_ENDPOINT)")
    sub.add_argument("--package", help="the .yaml written by `compile`")
    sub.add_argument("--experiment", default=DEFAULT_PIPELINE_NAME,
                     help="KFP experiment, created if missing")
  submit.add_argument("--run-name", default=None)
  schedule.add_argument("--cron", help="KFP cron: 6 fields, seconds first, e.g. "
                        "'0 0 3 * * *' for 03:00 daily; or '@daily', '@every 6h'")
  schedule.add_argument("--name", default=None,
                        help="recurring run name (default: PIPELINE_NAME-retraining)")
  schedule.add_argument("--dry-run", action="store_true",
                        help="print the request and send nothing")

  run_package = commands.add_parser(
      "run-package", help="execute a compiled package here, task by task, as the "
      "KFP launcher would")
  run_package.add_argument("package")
  run_package.add_argument("--pipeline-root", default=None,
                           help="local directory for the artifacts (default: the "
                           "package's own root)")
  run_package.add_argument("--run-id", default=None)
  return parser


def _apply_config(parser: argparse.ArgumentParser, argv: Sequence[str],
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
  sub = _subparsers(parser)[args.command]
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


def _subparsers(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      return action.choices
  return {}


def _require(args: argparse.Namespace, *names: str) -> None:
  missing = [n for n in names if not getattr(args, n)]
  if missing:
    raise InputError(
        f"`{args.command}` needs {', '.join('--' + n.replace('_', '-') for n in missing)} "
        "(on the command line or in --config).")


def _is_remote(path: str) -> bool:
  return "://" in path


# Flag dest -> Settings field, for the flags that map one to one.
_FIELDS = {
    "pipeline_name": "pipeline_name", "input_pattern": "input_pattern",
    "label_key": "label_key", "raw_label_keys": "raw_label_keys",
    "task": "task", "num_classes": "num_classes",
    "preprocessing_module": "preprocessing", "teacher_module": "teacher",
    "student_module": "student", "teacher_outputs": "teacher_outputs",
    "train_steps": "train_steps", "eval_steps": "eval_steps",
    "distill_steps": "distill_steps", "temperature": "temperature",
    "alpha": "alpha", "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "cache_teacher_outputs": "cache_teacher_outputs", "beam_args": "beam_args",
}
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
  if _is_remote(path):
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
  if not _is_remote(data_root):
    data_root = os.path.abspath(data_root)
  pipeline_root = args.pipeline_root
  if not _is_remote(pipeline_root):
    pipeline_root = os.path.abspath(pipeline_root)
  values = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
  values = {_FIELDS[k]: v for k, v in values.items()}
  gate = {_GATE_FIELDS[k]: getattr(args, k) for k in _GATE_FIELDS
          if getattr(args, k) is not None}
  if args.no_cache is not None:
    values["enable_cache"] = not args.no_cache
  values.update(pipeline_root=pipeline_root, data_root=data_root)
  if args.serving_dir:
    values["serving_dir"] = (args.serving_dir if _is_remote(args.serving_dir)
                             else os.path.abspath(args.serving_dir))
  _check_module_files(args)
  files = [] if _is_remote(data_root) else _data_files(data_root, args.input_pattern)
  try:
    if use_demo:
      from distill_pipelines import table  # pylint: disable=g-import-not-at-top
      try:
        table.check_columns(
            files, demo.LABEL_SOURCE_COLUMNS, "the demo computes its label "
            "from it; for your own data, name the label column with --label")
      except table.TableError as e:
        raise InputError(str(e)) from e
      base = demo.settings(pipeline_root=pipeline_root, data_root=data_root)
      if gate:
        values["gate"] = {**base.gate.model_dump(), **gate}
      return base.replace(**values)
    values.setdefault("pipeline_name", "distillation")
    values["label"] = args.label
    link = None
    if args.teacher_model:
      values["teacher_model"], link = _teacher_model_dir(args.teacher_model,
                                                         pipeline_root)
    generic_label = args.preprocessing_module is None
    values.update(_label_task(args, files, generic_label, say))
    values["gate"] = gate
    settings = Settings.model_validate(values)
    if link:
      _link_teacher(settings.teacher_model, link)
    return settings
  except pydantic.ValidationError as e:
    raise InputError(describe_errors(e)) from None


@contextlib.contextmanager
def _argv_parsed():
  """Hides the command line from the components while they run.

  Beam and absl inside the components parse `sys.argv` for flags of their own
  when nobody has; a caller's flags (`-v` for pytest, say) would be read as
  theirs (`-v` is absl's --verbosity). Ours are parsed already.
  """
  saved = sys.argv
  sys.argv = saved[:1]
  try:
    yield
  finally:
    sys.argv = saved


def _run(args: argparse.Namespace) -> int:
  settings = settings_from_args(args)
  metadata_path = os.path.join(settings.pipeline_root, "metadata.sqlite")
  print(f"Data:     {settings.data_root}\nLabel:    {settings.label} "
        f"({settings.task.value})\nPipeline: {settings.pipeline_root}", flush=True)

  # Imported here: the checks above must not wait for TFX.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  from distill_pipelines import report  # pylint: disable=g-import-not-at-top

  os.makedirs(settings.pipeline_root, exist_ok=True)
  try:
    definition = pipeline.create_pipeline(
        settings,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(
                metadata_path)))
  except ValueError as e:  # A component refused its settings: nothing ran yet.
    raise InputError(str(e)) from e
  error = None
  with report.ProgressReporter(metadata_path, settings.pipeline_name), _argv_parsed():
    try:
      tfx.orchestration.LocalDagRunner().run(definition)
    except Exception as e:  # pylint: disable=broad-except
      error = e
  summary = report.summarize(metadata_path, settings.pipeline_name, settings.task)
  print("\n" + report.render(summary), flush=True)
  if error is not None:
    print(f"\ntfx-distill: the pipeline failed: {type(error).__name__}: {error}",
          file=sys.stderr)
    return 1
  return 0


def _compile(args: argparse.Namespace) -> int:
  _require(args, "image", "pipeline_root", "data_root")
  if any(c.isspace() for c in args.image):
    raise InputError(f"--image {args.image!r} is not an image reference.")
  settings = settings_from_args(args)
  output = args.output or f"{settings.pipeline_name}.yaml"
  if not output.endswith((".yaml", ".yml")):
    raise InputError(f"--output {output!r} must end in .yaml: kfp.Client refuses "
                     ".json packages.")
  from distill_kubeflow import compiler  # pylint: disable=g-import-not-at-top
  from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  try:
    definition = pipeline.create_pipeline(settings)
    path = compiler.compile_pipeline(definition, image=args.image,
                                     package_path=output)
  except ValueError as e:
    raise InputError(str(e)) from e
  package = compiler.load_package(path)
  print(f"Wrote {path}: {len(package.tasks)} tasks, {os.path.getsize(path):,} bytes, "
        f"image {args.image}, pipeline root {settings.pipeline_root}, pushing to "
        f"{settings.serving_model_dir}")
  return 0


def _check_package(args: argparse.Namespace, need_host: bool = True) -> str:
  _require(args, *(("host", "package") if need_host else ("package",)))
  if not os.path.isfile(args.package):
    raise InputError(f"--package {args.package!r} does not exist; write it with "
                     "`tfx-distill compile`.")
  return os.path.abspath(args.package)


def _submit(args: argparse.Namespace) -> int:
  package = _check_package(args)
  from distill_kubeflow import client  # pylint: disable=g-import-not-at-top
  try:
    run = client.submit(args.host, package, experiment=args.experiment,
                        run_name=args.run_name)
  except client.HostError as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return 1
  print(f"Started run {run.id} in experiment {args.experiment!r}: {run.url}")
  return 0


def _schedule(args: argparse.Namespace) -> int:
  package = _check_package(args, need_host=not args.dry_run)
  _require(args, "cron")
  from distill_kubeflow import client, cron  # pylint: disable=g-import-not-at-top
  try:
    expression = cron.check_cron(args.cron)
  except cron.CronError as e:
    raise InputError(f"--cron: {e}") from e
  name = args.name or f"{DEFAULT_PIPELINE_NAME}-retraining"
  if args.dry_run:
    import json  # pylint: disable=g-import-not-at-top
    body = client.recurring_run_request(
        package, name=name, cron_expression=expression,
        experiment_id=f"<id of experiment {args.experiment!r}>")
    target = args.host or "$KF_PIPELINES_ENDPOINT"
    print(f"POST {target}/apis/v2beta1/recurringruns (dry run: nothing sent)")
    print(json.dumps(body, indent=2, sort_keys=True))
    return 0
  try:
    job = client.schedule(args.host, package, name=name, cron_expression=expression,
                          experiment=args.experiment)
  except client.HostError as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return 1
  print(f"Scheduled {name!r} ({expression}, one run at a time, no catch-up) in "
        f"experiment {args.experiment!r}: {job.url}")
  return 0


def _run_package(args: argparse.Namespace) -> int:
  from distill_kubeflow import compiler, local_runner  # pylint: disable=g-import-not-at-top
  try:
    package = compiler.load_package(args.package)
  except compiler.PackageError as e:
    raise InputError(str(e)) from e
  root = args.pipeline_root or package.default_pipeline_root
  if _is_remote(root):
    raise InputError(f"The package's pipeline root is {root!r}; give a local "
                     "--pipeline-root to run it here.")
  print(f"Package:  {package.path} ({len(package.tasks)} tasks)\nPipeline: "
        f"{os.path.abspath(root)}", flush=True)
  start = time.monotonic()
  report = lambda task, state: print(  # pylint: disable=unnecessary-lambda-assignment
      f"[{time.monotonic() - start:7.1f}s] {task:<20} {state}", flush=True)
  try:
    result = local_runner.run_package(package.path, root, run_id=args.run_id,
                                      on_task=report)
  except local_runner.TaskFailed as e:
    print(f"tfx-distill: {e}", file=sys.stderr)
    return 1
  print(f"Ran {len(result.tasks)} tasks in {result.seconds:.1f}s under {result.run_root}")
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = build_parser()
  argv = list(sys.argv[1:] if argv is None else argv)
  args = parser.parse_args(argv)
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  commands = {"run": _run, "compile": _compile, "submit": _submit,
              "schedule": _schedule, "run-package": _run_package}
  try:
    args = _apply_config(parser, argv, args)
    return commands[args.command](args)
  except InputError as e:
    print(f"tfx-distill: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
