"""Teacher outputs computed once per training example, reused every epoch.

Online distillation calls the teacher on every batch of every epoch; with a
large teacher that forward pass is most of a training step. With
`cache_teacher_outputs=True` the executor first runs the teacher once over
the train split (one epoch, in file order) and saves each batch as
(features, label, teacher logits) with `tf.data.Dataset.save`, in the
execution's temporary directory. Training reads it back with
`Dataset.load`, shuffled and repeated as the online input is, and takes the
teacher's logits from each batch's third element instead of calling the
teacher. The features are the tensors the student reads online; nothing is
added to them. The cache costs one copy of the transformed train split, as
tensors, on the worker's disk.
"""
from typing import Callable, Dict, Optional

import tensorflow as tf

TeacherFn = Callable[[Dict[str, tf.Tensor]], tf.Tensor]

# Examples mixed by the shuffle of the cached split: TFXIO's default buffer,
# the one the online input shuffles with.
SHUFFLE_BUFFER = 10_000


def write(teacher_logits: Optional[TeacherFn], dataset: tf.data.Dataset,
          path: str) -> int:
  """Runs the teacher once over `dataset` and saves what training needs.

  Args:
    teacher_logits: features dict -> [batch, K] logits (the Teacher's); None
      when `dataset` carries them already (a teacher reading raw examples).
    dataset: (features, labels) batches of the train split, one epoch, or
      (features, labels, teacher logits) with `teacher_logits` None.
    path: a directory for `tf.data.Dataset.save`; `read` takes it.

  Returns:
    The number of examples saved.
  """
  if teacher_logits is None:
    dataset.save(path)
    return sum(int(tf.shape(labels)[0]) for _, labels, _ in tf.data.Dataset.load(path))
  features_spec, labels_spec = dataset.element_spec
  width = teacher_logits(next(iter(dataset))[0]).shape[-1]
  count = 0

  # The teacher runs here, eagerly, not in a `Dataset.map`: tf.data runs
  # its functions on the host CPU, and the teacher belongs where TensorFlow
  # places it (a GPU if there is one).
  def with_logits():
    nonlocal count
    for features, labels in dataset.prefetch(1):
      logits = teacher_logits(features)
      count += int(tf.shape(logits)[0])
      yield features, labels, logits

  tf.data.Dataset.from_generator(
      with_logits, output_signature=(
          features_spec, labels_spec,
          tf.TensorSpec([None, width], tf.float32))).save(path)
  return count


def read(path: str, batch_size: int, seed: int = 0) -> tf.data.Dataset:
  """Batches of what `write` saved: (features, labels, teacher logits); the
  transfer set's (features, teacher logits) as `transfer.write` saved them.

  Example by example, shuffled as TFXIO shuffles the online input, and
  repeated without end.
  """
  return (tf.data.Dataset.load(path).unbatch()
          .shuffle(SHUFFLE_BUFFER, seed=seed).repeat().batch(batch_size)
          .prefetch(tf.data.AUTOTUNE))
