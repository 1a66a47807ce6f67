"""`features.json`: what an app needs beside a LiteRT file to compute its inputs.

The flatbuffer reads transformed features; the Transform stays outside it.
The JSON names each input (dtype, shape), holds the Transform's vocabulary
files (one token per line, in the order of their ids), and the scaling of
every float input that is an affine function of one raw number, e.g.
`tft.scale_to_z_score` or `tft.scale_to_0_1`: `(raw - shift) / scale` (an
integer passed through as it is: shift 0, scale 1).

Those shifts and scales are constants TFT folded into the Transform graph,
and no TFT API reads them back, so they are measured: the Transform runs on
a few raw rows that differ in one numeric feature at a time, and an input
that moves with exactly one raw feature, linearly, gets its shift and scale.
Every other input (vocabulary ids, buckets, anything else) is listed under
`computed_by_transform`.
"""

import math
from typing import Any, Dict, List, Mapping, Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.dsl.io import fileio

from distill_components.distiller import export

# The raw values each numeric feature is probed at (the base row holds 0).
_PROBES = (1.0, 37.0)
_TOLERANCE = 1e-4


def describe(tft_output: tft.TFTransformOutput, label_key: str) -> Dict[str, Any]:
  """The contents of features.json for this run's Transform."""
  spec = export.model_input_spec(tft_output, label_key)
  inputs = {k: {"dtype": v.dtype.name, "shape": v.shape.as_list()[1:]}
            for k, v in spec.items()}
  scales = affine_scales(tft_output, spec)
  vocabularies = _vocabularies(tft_output)
  return {"inputs": inputs,
          "vocabularies": vocabularies,
          "scales": scales,
          "scale_formula": "input = (raw - shift) / scale",
          # Ids from a vocabulary above, buckets, or anything else.
          "computed_by_transform": sorted(k for k in inputs if k not in scales),
          "transform": "the student SavedModel's `transform_features` signature "
                       "computes every input from raw tf.Examples"}


def _vocabularies(tft_output: tft.TFTransformOutput) -> Dict[str, List[str]]:
  assets = f"{tft_output.transform_savedmodel_dir}/assets"
  vocabularies = {}
  for name in sorted(fileio.listdir(assets)) if fileio.exists(assets) else []:
    with fileio.open(f"{assets}/{name}", "r") as f:
      vocabularies[name] = [line.rstrip("\n") for line in f]
  return vocabularies


def _value(feature, number: float, dtype) -> tf.train.Feature:
  size = int(np.prod(feature.shape)) if getattr(feature, "shape", None) else 1
  if dtype == tf.string:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[b""] * size))
  if dtype == tf.int64:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(number)] * size))
  return tf.train.Feature(float_list=tf.train.FloatList(value=[number] * size))


def _rows(raw_spec: Mapping[str, Any], numeric: List[str]) -> List[bytes]:
  """The base row (every number 0, every string empty), then one row per
  numeric feature and probe value."""
  def row(changed: Optional[str] = None, number: float = 0.0) -> bytes:
    return tf.train.Example(features=tf.train.Features(feature={
        k: _value(v, number if k == changed else 0.0, v.dtype)
        for k, v in raw_spec.items()})).SerializeToString()
  return [row()] + [row(k, p) for k in numeric for p in _PROBES]


def affine_scales(tft_output: tft.TFTransformOutput,
                  spec: Mapping[str, tf.TensorSpec]) -> Dict[str, Dict[str, Any]]:
  """{input: {raw, shift, scale}} for each float input that is
  `(raw - shift) / scale` of one raw numeric feature, and each integer input
  that is a raw integer as it is (shift 0, scale 1); {} if the Transform
  cannot run on the probe rows."""
  raw_spec = tft_output.raw_feature_spec()
  if not all(isinstance(v, (tf.io.FixedLenFeature, tf.io.VarLenFeature))
             for v in raw_spec.values()):
    return {}
  numeric = sorted(k for k, v in raw_spec.items() if v.dtype != tf.string)
  candidates = [k for k, v in spec.items()
                if (v.dtype.is_floating or v.dtype.is_integer) and math.prod(d or 1 for d in v.shape.as_list()[1:]) == 1]
  if not numeric or not candidates:
    return {}
  try:
    parsed = tf.io.parse_example(tf.constant(_rows(raw_spec, numeric)), raw_spec)
    out = tft_output.transform_raw_features(parsed, drop_unused_features=True)
    values = {k: np.asarray(tf.sparse.to_dense(out[k]) if isinstance(
        out[k], tf.SparseTensor) else out[k], np.float64).reshape(
            len(numeric) * len(_PROBES) + 1) for k in candidates if k in out}
  except (tf.errors.OpError, ValueError, TypeError, KeyError) as e:
    logging.info("features.json: no scales (the Transform did not run on probe "
                 "rows: %s)", e)
    return {}
  scales = {}
  for name, y in values.items():
    base, moved = y[0], y[1:].reshape(len(numeric), len(_PROBES))
    movers = [i for i in range(len(numeric))
              if np.any(np.abs(moved[i] - base) > _TOLERANCE * max(1.0, abs(base)))]
    if len(movers) != 1:
      continue
    i = movers[0]
    slope = (moved[i][0] - base) / _PROBES[0]
    predicted = base + slope * _PROBES[1]
    if slope == 0 or abs(moved[i][1] - predicted) > _TOLERANCE * max(1.0, abs(predicted)):
      continue
    if spec[name].dtype.is_integer and (base, slope) != (0, 1):
      continue  # an id, not a number: only the raw value as it is counts
    scales[name] = {"raw": numeric[i], "shift": float(-base / slope) + 0.0,
                    "scale": float(1.0 / slope)}
  return scales
