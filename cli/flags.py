"""The pipeline flags `run` and `compile` share, read into a dict of settings.

`add_pipeline_flags` declares them; `apply_config` reads a YAML `--config`
file whose keys are the flag names (typed like the flags: a YAML "false" is
not a switch); `values` turns the parsed flags into the values
`distill_pipelines.inputs.settings_from` makes one `Settings` of. Flags parse
types only: every range, choice and cross-field rule is checked once, by
`Settings`, and named like its flag.
"""

import argparse
import functools
import typing
from typing import Any, Dict, Optional, Sequence

from distill_pipelines.inputs import InputError
from distill_pipelines.settings import LiteRTGate, NoRegressionGate, Settings


def _choices(field: str):
  """The values a Literal field of Settings takes."""
  annotation = Settings.model_fields[field].annotation
  candidates = ((annotation,) if typing.get_origin(annotation) is typing.Literal
                else typing.get_args(annotation))
  for arg in candidates:
    if typing.get_origin(arg) is typing.Literal:
      return list(typing.get_args(arg))
  raise TypeError(f"Settings.{field} is no Literal")


def _number(group, flag: str, text: str = "", *, field: str = "", model=Settings,
            **kwargs) -> None:
  """A numeric flag of a Settings field: its type and the default in its help
  come from the field (`field`, default: the flag's name, of `model`)."""
  info = model.model_fields[field or flag.lstrip("-").replace("-", "_")]
  kind = next(t for t in (typing.get_args(info.annotation) or (info.annotation,))
              if t in (int, float))
  default = info.get_default(call_default_factory=True)
  shown = "" if default is None else f"default {default}"
  group.add_argument(flag, type=kind, default=None, help="; ".join(
      part for part in (text, shown) if part) or None, **kwargs)


def add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
  """The settings `run` and `compile` share: data, label, code, training, gate."""
  parser.add_argument("--config", help="YAML file of flag values (keys named "
                      "like the flags); flags on the command line win")
  parser.add_argument("--pipeline-name", default=None,
                      help="default: the demo's name for the demo, else distillation")
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
  data.add_argument("--task", default=None,
                    help="binary, multiclass or regression (default: inferred "
                    "from the label's values)")
  _number(data, "--num-classes", "multiclass: the number of classes, when the "
          "data cannot be read here (a remote --data-root)")
  data.add_argument("--unlabeled-root", default=None, metavar="DIR",
                    help="a transfer set: CSV files of rows without the label, "
                    "which the teacher labels for the student (soft term only)")
  _number(data, "--synthetic-ratio", "a synthetic transfer set: R rows per train "
          "example, each a train row with some features taken from other rows, "
          "labelled by the teacher (0: none)", metavar="R")
  code = parser.add_argument_group(
      "your code: a module file (.py) or a Python path to the function; "
      "default: the zero-code generic module")
  code.add_argument("--preprocessing-module", dest="preprocessing", default=None,
                    help="defines preprocessing_fn(inputs[, custom_config])")
  code.add_argument("--teacher-module", dest="teacher", default=None,
                    help="a Trainer module: defines run_fn(fn_args)")
  code.add_argument("--student-module", dest="student", default=None,
                    help="defines build_student(fn_args)")
  code.add_argument("--teacher-model", action="append", default=None, metavar="DIR",
                    help="an existing teacher, imported instead of trained: a "
                    "SavedModel directory, or a Model artifact holding "
                    "Format-Serving/; repeat for several teachers, whose "
                    "outputs the student learns averaged")
  code.add_argument("--teacher-type", choices=_choices("teacher_type"), default=None,
                    help="the zero-code teacher, when you bring none: auto "
                    "(default: fits the three below, keeps the best on the "
                    "validation cut), ensemble (the mean of the trees and the "
                    "network), mlp (a wide network) or gbt (gradient-boosted "
                    "trees, TF-DF; the distilled student still serves without TF-DF)")
  code.add_argument("--teacher-imports", action="append", default=None,
                    metavar="MODULE", help="a Python module to import before the "
                    "teacher is loaded, registering its custom ops (a TF-DF "
                    "teacher of your own: tensorflow_decision_forests); repeat "
                    "for more")
  _number(code, "--teacher-folds", "soft labels out of fold: the tree teacher "
          "also fits K models, each without one K-th of the train rows, and each "
          "row's soft label comes from the one that did not see it (K >= 2; 0: "
          "off; default: 5 for the zero-code regression teacher, else off)",
          metavar="K")
  code.add_argument("--teacher-outputs", choices=_choices("teacher_outputs"),
                    default=None, help="what the teacher emits, when its final "
                    "layer does not show it")
  train = parser.add_argument_group("training")
  _number(train, "--train-steps", "an MLP teacher's training steps (a tree "
          "teacher reads the train split once)")
  _number(train, "--eval-steps")
  _number(train, "--distill-steps", "student (Distiller) training steps")
  _number(train, "--temperature", "T > 0")
  _number(train, "--alpha", "weight of the soft (teacher) term in [0, 1]; 1 = "
          "soft labels only")
  _number(train, "--batch-size")
  _number(train, "--learning-rate")
  _number(train, "--seed", "seeds the run's process and the Distiller: a rerun "
          "on the same data and code trains the same models")
  _number(train, "--validation-fraction", "the share of train rows held out to "
          "choose the teacher (zero-code) and the student (distilled or trained "
          "alone), by a hash of their features")
  train.add_argument("--require-gain", action="store_true", default=None,
                     help="stop before the Pusher (exit 8) when the student "
                     "trained alone beats the distilled one, instead of pushing it")
  train.add_argument("--cache-teacher-outputs", action="store_true", default=None,
                     help="Distiller: compute the teacher's outputs once per "
                     "train example and reuse them every epoch")
  train.add_argument("--teacher-labelling", choices=_choices("teacher_labelling"),
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
  gate.add_argument("--gate-max-drop", "--max-auc-drop", type=float, default=None,
                    help="how much worse than the teacher the student may be: in "
                    "the metric's units for AUC/accuracy, a fraction of the "
                    "teacher's value for unbounded metrics (MSE)")
  gate.add_argument("--serving-max-drop", type=float, default=None,
                    help="how much worse than the serving model the student may "
                    "be on the gate metric (default 0.01, or 10%% if unbounded)")
  gate.add_argument("--no-serving-gate", action="store_true", default=None,
                    help="skip the no-regression gate: push whatever the fidelity "
                    "gate blesses")
  _number(gate, "--max-log-loss-increase", "classification: how much the log "
          "loss may grow over the serving model's, as a fraction",
          model=NoRegressionGate)
  _number(gate, "--calibration-tolerance", "binary: the student's mean "
          "prediction / mean label must lie within 1 +- this",
          model=NoRegressionGate)
  gate.add_argument("--slice-by", action="append", default=None, metavar="COLUMN",
                    help="a raw column each of whose slices must pass the gates; "
                    "repeat for more (the demo: trip_start_day)")
  _number(gate, "--min-slice-size", "slices with fewer eval examples are "
          "reported, not gated")
  litert = parser.add_argument_group(
      "LiteRT: the student as float32 and int8 files, pushed inside its version")
  litert.add_argument("--no-litert", action="store_true", default=None,
                      help="no LiteRT files, no LiteRT gate")
  _number(litert, "--litert-max-drop", "how much worse than the float32 file "
          "the int8 one may be on the gate metric before it is left out of the "
          "push (default 0.005 for AUC/accuracy, 0.02 = 2%% for MSE)",
          field="max_drop", model=LiteRTGate)
  retrain = parser.add_argument_group("retraining")
  _number(retrain, "--reuse-teacher-spans", "reuse the latest teacher this "
          "pipeline trained while it is fewer than N spans older than the newest "
          "span (needs {SPAN} in --input-pattern); the teacher is retrained every "
          "N spans (0: every run)", metavar="N")
  retrain.add_argument("--schema", default=None, metavar="FILE",
                       help="a curated schema.pbtxt the data is validated against "
                       "(default: the schema the pipeline's first run inferred, "
                       "kept)")
  parser.add_argument("--beam-arg", action="append", dest="beam_args", default=None,
                      metavar="--FLAG=VALUE",
                      help="a Beam pipeline argument; repeat for more "
                      "(default: none: the DirectRunner in this process, and "
                      "the gates on a process per core from 100,000 eval rows)")
  parser.add_argument("--no-cache", action="store_true", default=None,
                      help="rerun every component even when its inputs did not change")


# Flag dests that are not Settings fields of the same name.
_GATE = {"gate_metric": "metric", "gate_threshold": "threshold",
         "gate_max_drop": "max_drop"}
_NO_REGRESSION = {"serving_max_drop": "max_drop",
                  "max_log_loss_increase": "max_log_loss_increase",
                  "calibration_tolerance": "calibration_tolerance"}
_LITERT = {"litert_max_drop": "max_drop"}
_INPUTS = ("schema", "teacher_model", "allow_input_outside_data_root")
_NOT_SETTINGS = ("command", "config", "verbose", "image", "output", "no_cache",
                 "no_serving_gate", "no_litert", *_GATE, *_NO_REGRESSION, *_LITERT)


def flag_name(loc: Sequence) -> Optional[str]:
  """The flag that sets the Settings field at `loc` (a pydantic error's
  location), or None when no flag does."""
  table = {"gate": _GATE, "no_regression": _NO_REGRESSION, "litert": _LITERT}.get(loc[0])
  if table is not None and len(loc) > 1:
    dest = next((k for k, field in table.items() if field == loc[1]), None)
  else:
    dest = loc[0] if loc[0] in _flag_dests() else None
  return f"--{dest.replace('_', '-')}" if dest else None


@functools.lru_cache(maxsize=None)
def _flag_dests() -> frozenset:
  parser = argparse.ArgumentParser()
  add_pipeline_flags(parser)
  return frozenset(a.dest for a in parser._actions)  # pylint: disable=protected-access


def values(args: argparse.Namespace) -> Dict[str, Any]:
  """The parsed flags as `inputs.settings_from` takes them: Settings fields
  (None: unset), partial `gate` and `no_regression` dicts, and the inputs
  it resolves (schema, teacher_model, allow_input_outside_data_root)."""
  flags = vars(args)
  result = {k: v for k, v in flags.items()
            if k not in _NOT_SETTINGS and (k in Settings.model_fields or k in _INPUTS)}
  result["gate"] = {f: flags[k] for k, f in _GATE.items() if flags.get(k) is not None}
  result["no_regression"] = {f: flags[k] for k, f in _NO_REGRESSION.items()
                             if flags.get(k) is not None}
  if flags.get("no_serving_gate"):
    result["no_regression"]["enabled"] = False
  result["litert"] = {f: flags[k] for k, f in _LITERT.items() if flags.get(k) is not None}
  if flags.get("no_litert"):
    result["litert"]["enabled"] = False
  if flags.get("no_cache") is not None:
    result["enable_cache"] = not flags["no_cache"]
  return result


def apply_config(parser: argparse.ArgumentParser, sub: argparse.ArgumentParser,
                 argv: Sequence[str], args: argparse.Namespace) -> argparse.Namespace:
  """Reparses argv with the --config file's values as `sub`'s defaults."""
  if not getattr(args, "config", None):
    return args
  import yaml  # pylint: disable=g-import-not-at-top
  try:
    with open(args.config, encoding="utf-8") as f:
      config = yaml.safe_load(f) or {}
  except (OSError, yaml.YAMLError) as e:
    raise InputError(f"--config {args.config!r} cannot be read: {e}") from e
  if not isinstance(config, dict):
    raise InputError(f"--config {args.config!r} must be a mapping of flag names "
                     f"to values; it holds a {type(config).__name__}.")
  # A setting is named like its flag: "beam-arg" (or beam_arg) for --beam-arg.
  known = {opt.lstrip("-").replace("-", "_"): a
           for a in sub._actions if a.dest not in ("help", "config")  # pylint: disable=protected-access
           for opt in a.option_strings}
  defaults = {}
  for key, value in config.items():
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
  items = value if isinstance(value, list) and repeatable else [value]
  checked = []
  for item in items:
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
  """The subcommands' parsers of `parser`, by name."""
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      return action.choices
  return {}
