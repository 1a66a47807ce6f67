"""Bad input to `tfx-distill run` fails at once, naming the problem."""
import os
import subprocess
import sys

import pytest

from distill_pipelines import cli


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


def test_csv_without_label_source_columns(tmp_path, capsys):
  (tmp_path / "data.csv").write_text("fare,trip_miles\n1.0,2.0\n")
  code, err = _run(["--data-root", str(tmp_path)], capsys)
  assert code == 2
  assert "no column 'tips'" in err and "['fare', 'trip_miles']" in err


def test_missing_student_module(tmp_path, capsys):
  code, err = _run(["--student-module", str(tmp_path / "student.py")], capsys)
  assert code == 2 and "student.py" in err and "does not exist" in err


@pytest.mark.parametrize("argv, message", [
    (["--train-steps", "0"], "--train-steps: must be > 0, got 0"),
    (["--distill-steps", "-5"], "--distill-steps: must be > 0, got -5"),
    (["--eval-steps", "ten"], "expected a whole number, got 'ten'"),
    (["--alpha", "1.5"], "--alpha: must lie in [0, 1], got 1.5"),
    (["--temperature", "0"], "--temperature: must lie in (0, inf], got 0.0"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_bad_flags_exit_2(argv, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["run", *argv])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_console_script_fails_before_importing_tensorflow(tmp_path):
  """The checks run before TFX or TensorFlow are imported: an error is instant."""
  code = ("import sys; from distill_pipelines import cli; "
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
  assert done.returncode == 2 and "must be > 0" in done.stderr


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


def test_config_file_settings_are_named_like_flags(tmp_path):
  config = tmp_path / "kfp.yaml"
  config.write_text("image: img:1\npipeline-root: gs://b/r\nbeam-arg:\n"
                    "  - --runner=DataflowRunner\n  - --region=us-central1\n"
                    "distill_steps: 2000\nno-cache: true\n")
  parser = cli.build_parser()
  argv = ["compile", "--config", str(config), "--distill-steps", "3000"]
  args = cli._apply_config(parser, argv, parser.parse_args(argv))  # pylint: disable=protected-access
  assert args.image == "img:1" and args.pipeline_root == "gs://b/r"
  assert args.beam_args == ["--runner=DataflowRunner", "--region=us-central1"]
  assert args.no_cache is True
  assert args.distill_steps == 3000  # the command line wins over the file


def test_config_file_value_is_checked_like_the_flag(tmp_path, capsys):
  config = tmp_path / "kfp.yaml"
  config.write_text("alpha: 1.5\n")
  assert cli.main(["compile", "--config", str(config)]) == 2
  assert "alpha: must lie in [0, 1], got 1.5" in capsys.readouterr().err
