"""A teacher that does not help: the student trained alone is pushed and the
run says so; `--require-gain` stops such a run before the Pusher (exit 8).

The table is generated so the teacher is weak: the label follows two
columns, and the teacher (a Trainer module of the user's) reads a third that
is noise. Distilled from it with soft labels only, the student learns noise;
the same student trained alone learns the label.
"""
import csv
import os
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from runs import artifact, run_cli, summary
from distill_pipelines import exits
from distill_pipelines import names

pytestmark = pytest.mark.pipeline

ROWS = 1_500

WEAK_TEACHER = textwrap.dedent('''
    """A Trainer module whose teacher reads only the column `noise`."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from distill_components.distiller import export
    from distill_pipelines.generic import config

    def run_fn(fn_args):
      cfg = config.parse(fn_args.custom_config)
      output = tft.TFTransformOutput(fn_args.transform_output)
      specs = export.model_input_spec(output, cfg.label_key)
      inputs = {n: tf.keras.Input(shape=s.shape[1:], dtype=s.dtype, name=n)
                for n, s in specs.items()}
      noise = tf.keras.layers.Flatten()(inputs[config.transformed_name("noise")])
      logits = tf.keras.layers.Dense(
          1, kernel_initializer=tf.keras.initializers.Constant(3.0))(noise)
      export.save_model(tf.keras.Model(inputs, logits), fn_args.serving_model_dir,
                        output, label_key=cfg.label_key,
                        raw_label_keys=cfg.raw_label_keys, task=cfg.task)
    ''')


@pytest.fixture(scope="module")
def weak_teacher_runs(tmp_path_factory):
  """The same pipeline root run twice: as it is, then with --require-gain."""
  work = tmp_path_factory.mktemp("weak_teacher")
  data = work / "data"
  data.mkdir()
  rng = np.random.default_rng(7)
  x1, x2, noise = rng.normal(size=(3, ROWS))
  label = (x1 + x2 + 0.3 * rng.normal(size=ROWS) > 0).astype(int)
  with open(data / "table.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["x1", "x2", "noise", "label"])
    writer.writerows(zip(x1.round(4), x2.round(4), noise.round(4), label))
  module = work / "weak_teacher.py"
  module.write_text(WEAK_TEACHER)
  root = str(work / "weak")
  argv = ["--data-root", str(data), "--pipeline-root", root, "--label", "label",
          "--pipeline-name", "weak", "--task", "binary", "--teacher-module", str(module),
          "--distill-steps", "400"]
  first = run_cli(*argv)
  first_summary = summary(root, "weak")
  student = artifact(root, names.DISTILLER, "model")
  second = run_cli(*argv, "--require-gain")
  return {"root": root, "first": first, "first_summary": first_summary,
          "student": student, "second": second,
          "second_summary": summary(root, "weak")}


def test_the_student_alone_is_pushed_and_the_run_says_why(weak_teacher_runs):
  code, out, _ = weak_teacher_runs["first"]
  assert code == 0, out
  s = weak_teacher_runs["first_summary"]
  assert s.student_chosen == "alone" and s.blessed is True and s.pushed_to
  assert "the teacher did not help on this data: pushing the student trained alone" in out
  distilled = s.students["eval"]["distilled"]["auc"]
  alone = s.students["eval"]["alone"]["auc"]
  assert distilled < 0.6 < 0.9 < alone
  assert (f"distilled vs alone: AUC {distilled:.4f} vs {alone:.4f} "
          f"({distilled - alone:+.4f}; eval split)") in out
  # What the gates held and the Pusher pushed is the student alone: its AUC
  # on the eval split is the one the Distiller recorded for it.
  assert s.student.metrics["auc"] == pytest.approx(alone, abs=1e-4)
  props = weak_teacher_runs["student"].custom_properties
  assert props["student_chosen"].string_value == "alone"
  assert props["scoring_seconds"].double_value > 0
  served = tf.saved_model.load(s.pushed_to)
  assert "serving_default" in served.signatures


def test_require_gain_stops_before_the_pusher_with_its_own_status(weak_teacher_runs):
  code, out, _ = weak_teacher_runs["second"]
  assert code == exits.NO_GAIN == 8, out
  s = weak_teacher_runs["second_summary"]
  assert s.held_for_no_gain and not s.pushed_to
  assert names.PUSHER not in {c.node_id for c in s.components}
  assert "--require-gain stops the run before the Pusher" in out
  assert "pushed:  nothing (--require-gain: the teacher did not help)" in out
  # The first run's push is still the only version served.
  assert len(os.listdir(os.path.join(weak_teacher_runs["root"], "serving_model"))) == 1
