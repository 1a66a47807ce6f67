"""Which of a task's metrics (`Task.metrics`, in tasks.py) a gate holds the
student to."""

from distill_components.distiller.tasks import Metric, Task


class GateError(ValueError):
  """A gate that cannot be built for the task; the message says why."""


def gate_metric(task: Task, gate) -> Metric:
  """The metric a `settings.Gate` holds the student to."""
  metrics = task.metrics
  if gate.metric is None:
    return metrics[0]
  gateable = [m for m in metrics if m.gateable]
  for metric in gateable:
    if gate.metric in (metric.name, metric.class_name):
      return metric
  raise GateError(
      f"The gate metric {gate.metric!r} cannot gate the {task.value} task; "
      f"choose one of {[m.name for m in gateable]}.")
