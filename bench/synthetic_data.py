"""A synthetic tabular binary task where trees beat a small MLP: labelled + unlabeled CSVs.

    .venv/bin/python bench/synthetic_data.py --out DIR [--seed 0] [--labelled 3000] [--unlabeled 30000]

Writes DIR/labelled/data.csv (with the label column `y`, 0/1) and
DIR/unlabeled/data.csv (the same columns without `y`), both drawn from one
distribution, deterministic from the seed (numpy's default_rng).

Columns (all independent of each other):

- `a`     float, N(0, 1);
- `b`     float, log-normal "amount", exp(N(3, 0.8)) (median ~20), ~5% empty;
- `c`     float, uniform [0, 100);
- `count` int, Poisson(3);
- `d`     float, N(50, 15), ~5% empty;
- `e`     float, uniform [-1000, 1000);
- `color` string, 6 values, unequal frequencies;
- `region` string, 8 values, unequal frequencies.

The label comes from a score of thresholds and interactions, which trees find
in a few splits and a small MLP fit on a few thousand rows does not:

    score = 1.6 * [(c > 60) xor (color in {red, blue})]
          + 1.2 * sign(a) * sign(e)                     (a xor of two signs)
          + 1.0 * [b > 25]           (b empty: 0.5)
          + 0.8 * [count >= 4 and d > 55]   (d empty: 0)
          + REGION_EFFECT[region]
    y = score > median(score), then each label flipped with probability 0.1

so about half the rows are positive and no model can beat ~90% accuracy.
Empty cells are left empty in the CSV (ExampleGen reads them as missing).
"""
import argparse
import csv
import os
import sys
from typing import Dict, List

import numpy as np

COLUMNS = ["a", "b", "c", "count", "d", "e", "color", "region"]
LABEL = "y"
COLORS = ["red", "blue", "green", "yellow", "black", "white"]
COLOR_P = [0.25, 0.2, 0.2, 0.15, 0.1, 0.1]
REGIONS = ["north", "south", "east", "west", "center", "coast", "hills", "islands"]
REGION_P = [0.2, 0.18, 0.15, 0.12, 0.12, 0.1, 0.08, 0.05]
REGION_EFFECT = dict(zip(REGIONS, [-1.0, 0.8, 0.0, 0.4, -0.4, 1.2, -0.8, 0.6]))
MISSING = 0.05
FLIP = 0.1


def generate(rows: int, seed: int = 0) -> Dict[str, np.ndarray]:
  """`rows` rows as columns (NaN: an empty cell) and the label `y`."""
  rng = np.random.default_rng(seed)
  a = rng.normal(0, 1, rows)
  b = np.exp(rng.normal(3, 0.8, rows))
  c = rng.uniform(0, 100, rows)
  count = rng.poisson(3, rows)
  d = rng.normal(50, 15, rows)
  e = rng.uniform(-1000, 1000, rows)
  color = rng.choice(COLORS, rows, p=COLOR_P)
  region = rng.choice(REGIONS, rows, p=REGION_P)
  b[rng.uniform(size=rows) < MISSING] = np.nan
  d[rng.uniform(size=rows) < MISSING] = np.nan
  score = (1.6 * np.logical_xor(c > 60, np.isin(color, ["red", "blue"]))
           + 1.2 * np.sign(a) * np.sign(e)
           + np.where(np.isnan(b), 0.5, 1.0 * (np.nan_to_num(b) > 25))
           + 0.8 * ((count >= 4) & (np.nan_to_num(d) > 55))
           + np.vectorize(REGION_EFFECT.get)(region))
  y = (score > np.median(score)).astype(int)
  flip = rng.uniform(size=rows) < FLIP
  y = np.where(flip, 1 - y, y)
  return {"a": a, "b": b, "c": c, "count": count, "d": d, "e": e,
          "color": color, "region": region, LABEL: y}


def _cell(column: str, value) -> str:
  if column in ("color", "region"):
    return str(value)
  if column in ("count", LABEL):
    return str(int(value))
  return "" if np.isnan(value) else f"{value:.4f}"


def _write_csv(path: str, data: Dict[str, np.ndarray], columns: List[str],
               rows: slice) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    for i in range(rows.start, rows.stop):
      writer.writerow([_cell(col, data[col][i]) for col in columns])


def write(out: str, seed: int = 0, labelled: int = 3000,
          unlabeled: int = 30000) -> Dict[str, str]:
  """Writes both CSVs under `out`; returns their directories by name."""
  data = generate(labelled + unlabeled, seed)
  dirs = {"labelled": os.path.join(out, "labelled"),
          "unlabeled": os.path.join(out, "unlabeled")}
  _write_csv(os.path.join(dirs["labelled"], "data.csv"), data, COLUMNS + [LABEL],
             slice(0, labelled))
  _write_csv(os.path.join(dirs["unlabeled"], "data.csv"), data, COLUMNS,
             slice(labelled, labelled + unlabeled))
  return dirs


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--labelled", type=int, default=3000)
  parser.add_argument("--unlabeled", type=int, default=30000)
  args = parser.parse_args(argv)
  dirs = write(args.out, args.seed, args.labelled, args.unlabeled)
  print(f"wrote {args.labelled} labelled rows to {dirs['labelled']}, "
        f"{args.unlabeled} unlabeled to {dirs['unlabeled']}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
