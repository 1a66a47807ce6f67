"""Submit and schedule a compiled package on a Kubeflow Pipelines host.

Everything goes through `kfp.Client`; this module adds the settings a
production retraining schedule wants (one run at a time, no catch-up after a
pause), errors that name the host when it cannot be reached or refuses, and
the dry run's body: `kfp.Client`'s own request, held back before it is sent.
"""
import contextlib
import dataclasses
import io
import os
import re
from typing import Optional
from unittest import mock
import warnings

import kfp
import kfp_server_api

from distill_kubeflow import cron

# A scheduled retraining run must not overlap the previous one (both would
# push), and a paused schedule must not replay every missed slot.
MAX_CONCURRENCY = 1
NO_CATCHUP = True
# The dry run's client is built for a host that is never asked (.invalid: RFC 2606).
_DRY_RUN_HOST = "http://kfp.dry-run.invalid"


class HostError(RuntimeError):
  """The KFP host could not be reached, or it refused the request."""


_CREDENTIALS = re.compile(r"(\w[\w+.-]*://[^/\s:@]+):[^@\s/]*@")


def redact(text: str) -> str:
  """`text` with the password of every URL's user-info hidden
  (http://user:secret@host -> http://user:***@host): a host URL may carry
  credentials, and messages end up in CI logs."""
  return _CREDENTIALS.sub(r"\1:***@", text)


@contextlib.contextmanager
def _talking_to(host: str, action: str):
  host = redact(host)
  try:
    yield
  except kfp_server_api.ApiException as e:
    raise HostError(redact(
        f"Kubeflow Pipelines at {host} refused to {action}: HTTP {e.status} "
        f"{e.reason}: {(e.body or '').strip()[:500]}")) from e
  except Exception as e:  # pylint: disable=broad-except
    # urllib3 wraps refused connections and DNS failures in several types.
    reason = getattr(e, "reason", None) or e
    raise HostError(redact(
        f"Could not reach Kubeflow Pipelines at {host} to {action}: "
        f"{type(e).__name__}: {reason}")) from e


def connect(host: str) -> kfp.Client:
  """A client for `host` (e.g. http://localhost:8080 after a port-forward)."""
  with _talking_to(host, "connect"), warnings.catch_warnings():
    # Its FutureWarning only says it needs KFP 2.0.0-beta.2 or later, as the
    # KFP v2 package we compile does anyway.
    warnings.filterwarnings("ignore", "This client only works", FutureWarning)
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
  return Submitted(redact(host), experiment_id, run.run_id,
                   f"{redact(host).rstrip('/')}/#/runs/details/{run.run_id}")


class _Unsent(Exception):
  """Raised with the body a dry run keeps from being sent."""


def _hold_back(*args, body=None, **kwargs) -> None:
  raise _Unsent(body)


def _create_recurring_run(client: kfp.Client, package_path: str, *, name: str,
                          cron_expression: str, experiment_id: str):
  # One call for `schedule` and its dry run, so both send the same settings.
  return client.create_recurring_run(
      experiment_id=experiment_id, job_name=name,
      cron_expression=cron_expression, max_concurrency=MAX_CONCURRENCY,
      no_catchup=NO_CATCHUP, pipeline_package_path=os.path.abspath(package_path),
      enabled=True)


def recurring_run_request(package_path: str, *, name: str, cron_expression: str,
                          experiment_id: str) -> dict:
  """The body `schedule` sends to KFP's recurring-run API, as JSON.

  It is `kfp.Client.create_recurring_run`'s own request, serialized by
  `kfp_server_api` and stopped before it leaves the process: no host is asked.
  """
  cron_expression = cron.check_cron(cron_expression)
  # kfp.Client asks the host's healthz when it is built, and every API call
  # ends in `ApiClient.request` with the serialized body; both stay here.
  healthz = kfp_server_api.V2beta1GetHealthzResponse(multi_user=False)
  with mock.patch.object(kfp.Client, "get_kfp_healthz", return_value=healthz), \
      mock.patch.object(kfp_server_api.ApiClient, "request", _hold_back):
    try:
      _create_recurring_run(connect(_DRY_RUN_HOST), package_path,
                            name=name, cron_expression=cron_expression,
                            experiment_id=experiment_id)
    except _Unsent as unsent:
      return unsent.args[0]
  raise AssertionError("kfp.Client.create_recurring_run sent no request")


def schedule(host: str, package_path: str, *, name: str, cron_expression: str,
             experiment: str) -> Submitted:
  """Creates an enabled recurring run of the package on `host`."""
  cron_expression = cron.check_cron(cron_expression)
  client = connect(host)
  experiment_id = _experiment_id(client, host, experiment)
  with _talking_to(host, "create the recurring run"):
    job = _create_recurring_run(client, package_path, name=name,
                                cron_expression=cron_expression,
                                experiment_id=experiment_id)
  return Submitted(redact(host), experiment_id, job.recurring_run_id,
                   f"{redact(host).rstrip('/')}/#/recurringrun/details/"
                   f"{job.recurring_run_id}")
