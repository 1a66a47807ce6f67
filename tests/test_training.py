"""The Distiller's training loop (Keras `fit` on DistillationModel).

Several steps per call change nothing but speed; the first non-finite step is
named; summaries land every N steps; a run killed with SIGKILL resumes from
its last checkpoint.
"""
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from distill_components.distiller import training
from distill_components.distiller.tasks import Task


def _data(nan_at_batch=None, batches=40, batch=8):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(batches * batch, 3)).astype(np.float32)
  teacher = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32))
  if nan_at_batch is not None:
    teacher[nan_at_batch * batch] = np.nan
  labels = (teacher > 0).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(
      ({"x": x, "teacher": teacher}, labels)).batch(batch)


def _student(seed=0):
  tf.keras.utils.set_random_seed(seed)
  inputs = {"x": tf.keras.Input(shape=(3,), name="x")}
  hidden = tf.keras.layers.Dense(4, activation="relu")(inputs["x"])
  return tf.keras.Model(inputs, tf.keras.layers.Dense(1)(hidden))


def _loop(seed=0):
  return training.Distillation(
      _student(seed), lambda features: features["teacher"],
      task=Task.BINARY, alpha=0.5, temperature=2.0,
      optimizer=tf.keras.optimizers.Adam(0.05))


@pytest.mark.parametrize("steps_per_execution", [7, 50])
def test_steps_per_execution_trains_the_same_weights(steps_per_execution):
  one, many = _loop(), _loop()
  last_one = one.fit(_data().repeat(), 23, steps_per_execution=1)
  last_many = many.fit(_data().repeat(), 23, steps_per_execution=steps_per_execution)
  for a, b in zip(one.student.get_weights(), many.student.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert last_one == pytest.approx(last_many, rel=1e-5)
  assert set(last_many) == {"loss", "soft_loss", "hard_loss", "agreement"}


def test_the_student_alone_trains_beside_as_alpha_0_would_alone():
  """In the same loop, on the same batches: the student alone ends where the
  same student trained on its own with alpha 0 ends, and the distilled
  student where it ends without a companion."""
  paired = training.Distillation(
      _student(), lambda features: features["teacher"], task=Task.BINARY, alpha=0.5,
      temperature=2.0, optimizer=tf.keras.optimizers.Adam(0.05), alone=_student())
  last = paired.fit(_data().repeat(), 23, steps_per_execution=7)
  assert "alone_loss" in last
  solo = _loop()
  solo.fit(_data().repeat(), 23, steps_per_execution=7)
  hard_only = training.Distillation(
      _student(), lambda features: features["teacher"], task=Task.BINARY, alpha=0.0,
      temperature=2.0, optimizer=tf.keras.optimizers.Adam(0.05))
  hard_only.fit(_data().repeat(), 23, steps_per_execution=7)
  for a, b in zip(paired.student.get_weights(), solo.student.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  for a, b in zip(paired.alone.get_weights(), hard_only.student.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert not all(np.allclose(a, b) for a, b in zip(paired.student.get_weights(),
                                                    paired.alone.get_weights()))


def test_cached_teacher_outputs_train_as_the_online_teacher_does():
  """Batches of (features, labels, teacher logits), as the teacher-output cache
  yields them: the same weights as calling the teacher, which the student
  never sees, and evaluation still calls the teacher."""
  online, cached = _loop(), _loop()
  online.fit(_data().repeat(), 23, steps_per_execution=7)
  cached.fit(_data().map(lambda f, y: ({"x": f["x"]}, y, f["teacher"])).repeat(),
             23, steps_per_execution=7)
  for a, b in zip(online.student.get_weights(), cached.student.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  assert cached.evaluate(_data()) == pytest.approx(online.evaluate(_data()), rel=1e-6)


def test_the_first_non_finite_step_is_named_though_steps_run_in_one_call():
  # Batch 11 (0-based) carries a NaN teacher logit: step 12 of one call of 50.
  with pytest.raises(FloatingPointError,
                     match=r"loss became nan at step 12 \(soft_loss=nan"):
    _loop().fit(_data(nan_at_batch=11).repeat(), 30, steps_per_execution=50)


def test_a_non_finite_loss_leaves_summaries_recording(tmp_path):
  """A run stopped by a NaN still ends Keras' TensorBoard callback: later
  summaries in the same process (the next component under LocalDagRunner)
  are written, not filtered by the stopped run's recording condition."""
  with pytest.raises(FloatingPointError):
    _loop().fit(_data(nan_at_batch=3).repeat(), 30, summary_dir=str(tmp_path / "run"),
                summary_every=10, steps_per_execution=1)
  with tf.summary.create_file_writer(str(tmp_path / "after")).as_default():
    tf.summary.scalar("loss", 1.0, step=100)
  [path] = glob.glob(str(tmp_path / "after" / "events.out.tfevents.*"))
  tags = [v.tag for e in tf.compat.v1.train.summary_iterator(path) for v in e.summary.value]
  assert tags == ["loss"]


def test_summaries_at_every_interval(tmp_path):
  """Keras' TensorBoard callback; calls end on each multiple of the interval."""
  _loop().fit(_data().repeat(), 30, summary_dir=str(tmp_path), summary_every=10,
              steps_per_execution=4)
  tags = {}
  for path in glob.glob(str(tmp_path / "train" / "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.setdefault(value.tag, set()).add(event.step)
  for name in ("loss", "soft_loss", "hard_loss", "agreement"):
    assert tags[f"batch_{name}"] == {10, 20, 30}, tags


def test_steps_per_execution_must_be_positive():
  with pytest.raises(ValueError, match="steps_per_execution must be >= 1"):
    _loop().fit(_data(), 3, steps_per_execution=0)


_KILLED_CHILD = textwrap.dedent("""
    import sys, time
    import tensorflow as tf
    sys.path.insert(0, {tests!r})
    from test_training import _data, _student
    from distill_components.distiller import training
    from distill_components.distiller.tasks import Task
    steps_run = tf.Variable(0, dtype=tf.int64)
    def teacher(features):
      steps_run.assign_add(1)  # once per train step this process runs
      return features["teacher"]
    loop = training.Distillation(_student(), teacher, task=Task.BINARY, alpha=0.5,
                                 temperature=2.0, optimizer=tf.keras.optimizers.Adam(0.05))
    slow = _data().repeat().map(lambda x, y: (x, y))
    last = loop.fit(slow, {steps}, summary_every=100, steps_per_execution=25,
                    backup_dir=sys.argv[1])
    print("steps run:", int(steps_run.numpy()), "trained:",
          int(loop.model.optimizer.iterations.numpy()), "loss:", last["loss"])
""")


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path):
  """kill -9 mid-training, run again: fewer steps, the same total training."""
  steps = 3000
  script = _KILLED_CHILD.format(tests=os.path.dirname(__file__), steps=steps)
  backup = tmp_path / "backup"
  command = [sys.executable, "-c", script, str(backup)]
  first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
  deadline = time.time() + 120
  # The checkpoint's state file is written last: then a checkpoint is whole.
  while not glob.glob(str(backup / "**" / "checkpoint"), recursive=True):
    assert first.poll() is None, "the first run ended before its first checkpoint"
    assert time.time() < deadline, "no checkpoint within 120 s"
    time.sleep(0.05)
  first.send_signal(signal.SIGKILL)
  first.wait()
  assert first.returncode == -signal.SIGKILL
  rerun = subprocess.run(command, capture_output=True, text=True, check=True)
  line = rerun.stdout.strip().splitlines()[-1]
  run, trained = int(line.split()[2]), int(line.split()[4])
  assert trained == steps  # the optimizer's step count: resumed, not restarted
  assert 0 < run <= steps - 100  # at least one checkpoint's worth was skipped
  assert run % 100 == 0  # it resumed at a checkpoint (every 100 steps)
  assert not os.listdir(backup) if backup.exists() else True  # removed when done
  uninterrupted = _loop().fit(_data().repeat(), steps, summary_every=100,
                              steps_per_execution=25)
  assert float(line.split()[6]) == pytest.approx(uninterrupted["loss"], abs=0.1)
