"""The training loop: a student learns from a teacher's logits and the labels.

No TFX. The executor feeds it `tf.data` batches of (transformed features,
label), or (features, label, teacher logits) when the teacher's outputs are
cached (`teacher_cache.py`). With a transfer set (`transfer.py`) a batch is (features,
labels, teacher logits, labelled): rows without a label weigh in the soft
term only. `DistillationModel` is a tf-keras `Model` around
the student whose `train_step`/`test_step` compute the distillation loss
(`losses.py`); Keras' `fit` trains it, several steps per call
(`steps_per_execution`), with Keras callbacks: TensorBoard (the curves in the
model run), TerminateOnNaN plus a callback that names the step where the loss
stopped being finite, and BackupAndRestore, so a Distiller killed
mid-training resumes from its last checkpoint when it runs again instead of
starting over.
"""

import math
from typing import Callable, Dict, Iterable, List, Optional

from absl import logging
import tensorflow as tf

from distill_components.distiller import losses
from distill_components.distiller import tasks

TeacherFn = Callable[[Dict[str, tf.Tensor]], tf.Tensor]

# Train steps per `tf.function` call: the host reads the metrics back once per
# call, not once per step (see bench/throughput.py).
STEPS_PER_EXECUTION = 50
_TERMS = ("loss", "soft_loss", "hard_loss")


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


class DistillationModel(tf.keras.Model):
  """The student, trained by Keras on the distillation loss.

  Only the student's weights change; the teacher is called, never trained.
  Calling the model calls the student. A batch is (features, labels), and
  the teacher is called on the features, or (features, labels, teacher
  logits) from the teacher-output cache, or (features, labels, teacher
  logits, labelled) with a transfer set. Each train step returns its own loss
  terms (not running means), so logs and curves show the step's values.
  `task`, `alpha` and `temperature` arrive checked (inputs.py, defaults.py).
  """

  def __init__(self, student: tf.keras.Model, teacher_logits: TeacherFn, *,
               task: tasks.Task, alpha: float, temperature: float,
               alone: Optional[tf.keras.Model] = None,
               alone_optimizer: Optional[tf.keras.optimizers.Optimizer] = None):
    super().__init__()
    # The same student trained beside, on the same batches, from the labels
    # only (the hard term, alpha 0), with an optimizer of its own.
    self.alone = alone
    self.alone_optimizer = alone_optimizer
    self.student = student
    self.task = task
    self.alpha = float(alpha)
    self.temperature = float(temperature)
    self.teacher_logits = teacher_logits
    # The first train step whose loss was not finite (0: none) and its terms;
    # under a tf.distribute strategy, as every replica computes it.
    first = tf.VariableAggregation.ONLY_FIRST_REPLICA
    self.bad_step = tf.Variable(0, dtype=tf.int64, trainable=False, aggregation=first)
    self.bad_terms = tf.Variable(tf.zeros([len(_TERMS)]), trainable=False,
                                 aggregation=first)
    names = _TERMS + (("agreement",) if self.task.is_classification else ())
    self._means = {name: tf.keras.metrics.Mean(name) for name in names}
    self._examples = tf.keras.metrics.Sum("examples")

  @property
  def metrics(self) -> List[tf.keras.metrics.Metric]:
    return [*self._means.values(), self._examples]

  def call(self, features, training=False):
    return self.student(features, training=training)

  def _unpack(self, data):
    """(features, labels, teacher logits, labelled or None) of a batch."""
    if len(data) == 4:  # with a transfer set: which rows have a label
      return data
    if len(data) == 3:  # cached: the teacher ran once, before training
      return (*data, None)
    features, labels = data
    return features, labels, self.teacher_logits(features), None

  def _terms(self, features, labels, teacher, labelled, training):
    teacher = tf.stop_gradient(teacher)
    student = self(features, training=training)
    values = losses.distillation_loss(
        labels, teacher, student, task=self.task, alpha=self.alpha,
        temperature=self.temperature, labelled=labelled)
    if self.task.is_classification:
      values["agreement"] = tf.reduce_mean(tf.cast(
          tf.equal(predicted_class(teacher), predicted_class(student)),
          tf.float32))
    return values

  # Nothing in a step branches on a tensor: AutoGraph's conversion of it and
  # of every Keras layer it calls cost ~20 s per process (measured), for nothing.
  @tf.autograph.experimental.do_not_convert
  def train_step(self, data):
    # Under a tf.distribute strategy each replica holds a share of the batch;
    # the optimizer sums the replicas' gradients and Keras sums the values a
    # step returns, so each replica weighs its batch means by 1 / replicas
    # (with no strategy, 1).
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    features, labels, teacher, labelled = self._unpack(data)
    with tf.GradientTape() as tape:
      values = {k: v / replicas for k, v in self._terms(
          features, labels, teacher, labelled, training=True).items()}
    variables = self.student.trainable_variables
    self.optimizer.apply_gradients(
        zip(tape.gradient(values["loss"], variables), variables))
    if self.alone is not None:
      with tf.GradientTape() as tape:
        alone_loss = losses.hard_term(
            labels, self.alone(features, training=True), task=self.task,
            labelled=labelled) / replicas
      variables = self.alone.trainable_variables
      self.alone_optimizer.apply_gradients(
          zip(tape.gradient(alone_loss, variables), variables))
      values["alone_loss"] = alone_loss
    terms = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, tf.stack([values[k] for k in _TERMS]))
    bad = tf.logical_and(tf.equal(self.bad_step, 0),
                         tf.logical_not(tf.math.is_finite(terms[0])))
    self.bad_step.assign(tf.where(bad, tf.cast(self.optimizer.iterations, tf.int64),
                                  self.bad_step))
    self.bad_terms.assign(tf.where(bad, terms, self.bad_terms))
    return values

  @tf.autograph.experimental.do_not_convert
  def test_step(self, data):
    features, labels, teacher, labelled = self._unpack(data)
    values = self._terms(features, labels, teacher, labelled, training=False)
    examples = tf.shape(labels)[0]
    for name, value in values.items():
      self._means[name].update_state(value, sample_weight=examples)
    self._examples.update_state(examples)
    return {m.name: m.result() for m in self.metrics}


class _NameTheNonFiniteStep(tf.keras.callbacks.Callback):
  """Stops training at the first step whose loss was NaN/inf and keeps its name.

  Several steps run per call; the model records which one it was. The error
  is raised once `fit` has returned, not from here: a callback that raises
  skips every callback's `on_train_end`, and TensorBoard's would then leave
  its summary writer and recording condition as the process's defaults
  (under LocalDagRunner, every later component's).
  """

  def __init__(self):
    super().__init__()
    self.error: Optional[FloatingPointError] = None

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.bad_step.numpy())
    if step and self.error is None:
      terms = dict(zip(_TERMS, (float(v) for v in self.model.bad_terms.numpy())))
      self.error = FloatingPointError(
          f"The distillation loss became {terms['loss']} at step {step} "
          f"(soft_loss={terms['soft_loss']}, hard_loss={terms['hard_loss']}). "
          "Check the inputs and the teacher's outputs for NaN or inf, or lower "
          "the learning rate.")
      self.model.stop_training = True


class _LogProgress(tf.keras.callbacks.Callback):
  """Logs "Distillation step N/M: ..." (the console's live line reads it)."""

  def __init__(self, steps: int, every: int):
    super().__init__()
    self._steps, self._every, self._last = steps, every, 0
    self.values: Dict[str, float] = {}

  def on_train_batch_end(self, batch, logs=None):
    done = int(self.model.optimizer.iterations.numpy())
    self.values = {k: float(v) for k, v in (logs or {}).items()}
    if done // self._every > self._last // self._every or done == self._steps:
      logging.info("Distillation step %d/%d: %s", done, self._steps, self.values)
    self._last = done


class _BackupAndRestore(tf.keras.callbacks.BackupAndRestore):
  """Keras' BackupAndRestore, resuming at the right step with several steps
  per call: tf_keras 2.16 records the first step of the call it checkpointed,
  so a resumed run would repeat all but one of that call's steps (measured: a
  3,000-step run resumed at 500 trained 3,024 steps); this records the last.
  """

  def on_train_batch_end(self, batch, logs=None):
    self._training_state._ckpt_saved_batch.assign(batch)  # pylint: disable=protected-access
    super().on_train_batch_end(batch, logs)


class Distillation:
  """Trains `student` on the distillation loss against `teacher_logits`."""

  def __init__(self, student: tf.keras.Model, teacher_logits: TeacherFn, *,
               task: tasks.Task, alpha: float, temperature: float,
               optimizer: tf.keras.optimizers.Optimizer,
               alone: Optional[tf.keras.Model] = None):
    """`alone`: the same student (built with the same seed), trained beside
    on the same batches from the labels only, with an optimizer like
    `optimizer` (the student without its teacher: choice.py)."""
    self.student = student
    self.alone = alone
    self.model = DistillationModel(
        student, teacher_logits, task=task, alpha=alpha, temperature=temperature,
        alone=alone, alone_optimizer=(
            optimizer.__class__.from_config(optimizer.get_config())
            if alone is not None else None))
    self.task = self.model.task
    self.alpha = self.model.alpha
    self.temperature = self.model.temperature
    self._optimizer = optimizer
    self._steps_per_execution = None

  def _compile(self, steps_per_execution: int) -> None:
    # Compiling drops the traced step functions: only when the steps per call
    # change (a later `fit` of the same loop costs no second trace).
    if steps_per_execution != self._steps_per_execution:
      self.model.compile(optimizer=self._optimizer,
                         steps_per_execution=steps_per_execution)
      self._steps_per_execution = steps_per_execution

  def fit(self, train_data: tf.data.Dataset, steps: int,
          summary_dir: Optional[str] = None, summary_every: int = 100,
          steps_per_execution: int = STEPS_PER_EXECUTION,
          backup_dir: Optional[str] = None) -> Dict[str, float]:
    """Runs `steps` training steps; returns the last step's metrics.

    `train_data` must yield at least `steps` batches (repeat it) of
    (features, labels) or (features, labels, teacher logits). Summaries
    go to `summary_dir` every `summary_every` steps (TensorBoard). With
    `backup_dir`, a checkpoint is kept there every `summary_every` steps and
    a later call with the same directory resumes from it; it is removed once
    training completes. Raises FloatingPointError naming the first step whose
    loss is NaN or infinite.
    """
    if steps_per_execution < 1:
      raise ValueError(f"steps_per_execution must be >= 1, not {steps_per_execution}.")
    # Calls end on every multiple of summary_every, where summaries and
    # checkpoints are written.
    per_call = math.gcd(steps_per_execution, summary_every)
    self._compile(per_call)
    progress = _LogProgress(steps, summary_every)
    non_finite = _NameTheNonFiniteStep()
    callbacks = [non_finite, tf.keras.callbacks.TerminateOnNaN(), progress]
    if summary_dir:
      callbacks.append(tf.keras.callbacks.TensorBoard(
          summary_dir, update_freq=summary_every, write_graph=False,
          profile_batch=0))
    if backup_dir:
      # Keras counts calls, not steps, between checkpoints.
      callbacks.append(_BackupAndRestore(
          backup_dir, save_freq=summary_every // per_call, delete_checkpoint=True))
    self.model.fit(train_data, epochs=1, steps_per_epoch=steps, verbose=0,
                   callbacks=callbacks)
    if non_finite.error is not None:
      raise non_finite.error
    return {k: v for k, v in progress.values.items() if k != "examples"}

  def evaluate(self, eval_data: Iterable, steps: Optional[int] = None
               ) -> Dict[str, float]:
    """Example-weighted means of the metrics over `steps` batches (all if None)."""
    # One step per call: an eval split of unknown length ends mid-call.
    self._compile(1)
    data = eval_data.take(steps) if steps else eval_data
    values = self.model.evaluate(data, verbose=0, return_dict=True)
    if not values.pop("examples", 0):
      raise ValueError("The eval split yielded no examples.")
    return {k: float(v) for k, v in values.items()}
