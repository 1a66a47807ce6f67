"""What the CSV files hold, read before any component runs.

The command line checks the header of every file and reads the label column
in full (pyarrow's CSV reader, that one column only) to infer the task, list
the classes and refuse a label that cannot be learned, in seconds and before
TFX is imported.
"""

import csv
import dataclasses
import math
from typing import List, Optional, Sequence

from distill_components.distiller.tasks import Task

# A whole-number label with at most this many values is taken for classes.
MAX_INFERRED_CLASSES = 20
# More classes than this is refused: the student would need one logit each.
MAX_CLASSES = 1000


class TableError(ValueError):
  """A CSV that cannot serve; the message names the file and the column."""


def header(path: str) -> List[str]:
  """The column names of a CSV file (a UTF-8 byte-order mark is dropped)."""
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      return next(csv.reader(f), [])
  except UnicodeDecodeError as e:
    raise TableError(f"{path} is not UTF-8 text (byte {e.start}: "
                     f"{e.object[e.start:e.start + 1]!r}); save it as UTF-8.") from None


def check_columns(files: Sequence[str], required: Sequence[str], why: str) -> None:
  """Every file has every `required` column, else TableError saying `why`."""
  for path in files:
    columns = header(path)
    missing = [c for c in required if c not in columns]
    if missing:
      raise TableError(
          f"{path} has no column {', '.join(map(repr, missing))} ({why}); its "
          f"header is {columns}.")


@dataclasses.dataclass(frozen=True)
class LabelProfile:
  """The label column across the files."""
  column: str
  rows: int
  missing: int
  numeric: bool
  # Distinct values as text, sorted (numerically for numbers), when there are
  # at most MAX_CLASSES of them; None otherwise.
  values: Optional[List[str]]
  whole_numbers: bool  # every numeric value is an integer

  @property
  def distinct(self) -> Optional[int]:
    return None if self.values is None else len(self.values)


def _text(value) -> str:
  if isinstance(value, float) and value.is_integer():
    return str(int(value))
  return str(value)


def profile_label(files: Sequence[str], column: str) -> LabelProfile:
  """Reads `column` of every file (that column only) and describes it."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
  from pyarrow import csv as pa_csv  # pylint: disable=g-import-not-at-top
  chunks = []
  for path in files:
    try:
      table = pa_csv.read_csv(
          path, convert_options=pa_csv.ConvertOptions(include_columns=[column]))
    except (pa.ArrowInvalid, OSError) as e:
      raise TableError(f"{path}: cannot read column {column!r}: {e}") from None
    chunks.append(table.column(column))
  arrays = [a for chunk in chunks for a in chunk.chunks]
  kinds = {a.type for a in arrays}
  if len(kinds) > 1:  # files disagree (int and float, or number and text)
    common = (pa.float64() if all(pa.types.is_integer(k) or pa.types.is_floating(k)
                                  or pa.types.is_null(k) for k in kinds)
              else pa.string())
    arrays = [a.cast(common) for a in arrays]
  values = pa.chunked_array(arrays, type=arrays[0].type if arrays else pa.null())
  kind = values.type
  numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or \
      pa.types.is_null(kind)
  present = values.drop_null()
  if pa.types.is_string(kind) or pa.types.is_large_string(kind):
    present = present.filter(pc.not_equal(present, ""))
  python_values = present.to_pylist()
  if numeric:
    finite = [v for v in python_values if not (isinstance(v, float) and
                                                not math.isfinite(v))]
    whole = all(float(v).is_integer() for v in finite)
  else:
    whole = False
  distinct = set(python_values)
  listed = None
  if len(distinct) <= MAX_CLASSES:
    listed = [_text(v) for v in sorted(distinct)]
    # Text equal after formatting (1 and 1.0) is one class.
    listed = list(dict.fromkeys(listed))
  return LabelProfile(column=column, rows=len(values),
                      missing=len(values) - len(python_values), numeric=numeric,
                      values=listed, whole_numbers=whole)


def infer_task(profile: LabelProfile) -> Task:
  """The task a label's values suggest (see `describe_inference`)."""
  if profile.numeric and not profile.whole_numbers:
    return Task.REGRESSION
  if profile.numeric and (profile.distinct is None or
                          profile.distinct > MAX_INFERRED_CLASSES):
    return Task.REGRESSION
  return Task.BINARY if profile.distinct == 2 else Task.MULTICLASS


def describe_inference(profile: LabelProfile, task: Task) -> str:
  if task is Task.REGRESSION:
    why = ("fractional numbers" if not profile.whole_numbers else
           f"more than {MAX_INFERRED_CLASSES} whole-number values")
  else:
    kind = "whole-number" if profile.numeric else "text"
    why = f"{profile.distinct} {kind} values"
  return f"{task.value} (inferred: {profile.column!r} holds {why}; --task overrides)"


def check_label(profile: LabelProfile, task: Task) -> None:
  """Raises TableError unless the raw label can be learned as `task`."""
  name = repr(profile.column)
  if profile.rows == 0:
    raise TableError(f"The CSV files hold no rows: nothing to learn {name} from.")
  if profile.missing:
    raise TableError(
        f"The label column {name} is empty in {profile.missing} of {profile.rows} "
        "rows; drop those rows or fill in their label.")
  if task is Task.REGRESSION:
    if not profile.numeric:
      raise TableError(f"The label column {name} holds text (e.g. "
                       f"{(profile.values or ['?'])[0]!r}); a regression label "
                       "must be numeric. Use --task binary or multiclass.")
    if profile.distinct == 1:
      raise TableError(f"The label column {name} has one value "
                       f"({profile.values[0]}): there is nothing to learn.")
    return
  if profile.distinct is None:
    raise TableError(f"The label column {name} has more than {MAX_CLASSES} "
                     f"distinct values: too many classes for {task.value}.")
  if profile.numeric and not profile.whole_numbers:
    raise TableError(f"The label column {name} holds fractional numbers: that is "
                     f"a regression label, not {task.value}. Use --task regression.")
  if profile.distinct < 2:
    raise TableError(f"The label column {name} has one value "
                     f"({profile.values[0] if profile.values else '-'}): a "
                     "classifier needs at least two classes.")
  if task is Task.BINARY and profile.distinct != 2:
    raise TableError(f"--task binary, but the label column {name} has "
                     f"{profile.distinct} values ({', '.join(profile.values[:8])}"
                     f"{', ...' if profile.distinct > 8 else ''}); use --task "
                     "multiclass.")
  if task is Task.MULTICLASS and profile.distinct == 2:
    raise TableError(f"--task multiclass, but the label column {name} has two "
                     f"values ({', '.join(profile.values)}); use --task binary.")
