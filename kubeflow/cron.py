"""Check a KFP cron expression before anything is sent.

KFP's recurring runs parse their schedule with Go's robfig/cron: six fields,
seconds first (`second minute hour day-of-month month day-of-week`), or a
descriptor such as `@daily` or `@every 6h`. A five-field Unix crontab line is
the usual mistake; the error says how to fix it.
"""
import re
from typing import Dict, Optional, Tuple

_FIELDS: Tuple[Tuple[str, int, int, Optional[Dict[str, int]]], ...] = (
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}),
    ("day of week", 0, 6, {d: i for i, d in enumerate(
        "SUN MON TUE WED THU FRI SAT".split())}),
)
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily",
                "@midnight", "@hourly")
_EVERY = re.compile(r"^@every\s+((\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$")


class CronError(ValueError):
  """An expression KFP would refuse; the message says which part and why."""


def _value(text: str, name: str, low: int, high: int,
           names: Optional[Dict[str, int]]) -> int:
  if names and text.upper() in names:
    return names[text.upper()]
  if not text.isdigit():
    raise CronError(f"{name} field: {text!r} is not a number"
                    + (f" or one of {', '.join(names)}" if names else ""))
  value = int(text)
  if not low <= value <= high:
    raise CronError(f"{name} field: {value} is outside {low}-{high}")
  return value


def _check_field(field: str, name: str, low: int, high: int,
                 names: Optional[Dict[str, int]]) -> None:
  for item in field.split(","):
    span, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
      raise CronError(f"{name} field: step {step!r} in {item!r} must be a whole "
                      "number > 0")
    if span in ("*", "?"):
      if span == "?" and name not in ("day of month", "day of week"):
        raise CronError(f"{name} field: '?' is only allowed for the day fields")
      continue
    start, dash, end = span.partition("-")
    first = _value(start, name, low, high, names)
    if dash:
      last = _value(end, name, low, high, names)
      if last < first:
        raise CronError(f"{name} field: range {span!r} runs backwards")


def check_cron(expression: str) -> str:
  """Returns the expression, stripped, if KFP's scheduler accepts it.

  Raises:
    CronError: naming the field and the reason.
  """
  expression = " ".join(expression.split())
  if not expression:
    raise CronError("the cron expression is empty")
  if expression.startswith("@"):
    if expression in _DESCRIPTORS or _EVERY.match(expression):
      return expression
    raise CronError(f"unknown descriptor {expression!r}; use one of "
                    f"{', '.join(_DESCRIPTORS)} or '@every <duration>' (e.g. "
                    "'@every 6h')")
  fields = expression.split(" ")
  if len(fields) == 5:
    raise CronError(
        f"{expression!r} has 5 fields, but KFP's cron has 6, seconds first; "
        f"did you mean '0 {expression}'?")
  if len(fields) != 6:
    raise CronError(
        f"{expression!r} has {len(fields)} fields; KFP's cron needs 6: second "
        "minute hour day-of-month month day-of-week (e.g. '0 0 3 * * *' for "
        "03:00 every day)")
  for field, (name, low, high, names) in zip(fields, _FIELDS):
    _check_field(field, name, low, high, names)
  return expression
