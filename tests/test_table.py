"""Bad tables are refused before any work, naming the file, column and row.

Each case writes a small CSV and runs `tfx-distill run` on it: exit 2, the
message names the problem, and nothing is created under the pipeline root
(no TFX import, no component). Fast: no pipeline runs here.
"""
import os

import pytest

from distill_cli import main as cli

from distill_pipelines import inputs
from distill_pipelines import table

_GOOD_ROWS = [f"{i % 7},{i * 0.5},{'ab'[i % 2]},{i % 2}" for i in range(40)]
_HEADER = "a,b,c,y"


def _csv(directory, name="data.csv", header=_HEADER, rows=_GOOD_ROWS, raw=None):
  path = os.path.join(directory, name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if raw is not None:
    with open(path, "wb") as f:
      f.write(raw)
  else:
    with open(path, "w", encoding="utf-8") as f:
      f.write(header + "\n" + "".join(r + "\n" for r in rows))
  return path


def _run(tmp_path, capsys, *flags_):
  root = tmp_path / "root"
  code = cli.main(["run", "--data-root", str(tmp_path / "data"), "--pipeline-root",
                   str(root), "--label", "y", *flags_])
  err = capsys.readouterr().err
  assert not root.exists(), "a refused table must create nothing"
  return code, err


def _with_cells(column, cells):
  """The good rows with column `column` (0-3) replaced, from the top, by `cells`."""
  rows = [r.split(",") for r in _GOOD_ROWS]
  for row, cell in zip(rows, cells):
    row[column] = cell
  return [",".join(r) for r in rows]


@pytest.mark.parametrize("case, message", [
    (dict(rows=[]), "data.csv has a header and no rows"),
    (dict(header="a,b,b,y"), "names column 'b' twice (columns 2 and 3)"),
    (dict(header="a,,c,y"), "column 2 of the header has no name"),
    (dict(raw=b""), "data.csv is empty: CsvExampleGen needs a header row"),
    (dict(raw=b"\xef\xbb\xbf" + (_HEADER + "\n" + "\n".join(_GOOD_ROWS)).encode()),
     "starts with a UTF-8 byte-order mark"),
    (dict(raw=b"a,b\xff,c,y\n1,2,x,0\n"), "is not UTF-8 text (byte 3"),
    (dict(raw=(_HEADER + "\n" + "1,2,x,0\n" * 20000 + "1,2,caf\xe9,0\n1,3,x,1\n"
               ).encode("latin-1")),
     "is not UTF-8 text past its header"),
    (dict(rows=_with_cells(1, ["oops", "n/a"])),
     "Column 'b' is numeric but holds text in 2 of 40 filled rows (first: 'oops' "
     "in data.csv row 2)"),
    (dict(rows=_with_cells(3, [""] * 40)), "Column 'y' is empty in all 40 rows of data.csv"),
    (dict(rows=_with_cells(1, ["1", "2", "nan"])),
     "Column 'b' holds non-finite numbers (nan, inf) in 1 rows (first: 'nan' in "
     "data.csv row 4)"),
    (dict(rows=_with_cells(0, ["-inf"])), "in 1 rows (first: '-inf' in data.csv row 2)"),
], ids=["header-only", "duplicated-column", "unnamed-column", "empty-file", "bom",
        "non-utf8-header", "non-utf8-body", "text-in-numbers", "all-empty",
        "nan", "inf"])
def test_bad_table_is_refused_before_any_work(tmp_path, capsys, case, message):
  _csv(str(tmp_path / "data"), **case)
  code, err = _run(tmp_path, capsys)
  assert code == 2 and message in err, err


def test_files_must_share_one_header(tmp_path, capsys):
  _csv(str(tmp_path / "data"), "a.csv")
  _csv(str(tmp_path / "data"), "b.csv", header="a,b,d,y")
  code, err = _run(tmp_path, capsys)
  assert code == 2
  assert "b.csv's header differs from" in err and "a.csv's (it lacks 'c'; it adds 'd')" in err


def test_a_text_column_with_some_numbers_is_text(tmp_path):
  """Mostly text with a few numbers (codes, say) is a text column, not an error."""
  data = str(tmp_path / "data")
  _csv(data, rows=_with_cells(2, ["7", "8", "9", "10", "11"]))
  scan = table.scan([os.path.join(data, "data.csv")])
  table.check_cells(scan)
  assert scan.rows == 40 and scan.columns == ["a", "b", "c", "y"]
  assert (scan.scans["c"].numbers, scan.scans["c"].text) == (5, 35)


def test_an_empty_column_is_refused_only_where_it_is_read(tmp_path, capsys):
  """The generic preprocessing leaves a column SchemaGen found no value in
  out; the demo reads its columns by name, so one of them empty is refused."""
  data = str(tmp_path / "data")
  path = _csv(data, rows=_with_cells(1, [""] * 40))
  table.check_cells(table.scan([path]), read_columns=["y"])
  with pytest.raises(table.TableError, match="Column 'b' is empty in all 40 rows"):
    table.check_cells(table.scan([path]), read_columns=["b", "y"])
  from distill_pipelines.taxi import raw_data  # pylint: disable=g-import-not-at-top
  with open(raw_data.csv_path(), encoding="utf-8") as f:
    lines = f.readlines()
  column = lines[0].strip().split(",").index("trip_miles")
  taxi = tmp_path / "taxi"
  taxi.mkdir()
  (taxi / "data.csv").write_text(lines[0] + "".join(
      ",".join("" if i == column else cell for i, cell in
               enumerate(line.rstrip("\n").split(","))) + "\n" for line in lines[1:200]))
  code = cli.main(["run", "--data-root", str(taxi), "--pipeline-root",
                   str(tmp_path / "root")])
  assert code == 2 and "Column 'trip_miles' is empty in all 199 rows" in (
      capsys.readouterr().err)


def test_the_demo_needs_every_column_its_preprocessing_reads(tmp_path, capsys):
  from distill_pipelines.taxi import raw_data  # pylint: disable=g-import-not-at-top
  with open(raw_data.csv_path(), encoding="utf-8") as f:
    lines = f.readlines()[:100]
  data = tmp_path / "data"
  data.mkdir()
  (data / "data.csv").write_text(lines[0].replace("trip_miles", "miles") + "".join(lines[1:]))
  code = cli.main(["run", "--data-root", str(data), "--pipeline-root",
                   str(tmp_path / "demo_root")])
  err = capsys.readouterr().err
  assert code == 2 and "has no column 'trip_miles' (the demo's preprocessing reads it" in err


def test_only_the_newest_span_is_read(tmp_path):
  """ExampleGen reads the newest span: an older, broken span is not scanned."""
  data = str(tmp_path / "data")
  _csv(data, "span-2/old.csv", rows=[])
  newest = _csv(data, "span-10/new.csv")
  assert inputs.check_input_pattern(data, "span-{SPAN}/*.csv") == [newest]
  inputs.check_table([newest])
