"""The training loop: a student learns from a teacher's logits and the labels.

Pure TensorFlow; no TFX. The executor feeds it `tf.data` batches of
(transformed features, label).

The steps are `tf.function(autograph=False)`: nothing in them branches on a
tensor, and AutoGraph's conversion of `tf_keras` internals (which `fit` pays
for) costs about 30 s per process here, against 2-3 s for a plain trace.
"""

import math
from typing import Callable, Dict, Iterable, Optional

from absl import logging
import tensorflow as tf

from distill_components.distiller import losses
from distill_components.distiller import teacher_cache

TeacherFn = Callable[[Dict[str, tf.Tensor]], tf.Tensor]

class StudentOutputError(ValueError):
  """The student's outputs cannot be compared with the teacher's."""


def predicted_class(logits: tf.Tensor) -> tf.Tensor:
  """Class ids from logits: logit > 0 for one logit, argmax otherwise."""
  if logits.shape[-1] == 1:
    return tf.cast(logits[:, 0] > 0, tf.int64)
  return tf.argmax(logits, axis=-1)


def check_output_widths(teacher: tf.Tensor, student: tf.Tensor) -> None:
  """Teacher and student must emit [batch, K] with the same K."""
  if student.shape.rank != 2 or student.shape[-1] != teacher.shape[-1]:
    raise StudentOutputError(
        f"The student emits shape {student.shape.as_list()} but the teacher emits "
        f"{teacher.shape.as_list()}: the student must emit [batch, "
        f"{teacher.shape[-1]}] outputs to learn from this teacher.")


class Distillation:
  """Trains `student` on the distillation loss against `teacher_logits`.

  Only the student's weights change; the teacher is called, never trained.
  """

  def __init__(self, student: tf.keras.Model, teacher_logits: TeacherFn, *,
               task: losses.Task, alpha: float, temperature: float,
               optimizer: tf.keras.optimizers.Optimizer):
    losses.check_alpha_and_temperature(alpha, temperature)
    self.student = student
    self.task = losses.Task(task)
    self.alpha = float(alpha)
    self.temperature = float(temperature)
    self._teacher_logits = teacher_logits
    self._optimizer = optimizer
    self.train_step = tf.function(self._train_step, autograph=False)
    self.eval_step = tf.function(self._eval_step, autograph=False)

  def use_teacher(self, teacher_logits: TeacherFn) -> None:
    """Switches where teacher logits come from (e.g. cached -> online)."""
    self._teacher_logits = teacher_logits
    self.train_step = tf.function(self._train_step, autograph=False)
    self.eval_step = tf.function(self._eval_step, autograph=False)

  def _metrics(self, features, labels, training):
    teacher = tf.stop_gradient(self._teacher_logits(features))
    # Cached teacher outputs ride in the batch; the student never sees them.
    student = self.student(teacher_cache.without_logits(features),
                           training=training)
    values = losses.distillation_loss(
        labels, teacher, student, task=self.task, alpha=self.alpha,
        temperature=self.temperature)
    if self.task == losses.Task.CLASSIFICATION:
      values["agreement"] = tf.reduce_mean(tf.cast(
          tf.equal(predicted_class(teacher), predicted_class(student)),
          tf.float32))
    return values

  def _train_step(self, features, labels):
    with tf.GradientTape() as tape:
      values = self._metrics(features, labels, training=True)
    variables = self.student.trainable_variables
    self._optimizer.apply_gradients(
        zip(tape.gradient(values["loss"], variables), variables))
    return values

  def _eval_step(self, features, labels):
    values = self._metrics(features, labels, training=False)
    values["examples"] = tf.shape(labels)[0]
    return values

  def fit(self, train_data: tf.data.Dataset, steps: int,
          summary_dir: Optional[str] = None,
          summary_every: int = 100) -> Dict[str, float]:
    """Runs `steps` training steps; returns the last step's metrics.

    Raises FloatingPointError at the first step whose loss is NaN or infinite.
    """
    writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None
    values = {}
    for step, (features, labels) in enumerate(train_data.take(steps), start=1):
      values = {k: float(v) for k, v in self.train_step(features, labels).items()}
      if not math.isfinite(values["loss"]):
        raise FloatingPointError(
            f"The distillation loss became {values['loss']} at step {step} "
            f"(soft_loss={values['soft_loss']}, hard_loss={values['hard_loss']}). "
            "Check the inputs and the teacher's outputs for NaN or inf, or lower "
            "the learning rate.")
      if writer and (step % summary_every == 0 or step == steps):
        with writer.as_default(step=step):
          for name, value in values.items():
            tf.summary.scalar(name, value)
      if step % summary_every == 0:
        logging.info("Distillation step %d/%d: %s", step, steps, values)
    if writer:
      writer.close()
    return values

  def evaluate(self, eval_data: Iterable, steps: Optional[int] = None
               ) -> Dict[str, float]:
    """Example-weighted means of the metrics over `steps` batches (all if None)."""
    data = eval_data.take(steps) if steps else eval_data
    sums, count = {}, 0
    for features, labels in data:
      values = self.eval_step(features, labels)
      n = int(values.pop("examples"))
      count += n
      for name, value in values.items():
        sums[name] = sums.get(name, 0.0) + float(value) * n
    if not count:
      raise ValueError("The eval split yielded no examples.")
    return {name: total / count for name, total in sums.items()}
