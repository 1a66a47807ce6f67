"""Reading examples the way the Trainer does: TFX's DataAccessor.

Transformed examples are streamed through TFXIO, never loaded whole;
untransformed ones (`raw_dataset`, for a teacher of another Transform;
`unlabeled_dataset`, a transfer set's) are parsed and transformed batch by
batch with this run's transform graph. Used by the Distiller's executor,
and by any module that needs the labels (the generic models read the label's
scale with `read_labels`).
"""
from typing import Callable, Dict, Iterable, Iterator, List

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.trainer import fn_args_utils
from tfx_bsl.tfxio import dataset_options

# Examples mixed by the shuffle of the raw input: TFXIO's default buffer, the
# one the transformed input shuffles with.
_SHUFFLE_BUFFER = 10_000


def dataset(fn_args: fn_args_utils.FnArgs, files: List[str], schema,
            label_key: str, batch_size: int, repeat: bool) -> tf.data.Dataset:
  """(features, label) batches streamed from transformed examples via TFXIO."""
  return fn_args.data_accessor.tf_dataset_factory(
      files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=batch_size, label_key=label_key,
          num_epochs=None if repeat else 1, shuffle=repeat, shuffle_seed=0),
      schema)


def raw_dataset(files: List[str], tft_output, label_key: str, model_inputs,
                teacher: Callable[[tf.Tensor], tf.Tensor], batch_size: int,
                repeat: bool, seed: int = 0) -> tf.data.Dataset:
  """(features, label, teacher logits) batches from untransformed examples.

  Each batch of serialized tf.Examples is parsed with the raw schema and
  transformed by this run's transform graph for the student (as TFX's
  Trainer does with raw examples), and given as it is to `teacher`, which
  reads it through its own serving signature; both see the same examples.
  `model_inputs`: the transformed features the student reads.
  """
  records = _records(files)
  if repeat:
    records = records.shuffle(_SHUFFLE_BUFFER, seed=seed).repeat()
  raw_spec = tft_output.raw_feature_spec()
  layer = tft_output.transform_features_layer()

  def prepare(serialized):
    transformed = layer(tf.io.parse_example(serialized, raw_spec))
    label = transformed[label_key]
    features = {name: transformed[name] for name in model_inputs}
    return features, label, teacher(serialized)

  return records.batch(batch_size).map(prepare).prefetch(tf.data.AUTOTUNE)


def unlabeled_dataset(files: List[str], tft_output, raw_label_keys: Iterable[str],
                      model_inputs: Dict[str, tf.TensorSpec],
                      batch_size: int) -> tf.data.Dataset:
  """(features, serialized) batches of untransformed examples without labels.

  Parsed with the raw schema less `raw_label_keys` and transformed by this
  run's transform graph, as the student's `serving_default` does; one epoch
  in file order. `model_inputs`: the transformed features the student reads.
  """
  raw_spec = {name: spec for name, spec in tft_output.raw_feature_spec().items()
              if name not in set(raw_label_keys)}
  layer = tft_output.transform_features_layer()

  def prepare(serialized):
    transformed = layer(tf.io.parse_example(serialized, raw_spec))
    missing = sorted(set(model_inputs) - set(transformed))
    if missing:
      raise ValueError(
          f"The transformed features {missing} come from the label's columns "
          f"{sorted(raw_label_keys)}, so unlabeled examples cannot have them.")
    return {name: transformed[name] for name in model_inputs}, serialized

  return _records(files).batch(batch_size).map(prepare).prefetch(tf.data.AUTOTUNE)


def _records(files: List[str]) -> tf.data.Dataset:
  """The serialized tf.Examples of ExampleGen's files (gzipped TFRecords)."""
  compression = "GZIP" if all(f.endswith(".gz") or "*" in f for f in files) else ""
  return tf.data.TFRecordDataset(
      tf.data.Dataset.list_files(files, shuffle=False), compression_type=compression)


def read_labels(fn_args: fn_args_utils.FnArgs, schema: schema_pb2.Schema,
                label_key: str, limit: int, batch_size: int = 8192) -> np.ndarray:
  """Up to `limit` labels from the head of the train split, as a flat array.

  Only the label column is parsed, so a pass over many examples costs little.
  Raises ValueError if the schema lacks it.
  """
  return read_columns(fn_args, schema, [label_key], limit, batch_size)[label_key]


def label_chunks(fn_args: fn_args_utils.FnArgs, schema: schema_pb2.Schema,
                 label_key: str, batch_size: int = 65536) -> Iterator[np.ndarray]:
  """Every label of the train split, a flat array per batch (only the label
  column is parsed). Raises ValueError if the schema lacks it."""
  for batch in _column_batches(fn_args, schema, [label_key], batch_size):
    yield batch[label_key]


def read_columns(fn_args: fn_args_utils.FnArgs, schema: schema_pb2.Schema,
                 keys: Iterable[str], limit: int,
                 batch_size: int = 8192) -> Dict[str, np.ndarray]:
  """Up to `limit` values of each feature in `keys` from the head of the
  train split, as flat arrays by name.

  Only those columns are parsed (a schema of just them). Raises ValueError
  if the schema lacks one.
  """
  keys = list(keys)
  chunks = {key: [] for key in keys}
  count = 0
  for batch in _column_batches(fn_args, schema, keys, min(limit, batch_size)):
    for key in keys:
      chunks[key].append(batch[key])
    count += batch[keys[0]].size
    if count >= limit:
      break
  return {key: (np.concatenate(parts)[:limit] if parts else np.array([]))
          for key, parts in chunks.items()}


def _column_batches(fn_args: fn_args_utils.FnArgs, schema: schema_pb2.Schema,
                    keys: List[str], batch_size: int
                    ) -> Iterator[Dict[str, np.ndarray]]:
  """One pass over the train split parsing only `keys`: flat arrays by name."""
  columns = schema_pb2.Schema()
  columns.feature.extend(f for f in schema.feature if f.name in set(keys))
  missing = sorted(set(keys) - {f.name for f in columns.feature})
  if missing:
    raise ValueError(f"{missing} are not among the transformed features "
                     f"{sorted(f.name for f in schema.feature)}.")
  data = fn_args.data_accessor.tf_dataset_factory(
      fn_args.train_files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=batch_size, num_epochs=1, shuffle=False),
      columns)
  for batch in data:
    yield {key: (batch[key].values if isinstance(batch[key], tf.SparseTensor)
                 else batch[key]).numpy().ravel() for key in keys}
