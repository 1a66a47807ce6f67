"""Taxi-like synthetic data: the embedded taxi CSV grown to any number of rows.

    .venv/bin/python bench/taxi_synth.py --rows 1000000 --out DIR [--seed 0]

Each row is a row of the embedded CSV drawn at random (with replacement) with
its trip length, duration and coordinates jittered, so the copies are not
byte-identical; every other column, the tip and the fare (hence the label) is
kept, and an empty cell stays empty, so ExampleGen infers the same column
types. Rows are written as they are drawn, in CSV shards of at most
`--shard-rows` rows, each with the header (CsvExampleGen reads every file in
the directory): memory does not grow with `--rows`.
"""
import argparse
import csv
import os
import random
import sys
from typing import Dict, List

from distill_pipelines.taxi import raw_data

# Column -> (relative jitter, decimals, lower bound).
_JITTER = {
    "trip_miles": (0.05, 2, 0.0),
    "trip_seconds": (0.05, 0, 0.0),
    "pickup_latitude": (1e-5, 6, None),
    "pickup_longitude": (1e-5, 6, None),
    "dropoff_latitude": (1e-5, 6, None),
    "dropoff_longitude": (1e-5, 6, None),
}


def _jittered(row: Dict[str, str], rng: random.Random) -> Dict[str, str]:
  out = dict(row)
  for column, (scale, decimals, low) in _JITTER.items():
    cell = row.get(column, "")
    if cell == "":
      continue
    value = float(cell) * (1.0 + rng.gauss(0.0, scale))
    if low is not None:
      value = max(low, value)
    out[column] = str(int(round(value))) if decimals == 0 else f"{value:.{decimals}f}"
  return out


def generate(rows: int, out_dir: str, seed: int = 0,
             shard_rows: int = 500_000) -> List[str]:
  """Writes `rows` taxi-like rows under `out_dir`; returns the shard paths."""
  if rows < 1:
    raise ValueError(f"rows must be >= 1, not {rows}.")
  source = raw_data.read_rows(n=10**9)
  rng = random.Random(seed)
  os.makedirs(out_dir, exist_ok=True)
  shards = (rows + shard_rows - 1) // shard_rows
  paths = []
  for shard in range(shards):
    path = os.path.join(out_dir, f"data-{shard:05d}-of-{shards:05d}.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
      writer = csv.DictWriter(f, fieldnames=list(source[0]))
      writer.writeheader()
      for _ in range(min(shard_rows, rows - shard * shard_rows)):
        writer.writerow(_jittered(rng.choice(source), rng))
    paths.append(path)
  return paths


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--rows", type=int, required=True)
  parser.add_argument("--out", required=True, help="directory to write the CSV shards in")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--shard-rows", type=int, default=500_000)
  args = parser.parse_args(argv)
  for path in generate(args.rows, args.out, args.seed, args.shard_rows):
    print(path)
  return 0


if __name__ == "__main__":
  sys.exit(main())
