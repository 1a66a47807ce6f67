"""The exit statuses of `tfx-distill`: why nothing was pushed, for a scheduler.

Every command returns one of these; `run` and `run-package` read theirs from
the run's outcome (`status`, `distill_kubeflow.commands.package_status`).
"""

from distill_pipelines import names

OK = 0  # the run ended as it should: the student was pushed (or nothing asked it)
FAILED = 1  # a component (or the KFP host) failed
INPUT = 2  # the settings or the data were refused before anything ran
DATA_ANOMALIES = 3  # the data broke the schema; nothing was trained
FIDELITY = 4  # the student is too far from the teacher
NO_REGRESSION = 5  # the student is worse than the serving model
BUSY = 6  # another run holds the pipeline root; this one did nothing
NOT_SERVED = 7  # the model the Pusher pushed is gone from its destination
NO_GAIN = 8  # require_gain: the student alone beat the distilled one
INTERRUPTED = 130  # Ctrl-C or SIGTERM: finished components are reused on rerun


def status(summary) -> int:
  """A local run's status from its summary (`distill_pipelines.report`)."""
  if summary.data_anomalies:
    return DATA_ANOMALIES
  failed = {g.evaluator for g in summary.gates if g.verdict == "failed"}
  if names.FIDELITY_EVALUATOR in failed:
    return FIDELITY
  if names.NO_REGRESSION_EVALUATOR in failed:
    return NO_REGRESSION
  if summary.failed:
    return FAILED
  if summary.held_for_no_gain:
    return NO_GAIN
  return NOT_SERVED if summary.pushed_missing else OK
