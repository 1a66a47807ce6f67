"""Reading transformed examples the way the Trainer does: TFX's DataAccessor.

Streamed through TFXIO, never loaded whole. Used by the Distiller's executor,
and by any module that needs the labels (the generic models read the label's
scale with `read_labels`).
"""
from typing import List

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.trainer import fn_args_utils
from tfx_bsl.tfxio import dataset_options


def dataset(fn_args: fn_args_utils.FnArgs, files: List[str], schema,
            label_key: str, batch_size: int, repeat: bool) -> tf.data.Dataset:
  """(features, label) batches streamed from transformed examples via TFXIO."""
  return fn_args.data_accessor.tf_dataset_factory(
      files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=batch_size, label_key=label_key,
          num_epochs=None if repeat else 1, shuffle=repeat, shuffle_seed=0),
      schema)


def read_labels(fn_args: fn_args_utils.FnArgs, schema: schema_pb2.Schema,
                label_key: str, limit: int, batch_size: int = 8192) -> np.ndarray:
  """Up to `limit` labels from the head of the train split, as a flat array.

  Only the label column is parsed (a schema of that one feature), so a pass
  over many examples costs little. Raises ValueError if the schema lacks it.
  """
  label_only = schema_pb2.Schema()
  label_only.feature.extend(f for f in schema.feature if f.name == label_key)
  if not label_only.feature:
    raise ValueError(f"label_key {label_key!r} is not among the transformed "
                     f"features {sorted(f.name for f in schema.feature)}.")
  data = fn_args.data_accessor.tf_dataset_factory(
      fn_args.train_files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=min(limit, batch_size), num_epochs=1, shuffle=False),
      label_only)
  chunks, count = [], 0
  for batch in data:
    values = batch[label_key]
    if isinstance(values, tf.SparseTensor):
      values = values.values
    chunks.append(values.numpy().ravel())
    count += chunks[-1].size
    if count >= limit:
      break
  return np.concatenate(chunks)[:limit] if chunks else np.array([])
