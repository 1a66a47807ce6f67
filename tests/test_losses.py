"""The distillation loss against values worked out by hand.

Every expected value comes from the formulas written out below in numpy, or
from literals worked on paper, never from the code under test:

  soft = T^2 * mean_i sum_k p_ik * log(p_ik / q_ik),
         p = softmax(teacher / T), q = softmax(student / T)
         (one logit: p = [1 - sigmoid(t / T), sigmoid(t / T)], same for q)
  hard = mean_i -log softmax(student)_i[label_i]   (one logit: BCE)
  loss = alpha * soft + (1 - alpha) * hard
  d soft / d student_i = T * (q_i - p_i) / batch
"""
import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from distill_components.distiller import defaults
from distill_components.distiller import losses
from distill_components.distiller.tasks import Task

TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
ALPHAS = (0.0, 0.5, 0.9, 1.0)

# A batch of 4 examples, 3 classes, and its true labels.
TEACHER_3 = np.array([[2.0, 0.5, -1.0], [-0.5, 1.5, 0.0],
                      [0.0, 0.0, 3.0], [1.0, -2.0, 0.5]], np.float32)
STUDENT_3 = np.array([[1.0, 1.0, -0.5], [0.0, 0.5, 0.5],
                      [-1.0, 0.5, 2.0], [0.5, -0.5, 0.0]], np.float32)
LABELS_3 = np.array([0, 1, 2, 2], np.int64)
# A batch of 4 examples with one binary logit each.
TEACHER_1 = np.array([[1.5], [-0.5], [3.0], [0.0]], np.float32)
STUDENT_1 = np.array([[0.5], [0.5], [2.0], [-1.0]], np.float32)
LABELS_1 = np.array([1, 0, 1, 1], np.int64)


def _softmax(z):
  e = np.exp(z - z.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _probs(logits, t):
  logits = logits.astype(np.float64) / t
  if logits.shape[-1] == 1:
    p = _sigmoid(logits)
    return np.concatenate([1.0 - p, p], axis=-1)
  return _softmax(logits)


def _soft(teacher, student, t):
  p, q = _probs(teacher, t), _probs(student, t)
  return t * t * np.mean(np.sum(p * np.log(p / q), axis=-1))


def _hard(labels, student):
  student = student.astype(np.float64)
  if student.shape[-1] == 1:
    p = _sigmoid(student[:, 0])
    return np.mean(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
  return np.mean(-np.log(_softmax(student)[np.arange(len(labels)), labels]))


def _loss(labels, teacher, student, alpha, t):
  out = losses.distillation_loss(
      tf.constant(labels), tf.constant(teacher), tf.constant(student),
      task=Task.BINARY, alpha=alpha, temperature=t)
  return {k: float(v) for k, v in out.items()}


def test_literal_values_worked_on_paper():
  # Two classes, teacher [0, ln 3] -> p = (1/4, 3/4); student [0, 0] -> q = 1/2.
  # KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.1308120; T = 1 so no T^2 factor.
  teacher = np.array([[0.0, math.log(3.0)]], np.float32)
  student = np.zeros((1, 2), np.float32)
  out = _loss(np.array([1]), teacher, student, alpha=1.0, t=1.0)
  assert out["soft_loss"] == pytest.approx(0.1308120, abs=1e-5)
  assert out["loss"] == pytest.approx(0.1308120, abs=1e-5)
  # Hard term: -ln(1/2) = 0.6931472 whatever the label.
  assert out["hard_loss"] == pytest.approx(0.6931472, abs=1e-5)
  # T = 2: p = (1, sqrt 3) / (1 + sqrt 3) = (0.3660254, 0.6339746);
  # KL = 0.0363408, times T^2 = 4 -> 0.1453631.
  out = _loss(np.array([1]), teacher, student, alpha=1.0, t=2.0)
  assert out["soft_loss"] == pytest.approx(0.1453631, abs=1e-5)
  # The Bernoulli form of the same teacher (one logit ln 3 = p of 3/4) is the
  # same distribution, so the same KL.
  out = _loss(np.array([1]), teacher[:, 1:] - teacher[:, :1], student[:, :1],
              alpha=1.0, t=1.0)
  assert out["soft_loss"] == pytest.approx(0.1308120, abs=1e-5)


def test_identical_teacher_and_student_cost_nothing_soft():
  for t in TEMPERATURES:
    out = _loss(LABELS_3, TEACHER_3, TEACHER_3, alpha=1.0, t=t)
    assert out["soft_loss"] == pytest.approx(0.0, abs=1e-5)
    assert out["loss"] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("width", [1, 3], ids=["binary", "3-class"])
@pytest.mark.parametrize("t,alpha", list(itertools.product(TEMPERATURES, ALPHAS)))
def test_loss_matches_numpy(width, t, alpha):
  teacher, student, labels = ((TEACHER_1, STUDENT_1, LABELS_1) if width == 1
                              else (TEACHER_3, STUDENT_3, LABELS_3))
  out = _loss(labels, teacher, student, alpha, t)
  soft, hard = _soft(teacher, student, t), _hard(labels, student)
  assert out["soft_loss"] == pytest.approx(soft, rel=1e-4, abs=1e-6)
  assert out["hard_loss"] == pytest.approx(hard, rel=1e-5)
  assert out["loss"] == pytest.approx(alpha * soft + (1 - alpha) * hard,
                                      rel=1e-4, abs=1e-6)


def test_alpha_zero_ignores_the_teacher_and_alpha_one_ignores_the_labels():
  flipped = 2 - LABELS_3
  other_teacher = -TEACHER_3
  base = _loss(LABELS_3, TEACHER_3, STUDENT_3, alpha=0.0, t=2.0)
  assert _loss(LABELS_3, other_teacher, STUDENT_3, 0.0, 2.0)["loss"] == (
      pytest.approx(base["loss"]))
  assert _loss(flipped, TEACHER_3, STUDENT_3, 0.0, 2.0)["loss"] != (
      pytest.approx(base["loss"]))
  soft = _loss(LABELS_3, TEACHER_3, STUDENT_3, alpha=1.0, t=2.0)
  assert _loss(flipped, TEACHER_3, STUDENT_3, 1.0, 2.0)["loss"] == (
      pytest.approx(soft["loss"]))
  assert _loss(LABELS_3, other_teacher, STUDENT_3, 1.0, 2.0)["loss"] != (
      pytest.approx(soft["loss"]))


@pytest.mark.parametrize("width", [1, 3], ids=["binary", "3-class"])
@pytest.mark.parametrize("t", TEMPERATURES)
def test_soft_gradient_is_t_times_q_minus_p_over_batch(width, t):
  """T^2 cancels the 1/T^2 shrink: the gradient scales as T, not 1/T."""
  teacher, student = ((TEACHER_1, STUDENT_1) if width == 1
                      else (TEACHER_3, STUDENT_3))
  s = tf.Variable(student)
  with tf.GradientTape() as tape:
    value = losses.soft_loss(tf.constant(teacher), s, t)
  grad = tape.gradient(value, s).numpy()
  batch = len(student)
  if width == 1:
    p, q = _sigmoid(teacher / t), _sigmoid(student / t)
  else:
    p, q = _softmax(teacher / t), _softmax(student / t)
  np.testing.assert_allclose(grad, t * (q - p) / batch, rtol=1e-3, atol=1e-6)


def test_regression_is_mse_to_teacher_and_to_labels():
  teacher = np.array([[1.0], [2.0], [-1.0]], np.float32)
  student = np.array([[0.5], [2.5], [0.0]], np.float32)
  labels = np.array([2.0, 2.0, -2.0], np.float32)
  # soft = (0.25 + 0.25 + 1) / 3 = 0.5; hard = (2.25 + 0.25 + 4) / 3 = 2.1666667
  for alpha in ALPHAS:
    out = losses.distillation_loss(
        tf.constant(labels), tf.constant(teacher), tf.constant(student),
        task=Task.REGRESSION, alpha=alpha, temperature=4.0)
    assert float(out["soft_loss"]) == pytest.approx(0.5)
    assert float(out["hard_loss"]) == pytest.approx(2.1666667)
    assert float(out["loss"]) == pytest.approx(alpha * 0.5 + (1 - alpha) * 2.1666667)


def test_temperature_does_not_change_regression():
  args = (tf.constant([1.0, 0.0]), tf.constant([[0.0], [1.0]]),
          tf.constant([[0.5], [0.5]]))
  values = {float(losses.distillation_loss(*args, task=Task.REGRESSION, alpha=0.5,
                                           temperature=t)["loss"])
            for t in TEMPERATURES}
  assert len(values) == 1


@pytest.mark.parametrize("alpha", [-0.1, 1.01, float("nan")])
def test_alpha_outside_unit_interval_is_refused(alpha):
  with pytest.raises(ValueError, match="alpha weighs the soft"):
    defaults.check_alpha(alpha)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_non_positive_temperature_is_refused(temperature):
  with pytest.raises(ValueError, match="temperature must be > 0"):
    defaults.check_temperature(temperature)


def test_probabilities_round_trip_to_logits():
  binary = tf.constant([[-3.0], [0.0], [2.5]])
  np.testing.assert_allclose(
      losses.logits_from_probabilities(
          losses.probabilities(binary, Task.BINARY)),
      binary, atol=1e-4)
  # K classes: logits come back up to a per-row constant, so the softmax
  # (what the loss sees) is the same.
  probs = losses.probabilities(tf.constant(TEACHER_3), Task.MULTICLASS)
  np.testing.assert_allclose(probs.numpy().sum(axis=-1), 1.0, atol=1e-6)
  np.testing.assert_allclose(
      tf.nn.softmax(losses.logits_from_probabilities(probs)), probs, atol=1e-6)
  # Regression predictions pass through untouched.
  np.testing.assert_array_equal(
      losses.probabilities(tf.constant([[1.5]]), Task.REGRESSION), [[1.5]])


@pytest.mark.parametrize("task,width", [(Task.BINARY, 1), (Task.MULTICLASS, 3),
                                        (Task.REGRESSION, 1)])
def test_rows_without_a_label_count_in_the_soft_term_only(task, width):
  """A transfer set's rows: the hard term is the labelled rows' mean, the soft
  term every row's, whatever labels the unlabelled rows carry."""
  rng = np.random.default_rng(0)
  teacher = tf.constant(rng.normal(size=(6, width)), tf.float32)
  student = tf.constant(rng.normal(size=(6, width)), tf.float32)
  labels = tf.constant([0, 1, 0, 1, 0, 1] if width == 1 else [0, 2, 1, 0, 2, 1])
  labelled = tf.constant([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
  garbage = tf.concat([labels[:3], tf.constant([1, 0, 1])], axis=0)
  args = dict(task=task, alpha=0.7, temperature=2.0)
  masked = losses.distillation_loss(labels, teacher, student, labelled=labelled, **args)
  other = losses.distillation_loss(garbage, teacher, student, labelled=labelled, **args)
  whole = losses.distillation_loss(labels, teacher, student, **args)
  first = losses.distillation_loss(labels[:3], teacher[:3], student[:3], **args)
  assert float(masked["hard_loss"]) == pytest.approx(float(first["hard_loss"]), rel=1e-6)
  assert float(other["loss"]) == pytest.approx(float(masked["loss"]), rel=1e-6)
  assert float(masked["soft_loss"]) == pytest.approx(float(whole["soft_loss"]), rel=1e-6)
  all_ones = losses.distillation_loss(labels, teacher, student, labelled=tf.ones([6]), **args)
  assert float(all_ones["loss"]) == pytest.approx(float(whole["loss"]), rel=1e-6)
  none = losses.distillation_loss(labels, teacher, student, labelled=tf.zeros([6]), **args)
  assert float(none["hard_loss"]) == 0.0
