"""The distillation loss, in one place.

    loss = alpha * soft_loss + (1 - alpha) * hard_loss

`alpha` weighs the **soft** (teacher) term: alpha = 1 is pure soft-label
training, alpha = 0 ignores the teacher. (keras.io's distillation example uses
the opposite convention; ours follows the seed this project grew from.)

Classification, K >= 2 logits per example:
    soft_loss = T^2 * KL(softmax(teacher / T) || softmax(student / T))
    hard_loss = sparse categorical cross-entropy(labels, student)
Classification, one logit per example (binary, Bernoulli form):
    soft_loss = T^2 * KL(Bern(sigmoid(teacher / T)) || Bern(sigmoid(student / T)))
    hard_loss = binary cross-entropy(labels, student)
Regression:
    soft_loss = MSE(teacher, student)
    hard_loss = MSE(labels, student)

With a transfer set (`transfer.py`) a batch also holds examples without a
label: `labelled` marks the rows that have one. The soft term is the mean over
every row, the hard term the mean over the labelled rows only (0 when a batch
has none).

The T^2 factor keeps the soft term's gradients on the same scale as the hard
term's whatever the temperature: d(KL)/d(student) shrinks as 1/T^2.

Every loss here is a batch mean, built on Keras's own losses (per example,
then averaged here: Keras refuses its own averaging inside a tf.distribute
replica, where a batch is a replica's share); this module
imports no orchestrator so it can be tested with numbers worked out by hand.
The defaults and ranges of T and alpha are in defaults.py (no TensorFlow), and
the task is a `tasks.Task`, parsed where it arrives as a string.
"""

from typing import Dict, Optional

import tensorflow as tf

from distill_components.distiller import tasks


def _bernoulli(logits: tf.Tensor) -> tf.Tensor:
  """[batch, 1] logits -> [batch, 2] probabilities (1 - p, p)."""
  p = tf.sigmoid(logits)
  return tf.concat([1.0 - p, p], axis=-1)


def soft_loss(teacher_logits: tf.Tensor, student_logits: tf.Tensor,
              temperature: float) -> tf.Tensor:
  """T^2 * KL(teacher || student) on temperature-softened outputs."""
  t = tf.cast(temperature, student_logits.dtype)
  teacher_logits = tf.cast(teacher_logits, student_logits.dtype)
  if student_logits.shape[-1] == 1:
    teacher_p, student_p = (_bernoulli(teacher_logits / t),
                            _bernoulli(student_logits / t))
  else:
    teacher_p, student_p = (tf.nn.softmax(teacher_logits / t),
                            tf.nn.softmax(student_logits / t))
  kl = tf.reduce_mean(tf.keras.losses.KLDivergence(
      reduction=tf.keras.losses.Reduction.NONE)(teacher_p, student_p))
  return t * t * kl


def hard_loss(labels: tf.Tensor, student_logits: tf.Tensor) -> tf.Tensor:
  """Cross-entropy of the student's logits against the true labels."""
  return tf.reduce_mean(_hard_per_example(labels, student_logits, True))


def _labelled_mean(per_example: tf.Tensor, labelled: tf.Tensor) -> tf.Tensor:
  """Mean of a [batch] loss over the rows `labelled` marks (1.0), 0 if none."""
  labelled = tf.cast(tf.reshape(labelled, [-1]), per_example.dtype)
  return tf.math.divide_no_nan(tf.reduce_sum(per_example * labelled),
                               tf.reduce_sum(labelled))


def _hard_per_example(labels: tf.Tensor, student_logits: tf.Tensor,
                      classification: bool) -> tf.Tensor:
  """hard_loss's terms, one per row ([batch])."""
  none = tf.keras.losses.Reduction.NONE
  if not classification:
    return tf.keras.losses.MeanSquaredError(reduction=none)(
        tf.cast(tf.reshape(labels, tf.shape(student_logits)), student_logits.dtype),
        student_logits)
  labels = tf.reshape(labels, [-1, 1])
  if student_logits.shape[-1] == 1:
    return tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=none)(
        tf.cast(labels, student_logits.dtype), student_logits)
  return tf.keras.losses.SparseCategoricalCrossentropy(
      from_logits=True, reduction=none)(labels, student_logits)


def hard_term(labels: tf.Tensor, student_outputs: tf.Tensor, *,
              task: tasks.Task,
              labelled: Optional[tf.Tensor] = None) -> tf.Tensor:
  """The hard term alone: cross-entropy with the labels (regression: MSE), the
  mean over the `labelled` rows (None: every row). A student trained on it
  alone is the student without its teacher (alpha 0)."""
  per_example = _hard_per_example(labels, student_outputs,
                                  task.is_classification)
  if labelled is None:
    return tf.reduce_mean(per_example)
  return _labelled_mean(per_example, labelled)


def distillation_loss(labels: tf.Tensor, teacher_outputs: tf.Tensor,
                      student_outputs: tf.Tensor, *,
                      task: tasks.Task, alpha: float,
                      temperature: float,
                      labelled: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
  """Returns {'loss', 'soft_loss', 'hard_loss'}, each a scalar batch mean.

  Args:
    labels: [batch] or [batch, 1] true labels (class ids, or targets for
      regression).
    teacher_outputs: [batch, K] teacher logits (regression: predictions).
    student_outputs: [batch, K] student logits (regression: predictions).
    task: binary, multiclass or regression (binary and multiclass share the
      classification losses; the outputs' width picks the Bernoulli form).
    alpha: weight of the soft (teacher) term, in [0, 1].
    temperature: softening temperature T > 0 (unused for regression).
    labelled: optional [batch] 1.0 / 0.0: which rows have a true label (the
      others, a transfer set's, count in the soft term only; their `labels`
      are ignored). None: every row.
  """
  if task.is_classification:
    soft = soft_loss(teacher_outputs, student_outputs, temperature)
  else:
    soft = tf.reduce_mean(tf.keras.losses.MeanSquaredError(
        reduction=tf.keras.losses.Reduction.NONE)(
            tf.cast(teacher_outputs, student_outputs.dtype), student_outputs))
  hard = hard_term(labels, student_outputs, task=task, labelled=labelled)
  return {
      "loss": alpha * soft + (1.0 - alpha) * hard,
      "soft_loss": soft,
      "hard_loss": hard,
  }


def probabilities(logits: tf.Tensor, task: tasks.Task) -> tf.Tensor:
  """What serving returns at temperature 1: sigmoid / softmax / identity."""
  if not task.is_classification:
    return logits
  if logits.shape[-1] == 1:
    return tf.sigmoid(logits)
  return tf.nn.softmax(logits)


def logits_from_probabilities(probs: tf.Tensor) -> tf.Tensor:
  """Inverse of `probabilities` for teachers that only expose probabilities."""
  eps = tf.keras.backend.epsilon()
  probs = tf.clip_by_value(probs, eps, 1.0 - eps)
  if probs.shape[-1] == 1:
    return tf.math.log(probs) - tf.math.log1p(-probs)
  # log-probabilities are logits up to a per-example constant, which softmax
  # ignores.
  return tf.math.log(probs)
