"""Hostile input: what `tfx-distill run` tells a user, case by case.

    .venv/bin/python bench/hostile.py [--out bench/results]

Each case writes a small bad table (or config, module, pipeline root) in a
temporary directory, runs `tfx-distill run` on it in this process, and
records the exit status, the first line of what the user sees, the seconds
it took and whether anything was created under the pipeline root. None of
these cases gets as far as importing TFX. The fault cases (Ctrl-C, kill -9,
two runs on one root, a deleted serving directory) need whole pipeline runs:
`pytest tests/test_faults_e2e.py` plays them. Writes hostile.json and
hostile.md.
"""
import argparse
import contextlib
import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-bad-import-order,wrong-import-position  # bench/_common.py
from distill_cli import main as cli  # pylint: disable=wrong-import-position

_ROWS = "".join(f"{i % 7},{i * 0.5},{'ab'[i % 2]},{i % 2}\n" for i in range(40))
_TABLE = "a,b,c,y\n" + _ROWS


def _replace_column(table: str, column: int, cells) -> str:
  lines = table.splitlines()
  rows = [line.split(",") for line in lines[1:]]
  for row, cell in zip(rows, cells):
    row[column] = cell
  return "\n".join([lines[0]] + [",".join(r) for r in rows]) + "\n"


# name -> (files under the data root: name -> bytes or text, extra flags)
CASES = {
    "header-only CSV": ({"data.csv": "a,b,c,y\n"}, []),
    "empty file": ({"data.csv": ""}, []),
    "duplicated column name (`...,b,b,...`)": ({"data.csv": _TABLE.replace(
        "a,b,c,y", "a,b,b,y", 1)}, []),
    "two files, different headers": ({"a.csv": _TABLE, "b.csv": _TABLE.replace(
        "a,b,c,y", "a,b,d,y", 1)}, []),
    "UTF-8 byte-order mark": ({"data.csv": b"\xef\xbb\xbf" + _TABLE.encode()}, []),
    "non-UTF-8 bytes in the header": ({"data.csv": b"a,b\xff,c,y\n1,2,x,0\n"}, []),
    "non-UTF-8 bytes deep in the body": ({"data.csv": (
        "a,b,c,y\n" + "1,2,x,0\n" * 20000 + "1,2,caf\xe9,0\n").encode("latin-1")}, []),
    "text in 5% of a numeric column": ({"data.csv": _replace_column(
        _TABLE, 1, ["oops", "n/a"])}, []),
    "'nan' / 'inf' in a numeric column": ({"data.csv": _replace_column(
        _TABLE, 1, ["1", "nan", "inf"])}, []),
    "label column empty in every row": ({"data.csv": _replace_column(
        _TABLE, 3, [""] * 40)}, []),
    "label with one value": ({"data.csv": _replace_column(_TABLE, 3, ["1"] * 40)}, []),
    "label missing in some rows": ({"data.csv": _replace_column(_TABLE, 3, ["", ""])}, []),
    "no such label column": ({"data.csv": _TABLE}, ["--label", "z"]),
    "--input-pattern climbing out with '..'": ({"data.csv": _TABLE},
                                               ["--input-pattern", "../*.csv"]),
    "YAML: `no-cache: \"false\"` (a string)": ({"data.csv": _TABLE},
                                              ["--config", "{cfg}"]),
    "YAML: `train-steps: [1, 2]`": ({"data.csv": _TABLE}, ["--config", "{cfg2}"]),
    "student module with a syntax error": ({"data.csv": _TABLE},
                                           ["--student-module", "{bad_module}"]),
    "pipeline root is a file": ({"data.csv": _TABLE}, ["--pipeline-root", "{file}"]),
}


def _write(directory: str, files) -> None:
  os.makedirs(directory, exist_ok=True)
  for name, content in files.items():
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(os.path.join(directory, name), mode) as f:
      f.write(content)


def run_case(name: str, work: str):
  files, extra = CASES[name]
  data, root = os.path.join(work, "data"), os.path.join(work, "root")
  _write(data, files)
  helpers = {"cfg": ("cfg.yaml", 'no-cache: "false"\n'),
             "cfg2": ("cfg2.yaml", "train-steps: [1, 2]\n"),
             "bad_module": ("student.py", "def build_student(fn_args)\n  return 1\n"),
             "file": ("root-file", "not a directory\n")}
  paths = {}
  for key, (file_name, text) in helpers.items():
    paths[key] = os.path.join(work, file_name)
    with open(paths[key], "w", encoding="utf-8") as f:
      f.write(text)
  extra = [a.format(**paths) for a in extra]
  flags = ["--data-root", data, "--pipeline-root", root]
  if "--label" not in extra:
    flags += ["--label", "y"]
  err = io.StringIO()
  start = time.perf_counter()
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      code = cli.main(["run", *flags, *extra])
    except SystemExit as e:  # argparse refuses a flag value
      code = e.code
  seconds = time.perf_counter() - start
  said = [line for line in err.getvalue().splitlines() if line.strip()]
  first = said[-1] if said else ""
  return {"exit": code, "says": first.replace(work, "DIR"), "seconds": seconds,
          "created": os.path.isdir(root) and bool(os.listdir(root))}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  args = parser.parse_args(argv)
  results = {}
  for name in CASES:
    with tempfile.TemporaryDirectory() as work:
      results[name] = run_case(name, work)
  lines = ["| input | exit | what the user sees | seconds | anything created |",
           "|---|---|---|---|---|"]
  for name, r in results.items():
    says = r["says"].replace("|", "\\|")
    lines.append(f"| {name} | {r['exit']} | {says} | {r['seconds']:.2f} | "
                 f"{'yes' if r['created'] else 'no'} |")
  _common.save(args.out, "hostile", results, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
