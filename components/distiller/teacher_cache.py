"""Teacher outputs computed once per training example, reused every epoch.

Online distillation calls the teacher on every batch of every epoch; with a
large teacher that forward pass is most of a training step. With
`cache_teacher_outputs=True` the executor first streams the train split once
through the teacher and writes each transformed example again with one more
feature, `__teacher_logits__` (float, [K]), next to the model run's logs. The
training input then reads those files through the same DataAccessor (TFXIO)
with the schema extended by that feature, and the loop takes the teacher's
logits from the batch instead of calling the teacher.

Each example is rewritten whole, with the feature added: a second
`tf.Example` appended to the bytes would be a valid protobuf merge, but
TensorFlow's fast example parser falls back to its slow path on such records
(measured: it cost 40% of training throughput).
"""
import os
from typing import Dict, List, Tuple

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

TEACHER_LOGITS_FEATURE = "__teacher_logits__"
_BATCH = 1024


def write(teacher_logits, files: List[str], feature_spec: Dict[str, object],
          out_dir: str) -> Tuple[str, int]:
  """Writes the examples of `files` with the teacher's logits added.

  Args:
    teacher_logits: features dict -> [batch, K] logits (the Teacher's).
    files: file patterns of gzipped TFRecords of transformed tf.Examples.
    feature_spec: the transformed feature spec, to parse what the teacher reads.
    out_dir: where to write; it is created.

  Returns:
    (file pattern of what was written, number of examples).
  """
  tf.io.gfile.makedirs(out_dir)
  path = os.path.join(out_dir, "teacher_logits.tfrecord.gz")
  records = tf.data.TFRecordDataset(
      tf.data.Dataset.list_files(files, shuffle=False), compression_type="GZIP")
  count = 0
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for serialized in records.batch(_BATCH).prefetch(1):
      logits = teacher_logits(tf.io.parse_example(serialized, feature_spec)).numpy()
      for record, row in zip(serialized.numpy(), logits):
        example = tf.train.Example.FromString(record)
        example.features.feature[TEACHER_LOGITS_FEATURE].float_list.value.extend(row)
        writer.write(example.SerializeToString())
      count += len(logits)
  return path, count


def extend_schema(schema: schema_pb2.Schema, width: int) -> schema_pb2.Schema:
  """The transformed schema plus the teacher-logits feature."""
  extended = schema_pb2.Schema()
  extended.CopyFrom(schema)
  feature = extended.feature.add(name=TEACHER_LOGITS_FEATURE,
                                 type=schema_pb2.FLOAT)
  feature.shape.dim.add(size=width)
  feature.presence.min_fraction = 1.0
  return extended


def from_batch(features: Dict[str, tf.Tensor]) -> tf.Tensor:
  """The cached teacher logits of a batch read with `extend_schema`."""
  return features[TEACHER_LOGITS_FEATURE]


def without_logits(features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  return {k: v for k, v in features.items() if k != TEACHER_LOGITS_FEATURE}
