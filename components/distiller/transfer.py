"""The transfer set: examples the student learns from the teacher alone.

A student trained alone learns from the labelled train split only; a
distilled one can also learn from examples nobody labelled, by matching the
teacher's outputs on them (Buciluǎ et al. 2006, "Model compression": a
transfer set larger than the training set; Fakoor et al. 2020, FAST-DAD: rows
synthesised from the training data). Two sources, either or both:

- Unlabeled examples: untransformed tf.Examples (an ExampleGen's output over
  rows without the label: the Distiller's `unlabeled_examples`), parsed
  without the label's columns and transformed by this run's transform graph,
  as serving does (`data.unlabeled_dataset`). Every split of the artifact is
  read.
- Synthetic rows, `synthetic_ratio` per train example (`synthesize`): a
  random train row each of whose transformed features is, with probability
  SWAP_PROBABILITY, that feature of another random train row of the same
  batch. Per-feature resampling keeps most of a row's joint structure and
  reaches combinations the train split does not hold.

The teacher labels them once, before training, as the teacher-output cache
labels the train split (`write`), and each training batch holds rows of both
caches in proportion to their sizes (`mix`). A transfer row carries
labelled = 0: it counts in the soft term only (`losses.distillation_loss`).
"""
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import tensorflow as tf


Features = Dict[str, tf.Tensor]
Rows = Iterator[Tuple[Features, tf.Tensor]]

# The transfer set's sources, as `write` counts them.
UNLABELED = "unlabeled"
SYNTHETIC = "synthetic"

# The chance that a synthetic row takes a feature from another row than its
# own base row.
SWAP_PROBABILITY = 0.25


class TransferSetError(ValueError):
  """The transfer set cannot be read or made as asked."""


def check_ratio(ratio: float) -> None:
  if not ratio >= 0:
    raise TransferSetError(
        f"synthetic_ratio is the number of synthetic rows per train example, "
        f">= 0; got {ratio!r}.")


def synthesize(features: Features, count: int, generator: tf.random.Generator,
               swap_probability: float = SWAP_PROBABILITY
               ) -> Tuple[Features, tf.Tensor]:
  """`count` rows mixed from the rows of a batch of transformed features, and
  the index in the batch of each one's base row."""
  for name, values in features.items():
    if isinstance(values, tf.SparseTensor):
      raise TransferSetError(
          f"Synthetic rows are mixed from dense transformed features; {name!r} "
          "is sparse. Leave synthetic_ratio at 0 or make the preprocessing_fn "
          "output it dense.")
  rows = tf.shape(next(iter(features.values())))[0]
  base = generator.uniform([count], 0, rows, dtype=tf.int32)
  mixed = {}
  for name in sorted(features):
    donor = generator.uniform([count], 0, rows, dtype=tf.int32)
    swap = generator.uniform([count]) < swap_probability
    mixed[name] = tf.gather(features[name], tf.where(swap, donor, base))
  return mixed, base


def synthetic_rows(batches: Iterable,
                   teacher: Callable[[Features, Features], tf.Tensor],
                   ratio: float, seed: int = 0) -> Rows:
  """(synthetic features, teacher logits) made from each train batch.

  `batches` yields (features, labels) of the train split, one epoch; the
  rows made add up to round(ratio * examples read), however it is batched.
  `teacher(rows, base_rows)` labels the synthetic rows; `base_rows` are the
  train rows they were made from, for a teacher whose out-of-fold models
  label a row by its base row's fold (`teacher.OutOfFold`): mostly that
  row's features, so the model that did not see it.
  """
  check_ratio(ratio)
  generator = tf.random.Generator.from_seed(seed)
  seen = made = 0
  for features, labels in batches:
    seen += int(tf.shape(labels)[0])
    count = round(ratio * seen) - made
    if count <= 0:
      continue
    made += count
    mixed, base = synthesize(features, count, generator)
    yield mixed, teacher(mixed, {k: tf.gather(v, base) for k, v in features.items()})


def unlabeled_rows(dataset: tf.data.Dataset,
                   teacher: Callable[[Features], tf.Tensor],
                   raw_teacher: Optional[Callable[[tf.Tensor], tf.Tensor]] = None
                   ) -> Rows:
  """(features, teacher logits) of each batch of `data.unlabeled_dataset`.

  The teacher reads the transformed features, or with `raw_teacher` (a
  teacher of another Transform) the serialized examples themselves.
  """
  try:
    for features, serialized in dataset:
      yield features, (raw_teacher(serialized) if raw_teacher
                       else teacher(features))
  except tf.errors.InvalidArgumentError as e:
    raise TransferSetError(
        "The unlabeled examples do not parse with the raw schema less the "
        f"label's columns (each needs every other column the schema requires): "
        f"{e.message.splitlines()[0]}") from e


def write(sources: Dict[str, Callable[[], Rows]],
          features_spec: Dict[str, tf.TensorSpec], width: int,
          path: str) -> Dict[str, int]:
  """Saves the (features, teacher logits) batches of every source, one after
  another; returns the rows saved from each, by source name.

  The teacher runs in the sources' generators, eagerly (as in
  `teacher_cache.write`): where TensorFlow places it, not in a tf.data
  function. Features are cast and shaped as `features_spec` says.
  """
  counts = dict.fromkeys(sources, 0)

  def rows():
    for name, source in sources.items():
      for features, logits in source():
        counts[name] += int(tf.shape(logits)[0])
        yield ({key: tf.cast(tf.reshape(features[key], [-1, *spec.shape[1:]]),
                             spec.dtype)
                for key, spec in features_spec.items()}, logits)

  tf.data.Dataset.from_generator(
      rows, output_signature=(
          features_spec, tf.TensorSpec([None, width], tf.float32))).save(path)
  return counts


Batches = Callable[[int], tf.data.Dataset]


def shares(counts: Sequence[int], batch_size: int) -> List[int]:
  """Rows of a batch per source: in proportion to `counts`, at least one
  each, adding up to `batch_size`."""
  if batch_size < len(counts):
    raise TransferSetError(
        f"A transfer set needs batches of at least {len(counts)} rows (one from "
        f"the labelled rows and one from each transfer source); batch_size is "
        f"{batch_size}.")
  total = sum(counts)
  rows = [max(1, round(batch_size * c / total)) for c in counts]
  while sum(rows) != batch_size:
    # Take from (or give to) the largest share: it changes least in proportion.
    largest = max(range(len(rows)), key=lambda i: rows[i])
    rows[largest] += 1 if sum(rows) < batch_size else -1
  return rows


def mix(labelled: Batches, labelled_count: int,
        transfer: Sequence[Tuple[Batches, int]], batch_size: int) -> tf.data.Dataset:
  """(features, labels, teacher logits, labelled) batches of every source.

  Each batch holds the sources in proportion to their sizes (at least one
  row of each, `shares`): its first rows from the labelled train rows, the
  rest from each transfer source in turn, with labels 0 and labelled 0.
  `labelled(n)` gives batches of n (features, labels, teacher logits), a
  transfer source's (features, teacher logits), shuffled and repeated
  without end (`teacher_cache.read`, `labelling.rows`). The rows
  are joined batch by batch, so mixing costs no more per row than a cache.
  """
  rows = shares([labelled_count, *(count for _, count in transfer)], batch_size)
  labelled_rows, transfer_rows = rows[0], sum(rows[1:])
  batches = [labelled(rows[0]), *(batches_of(n) for (batches_of, _), n
                                  in zip(transfer, rows[1:]))]

  def join(first, *others):
    features, labels, logits = first
    return ({name: tf.concat([features[name], *(o[0][name] for o in others)], 0)
             for name in features},
            tf.concat([labels, tf.zeros([transfer_rows, *labels.shape[1:]],
                                        labels.dtype)], 0),
            tf.concat([logits, *(o[1] for o in others)], 0),
            tf.concat([tf.ones([labelled_rows]), tf.zeros([transfer_rows])], 0))

  return tf.data.Dataset.zip(tuple(batches)).map(join).prefetch(tf.data.AUTOTUNE)
