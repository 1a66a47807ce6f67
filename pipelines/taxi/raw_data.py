"""The embedded taxi CSV as raw `tf.Example`s, the way ExampleGen writes them.

For tests and benchmarks that call a model's `serving_default` directly.
"""
import csv
import os
from typing import Dict, List, Sequence

from distill_pipelines.taxi import config


def csv_path() -> str:
  return os.path.join(config.embedded_data_root(), "data.csv")


def read_rows(n: int, start: int = 0) -> List[Dict[str, str]]:
  with open(csv_path(), newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  return rows[start:start + n]


def column_types(rows: Sequence[Dict[str, str]]) -> Dict[str, type]:
  """Column -> int, float or bytes, as ExampleGen infers them from the CSV."""
  types = {}
  for column in rows[0]:
    values = [r[column] for r in rows if r[column] != ""]
    for cast in (int, float):
      try:
        [cast(v) for v in values]  # pylint: disable=expression-not-assigned
        types[column] = cast
        break
      except ValueError:
        continue
    else:
      types[column] = bytes
  return types


def serialize(rows, types, drop=()) -> List[bytes]:
  """Serialized raw tf.Examples; empty cells are left out, as ExampleGen does."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  lists = {int: lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)])),
           float: lambda v: tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)])),
           bytes: lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))}
  return [tf.train.Example(features=tf.train.Features(feature={
      k: lists[types[k]](v) for k, v in row.items() if v != "" and k not in drop
  })).SerializeToString() for row in rows]
