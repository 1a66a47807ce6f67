"""What the CSV files hold, read before any component runs.

The command line scans every file before TFX is imported (`scan`: pyarrow's
streaming CSV reader, every cell as text, in blocks, so memory does not grow
with the data) and refuses, naming the file, the column and a row, what would
otherwise fail minutes later inside Transform or train a model on garbage: a
file with no rows, duplicated or disagreeing headers, bytes that are not
UTF-8, a column empty in every row, a numeric column with a few text cells,
"nan" or "inf" in a column. It then reads the label column in full to infer
the task, list the classes and refuse a label that cannot be learned.
"""

import csv
import dataclasses
import math
import os
from typing import Dict, List, Optional, Sequence

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


def _check_no_bom(path: str) -> None:
  with open(path, "rb") as f:
    if f.read(3) == b"\xef\xbb\xbf":
      raise TableError(
          f"{path} starts with a UTF-8 byte-order mark, which CsvExampleGen keeps "
          "as part of the first column's name; save it as UTF-8 without BOM "
          "(e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`).")


# A column whose non-empty cells are numbers but for at most this share is
# taken for a numeric column with bad cells, not for a text column.
MAX_TEXT_SHARE_OF_NUMERIC = 0.1
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_NON_FINITE = r"(?i)^\s*[-+]?(nan|inf|infinity)\s*$"
# Rows read per block of the streaming reader (bytes).
_BLOCK_BYTES = 8 << 20


@dataclasses.dataclass
class ColumnScan:
  """What one column holds across the files."""
  rows: int = 0
  empty: int = 0
  numbers: int = 0
  non_finite: int = 0
  text: int = 0
  first_text: Optional[tuple] = None  # (file, row, value) of the first text cell
  first_non_finite: Optional[tuple] = None


@dataclasses.dataclass
class TableScan:
  """What the CSV files hold: the header and each column's cells."""
  files: List[str]
  columns: List[str]
  rows: int
  scans: Dict[str, ColumnScan]


def _check_header(path: str, columns: List[str], first: Optional[tuple]) -> None:
  if not columns or columns == [""]:
    raise TableError(f"{path} is empty: CsvExampleGen needs a header row.")
  seen: Dict[str, int] = {}
  for index, name in enumerate(columns):
    if not name.strip():
      raise TableError(f"{path}: column {index + 1} of the header has no name.")
    if name in seen:
      raise TableError(f"{path}: the header names column {name!r} twice (columns "
                       f"{seen[name] + 1} and {index + 1}); one would silently "
                       "replace the other. Rename or drop one.")
    seen[name] = index
  if first is not None and columns != first[1]:
    missing = [c for c in first[1] if c not in columns]
    extra = [c for c in columns if c not in first[1]]
    what = "; ".join(part for part in (
        f"it lacks {', '.join(map(repr, missing))}" if missing else "",
        f"it adds {', '.join(map(repr, extra))}" if extra else "",
        "same columns in another order" if not missing and not extra else "") if part)
    raise TableError(f"{path}'s header differs from {first[0]}'s ({what}): every "
                     "file ExampleGen reads must have the same header.")


def scan(files: Sequence[str]) -> TableScan:
  """Reads every cell of `files` as text and checks the table (see the module
  docstring); raises TableError naming the file, column and row."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
  from pyarrow import csv as pa_csv  # pylint: disable=g-import-not-at-top
  first = None
  scans: Dict[str, ColumnScan] = {}
  total = 0
  for path in files:
    columns = header(path)
    _check_no_bom(path)
    _check_header(path, columns, first)
    first = first or (path, columns)
    try:
      reader = pa_csv.open_csv(
          path, read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES),
          convert_options=pa_csv.ConvertOptions(
              column_types={c: pa.string() for c in columns},
              strings_can_be_null=False, quoted_strings_can_be_null=False))
      rows = 0
      for batch in reader:
        for name, cells in zip(batch.schema.names, batch.columns):
          column = scans.setdefault(name, ColumnScan())
          empty = pc.equal(pc.utf8_trim_whitespace(cells), "")
          number = pc.match_substring_regex(cells, _NUMBER)
          non_finite = pc.match_substring_regex(cells, _NON_FINITE)
          text = pc.invert(pc.or_(pc.or_(empty, number), non_finite))
          column.rows += len(cells)
          column.empty += pc.sum(empty).as_py() or 0
          column.numbers += pc.sum(number).as_py() or 0
          for kind, mask in (("non_finite", non_finite), ("text", text)):
            count = pc.sum(mask).as_py() or 0
            setattr(column, kind, getattr(column, kind) + count)
            if count and getattr(column, f"first_{kind}") is None:
              at = pc.index(mask, True).as_py()
              setattr(column, f"first_{kind}",
                      (path, rows + at + 2, cells[at].as_py()))  # +2: header, 1-based
        rows += batch.num_rows
    except (pa.ArrowInvalid, OSError) as e:
      message = str(e)
      if "UTF8" in message or "utf8" in message.lower():
        raise TableError(f"{path} is not UTF-8 text past its header ({message}); "
                         "save it as UTF-8.") from None
      raise TableError(f"{path} cannot be read as CSV: {message}") from None
    if rows == 0:
      raise TableError(f"{path} has a header and no rows: nothing to learn from. "
                       "Remove it or fill it.")
    total += rows
  return TableScan(list(files), first[1] if first else [], total, scans)


def check_cells(table: TableScan, read_columns: Sequence[str] = ()) -> None:
  """Raises TableError for a column no component should be fed.

  `read_columns`: the columns the preprocessing reads by name; one of them
  empty in every row has no type in the inferred schema and Transform would
  fail on it (other all-empty columns are left out by SchemaGen).
  """
  for name in table.columns:
    column = table.scans.get(name, ColumnScan())
    if column.rows and column.empty == column.rows and name in read_columns:
      raise TableError(f"Column {name!r} is empty in all {column.rows:,} rows of "
                       f"{', '.join(os.path.basename(f) for f in table.files)}, but "
                       "the preprocessing reads it: fill it in, or drop it from "
                       "the preprocessing.")
    if column.non_finite:
      path, row, value = column.first_non_finite
      raise TableError(
          f"Column {name!r} holds non-finite numbers (nan, inf) in "
          f"{column.non_finite:,} rows (first: {value.strip()!r} in "
          f"{os.path.basename(path)} row {row}): they poison a model's outputs. "
          "Leave the cell empty for a missing value.")
    filled = column.rows - column.empty
    if column.numbers and column.text and column.text <= (
        MAX_TEXT_SHARE_OF_NUMERIC * filled):
      path, row, value = column.first_text
      raise TableError(
          f"Column {name!r} is numeric but holds text in {column.text:,} of "
          f"{filled:,} filled rows (first: {value!r} in {os.path.basename(path)} "
          f"row {row}): TFX would read the whole column as text. Fix those cells, "
          "or leave them empty for a missing value.")


def span_files(data_root: str, pattern: str) -> Dict[tuple, List[str]]:
  """(span, version) -> the files under data_root that `pattern` (holding
  {SPAN}, maybe {VERSION}) matches there, as ExampleGen numbers them."""
  import glob  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  wildcard = pattern.replace("{SPAN}", "*").replace("{VERSION}", "*")
  parts = re.split(r"(\{SPAN\}|\{VERSION\}|\*|\?)", pattern)
  regex = "".join({"{SPAN}": r"(?P<span>\d+)", "{VERSION}": r"(?P<version>\d+)",
                   "*": r"[^/]*", "?": r"[^/]"}.get(p, re.escape(p)) for p in parts)
  keyed: Dict[tuple, List[str]] = {}
  for path in sorted(glob.glob(os.path.join(data_root, wildcard))):
    found = re.fullmatch(regex, os.path.relpath(path, data_root))
    if found:
      key = (int(found["span"]), int(found.groupdict().get("version") or 0))
      keyed.setdefault(key, []).append(path)
  return keyed


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
  try:
    task.check_classes(profile.distinct)
  except ValueError as e:
    raise TableError(f"--task {task.value}, but the label column {name} has "
                     f"{profile.distinct} values ({', '.join(profile.values[:8])}"
                     f"{', ...' if profile.distinct > 8 else ''}): {e}.") from None
