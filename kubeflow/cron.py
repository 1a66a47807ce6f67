"""Check a KFP cron expression before anything is sent.

KFP's recurring runs parse their schedule with Go's robfig/cron: six fields,
seconds first (`second minute hour day-of-month month day-of-week`), or a
descriptor such as `@daily` or `@every 6h`. croniter reads the same fields
(`second_at_beginning=True`) and descriptors, so it does the checking; this
module adds what croniter cannot say: that a five-field Unix crontab line, the
usual mistake, would be misread by KFP (robfig/cron takes it as seconds to
months), the `@every <duration>` descriptor only robfig/cron has, and which
field is wrong.

An expression KFP accepts can still be useless as a retraining schedule: one
that never fires (February 31st) or not within a year, or one that fires
more often than every `MIN_INTERVAL_SECONDS` (every second, say: each firing
is a whole pipeline run). Those are refused too, with the times they fire.

croniter also reads a few forms robfig/cron refuses (`L`, `#`, `W`, a range
that wraps such as `5-2`); the KFP host refuses those when the recurring run is
created, and `client.HostError` shows its answer.
"""
import datetime
import re

import croniter

# A retraining run takes minutes: a schedule firing more often is a mistake.
MIN_INTERVAL_SECONDS = 300
# Firings looked at for the shortest interval (enough for a burst such as
# '*/10 0 3 * * *', ten seconds apart at 03:00).
_FIRINGS = 60
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}

_FIELDS = ("second", "minute", "hour", "day of month", "month", "day of week")
_DESCRIPTORS = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
# robfig/cron's own descriptor, unknown to croniter: a Go duration.
_EVERY = re.compile(r"^@every\s+((\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$")


class CronError(ValueError):
  """An expression KFP would refuse; the message says which part and why."""


def check_cron(expression: str, now: datetime.datetime = None) -> str:
  """Returns the expression, whitespace normalized, if KFP's scheduler accepts it.

  `now` (default: the current UTC time) is when "within a year" counts from.

  Raises:
    CronError: naming the field and croniter's reason.
  """
  expression = " ".join(expression.split())
  if not expression:
    raise CronError("the cron expression is empty")
  if expression.startswith("@"):
    every = _EVERY.match(expression)
    if every:
      seconds = sum(float(n) * _GO_UNITS[u]
                    for n, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)",
                                           every.group(1)))
      _check_interval(expression, seconds)
      return expression
    if croniter.croniter.is_valid(expression, second_at_beginning=True):
      _check_firings(expression, now)
      return expression
    raise CronError(f"unknown descriptor {expression!r}; use one of "
                    f"{_DESCRIPTORS} or '@every <duration>' (e.g. '@every 6h')")
  fields = expression.split(" ")
  # croniter reads 5 fields as minute-first, robfig/cron as second-first.
  if len(fields) == 5:
    raise CronError(
        f"{expression!r} has 5 fields, but KFP's cron has 6, seconds first; "
        f"did you mean '0 {expression}'?")
  if len(fields) != 6:
    raise CronError(
        f"{expression!r} has {len(fields)} fields; KFP's cron needs 6: second "
        "minute hour day-of-month month day-of-week (e.g. '0 0 3 * * *' for "
        "03:00 every day)")
  for i, (field, name) in enumerate(zip(fields, _FIELDS)):
    # One field at a time, the others '*': croniter's message does not say
    # which field it refused.
    probe = " ".join(field if j == i else "*" for j in range(6))
    try:
      croniter.croniter.expand(probe, second_at_beginning=True)
    except croniter.CroniterError as e:
      # Drop croniter's echo of the probe and its own field numbering.
      reason = re.sub(r"^\[[^\]]*\]|^" + re.escape(probe) + r"| in field \d+", "",
                      str(e)).strip(" .")
      raise CronError(f"{name} field: {field!r} {reason}") from e
  _check_firings(expression, now)
  return expression


def _check_interval(expression: str, seconds: float, at: str = "") -> None:
  if seconds < MIN_INTERVAL_SECONDS:
    raise CronError(
        f"{expression!r} fires every {seconds:g} s{at}; each firing is a whole "
        f"pipeline run, so a retraining schedule must be at least "
        f"{MIN_INTERVAL_SECONDS // 60} minutes apart")


def _check_firings(expression: str,
                   now: datetime.datetime = None) -> None:
  """Fires within a year, and never twice within MIN_INTERVAL_SECONDS."""
  now = now or datetime.datetime.now(datetime.timezone.utc)
  try:
    times = croniter.croniter(expression, now, second_at_beginning=True)
    firings = [times.get_next(datetime.datetime) for _ in range(_FIRINGS)]
  except (croniter.CroniterBadDateError, croniter.CroniterError) as e:
    raise CronError(f"{expression!r} never fires (no such date): {e}") from None
  if firings[0] - now > datetime.timedelta(days=366):
    raise CronError(f"{expression!r} first fires on {firings[0]:%Y-%m-%d}, more than "
                    "a year from now")
  gap, when = min((b - a, a) for a, b in zip(firings, firings[1:]))
  _check_interval(expression, gap.total_seconds(),
                  f" (e.g. at {when:%Y-%m-%d %H:%M:%S} UTC)")
