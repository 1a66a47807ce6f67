"""Scheduling and submitting a compiled package, without a cluster.

Cron expressions are checked before anything is sent. `submit` and `schedule`
talk to a stand-in KFP API server on localhost that records what it is sent:
the dry run must print exactly the request `kfp.Client` sends, and hosts that
are down or refuse are named in the error.
"""
import datetime
import http.server
import json
import socket
import threading

import pytest
import yaml

from distill_cli import main as cli
from distill_kubeflow import client
from distill_kubeflow import cron

IMAGE = "registry.example.com/ml/tfx-distill:1.0"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
  """A compiled package's path; a remote data root is not read, so the task is given."""
  path = str(tmp_path_factory.mktemp("kfp") / "taxi.yaml")
  assert cli.main(["compile", "--image", IMAGE, "--pipeline-root", "gs://b/r",
                   "--data-root", "gs://b/d", "--label", "y", "--task", "binary",
                   "--output", path]) == 0
  return path


@pytest.mark.parametrize("expression", [
    "0 0 3 * * *", "0 */15 * * * ?", "0 30 2 1-7 * MON", "0 0 0 1 JAN-MAR,DEC *",
    "@daily", "@every 6h30m", "@every 1.5h"])
def test_cron_accepts_kfp_expressions(expression):
  assert cron.check_cron(expression) == expression


# The reasons after the field's name are croniter's own words.
@pytest.mark.parametrize("expression, message", [
    ("0 3 * * *", "did you mean '0 0 3 * * *'"),
    ("0 0 3 * * * 2030", "has 7 fields; KFP's cron needs 6"),
    ("0 0 25 * * *", "hour field: '25' is not acceptable, out of range"),
    ("0 0 3 * * FUNDAY", "day of week field: 'FUNDAY' is not acceptable"),
    ("0 */0 * * * *", "minute field: '*/0' step '0' is not acceptable"),
    ("? 0 3 * * *", "second field: '?' is not acceptable. Question mark can only "
                    "used in day_of_month or day_of_week"),
    ("@fortnightly", "unknown descriptor"),
    ("@every 6d", "unknown descriptor"),
    ("", "empty"),
    ("0 0 0 31 2 *", "never fires (no such date)"),
    ("* * * * * *", "fires every 1 s"),
    ("*/10 0 3 * * *", "fires every 10 s (e.g. at "),
    ("0 * * * * *", "fires every 60 s"),
    ("@every 30s", "fires every 30 s; each firing is a whole pipeline run"),
])
def test_cron_refuses_bad_expressions(expression, message):
  with pytest.raises(cron.CronError) as refused:
    cron.check_cron(expression)
  assert message in str(refused.value)


def test_cron_refuses_a_first_firing_more_than_a_year_away():
  """February 29th, seen from a day whose next one is 2028's: the check
  counts from `now`, so the test holds whatever today's date."""
  feb_29 = "0 0 0 29 2 *"
  after_2024s = datetime.datetime(2024, 3, 1, tzinfo=datetime.timezone.utc)
  with pytest.raises(cron.CronError, match="first fires on 2028-02-29, more than "
                                           "a year from now"):
    cron.check_cron(feb_29, now=after_2024s)
  a_year_before = datetime.datetime(2027, 3, 1, tzinfo=datetime.timezone.utc)
  assert cron.check_cron(feb_29, now=a_year_before) == feb_29


class _FakeKfp(client._StandIn):  # pylint: disable=protected-access
  """Answers the KFP v2beta1 calls kfp.Client makes; records what it gets
  (the dry run's stand-in host, answering every call)."""
  requests = []
  refuse = False

  def do_GET(self):  # pylint: disable=invalid-name
    self.requests.append(("GET", self.path, None))
    if self.path.startswith("/apis/v2beta1/healthz"):
      return self._reply(200, {"multi_user": False})
    if self.path.startswith("/apis/v2beta1/experiments"):
      return self._reply(200, {"experiments": [
          {"experiment_id": "exp-7", "display_name": "distillation"}]})
    return self._reply(404, {"error": "not here"})

  def do_POST(self):  # pylint: disable=invalid-name
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    self.requests.append(("POST", self.path, body))
    if self.refuse:
      return self._reply(403, {"error": "forbidden: no permission to create"})
    if self.path == "/apis/v2beta1/recurringruns":
      return self._reply(200, dict(body, recurring_run_id="rr-1"))
    if self.path == "/apis/v2beta1/runs":
      return self._reply(200, dict(body, run_id="run-9"))
    return self._reply(404, {"error": "not here"})


@pytest.fixture
def fake_kfp():
  _FakeKfp.requests = []
  _FakeKfp.refuse = False
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeKfp)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{server.server_port}", _FakeKfp
  server.shutdown()


def _dry_run(package, capsys, *flags):
  code = cli.main(["schedule", "--package", package, "--cron", "0 0 3 * * *",
                   "--dry-run", *flags])
  out = capsys.readouterr().out
  return code, out


def test_schedule_dry_run_prints_a_recurring_run_request(package, capsys):
  code, out = _dry_run(package, capsys)
  assert code == 0
  assert "dry run: nothing sent" in out
  body = json.loads(out[out.index("{"):])
  assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
  assert body["max_concurrency"] == 1 and body["no_catchup"] is True
  assert body["mode"] == "ENABLE"
  # Named after the package's pipeline (`compile`'s default name: distillation).
  assert body["display_name"] == "distillation-retraining"
  with open(package, encoding="utf-8") as f:
    assert body["pipeline_spec"] == yaml.safe_load(f)


def test_schedule_sends_what_the_dry_run_printed(package, fake_kfp, capsys):
  host, server = fake_kfp
  _, out = _dry_run(package, capsys, "--host", host)
  assert server.requests == []  # the dry run asks no host, even when given one
  printed = json.loads(out[out.index("{"):])
  code = cli.main(["schedule", "--host", host, "--package", package,
                   "--cron", "0 0 3 * * *"])
  out = capsys.readouterr().out
  assert code == 0 and "rr-1" in out and "one run at a time, no catch-up" in out
  [(_, _, sent)] = [r for r in server.requests if r[1] == "/apis/v2beta1/recurringruns"]
  assert sent["experiment_id"] == "exp-7"
  printed["experiment_id"] = "exp-7"
  assert sent == printed


def test_dry_run_goes_through_no_proxy_and_fetches_no_credentials(
    package, fake_kfp, monkeypatch):
  """The dry run's request goes to its own listener on 127.0.0.1: proxy
  variables (here the fake host, which would record a proxied request) do not
  reroute it, and an IAP client id does not make kfp.Client fetch a token."""
  host, server = fake_kfp
  request = dict(name="n", cron_expression="@daily", experiment_id="e")
  plain = client.recurring_run_request(package, **request)
  for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    monkeypatch.setenv(variable, host)
    monkeypatch.setenv(variable.lower(), host)
  monkeypatch.delenv("NO_PROXY", raising=False)
  monkeypatch.delenv("no_proxy", raising=False)
  monkeypatch.setenv("KF_PIPELINES_IAP_OAUTH2_CLIENT_ID", "iap.apps.example")
  assert client.recurring_run_request(package, **request) == plain
  assert server.requests == []


def test_invalid_cron_is_refused_before_anything_is_sent(package, fake_kfp, capsys):
  host, server = fake_kfp
  code = cli.main(["schedule", "--host", host, "--package", package,
                   "--cron", "0 3 * * *"])
  assert code == 2
  assert "did you mean '0 0 3 * * *'" in capsys.readouterr().err
  assert server.requests == []


def test_submit_starts_a_run(package, fake_kfp, capsys):
  host, server = fake_kfp
  code = cli.main(["submit", "--host", host, "--package", package])
  assert code == 0 and "run-9" in capsys.readouterr().out
  [(_, _, sent)] = [r for r in server.requests if r[1] == "/apis/v2beta1/runs"]
  assert sent["experiment_id"] == "exp-7"
  with open(package, encoding="utf-8") as f:
    assert sent["pipeline_spec"] == yaml.safe_load(f)


def test_refusing_host_is_named(package, fake_kfp, capsys):
  host, server = fake_kfp
  server.refuse = True
  code = cli.main(["submit", "--host", host, "--package", package])
  err = capsys.readouterr().err
  assert code == 1
  assert f"Kubeflow Pipelines at {host} refused to start a run: HTTP 403" in err


def test_credentials_in_the_host_are_never_printed(package, capsys):
  with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  code = cli.main(["submit", "--host", f"http://ops:s3cret@127.0.0.1:{port}",
                   "--package", package])
  err = capsys.readouterr().err
  assert code == 1 and "s3cret" not in err
  assert f"Kubeflow Pipelines at http://ops:***@127.0.0.1:{port}" in err
  code = cli.main(["schedule", "--dry-run", "--host", "https://u:pw@kfp.example:8443",
                   "--package", package, "--cron", "@daily"])
  out = capsys.readouterr().out
  assert code == 0 and ":pw@" not in out and "https://u:***@kfp.example:8443" in out


def test_unreachable_host_is_named(package, capsys):
  with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  host = f"http://127.0.0.1:{port}"
  code = cli.main(["schedule", "--host", host, "--package", package,
                   "--cron", "@daily"])
  err = capsys.readouterr().err
  assert code == 1
  assert f"Could not reach Kubeflow Pipelines at {host}" in err
