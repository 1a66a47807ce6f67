"""`tfx-distill`: the command line.

    tfx-distill run [--data-root DIR] [--pipeline-root DIR] [--train-steps N] ...
    tfx-distill compile --image IMAGE --pipeline-root gs://... --data-root gs://...
    tfx-distill submit --host URL --package PIPELINE.yaml
    tfx-distill schedule --host URL --package PIPELINE.yaml --cron "0 0 3 * * *"
    tfx-distill run-package PIPELINE.yaml --pipeline-root DIR

`run` runs the pipeline here with LocalDagRunner. `compile` writes the same
pipeline as a Kubeflow Pipelines (KFP v2) package, `submit` starts a run of it
on a KFP host and `schedule` makes that a recurring run; `run-package`
executes a compiled package here, task by task, as KFP's launcher would.
`compile`, `submit` and `schedule` also read their flags from a YAML file
(`--config`), whose keys are the flag names; flags on the command line win.

Every input is checked before TFX is imported (importing it takes half a
minute here), so a bad flag or data directory fails at once with a message
that names the problem.
"""

import argparse
import contextlib
import csv
import glob
import importlib.util
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

from distill_pipelines import configs


class InputError(ValueError):
  """A command-line input that cannot work; the message says why."""


def embedded_data_root() -> str:
  """The Chicago taxi CSV directory that ships inside the tfx package.

  Found without importing tfx, which is slow.
  """
  spec = importlib.util.find_spec("tfx")
  if spec is None or not spec.submodule_search_locations:
    raise InputError("The tfx package is not installed; run `make env`.")
  return os.path.join(list(spec.submodule_search_locations)[0], "examples",
                      "chicago_taxi_pipeline", "data", "simple")


def check_data_root(data_root: str, required_columns: Sequence[str]) -> List[str]:
  """Returns the CSV files under data_root; raises InputError if unusable."""
  if not os.path.isdir(data_root):
    raise InputError(f"--data-root {data_root!r} is not a directory.")
  files = sorted(glob.glob(os.path.join(data_root, "*.csv")))
  if not files:
    found = sorted(os.listdir(data_root))[:5]
    raise InputError(
        f"--data-root {data_root!r} holds no .csv file (found {found or 'nothing'}); "
        "CsvExampleGen needs CSV files with a header row.")
  _check_headers(files, required_columns)
  return files


def _check_headers(files: Sequence[str], required_columns: Sequence[str]) -> None:
  for path in files:
    with open(path, newline="", encoding="utf-8") as f:
      header = next(csv.reader(f), [])
    missing = [c for c in required_columns if c not in header]
    if missing:
      raise InputError(
          f"{path} has no column {', '.join(map(repr, missing))}, which the label "
          f"(big tipper: tips > 20% of fare) is computed from; its header is "
          f"{header}.")


def check_input_pattern(data_root: str, pattern: str,
                        required_columns: Sequence[str]) -> List[str]:
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
  _check_headers(files, required_columns)
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


def _add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--pipeline-name", default=configs.PIPELINE_NAME)
  parser.add_argument("--train-steps", type=_positive_int, default=configs.TRAIN_STEPS,
                      help="teacher training steps")
  parser.add_argument("--eval-steps", type=_positive_int, default=configs.EVAL_STEPS)
  parser.add_argument("--distill-steps", type=_positive_int,
                      default=configs.DISTILL_TRAIN_STEPS,
                      help="student (Distiller) training steps")
  parser.add_argument("--temperature", type=_float_in(0, float("inf"), low_open=True),
                      default=configs.TEMPERATURE)
  parser.add_argument("--alpha", type=_float_in(0, 1), default=configs.ALPHA,
                      help="weight of the soft (teacher) term; 1 = soft labels only")
  parser.add_argument("--auc-floor", type=_float_in(0, 1), default=configs.AUC_FLOOR,
                      help="the student's AUC must reach this to be blessed")
  parser.add_argument("--max-auc-drop", type=_float_in(0, 1),
                      default=configs.MAX_AUC_DROP,
                      help="the student's AUC may lie at most this far below the teacher's")
  parser.add_argument("--cache-teacher-outputs", action="store_true",
                      help="Distiller: compute the teacher's outputs once per "
                      "train example and reuse them every epoch")
  parser.add_argument("--beam-arg", action="append", dest="beam_args", default=None,
                      metavar="--FLAG=VALUE",
                      help="a Beam pipeline argument; repeat for more "
                      "(default: --direct_num_workers=1)")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="tfx-distill",
      description="Distil a TFX teacher into a small student, gated by TFMA.")
  commands = parser.add_subparsers(dest="command", required=True)
  run = commands.add_parser(
      "run", help="run the pipeline locally (LocalDagRunner, SQLite MLMD)")
  run.add_argument("--data-root", default=None,
                   help="directory of CSV files (default: the taxi CSV inside tfx)")
  run.add_argument("--pipeline-root", default="tfx_pipeline_output",
                   help="where artifacts, MLMD and the pushed model go")
  run.add_argument("--input-pattern", default=None,
                   help="files to read under --data-root, may hold {SPAN}: e.g. "
                   "'span-{SPAN}/*.csv' reads the newest span (default: every file)")
  run.add_argument("--serving-dir", default=None,
                   help="Pusher destination (default: PIPELINE_ROOT/serving_model)")
  run.add_argument("--student-module", default=configs.STUDENT_MODULE,
                   help="module file defining build_student(fn_args) "
                   "(default: the taxi student)")
  run.add_argument("--no-cache", action="store_true",
                   help="rerun every component even when its inputs did not change")
  _add_pipeline_flags(run)

  compile_ = commands.add_parser(
      "compile", help="write the pipeline as a Kubeflow Pipelines (v2) package")
  compile_.add_argument("--config", help="YAML file of flag values")
  compile_.add_argument("--image", help="container image holding this project "
                        "(built from kubeflow/Dockerfile)")
  compile_.add_argument("--pipeline-root",
                        help="where the cluster writes artifacts, e.g. gs://BUCKET/root "
                        "or s3://BUCKET/root (MinIO)")
  compile_.add_argument("--data-root", help="directory of CSV files as the cluster "
                        "sees it, e.g. gs://BUCKET/taxi")
  compile_.add_argument("--input-pattern", default=None,
                        help="files to read under --data-root; may hold {SPAN} (and "
                        "{VERSION}) so each run reads the newest span, e.g. "
                        "'span-{SPAN}/*.csv' (default: every file)")
  compile_.add_argument("--serving-dir", default=None,
                        help="Pusher destination; each blessed student becomes a new "
                        "numbered version under it (default: PIPELINE_ROOT/serving_model)")
  compile_.add_argument("--build-student", default=configs.BUILD_STUDENT,
                        help="Python path of the student's build_student, importable "
                        "in the image")
  compile_.add_argument("--output", default=None,
                        help="package file, .yaml (default: PIPELINE_NAME.yaml)")
  compile_.add_argument("--no-cache", action="store_true",
                        help="compile with KFP's step cache off")
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
    sub.add_argument("--experiment", default=configs.PIPELINE_NAME,
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
    dest = action.dest
    if action.type is not None and not isinstance(value, (list, bool)):
      try:
        value = action.type(str(value))
      except argparse.ArgumentTypeError as e:
        raise InputError(f"--config {args.config!r}: {key}: {e}") from e
    if dest == "beam_args" and not isinstance(value, list):
      value = [value]
    defaults[dest] = value
  sub.set_defaults(**defaults)
  return parser.parse_args(argv)


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


def _pipeline_settings(args: argparse.Namespace) -> Dict[str, object]:
  """create_pipeline's keyword arguments that every runner takes from flags."""
  return dict(
      pipeline_name=args.pipeline_name,
      label_key=configs.LABEL_KEY,
      raw_label_keys=configs.RAW_LABEL_KEYS,
      train_steps=args.train_steps,
      eval_steps=args.eval_steps,
      distill_train_steps=args.distill_steps,
      temperature=args.temperature,
      alpha=args.alpha,
      auc_floor=args.auc_floor,
      max_auc_drop=args.max_auc_drop,
      beam_pipeline_args=args.beam_args or ["--direct_num_workers=1"],
      enable_cache=not args.no_cache,
      cache_teacher_outputs=args.cache_teacher_outputs)


def _define(args: argparse.Namespace, *, data_root: str, pipeline_root: str,
            serving_dir: str, metadata_path: str, student_module: str):
  """The pipeline for `run`, from the flags. Imports TFX (slow)."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.create_pipeline(
      pipeline_root=pipeline_root,
      data_root=data_root,
      serving_model_dir=serving_dir,
      preprocessing_module=configs.PREPROCESSING_MODULE,
      teacher_module=configs.TEACHER_MODULE,
      student_module=student_module,
      input_pattern=args.input_pattern,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              metadata_path)),
      **_pipeline_settings(args))


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
  data_root = os.path.abspath(args.data_root or embedded_data_root())
  if args.input_pattern:
    check_input_pattern(data_root, args.input_pattern, configs.LABEL_SOURCE_COLUMNS)
  else:
    check_data_root(data_root, configs.LABEL_SOURCE_COLUMNS)
  student_module = os.path.abspath(args.student_module)
  if not os.path.isfile(student_module):
    raise InputError(f"--student-module {student_module!r} does not exist.")
  pipeline_root = os.path.abspath(args.pipeline_root)
  serving_dir = os.path.abspath(
      args.serving_dir or os.path.join(pipeline_root, "serving_model"))
  metadata_path = os.path.join(pipeline_root, "metadata.sqlite")
  print(f"Data:     {data_root}\nPipeline: {pipeline_root}", flush=True)

  # Imported here: the checks above must not wait for TFX.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from distill_pipelines import report  # pylint: disable=g-import-not-at-top

  os.makedirs(pipeline_root, exist_ok=True)
  try:
    definition = _define(args, data_root=data_root, pipeline_root=pipeline_root,
                         serving_dir=serving_dir, metadata_path=metadata_path,
                         student_module=student_module)
  except ValueError as e:  # A component refused its settings: nothing ran yet.
    raise InputError(str(e)) from e
  error = None
  with report.ProgressReporter(metadata_path, args.pipeline_name), _argv_parsed():
    try:
      tfx.orchestration.LocalDagRunner().run(definition)
    except Exception as e:  # pylint: disable=broad-except
      error = e
  summary = report.summarize(metadata_path, args.pipeline_name)
  print("\n" + report.render(summary), flush=True)
  if error is not None:
    print(f"\ntfx-distill: the pipeline failed: {type(error).__name__}: {error}",
          file=sys.stderr)
    return 1
  return 0


def _is_remote(path: str) -> bool:
  return "://" in path


def _compile(args: argparse.Namespace) -> int:
  _require(args, "image", "pipeline_root", "data_root")
  if any(c.isspace() for c in args.image):
    raise InputError(f"--image {args.image!r} is not an image reference.")
  output = args.output or f"{args.pipeline_name}.yaml"
  if not output.endswith((".yaml", ".yml")):
    raise InputError(f"--output {output!r} must end in .yaml: kfp.Client refuses "
                     ".json packages.")
  data_root, pipeline_root = args.data_root, args.pipeline_root
  if not _is_remote(data_root):
    data_root = os.path.abspath(data_root)
    if args.input_pattern:
      check_input_pattern(data_root, args.input_pattern, configs.LABEL_SOURCE_COLUMNS)
    else:
      check_data_root(data_root, configs.LABEL_SOURCE_COLUMNS)
  if not _is_remote(pipeline_root):
    pipeline_root = os.path.abspath(pipeline_root)
  serving_dir = args.serving_dir or pipeline_root.rstrip("/") + "/serving_model"
  if not _is_remote(serving_dir):
    serving_dir = os.path.abspath(serving_dir)

  from distill_kubeflow import compiler  # pylint: disable=g-import-not-at-top
  from distill_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  try:
    definition = pipeline.create_pipeline(
        pipeline_root=pipeline_root, data_root=data_root,
        serving_model_dir=serving_dir, input_pattern=args.input_pattern,
        preprocessing_fn=configs.PREPROCESSING_FN,
        teacher_run_fn=configs.TEACHER_RUN_FN,
        build_student=args.build_student,
        **_pipeline_settings(args))
    path = compiler.compile_pipeline(definition, image=args.image,
                                     package_path=output)
  except ValueError as e:
    raise InputError(str(e)) from e
  package = compiler.load_package(path)
  print(f"Wrote {path}: {len(package.tasks)} tasks, {os.path.getsize(path):,} bytes, "
        f"image {args.image}, pipeline root {pipeline_root}, pushing to {serving_dir}")
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
  name = args.name or f"{configs.PIPELINE_NAME}-retraining"
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
