"""Submit and schedule a compiled package on a Kubeflow Pipelines host.

Everything goes through `kfp.Client`; this module adds the settings a
production retraining schedule wants (one run at a time, no catch-up after a
pause), errors that name the host when it cannot be reached or refuses, and
the dry run's body: `kfp.Client`'s own request, sent to a stand-in host on
this machine's loopback interface that keeps it.
"""
import contextlib
import dataclasses
import http.server
import io
import json
import os
import re
import threading
from typing import Optional
import warnings

import kfp
import kfp_server_api

from distill_kubeflow import cron

# A scheduled retraining run must not overlap the previous one (both would
# push), and a paused schedule must not replay every missed slot.
MAX_CONCURRENCY = 1
NO_CATCHUP = True
# The KFP v2beta1 paths the dry run's stand-in host answers.
_HEALTHZ = "/apis/v2beta1/healthz"
_RECURRING_RUNS = "/apis/v2beta1/recurringruns"


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
  return _client(host)


def _client(host: str, **options) -> kfp.Client:
  with _talking_to(host, "connect"), warnings.catch_warnings():
    # Its FutureWarning only says it needs KFP 2.0.0-beta.2 or later, as the
    # KFP v2 package we compile does anyway.
    warnings.filterwarnings("ignore", "This client only works", FutureWarning)
    # kfp.Client prints experiment and run links; keep them for our summary.
    with contextlib.redirect_stdout(io.StringIO()):
      return kfp.Client(host=host, **options)


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


class _StandIn(http.server.BaseHTTPRequestHandler):
  """Answers the dry run's `kfp.Client` as a KFP host would, and keeps the
  recurring run's body instead of creating it."""

  def _reply(self, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    self.send_response(status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def do_GET(self):  # pylint: disable=invalid-name
    if self.path.split("?")[0] == _HEALTHZ:  # kfp.Client asks it when built
      return self._reply(200, {"multi_user": False})
    return self._reply(404, {"error": f"the dry run does not answer {self.path}"})

  def do_POST(self):  # pylint: disable=invalid-name
    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
    if self.path != _RECURRING_RUNS:
      return self._reply(404, {"error": f"the dry run does not answer {self.path}"})
    self.server.bodies.append(body)
    return self._reply(200, {"recurring_run_id": "dry-run"})

  def log_message(self, *args):  # no access log on stderr
    pass


@contextlib.contextmanager
def _stand_in_host():
  """The URL of a KFP stand-in on 127.0.0.1 (nothing leaves the machine), and
  the request bodies it was sent, for the `with` block's duration."""
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
  server.bodies = []
  thread = threading.Thread(target=server.serve_forever, daemon=True,
                            name="kfp-dry-run")
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_port}", server.bodies
  finally:
    server.shutdown()
    server.server_close()
    thread.join()


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
  `kfp_server_api` and sent to a stand-in host on 127.0.0.1 that keeps it:
  no KFP host is asked. (kfp_server_api's urllib3 pool ignores HTTP_PROXY and
  the like; it uses a proxy only when `kfp.Client` is given one.)
  """
  cron_expression = cron.check_cron(cron_expression)
  with _stand_in_host() as (url, bodies):
    # A placeholder token: with KF_PIPELINES_IAP_OAUTH2_CLIENT_ID set,
    # kfp.Client would otherwise fetch a real one from Google.
    _create_recurring_run(_client(url, existing_token="dry-run"), package_path,
                          name=name, cron_expression=cron_expression,
                          experiment_id=experiment_id)
  if len(bodies) != 1:
    raise AssertionError(f"kfp.Client.create_recurring_run sent {len(bodies)} "
                         "recurring-run requests, not 1")
  return json.loads(bodies[0])


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
