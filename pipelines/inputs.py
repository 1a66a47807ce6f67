"""What a pipeline's settings name, checked before anything runs.

`settings_from(values)` turns the values the command line (or a caller of
its own) gives, named like `Settings`' fields, into one `Settings`: it
resolves paths, reads the CSV files where it can (their header, every cell,
the label column: the task is inferred from it when not given) and links an
existing bare SavedModel as a Model artifact. No label: the `preset` the
caller gives (the command line's is the taxi demo). Range and cross-field rules live in `Settings`; what needs
the data or the file system lives here. Nothing here imports TFX (importing
it takes half a minute): a bad input fails at once with an `InputError` that
names it.
"""

import ast
import glob
import hashlib
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from distill_components.distiller.tasks import Task
from distill_pipelines import settings as settings_lib


class InputError(ValueError):
  """An input that cannot work; the message says why."""


def is_remote(path: str) -> bool:
  return "://" in path


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


def _table_checked(check, *args):
  """Runs a `table` check; its TableError becomes an InputError."""
  from distill_pipelines import table  # pylint: disable=g-import-not-at-top
  try:
    return check(table, *args)
  except table.TableError as e:
    raise InputError(str(e)) from e


def check_table(files: Sequence[str], read_columns: Sequence[str] = ()) -> None:
  """Every cell of the files ExampleGen will read, checked before any work;
  `read_columns`: columns the preprocessing reads, which may not be empty in
  every row."""
  _table_checked(lambda t: t.check_cells(t.scan(files), read_columns))


# The function each role's module must define, by Settings field.
_MODULE_FUNCTIONS = {"preprocessing": "preprocessing_fn", "teacher": "run_fn",
                     "student": "build_student"}
_CODE_FLAGS = {"preprocessing": "--preprocessing-module",
               "teacher": "--teacher-module", "student": "--student-module"}


def check_code(field: str, code: str) -> str:
  """A role's code: a module file (made absolute; it must define the role's
  function, read as source, not run) or a Python path to the function."""
  flag = _CODE_FLAGS[field]
  if not settings_lib.is_module_file(code):
    if code.count(".") < 1 or not all(p.isidentifier() for p in code.split(".")):
      raise InputError(f"{flag} {code!r} is neither a .py module file nor a "
                       "Python path such as my_pkg.module.function.")
    return code
  path = os.path.abspath(code)
  if not os.path.isfile(path):
    raise InputError(f"{flag} {code!r} does not exist.")
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
  function = _MODULE_FUNCTIONS[field]
  if function not in defined:
    raise InputError(f"{flag} {path!r} defines no top-level `{function}`, which "
                     "TFX calls.")
  return path


def _label_task(values: Dict[str, Any], files: List[str], say) -> Dict[str, Any]:
  """The task and classes, from the values and, where it can, the label column.

  With the generic preprocessing the raw column is the label the model learns:
  its values are read, the task inferred when not given, and checked. A
  preprocessing module may compute the label from the column (a binary
  label from a float column, say): then only its presence is checked, and the
  Distiller checks the transformed label before training.
  """
  label, task = values["label"], values.get("task")
  try:
    task = Task.parse(task) if task is not None else None
  except ValueError as e:
    raise InputError(f"--task: {e}") from None
  generic_label = values.get("preprocessing") is None
  if not files:  # remote data: nothing to read here
    if task is None:
      raise InputError(f"--data-root {values['data_root']!r} cannot be read from "
                       "here: give --task (and --num-classes for multiclass).")
    return {"task": task}
  _table_checked(lambda t: t.check_columns(files, [label], "the --label column"))
  label_key = values.get("label_key") or label
  if not generic_label and task is None and label_key != label:
    raise InputError(
        f"--task is needed: the preprocessing module computes the label "
        f"{label_key!r} from {label!r}, so the column's values do not say the task.")
  if not generic_label and task is not None:
    return {"task": task}
  profile = _table_checked(lambda t: t.profile_label(files, label))
  if task is None:
    task = _table_checked(lambda t: t.infer_task(profile))
    say("Task:     " + _table_checked(lambda t: t.describe_inference(profile, task)))
  _table_checked(lambda t: t.check_label(profile, task))
  if task.is_classification and generic_label:
    return {"task": task, "label_values": profile.values}
  if task.is_classification:
    return {"task": task, "num_classes": profile.distinct}
  return {"task": task}


def _teacher_model_dir(path: str, pipeline_root: str) -> Tuple[str, Optional[str]]:
  """An existing teacher as the Importer needs it: a dir holding Format-Serving/.

  Returns that directory and, for a bare SavedModel directory, the SavedModel
  to link there: it is linked (not copied) under the pipeline root as
  `imported_teacher/<hash>/Format-Serving`, the layout TFX's Evaluator and
  Pusher read a Model artifact in (`_link_teacher`, once every check passed).
  """
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


def _local(path: Optional[str]) -> Optional[str]:
  return path if path is None or is_remote(path) else os.path.abspath(path)


def _schema_file(schema: str) -> str:
  if is_remote(schema):
    return schema
  path = os.path.abspath(schema)
  if os.path.isdir(path):
    path = os.path.join(path, "schema.pbtxt")
  if not os.path.isfile(path):
    raise InputError(f"--schema {schema}: no such schema file (give a "
                     "schema.pbtxt or the directory holding one).")
  return path


def _preset_settings(preset, values: Dict[str, Any], files: List[str]):
  """The preset's Settings with `values` over them."""
  _table_checked(lambda t: t.check_columns(
      files, preset.LABEL_SOURCE_COLUMNS, "the demo computes its label from it; "
      "for your own data, name the label column with --label"))
  _table_checked(lambda t: t.check_columns(
      files, preset.READ_COLUMNS, "the demo's preprocessing reads it; for your "
      "own data, name the label column with --label"))
  base = preset.settings(pipeline_root=values.pop("pipeline_root"),
                         data_root=values.pop("data_root"))
  for gate in ("gate", "no_regression", "litert"):
    if values.get(gate):
      values[gate] = {**getattr(base, gate).model_dump(), **values[gate]}
    else:
      values.pop(gate, None)
  if "teacher_model" in values:  # imported instead of the demo's trained one
    values.setdefault("teacher", None)
  if "teacher_type" in values:  # the demo's own module of that type
    try:
      values.update(preset.teacher_settings(values.pop("teacher_type")))
    except ValueError as e:
      raise InputError(str(e)) from None
  return base.replace(**values)


def settings_from(values: Dict[str, Any], *, preset=None, say=print,
                  name_of=None) -> settings_lib.Settings:
  """One `Settings` from `values`, checking what they name.

  `values` are Settings fields (None or absent: unset; `gate` and
  `no_regression` partial dicts), plus `schema` (a schema file or its
  directory), `teacher_model` (a list of directories: Model artifacts or bare
  SavedModels, or one) and `allow_input_outside_data_root`. `preset`: a
  preset module (distill_cli/presets.py says what it holds), used without
  `label` (its settings, on its own data or files of its shape) and for its
  data without `data_root`. Raises InputError, a wrong setting named by
  `name_of(loc)` (the command line: its flag) when given.
  """
  import pydantic  # pylint: disable=g-import-not-at-top
  values = {k: v for k, v in values.items() if v is not None}
  default = preset
  preset = None if "label" in values else preset
  if "label" not in values and not preset:
    raise InputError("--label is needed: the column to learn.")
  outside = values.pop("allow_input_outside_data_root", False)
  if "data_root" not in values and not default:
    raise InputError("--data-root is needed: the directory of CSV files.")
  # No data root: the preset's own data (the demo CSV), with or without
  # --label.
  values["data_root"] = _local(values.get("data_root")
                               or default.embedded_data_root())
  if not values.get("pipeline_root"):
    raise InputError("--pipeline-root is needed.")
  values["pipeline_root"] = _local(values["pipeline_root"])
  for key in ("serving_dir", "unlabeled_root"):
    if key in values:
      values[key] = _local(values[key])
  if "schema" in values:
    values["schema_file"] = _schema_file(values.pop("schema"))
  for field in _MODULE_FUNCTIONS:
    if field in values:
      values[field] = check_code(field, values[field])
  pattern = values.get("input_pattern")
  if pattern and not outside:
    check_pattern_inside(pattern)
  data_root = values["data_root"]
  files = [] if is_remote(data_root) else (
      check_input_pattern(data_root, pattern) if pattern else check_data_root(data_root))
  if files:
    # The generic preprocessing reads what SchemaGen found (an all-empty
    # column has no type and is left out); a user's module is not read here.
    check_table(files, preset.READ_COLUMNS if preset else
                [values["label"]] if "preprocessing" not in values else [])
  if "unlabeled_root" in values and not is_remote(values["unlabeled_root"]):
    check_data_root(values["unlabeled_root"], "--unlabeled-root")
  teachers = values.get("teacher_model", [])
  links = [_teacher_model_dir(p, values["pipeline_root"])
           for p in ([teachers] if isinstance(teachers, str) else teachers)]
  if links:
    dirs = [directory for directory, _ in links]
    values["teacher_model"] = dirs[0] if len(dirs) == 1 else dirs
  try:
    if preset:
      settings = _preset_settings(preset, values, files)
    else:
      values.setdefault("pipeline_name", "distillation")
      values.update(_label_task(values, files, say))
      settings = settings_lib.Settings.model_validate(values)
  except pydantic.ValidationError as e:
    raise InputError(settings_lib.describe_errors(e, name_of)) from None
  for directory, link in links:
    if link:
      _link_teacher(directory, link)
  return settings
