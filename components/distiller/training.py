"""The training loop: a student learns from a teacher's logits and the labels.

Pure TensorFlow; no TFX. The executor feeds it `tf.data` batches of
(transformed features, label).

The steps are `tf.function(autograph=False)`: nothing in them branches on a
tensor, and AutoGraph's conversion of `tf_keras` internals (which `fit` pays
for) costs about 30 s per process here, against 2-3 s for a plain trace.
"""

from typing import Callable, Dict, Iterable, Optional

from absl import logging
import tensorflow as tf

from distill_components.distiller import losses
from distill_components.distiller import tasks
from distill_components.distiller import teacher_cache

TeacherFn = Callable[[Dict[str, tf.Tensor]], tf.Tensor]

# Train steps per `tf.function` call: the host reads the metrics back once per
# call, not once per step (see bench/throughput.py).
STEPS_PER_EXECUTION = 50

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
               task: tasks.Task, alpha: float, temperature: float,
               optimizer: tf.keras.optimizers.Optimizer):
    losses.check_alpha_and_temperature(alpha, temperature)
    self.student = student
    self.task = tasks.Task.parse(task)
    self.alpha = float(alpha)
    self.temperature = float(temperature)
    self._teacher_logits = teacher_logits
    self._optimizer = optimizer
    self._compile()

  def _compile(self):
    self.train_steps = tf.function(self._train_steps, autograph=False)
    self.eval_step = tf.function(self._eval_step, autograph=False)

  def use_teacher(self, teacher_logits: TeacherFn) -> None:
    """Switches where teacher logits come from (e.g. cached -> online)."""
    self._teacher_logits = teacher_logits
    self._compile()

  def _metrics(self, features, labels, training):
    teacher = tf.stop_gradient(self._teacher_logits(features))
    # Cached teacher outputs ride in the batch; the student never sees them.
    student = self.student(teacher_cache.without_logits(features),
                           training=training)
    values = losses.distillation_loss(
        labels, teacher, student, task=self.task, alpha=self.alpha,
        temperature=self.temperature)
    if self.task.is_classification:
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

  def _train_steps(self, iterator, count):
    """`count` train steps in one call, like Keras' `steps_per_execution`.

    The host waits once per call instead of once per step. Returns the last
    step's metrics, the index (0-based, within this call) of the first step
    whose loss was not finite (-1 if none), and that step's metrics.
    """
    def step(index, first_bad, at_bad):
      values = self._train_step(*iterator.get_next())
      bad = tf.logical_and(first_bad < 0,
                           tf.logical_not(tf.math.is_finite(values["loss"])))
      at_bad = {k: tf.where(bad, values[k], v) for k, v in at_bad.items()}
      return values, tf.where(bad, index, first_bad), at_bad

    def body(index, values, first_bad, at_bad):
      del values  # only the last step's are returned
      return (index + 1, *step(index, first_bad, at_bad))

    first = step(tf.constant(0), tf.constant(-1),
                 {k: tf.constant(0.0) for k in ("loss", "soft_loss", "hard_loss")})
    _, values, first_bad, at_bad = tf.while_loop(
        lambda index, *_: index < count, body, (tf.constant(1), *first))
    return values, first_bad, at_bad

  def _eval_step(self, features, labels):
    values = self._metrics(features, labels, training=False)
    values["examples"] = tf.shape(labels)[0]
    return values

  def fit(self, train_data: tf.data.Dataset, steps: int,
          summary_dir: Optional[str] = None, summary_every: int = 100,
          steps_per_execution: int = STEPS_PER_EXECUTION) -> Dict[str, float]:
    """Runs `steps` training steps; returns the last step's metrics.

    `train_data` must yield at least `steps` batches (repeat it). Steps run
    `steps_per_execution` at a time; metrics are read back, logged and
    written as summaries every `summary_every` steps and after the last.
    Raises FloatingPointError naming the first step whose loss is NaN or
    infinite.
    """
    if steps_per_execution < 1:
      raise ValueError(f"steps_per_execution must be >= 1, not {steps_per_execution}.")
    writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None
    iterator = iter(train_data)
    values, done = {}, 0
    while done < steps:
      count = min(steps_per_execution, steps - done,
                  summary_every - done % summary_every)
      values, first_bad, at_bad = self.train_steps(iterator, tf.constant(count))
      if int(first_bad) >= 0:
        at_bad = {k: float(v) for k, v in at_bad.items()}
        raise FloatingPointError(
            f"The distillation loss became {at_bad['loss']} at step "
            f"{done + int(first_bad) + 1} (soft_loss={at_bad['soft_loss']}, "
            f"hard_loss={at_bad['hard_loss']}). Check the inputs and the "
            "teacher's outputs for NaN or inf, or lower the learning rate.")
      values = {k: float(v) for k, v in values.items()}
      done += count
      if done % summary_every == 0 or done == steps:
        if writer:
          with writer.as_default(step=done):
            for name, value in values.items():
              tf.summary.scalar(name, value)
        logging.info("Distillation step %d/%d: %s", done, steps, values)
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
