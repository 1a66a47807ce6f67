"""Submit and schedule a compiled package on a Kubeflow Pipelines host.

Everything goes through `kfp.Client`; this module adds the settings a
production retraining schedule wants (one run at a time, no catch-up after a
pause) and errors that name the host when it cannot be reached or refuses.
"""
import contextlib
import dataclasses
import io
import os
from typing import Optional

import kfp
import kfp_server_api
import yaml

from distill_kubeflow import cron

# A scheduled retraining run must not overlap the previous one (both would
# push), and a paused schedule must not replay every missed slot.
MAX_CONCURRENCY = 1
NO_CATCHUP = True


class HostError(RuntimeError):
  """The KFP host could not be reached, or it refused the request."""


@contextlib.contextmanager
def _talking_to(host: str, action: str):
  try:
    yield
  except kfp_server_api.ApiException as e:
    raise HostError(
        f"Kubeflow Pipelines at {host} refused to {action}: HTTP {e.status} "
        f"{e.reason}: {(e.body or '').strip()[:500]}") from e
  except Exception as e:  # pylint: disable=broad-except
    # urllib3 wraps refused connections and DNS failures in several types.
    reason = getattr(e, "reason", None) or e
    raise HostError(
        f"Could not reach Kubeflow Pipelines at {host} to {action}: "
        f"{type(e).__name__}: {reason}") from e


def connect(host: str) -> kfp.Client:
  """A client for `host` (e.g. http://localhost:8080 after a port-forward)."""
  with _talking_to(host, "connect"):
    # kfp.Client prints experiment and run links; keep them for our summary.
    with contextlib.redirect_stdout(io.StringIO()):
      return kfp.Client(host=host)


def _experiment_id(client: kfp.Client, host: str, experiment: str) -> str:
  with _talking_to(host, f"find or create the experiment {experiment!r}"):
    with contextlib.redirect_stdout(io.StringIO()):
      return client.create_experiment(name=experiment).experiment_id


@dataclasses.dataclass(frozen=True)
class Submitted:
  host: str
  experiment_id: str
  id: str
  url: str


def submit(host: str, package_path: str, *, experiment: str,
           run_name: Optional[str] = None) -> Submitted:
  """Uploads the package and starts one run of it."""
  client = connect(host)
  experiment_id = _experiment_id(client, host, experiment)
  with _talking_to(host, "start a run"):
    with contextlib.redirect_stdout(io.StringIO()):
      run = client.create_run_from_pipeline_package(
          package_path, arguments={}, run_name=run_name,
          experiment_id=experiment_id)
  return Submitted(host, experiment_id, run.run_id,
                   f"{host.rstrip('/')}/#/runs/details/{run.run_id}")


def recurring_run_request(package_path: str, *, name: str, cron_expression: str,
                          experiment_id: str) -> dict:
  """The body `schedule` sends to KFP's recurring-run API, as JSON.

  Built from `kfp_server_api`'s own models with the same fields
  `kfp.Client.create_recurring_run` fills (a test checks the two agree).
  """
  cron_expression = cron.check_cron(cron_expression)
  with open(package_path, encoding="utf-8") as f:
    pipeline_spec = yaml.safe_load(f)
  body = kfp_server_api.V2beta1RecurringRun(
      experiment_id=experiment_id,
      mode=kfp_server_api.RecurringRunMode.ENABLE,
      pipeline_spec=pipeline_spec,
      runtime_config=kfp_server_api.V2beta1RuntimeConfig(parameters={}),
      display_name=name,
      no_catchup=NO_CATCHUP,
      trigger=kfp_server_api.V2beta1Trigger(
          cron_schedule=kfp_server_api.V2beta1CronSchedule(cron=cron_expression)),
      max_concurrency=MAX_CONCURRENCY)
  return kfp_server_api.ApiClient().sanitize_for_serialization(body)


def schedule(host: str, package_path: str, *, name: str, cron_expression: str,
             experiment: str) -> Submitted:
  """Creates an enabled recurring run of the package on `host`."""
  cron_expression = cron.check_cron(cron_expression)
  client = connect(host)
  experiment_id = _experiment_id(client, host, experiment)
  with _talking_to(host, "create the recurring run"):
    job = client.create_recurring_run(
        experiment_id=experiment_id, job_name=name,
        cron_expression=cron_expression, max_concurrency=MAX_CONCURRENCY,
        no_catchup=NO_CATCHUP, pipeline_package_path=os.path.abspath(package_path),
        enabled=True)
  return Submitted(host, experiment_id, job.recurring_run_id,
                   f"{host.rstrip('/')}/#/recurringrun/details/{job.recurring_run_id}")
