"""Bad input to `tfx-distill run` fails at once, naming the problem."""
import os
import signal
import subprocess
import sys
import time

import pytest

from distill_cli import flags
from distill_cli import main as cli
from distill_pipelines import inputs
from distill_pipelines import local


_settings_from = cli.settings_from_args


def _run(argv, capsys):
  code = cli.main(["run", *argv])
  return code, capsys.readouterr().err


def test_directory_without_csv(tmp_path, capsys):
  (tmp_path / "notes.txt").write_text("hello")
  code, err = _run(["--data-root", str(tmp_path)], capsys)
  assert code == 2
  assert "holds no .csv file" in err and "notes.txt" in err


def test_missing_directory(tmp_path, capsys):
  code, err = _run(["--data-root", str(tmp_path / "nope")], capsys)
  assert code == 2 and "is not a directory" in err


def test_taxi_shaped_csv_needed_without_label(tmp_path, capsys):
  (tmp_path / "data.csv").write_text("fare,trip_miles\n1.0,2.0\n")
  code, err = _run(["--data-root", str(tmp_path)], capsys)
  assert code == 2
  assert "no column 'tips'" in err and "['fare', 'trip_miles']" in err
  assert "name the label column with --label" in err


def test_missing_student_module(tmp_path, capsys):
  code, err = _run(["--student-module", str(tmp_path / "student.py")], capsys)
  assert code == 2
  assert f"--student-module {str(tmp_path / 'student.py')!r} does not exist" in err


def _table(tmp_path, header, rows):
  (tmp_path / "data.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
  return str(tmp_path)


@pytest.mark.parametrize("header, rows, flags, message", [
    ("a,b", ["1,2", "3,4"], ["--label", "y"], "has no column 'y' (the --label column)"),
    ("a,y", ["1,x", "2,x", "3,x"], ["--label", "y"], "has one value (x)"),
    ("a,y", ["1,p", "2,q", "3,r"], ["--label", "y", "--task", "regression"],
     "a regression label must be numeric"),
    ("a,y", [f"{i},{i % 5}" for i in range(10)], ["--label", "y", "--task", "binary"],
     "--task binary, but the label column 'y' has 5 values (0, 1, 2, 3, 4)"),
    ("a,y", ["1,0.5", "2,1.5"], ["--label", "y", "--task", "multiclass"],
     "fractional numbers: that is a regression label"),
    ("a,y", ["1,1", "2,", "3,0"], ["--label", "y"], "is empty in 1 of 3 rows"),
    ("a,y", ["1,1", "2,0"], ["--label", "y", "--label-key", "y_xf", "--task", "binary"],
     "label_key 'y_xf' differs from label 'y'"),
    ("a,y", ["1,1", "2,0"], ["--label", "y", "--gate-metric", "mean_squared_error"],
     "cannot gate the binary task"),
])
def test_bad_label_or_task_exits_2_before_any_component(tmp_path, capsys, header, rows,
                                                        flags, message):
  root = tmp_path / "root"
  code, err = _run(["--data-root", _table(tmp_path, header, rows),
                    "--pipeline-root", str(root), *flags], capsys)
  assert code == 2, err
  assert message in err
  assert not root.exists()  # nothing created, nothing ran


def test_label_key_from_a_module_needs_the_task(tmp_path, capsys):
  module = tmp_path / "prep.py"
  module.write_text("def preprocessing_fn(inputs):\n  return inputs\n")
  code, err = _run(["--data-root", _table(tmp_path, "a,y", ["1,2.5", "2,0.1"]),
                    "--label", "y", "--label-key", "big", "--preprocessing-module",
                    str(module)], capsys)
  assert code == 2 and "--task is needed" in err


@pytest.mark.parametrize("flag, source, function", [
    ("--student-module", "def build(fn_args):\n  pass\n", "build_student"),
    ("--teacher-module", "import os\n", "run_fn"),
    ("--preprocessing-module", "x = (\n", "cannot be read as Python"),
])
def test_module_without_its_function(tmp_path, capsys, flag, source, function):
  module = tmp_path / "module.py"
  module.write_text(source)
  code, err = _run(["--data-root", _table(tmp_path, "a,y", ["1,0", "2,1"]),
                    "--label", "y", flag, str(module)], capsys)
  assert code == 2 and function in err and "module.py" in err


def test_settings_from_args_infers_the_task_and_classes(tmp_path):
  data = _table(tmp_path, "a,colour", ["1,red", "2,blue", "3,green", "4,red"])
  args = cli.build_parser().parse_args(
      ["run", "--data-root", data, "--label", "colour", "--pipeline-root",
       str(tmp_path / "r")])
  said = []
  settings = _settings_from(args, say=said.append)
  assert settings.task.value == "multiclass"
  assert settings.label_values == ["blue", "green", "red"]
  assert settings.pipeline_name == "distillation" and settings.preprocessing is None
  assert said == ["Task:     multiclass (inferred: 'colour' holds 3 text values; "
                  "--task overrides)"]


def test_existing_bare_savedmodel_is_linked_as_a_model_artifact(tmp_path):
  teacher = tmp_path / "teacher"
  teacher.mkdir()
  (teacher / "saved_model.pb").write_bytes(b"")
  data = _table(tmp_path, "a,y", ["1,0", "2,1"])
  args = cli.build_parser().parse_args(
      ["run", "--data-root", data, "--label", "y", "--pipeline-root",
       str(tmp_path / "r"), "--teacher-model", str(teacher)])
  settings = _settings_from(args, say=lambda _: None)
  assert os.path.realpath(os.path.join(settings.teacher_model, "Format-Serving")) == str(teacher)
  assert _settings_from(args, say=lambda _: None) == settings  # idempotent
  with pytest.raises(inputs.InputError, match="holds no SavedModel"):
    _settings_from(cli.build_parser().parse_args(
        ["run", "--data-root", data, "--label", "y", "--teacher-model", str(tmp_path)]),
        say=lambda _: None)
  # Several teachers: each imported, in order.
  artifact = tmp_path / "artifact"
  (artifact / "Format-Serving").mkdir(parents=True)
  (artifact / "Format-Serving" / "saved_model.pb").write_bytes(b"")
  two = _settings_from(cli.build_parser().parse_args(
      ["run", "--data-root", data, "--label", "y", "--pipeline-root", str(tmp_path / "r"),
       "--teacher-model", str(teacher), "--teacher-model", str(artifact)]),
      say=lambda _: None)
  assert two.teacher_models == [settings.teacher_model, str(artifact)]
  assert settings.teacher_models == [settings.teacher_model]


@pytest.mark.parametrize("argv, message", [
    # Types: argparse, at once.
    (["--eval-steps", "ten"], "argument --eval-steps: invalid int value: 'ten'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    # Ranges: Settings, named like the flag, before anything runs.
    (["--train-steps", "0"], "train-steps: Input should be greater than 0 (got 0)"),
    (["--distill-steps", "-5"], "distill-steps: Input should be greater than 0 (got -5)"),
    (["--seed", "-1"], "seed: Input should be greater than or equal to 0 (got -1)"),
    (["--teacher-folds", "-2"], "teacher-folds: Input should be greater than or equal "
     "to 0 (got -2)"),
    (["--alpha", "1.5"], "alpha: alpha weighs the soft (teacher) term and must lie "
     "in [0, 1]; got 1.5."),
    (["--temperature", "0"], "temperature: temperature must be > 0; got 0.0."),
    (["--task", "ranking"], "task: task must be one of ['binary', 'multiclass', "
     "'regression']; got 'ranking'."),
])
def test_bad_flags_exit_2(argv, message, capsys):
  try:
    code = cli.main(["run", *argv])
  except SystemExit as e:  # argparse
    code = e.code
  assert code == 2
  assert message in capsys.readouterr().err


def test_console_script_fails_before_importing_tensorflow(tmp_path):
  """The checks run before TFX or TensorFlow are imported: an error is instant."""
  code = ("import sys; from distill_cli import main as cli; "
          f"rc = cli.main(['run', '--data-root', {str(tmp_path)!r}]); "
          "print('tensorflow' in sys.modules, 'tfx.v1' in sys.modules); sys.exit(rc)")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, timeout=120, env=dict(os.environ))
  assert done.returncode == 2
  assert "holds no .csv file" in done.stderr
  assert done.stdout.split() == ["False", "False"]
  script = os.path.join(os.path.dirname(sys.executable), "tfx-distill")
  done = subprocess.run([script, "run", "--train-steps", "0"], capture_output=True,
                        text=True, timeout=120)
  assert done.returncode == 2 and "train-steps: Input should be greater than 0" in done.stderr


def test_input_pattern_that_matches_nothing(tmp_path, capsys):
  (tmp_path / "span-1").mkdir()
  code, err = _run(["--data-root", str(tmp_path), "--input-pattern",
                    "span-{SPAN}/*.csv"], capsys)
  assert code == 2 and "matches no file" in err and "span-{SPAN}/*.csv" in err


def test_input_pattern_with_version_but_no_span(tmp_path, capsys):
  code, err = _run(["--data-root", str(tmp_path), "--input-pattern",
                    "v-{VERSION}/*.csv"], capsys)
  assert code == 2 and "{VERSION} without {SPAN}" in err


def test_input_pattern_files_are_checked_for_label_columns(tmp_path, capsys):
  (tmp_path / "span-3").mkdir()
  (tmp_path / "span-3" / "data.csv").write_text("fare,trip_miles\n1.0,2.0\n")
  code, err = _run(["--data-root", str(tmp_path), "--input-pattern",
                    "span-{SPAN}/*.csv"], capsys)
  assert code == 2 and "span-3" in err and "no column 'tips'" in err


@pytest.mark.parametrize("text, message", [
    ("no-cache: 'false'\n", "no-cache: expected true or false, got 'false' (str)"),
    ("train-steps: [1, 2]\n", "train-steps: expected one value, got [1, 2]"),
    ("task: ranking\n", "task: task must be one of ['binary', 'multiclass', "
     "'regression']; got 'ranking'."),
    ("alpha: yes\n", "alpha: expected one value, got True"),
])
def test_config_file_is_typed_for_run(tmp_path, capsys, text, message):
  config = tmp_path / "run.yaml"
  config.write_text(text)
  assert cli.main(["run", "--config", str(config)]) == 2
  assert message in capsys.readouterr().err


def test_config_file_settings_are_named_like_flags(tmp_path):
  config = tmp_path / "kfp.yaml"
  config.write_text("image: img:1\npipeline-root: gs://b/r\nbeam-arg:\n"
                    "  - --runner=DataflowRunner\n  - --region=us-central1\n"
                    "distill_steps: 2000\nno-cache: true\n")
  parser = cli.build_parser()
  argv = ["compile", "--config", str(config), "--distill-steps", "3000"]
  args = flags.apply_config(parser, flags.subparsers(parser)["compile"], argv,
                           parser.parse_args(argv))
  assert args.image == "img:1" and args.pipeline_root == "gs://b/r"
  assert args.beam_args == ["--runner=DataflowRunner", "--region=us-central1"]
  assert args.no_cache is True
  assert args.distill_steps == 3000  # the command line wins over the file


def test_config_file_value_is_checked_like_the_flag(tmp_path, capsys):
  config = tmp_path / "kfp.yaml"
  config.write_text("alpha: 1.5\n")
  assert cli.main(["compile", "--config", str(config), "--image", "img:1",
                   "--pipeline-root", "gs://b/r", "--data-root", "gs://b/d",
                   "--label", "y", "--task", "binary"]) == 2
  assert ("alpha: alpha weighs the soft (teacher) term and must lie in [0, 1]; "
          "got 1.5." in capsys.readouterr().err)


# --- gates and retraining flags -------------------------------------------------

def test_gate_and_retraining_flags_fill_the_settings(tmp_path):
  schema = tmp_path / "curated"
  schema.mkdir()
  (schema / "schema.pbtxt").write_text("")
  args = cli.build_parser().parse_args([
      "run", "--pipeline-root", str(tmp_path), "--slice-by", "payment_type",
      "--slice-by", "company", "--min-slice-size", "50", "--serving-max-drop",
      "0.02", "--max-log-loss-increase", "0.1", "--calibration-tolerance", "0.2",
      "--schema", str(schema), "--input-pattern", "span-{SPAN}/*.csv",
      "--data-root", str(tmp_path)])
  (tmp_path / "span-1").mkdir()
  from distill_pipelines.taxi import raw_data  # pylint: disable=g-import-not-at-top
  with open(raw_data.csv_path(), encoding="utf-8") as f:
    (tmp_path / "span-1" / "data.csv").write_text("".join(f.readlines()[:50]))
  settings = _settings_from(args, say=lambda *a: None)
  assert settings.slice_by == ["payment_type", "company"]
  assert settings.min_slice_size == 50
  assert settings.no_regression.max_drop == 0.02
  assert settings.no_regression.max_log_loss_increase == 0.1
  assert settings.no_regression.calibration_tolerance == 0.2
  assert settings.schema_file == str(schema / "schema.pbtxt")


@pytest.mark.parametrize("argv, message", [
    (["--schema", "/no/such/schema.pbtxt"], "--schema /no/such/schema.pbtxt: no such "
     "schema file"),
    (["--slice-by", "tips"], "slice_by holds the label 'tips'"),
])
def test_bad_gate_or_retraining_settings_exit_2(argv, message, capsys):
  code, err = _run(argv, capsys)
  assert code == 2 and message in err, err


@pytest.mark.parametrize("pattern", ["/etc/*.csv", "../other/*.csv", "span-{SPAN}/../../x.csv"])
def test_input_pattern_stays_under_the_data_root(tmp_path, capsys, pattern):
  (tmp_path / "data.csv").write_text("a,y\n1,0\n2,1\n")
  code, err = _run(["--data-root", str(tmp_path), "--label", "y", "--input-pattern",
                    pattern], capsys)
  assert code == 2 and "reaches outside --data-root" in err
  assert "--allow-input-outside-data-root" in err


def test_a_pipeline_root_that_cannot_hold_a_run_is_named(tmp_path, capsys):
  from distill_pipelines.taxi import raw_data  # pylint: disable=g-import-not-at-top
  with open(raw_data.csv_path(), encoding="utf-8") as f:
    (tmp_path / "data.csv").write_text("".join(f.readlines()[:100]))
  root = tmp_path / "root"
  root.write_text("not a directory")
  code, err = _run(["--data-root", str(tmp_path), "--pipeline-root", str(root)], capsys)
  assert code == 2, err
  assert f"--pipeline-root {str(root)!r} cannot hold a run: it is a file" in err


def test_teacher_reuse_needs_spans_and_a_local_run(tmp_path, capsys):
  (tmp_path / "data.csv").write_text("a,y\n1,0\n2,1\n3,0\n")
  code, err = _run(["--data-root", str(tmp_path), "--label", "y",
                    "--reuse-teacher-spans", "2"], capsys)
  assert code == 2 and "reuse_teacher_spans counts spans: input_pattern must hold" in err
  code = cli.main(["compile", "--image", "img:1", "--pipeline-root", "gs://b/r",
                            "--data-root", "gs://b/d", "--label", "y", "--task", "binary",
                            "--input-pattern", "span-{SPAN}/*.csv",
                            "--reuse-teacher-spans", "2"])
  assert code == 2
  assert "a compiled package trains its teacher on every run" in capsys.readouterr().err


@pytest.mark.parametrize("signum, why", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_signal_is_remembered_when_tensorflow_turns_it_into_another_error(signum, why):
  # A KeyboardInterrupt raised inside TensorFlow's C++ code came out of tf.data
  # as a ValueError in CI; the run must still count as interrupted.
  before = signal.getsignal(signum)
  with local._Interrupts().installed() as signals:  # pylint: disable=protected-access
    with pytest.raises(ValueError):
      try:
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler runs before this returns
      except KeyboardInterrupt as e:
        raise ValueError("The two structures don't have the same nested structure") from e
  assert signals.why == why
  assert signal.getsignal(signum) is before


def test_teacher_type_and_imports_flags(tmp_path, capsys):
  data = _table(tmp_path, "a,colour", ["1,red", "2,blue", "3,green", "4,red"])
  zero_code = ["run", "--data-root", data, "--label", "colour", "--pipeline-root",
               str(tmp_path / "r")]
  settings = _settings_from(cli.build_parser().parse_args(
      zero_code + ["--teacher-type", "gbt"]), say=lambda *a: None)
  assert settings.teacher_code == "distill_pipelines.generic.tree_teacher.run_fn"
  assert settings.teacher_modules == ["tensorflow_decision_forests"]
  own = _settings_from(cli.build_parser().parse_args(
      zero_code + ["--teacher-module", "my_pkg.trees.run_fn", "--teacher-imports",
                   "tensorflow_decision_forests", "--teacher-imports", "my_ops"]),
      say=lambda *a: None)
  assert own.teacher_modules == ["tensorflow_decision_forests", "my_ops"]
  demo = _settings_from(cli.build_parser().parse_args(
      ["run", "--pipeline-root", str(tmp_path / "d"), "--teacher-type", "gbt"]),
      say=lambda *a: None)
  assert demo.teacher == "distill_pipelines.taxi.tree_teacher.run_fn"
  assert demo.teacher_modules == ["tensorflow_decision_forests"]
  assert cli.main(zero_code + ["--teacher-type", "gbt", "--teacher-module",
                               "my_pkg.trees.run_fn"]) == 2
  assert "teacher_type picks the zero-code teacher" in capsys.readouterr().err
  folds = _settings_from(cli.build_parser().parse_args(
      zero_code + ["--teacher-folds", "4"]), say=lambda *a: None)
  assert folds.teacher_folds == 4 and folds.module_config()["teacher_folds"] == 4
  assert cli.main(zero_code + ["--teacher-folds", "1"]) == 2
  assert "teacher_folds is 0 (off) or a number of folds, at least 2" in (
      capsys.readouterr().err)


def test_transfer_set_flags(tmp_path, capsys):
  data = _table(tmp_path, "a,colour", ["1,red", "2,blue", "3,green", "4,red"])
  zero_code = ["run", "--data-root", data, "--label", "colour", "--pipeline-root",
               str(tmp_path / "r")]
  unlabeled = tmp_path / "unlabeled"
  unlabeled.mkdir()
  (unlabeled / "rows.csv").write_text("a\n5\n6\n")
  settings = _settings_from(cli.build_parser().parse_args(
      zero_code + ["--unlabeled-root", str(unlabeled), "--synthetic-ratio", "2"]),
      say=lambda *a: None)
  assert settings.unlabeled_root == str(unlabeled) and settings.synthetic_ratio == 2.0
  assert _settings_from(cli.build_parser().parse_args(zero_code),
                        say=lambda *a: None).synthetic_ratio == 0.0
  assert cli.main(zero_code + ["--unlabeled-root", str(tmp_path / "nowhere")]) == 2
  assert "--unlabeled-root" in capsys.readouterr().err
  (tmp_path / "empty").mkdir()
  assert cli.main(zero_code + ["--unlabeled-root", str(tmp_path / "empty")]) == 2
  assert "holds no .csv file" in capsys.readouterr().err
  assert cli.main(zero_code + ["--synthetic-ratio", "-1"]) == 2
  assert ("synthetic-ratio: Input should be greater than or equal to 0 (got -1.0)"
          in capsys.readouterr().err)


def test_the_demo_refuses_the_ensemble_teacher_by_name(tmp_path, capsys):
  assert cli.main(["run", "--pipeline-root", str(tmp_path / "d"),
                   "--teacher-type", "ensemble"]) == 2
  assert "The taxi demo's teachers are 'mlp' and 'gbt'" in capsys.readouterr().err


def test_a_label_without_a_data_root_reads_the_demo_csv(tmp_path):
  """--label alone: the zero-code path on the embedded CSV (README's flag table)."""
  from distill_pipelines.taxi import config  # pylint: disable=g-import-not-at-top
  settings = _settings_from(cli.build_parser().parse_args(
      ["run", "--label", "fare", "--pipeline-root", str(tmp_path)]), say=lambda _: None)
  assert settings.data_root == config.embedded_data_root()
  assert settings.task.value == "regression" and settings.preprocessing is None


def test_a_wrong_setting_is_named_by_its_flag(tmp_path, capsys):
  for flag, value in (("--train-steps", "0"), ("--gate-max-drop", "-1"),
                      ("--serving-max-drop", "-1"), ("--alpha", "2")):
    code, err = _run(["--pipeline-root", str(tmp_path), flag, value], capsys)
    assert code == 2 and f"error: {flag}: " in err, err


def test_litert_flags_fill_the_litert_settings(tmp_path):
  def litert(*flags):
    args = cli.build_parser().parse_args(["run", "--pipeline-root", str(tmp_path), *flags])
    return _settings_from(args, say=lambda *_: None).litert
  assert (litert().enabled, litert().max_drop) == (True, None)
  assert litert("--no-litert").enabled is False
  assert litert("--litert-max-drop", "0.01", "--label", "fare").max_drop == 0.01
