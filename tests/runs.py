"""Running the command line in the test process and reading a run back.

Shared by the end-to-end test files: each runs `tfx-distill run` through
`cli.main` (one process: TensorFlow and TFX imported once) and reads what the
run left in ML Metadata.
"""
import contextlib
import io
import os
import sys

import tensorflow_model_analysis as tfma

from distill_cli import main as cli
from distill_pipelines import mlmd
from distill_pipelines import names
from distill_pipelines import report


def run_cli(*argv):
  """(exit status, stdout, stderr) of `tfx-distill run ARGV`."""
  out, err = io.StringIO(), io.StringIO()
  # The process's own command line must not reach the components: absl would
  # read pytest's `-v` as its --verbosity.
  saved, sys.argv = sys.argv, ["pytest", "-v"]
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      code = cli.main(["run", *argv])
  finally:
    sys.argv = saved
  return code, out.getvalue(), err.getvalue()


def summary(root, name):
  """The newest run's summary of pipeline `name` under `root`."""
  return report.summarize(os.path.join(root, "metadata.sqlite"), name)


def artifact(root, node, key):
  """Output `key` of component `node` in the newest run (the pipeline is
  named like its root directory), as MLMD's Artifact proto."""
  return mlmd.newest_output(os.path.join(root, "metadata.sqlite"),
                            os.path.basename(root), node, key).mlmd_artifact


def fidelity_validation(root):
  """The fidelity gate's TFMA validation result of the newest run."""
  evaluation = artifact(root, names.FIDELITY_EVALUATOR, "evaluation")
  return tfma.load_validation_result(evaluation.uri)
