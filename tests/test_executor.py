"""The Distiller's executor on a small real transformed taxi dataset."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import path_utils

from conftest import EVAL_ROWS, TRAIN_ROWS, examples_artifact
from conftest import raw_examples, run_distiller
from distill_components.distiller import executor
from distill_components.distiller import export
from distill_components.distiller import losses
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import training
from distill_components.distiller.tasks import LabelError, Task
from distill_pipelines.taxi import features

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")


def _run(taxi_transform, teacher_uri, out_dir, raw_examples_dir=None, outputs=None,
         **overrides):
  """Runs Executor.Do the way TFX would; returns the output Model artifact."""
  inputs = {"raw_examples": [examples_artifact(raw_examples_dir)]} if raw_examples_dir else {}
  return run_distiller(taxi_transform, teacher_uri, out_dir, inputs, outputs, **overrides)


@pytest.fixture(scope="module")
def raw_examples_dir(taxi_transform, tmp_path_factory):
  """The same rows untransformed, as ExampleGen writes them (gzipped TFRecords)."""
  root = tmp_path_factory.mktemp("raw_examples")
  rows, types = taxi_transform["rows"], taxi_transform["types"]
  for split, part in (("train", rows[:TRAIN_ROWS]), ("eval", rows[TRAIN_ROWS:])):
    os.makedirs(root / f"Split-{split}")
    with tf.io.TFRecordWriter(str(root / f"Split-{split}" / "data_tfrecord-00000.gz"),
                              options="GZIP") as writer:
      for record in raw_examples(part, types):
        writer.write(record)
  return str(root)


def test_a_teacher_reads_raw_examples_through_its_own_serving_signature(
    taxi_transform, teacher_model, raw_examples_dir):
  """A teacher of another Transform (reused, imported) reads raw examples as it
  serves them; on the Transform it was trained with, that gives the logits of
  the transformed path."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import data  # pylint: disable=g-import-not-at-top
  output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  spec = export.model_input_spec(output, features.LABEL_KEY)
  teacher = teacher_lib.Teacher(path_utils.serving_model_path(teacher_model), spec,
                                task=Task.BINARY)
  reader = teacher.raw_reader()
  assert reader is not None and "serving_default on raw examples" in reader.source
  batch = data.raw_dataset(
      [os.path.join(raw_examples_dir, "Split-eval", "*")], output, features.LABEL_KEY,
      spec, reader, batch_size=32, repeat=False)
  features_, labels, logits = next(iter(batch))
  assert set(features_) == set(spec) and labels.shape[0] == 32
  np.testing.assert_allclose(logits.numpy(), teacher.logits(features_).numpy(),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cache", [0, 1])
def test_executor_distils_from_raw_examples(taxi_transform, teacher_model,
                                            raw_examples_dir, tmp_path, cache):
  model = _run(taxi_transform, teacher_model, str(tmp_path), raw_examples_dir,
               cache_teacher_outputs=cache)
  props = model.mlmd_artifact.custom_properties
  assert props["teacher_source"].string_value.startswith(
      "its serving_default on raw examples ('probabilities', probabilities), not "
      "this run's Transform")
  assert 0.5 < props["eval_agreement"].double_value <= 1.0
  loaded = tf.saved_model.load(path_utils.serving_model_dir(model.uri))
  serialized = raw_examples(taxi_transform["rows"][:4], taxi_transform["types"],
                            drop=features.RAW_LABEL_KEYS)
  probs = loaded.signatures["serving_default"](examples=tf.constant(serialized))
  assert next(iter(probs.values())).shape == (4, 1)


def _nothing_exported(out_dir):
  serving = path_utils.serving_model_dir(os.path.join(out_dir, "model"))
  return not os.path.exists(serving)


def test_distills_a_student_that_serves_raw_examples(taxi_transform, teacher_model,
                                                     tmp_path):
  model = _run(taxi_transform, teacher_model, str(tmp_path))
  serving_dir = path_utils.serving_model_dir(model.uri)
  assert os.listdir(model.uri) == ["Format-Serving"]  # no staging left behind

  props = model.mlmd_artifact.custom_properties
  assert props["teacher_uri"].string_value == teacher_model
  assert props["alpha"].double_value == pytest.approx(0.9)
  assert props["temperature"].double_value == pytest.approx(2.0)
  teacher_params = props["teacher_params"].int_value
  student_params = props["student_params"].int_value
  assert teacher_params >= 10 * student_params > 0
  assert props["compression_ratio"].double_value == pytest.approx(
      teacher_params / student_params)
  assert (props["teacher_saved_model_bytes"].int_value
          > props["student_saved_model_bytes"].int_value > 0)
  assert 0.5 < props["eval_agreement"].double_value <= 1.0
  hard, soft = props["eval_hard_loss"].double_value, props["eval_soft_loss"].double_value
  assert props["eval_loss"].double_value == pytest.approx(0.9 * soft + 0.1 * hard,
                                                          rel=1e-5)

  student = tf.saved_model.load(serving_dir)
  rows = taxi_transform["rows"][TRAIN_ROWS:TRAIN_ROWS + 20]
  probs = student.signatures["serving_default"](examples=tf.constant(
      raw_examples(rows, taxi_transform["types"], drop=features.RAW_LABEL_KEYS))
  )["probabilities"].numpy()
  assert probs.shape == (20, 1) and np.all((probs >= 0) & (probs <= 1))
  # The student is itself a valid teacher: same contract as the teacher.
  assert "transformed_logits" in student.signatures
  assert os.listdir(os.path.join(str(tmp_path), "model_run", "train"))

  # The same student alone was trained and scored beside it; the better one
  # on the validation cut went on.
  assert props["choice_metric"].string_value == "auc"
  assert 0.05 * TRAIN_ROWS < props["validation_examples"].int_value < 0.15 * TRAIN_ROWS
  assert props["scored_eval_examples"].int_value == EVAL_ROWS  # under the cap: all
  figures = {name: props[name].double_value
             for name in ("distilled_validation_auc", "alone_validation_auc",
                          "distilled_eval_auc", "alone_eval_auc",
                          "distilled_eval_binary_accuracy", "alone_eval_calibration")}
  assert all(0 < value < 2 for value in figures.values()), figures
  better = ("alone" if figures["alone_validation_auc"] > figures["distilled_validation_auc"]
            else "distilled")
  assert props["student_chosen"].string_value == better


def test_missing_label_fails_before_training(taxi_transform, teacher_model, tmp_path):
  with pytest.raises(executor.LabelNotFoundError, match="no_such_label.*big_tipper"):
    _run(taxi_transform, teacher_model, str(tmp_path), label_key="no_such_label")
  assert _nothing_exported(str(tmp_path))


def test_teacher_that_fits_no_path_is_refused(taxi_transform, tmp_path):
  """Not Keras, no signature on transformed features: the error lists what it
  found and how to fix it, and nothing is published."""
  module = tf.Module()
  module.f = tf.function(lambda x: {"outputs": x},
                         input_signature=[tf.TensorSpec([None], tf.float32)])
  uri = str(tmp_path / "bad_teacher")
  tf.saved_model.save(module, path_utils.serving_model_dir(uri),
                      signatures={"serving_default": module.f})
  with pytest.raises(teacher_lib.TeacherContractError,
                     match=r"no signature 'transformed_logits' \(its signatures and "
                     r"their inputs: \{'serving_default': \['x'\]\}\) and is not a Keras "
                     r"model.*teacher_signature"):
    _run(taxi_transform, uri, str(tmp_path / "out"))
  assert _nothing_exported(str(tmp_path / "out"))


def _keras_teacher(taxi_transform, uri, inputs, head, units=1, steps=30, invert=False):
  """A teacher the way TFX's own Keras examples write one: compiled, fitted on
  the transformed data, saved with `tf.saved_model.save` and serving
  signatures that parse raw examples. Nothing of this project's export."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from tfx_bsl.public import tfxio  # pylint: disable=g-import-not-at-top
  tft_output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  keras_inputs = [tf.keras.layers.Input(shape=(1,), name=n) for n in inputs]
  x = tf.keras.layers.Dense(16, activation="relu")(
      tf.keras.layers.concatenate(keras_inputs))
  model = tf.keras.Model(keras_inputs, tf.keras.layers.Dense(units, activation=head)(x))
  model.compile("adam", "binary_crossentropy")
  data = tfxio.TFExampleRecord(
      os.path.join(taxi_transform["examples_dir"], "Split-train", "*"),
      schema=tft_output.transformed_metadata.schema).TensorFlowDataset(
          tfxio.TensorFlowDatasetOptions(batch_size=64, label_key=features.LABEL_KEY))
  model.fit(data.map(lambda f, y: ({n: tf.cast(f[n], tf.float32) for n in inputs},
                                   tf.abs(float(invert) - tf.cast(y, tf.float32)))),
            steps_per_epoch=steps, verbose=0)
  model.tft_layer = tft_output.transform_features_layer()

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def serve(serialized):
    spec = tft_output.raw_feature_spec()
    spec.pop("tips")
    transformed = model.tft_layer(tf.io.parse_example(serialized, spec))
    return {"outputs": model({n: tf.cast(transformed[n], tf.float32) for n in inputs})}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def transform_features(serialized):
    return model.tft_layer(tf.io.parse_example(serialized, tft_output.raw_feature_spec()))

  tf.saved_model.save(model, path_utils.serving_model_dir(uri), signatures={
      "serving_default": serve, "transform_features": transform_features})
  return model


def test_teacher_from_a_standard_tfx_module_ending_in_a_sigmoid(taxi_transform, tmp_path):
  """Probabilities are read as probabilities: never a sigmoid applied twice."""
  uri = str(tmp_path / "tfx_style_teacher")
  inputs = ["trip_miles_xf", "fare_xf", "trip_seconds_xf"]
  keras_teacher = _keras_teacher(taxi_transform, uri, inputs, "sigmoid", steps=60)
  model = _run(taxi_transform, uri, str(tmp_path / "out"))
  props = model.mlmd_artifact.custom_properties
  assert "probabilities" in props["teacher_source"].string_value
  assert props["task"].string_value == "binary"
  assert props["eval_agreement"].double_value > 0.6
  # The teacher's logits are the log-odds of what it serves.
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  spec = export.model_input_spec(tft.TFTransformOutput(taxi_transform["transform_dir"]),
                                 features.LABEL_KEY)
  teacher = teacher_lib.Teacher(path_utils.serving_model_dir(uri), spec, task=Task.BINARY)
  batch = {n: tf.constant([[0.5], [-1.0]]) for n in inputs}
  probs = keras_teacher(batch).numpy()
  np.testing.assert_allclose(tf.sigmoid(teacher.logits(batch)).numpy(), probs, rtol=1e-4)


def test_without_the_comparison_the_distilled_student_goes_on_from_every_row(
    taxi_transform, teacher_model, tmp_path):
  model = _run(taxi_transform, teacher_model, str(tmp_path), compare_alone=0,
               cache_teacher_outputs=1)
  props = model.mlmd_artifact.custom_properties
  assert props["student_chosen"].string_value == "distilled"
  assert props["compare_alone"].int_value == 0
  assert props["labelled_examples"].int_value == TRAIN_ROWS  # no row held out
  assert "validation_examples" not in props and "alone_eval_auc" not in props


def test_a_teacher_that_misleads_loses_to_the_student_alone(taxi_transform, tmp_path):
  """A teacher fit to the opposite label: its pure soft-label student is
  worse than chance, so the student trained alone goes on, and says so."""
  uri = str(tmp_path / "misleading_teacher")
  inputs = ["trip_miles_xf", "fare_xf", "trip_seconds_xf"]
  _keras_teacher(taxi_transform, uri, inputs, "sigmoid", steps=60, invert=True)
  model = _run(taxi_transform, uri, str(tmp_path / "out"), alpha=1.0)
  props = model.mlmd_artifact.custom_properties
  assert props["student_chosen"].string_value == "alone"
  assert props["distilled_validation_auc"].double_value < 0.5
  assert props["alone_validation_auc"].double_value > 0.6
  assert props["alone_eval_auc"].double_value > props["distilled_eval_auc"].double_value
  # What was exported is the student alone: it ranks the eval rows as its
  # recorded eval AUC says, not as the distilled one would.
  served = tf.saved_model.load(path_utils.serving_model_dir(model.uri))
  rows = taxi_transform["rows"][TRAIN_ROWS:]
  probs = served.signatures["serving_default"](examples=tf.constant(
      raw_examples(rows, taxi_transform["types"], drop=features.RAW_LABEL_KEYS))
  )["probabilities"].numpy().ravel()
  labels = np.array([float(r["tips"] or 0) > 0.2 * float(r["fare"] or 0) for r in rows])
  auc = tf.keras.metrics.AUC(num_thresholds=10_000)
  auc.update_state(labels, probs)
  assert float(auc.result()) == pytest.approx(props["alone_eval_auc"].double_value,
                                              abs=0.02)


def test_float_label_for_a_classifier_fails_before_training(taxi_transform, tmp_path):
  """A float label given to the default (classification) Distiller is refused."""
  uri = str(tmp_path / "teacher")
  _keras_teacher(taxi_transform, uri, ["trip_miles_xf"], None, steps=2)
  with pytest.raises(LabelError, match=r"'fare_xf'.*fractional values.*regression label"):
    _run(taxi_transform, uri, str(tmp_path / "out"), label_key="fare_xf")
  assert _nothing_exported(str(tmp_path / "out"))


def test_more_classes_than_the_teacher_predicts_fails(taxi_transform, tmp_path):
  uri = str(tmp_path / "teacher")
  _keras_teacher(taxi_transform, uri, ["trip_miles_xf"], None, steps=2)
  with pytest.raises(LabelError, match=r"class id \d+ but the binary model predicts 2 classes"):
    _run(taxi_transform, uri, str(tmp_path / "out"), label_key="trip_start_hour_xf")
  with pytest.raises(teacher_lib.TeacherContractError, match="multiclass"):
    _run(taxi_transform, uri, str(tmp_path / "out"), task="multiclass")
  assert _nothing_exported(str(tmp_path / "out"))


def test_student_width_must_match_teacher(taxi_transform, teacher_model, tmp_path):
  with pytest.raises(training.StudentOutputError, match=r"\[64, 2\].*\[64, 1\]"):
    _run(taxi_transform, teacher_model, str(tmp_path),
         module_file=os.path.join(TESTDATA, "two_logit_student.py"))
  assert _nothing_exported(str(tmp_path))


def test_nan_loss_stops_training_without_export(taxi_transform, teacher_model, tmp_path):
  with pytest.raises(FloatingPointError, match="loss became nan at step 1"):
    _run(taxi_transform, teacher_model, str(tmp_path),
         module_file=os.path.join(TESTDATA, "nan_student.py"))
  assert _nothing_exported(str(tmp_path))


def test_module_without_build_student_is_named(taxi_transform, teacher_model, tmp_path):
  with pytest.raises(ValueError, match="build_student"):
    _run(taxi_transform, teacher_model, str(tmp_path),
         module_file=os.path.join(TESTDATA, "no_student.py"))
  assert _nothing_exported(str(tmp_path))


def test_cached_teacher_outputs_give_the_online_loss(taxi_transform, teacher_model,
                                                     tmp_path):
  """The cache holds what the teacher says: same batch, same loss; and the
  features are the transformed ones, nothing added."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from tfx_bsl.public import tfxio  # pylint: disable=g-import-not-at-top
  tft_output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  teacher = teacher_lib.Teacher(
      path_utils.serving_model_dir(teacher_model),
      export.model_input_spec(tft_output, features.LABEL_KEY), task=Task.BINARY)
  schema = tft_output.transformed_metadata.schema
  online = tfxio.TFExampleRecord(
      os.path.join(taxi_transform["examples_dir"], "Split-train", "*"),
      schema=schema).TensorFlowDataset(tfxio.TensorFlowDatasetOptions(
          batch_size=100, label_key=features.LABEL_KEY, num_epochs=1, shuffle=False))
  assert teacher_cache.write(teacher.logits, online, str(tmp_path / "cache")) == TRAIN_ROWS
  batch, labels, cached_logits = next(iter(
      teacher_cache.read(str(tmp_path / "cache"), batch_size=64)))
  assert set(batch) == set(online.element_spec[0])
  assert cached_logits.shape == (64, 1)
  student_logits = tf.zeros([64, 1]) + 0.3
  for alpha, t in ((0.9, 2.0), (1.0, 4.0)):
    from_teacher = losses.distillation_loss(
        labels, teacher.logits(batch), student_logits, task=Task.BINARY, alpha=alpha,
        temperature=t)
    from_cache = losses.distillation_loss(
        labels, cached_logits, student_logits, task=Task.BINARY, alpha=alpha,
        temperature=t)
    assert float(from_cache["loss"]) == pytest.approx(float(from_teacher["loss"]),
                                                      rel=1e-5)
  # One epoch of the cache is the train split, each example once.
  saved = list(tf.data.Dataset.load(str(tmp_path / "cache")))
  np.testing.assert_allclose(
      np.sort(np.concatenate([t.numpy().ravel() for _, _, t in saved])),
      np.sort(np.concatenate([teacher.logits(f).numpy().ravel() for f, _ in online])),
      rtol=1e-6)


def test_executor_trains_from_cached_teacher_outputs(taxi_transform, teacher_model,
                                                     tmp_path):
  model = _run(taxi_transform, teacher_model, str(tmp_path), cache_teacher_outputs=1)
  props = model.mlmd_artifact.custom_properties
  assert props["cache_teacher_outputs"].int_value == 1
  assert 0.5 < props["eval_agreement"].double_value <= 1.0
  assert os.path.isdir(path_utils.serving_model_dir(model.uri))
  # The cache is scratch: gone once the student is trained.
  assert os.path.isdir(tmp_path / "tmp")
  assert not [d for d, _, _ in os.walk(tmp_path / "tmp") if "teacher_outputs" in d]


def test_a_rerun_of_the_same_work_finds_the_same_training_backup():
  """A crashed Distiller's rerun is a new execution with new output URIs; its
  checkpoints are found by what the work is: inputs and properties."""
  from distill_components.distiller import executor  # pylint: disable=g-import-not-at-top
  inputs = {"examples": [examples_artifact("/root/Transform/transformed_examples/5")]}
  first = executor._backup_dir("/root/Distiller/model/9", inputs, {"alpha": 0.9})  # pylint: disable=protected-access
  rerun = executor._backup_dir("/root/Distiller/model/12", inputs, {"alpha": 0.9})  # pylint: disable=protected-access
  other = executor._backup_dir("/root/Distiller/model/12", inputs, {"alpha": 0.5})  # pylint: disable=protected-access
  assert first == rerun != other
  assert os.path.dirname(first) == "/root/Distiller/training_backup"


# --- a tree-ensemble teacher (TF-DF) ---------------------------------------

def test_a_teacher_import_that_does_not_exist_is_named(taxi_transform, teacher_model,
                                                      tmp_path):
  with pytest.raises(teacher_lib.TeacherContractError,
                     match="teacher_imports names the module 'no_such_ops_module'"):
    _run(taxi_transform, teacher_model, str(tmp_path),
         teacher_imports=json.dumps(["no_such_ops_module"]))
  assert _nothing_exported(str(tmp_path))


def _records(directory: str):
  """The tf.Examples under `directory` (gzipped TFRecords), parsed."""
  import glob  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(directory, "*.gz")))
  return [tf.train.Example.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_the_teacher_labels_the_train_split_on_beam(taxi_transform, teacher_model,
                                                    tmp_path):
  """RunInference on the pipeline's Beam runner writes each train example once,
  whole, with the teacher's logits for it; the student trains from them
  (teacher_labelling beam alone asks for it: no cache_teacher_outputs)."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import labelling  # pylint: disable=g-import-not-at-top
  outputs = {}
  model = _run(taxi_transform, teacher_model, str(tmp_path), outputs=outputs,
               teacher_labelling="beam")
  props = model.mlmd_artifact.custom_properties
  assert props["teacher_labelling"].string_value == "beam"
  # The student learnt from every train row but the validation cut's.
  assert (props["labelled_examples"].int_value + props["validation_examples"].int_value
          == TRAIN_ROWS)
  assert 0.5 < props["eval_agreement"].double_value <= 1.0
  assert json.loads(outputs["soft_labels"].split_names) == ["train"]
  labelled = _records(os.path.join(outputs["soft_labels"].uri, "Split-train"))
  originals = _records(os.path.join(taxi_transform["examples_dir"], "Split-train"))
  assert len(labelled) == TRAIN_ROWS
  # Each record is a train example with one more feature: the teacher's logits.
  without = lambda e: sorted((k, v.SerializeToString())  # pylint: disable=g-long-lambda
                              for k, v in e.features.feature.items()
                              if k != labelling.TEACHER_LOGITS)
  assert sorted(map(without, labelled)) == sorted(map(without, originals))
  tft_output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  spec = export.model_input_spec(tft_output, features.LABEL_KEY)
  teacher = teacher_lib.Teacher(path_utils.serving_model_dir(teacher_model), spec,
                                task=Task.BINARY)
  parsed = tf.io.parse_example([e.SerializeToString() for e in labelled],
                               labelling.parse_spec(tft_output.transformed_feature_spec(), 1))
  np.testing.assert_allclose(parsed[labelling.TEACHER_LOGITS].numpy(),
                             teacher.logits(parsed).numpy(), rtol=1e-5, atol=1e-6)


def test_beam_and_in_process_labelling_train_the_same_student(
    taxi_transform, teacher_model, tmp_path):
  """Same rows, same logits (the test above): the two ways differ only in
  where the teacher ran and in the order the rows are read back (Beam writes
  them in its own order), so the students agree closely. The soft loss alone
  is too small (about 0.002) to compare in proportion; the total eval loss and
  the agreement with the teacher are compared."""
  scores = {}
  for mode in ("beam", "in_process"):
    model = _run(taxi_transform, teacher_model, str(tmp_path / mode),
                 cache_teacher_outputs=1, teacher_labelling=mode)
    props = model.mlmd_artifact.custom_properties
    assert props["teacher_labelling"].string_value == mode
    scores[mode] = (props["eval_loss"].double_value,
                    props["eval_agreement"].double_value)
  assert scores["beam"][0] == pytest.approx(scores["in_process"][0], rel=0.25)
  assert scores["beam"][1] == pytest.approx(scores["in_process"][1], abs=0.05)
  # In process the soft labels stay scratch: the output artifact holds no split.
  outputs = {}
  _run(taxi_transform, teacher_model, str(tmp_path / "again"), outputs=outputs,
       teacher_labelling="in_process", cache_teacher_outputs=1)
  assert not os.path.exists(os.path.join(outputs["soft_labels"].uri, "Split-train"))


def test_an_unknown_labelling_mode_is_named(taxi_transform, teacher_model, tmp_path):
  from distill_components.distiller import labelling  # pylint: disable=g-import-not-at-top
  with pytest.raises(labelling.LabellingError, match="teacher_labelling must be one of"):
    _run(taxi_transform, teacher_model, str(tmp_path), teacher_labelling="spark")


def test_the_beam_handler_reads_several_teachers_as_their_mean(taxi_transform,
                                                                teacher_model):
  """RunInference's model handler loads the teachers as the executor reads
  them: two copies of one teacher average to its own logits, row by row."""
  import glob  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import labelling  # pylint: disable=g-import-not-at-top
  output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  spec = export.model_input_spec(output, features.LABEL_KEY)
  teacher_dir = path_utils.serving_model_dir(teacher_model)
  records = [r.numpy() for r in tf.data.TFRecordDataset(
      glob.glob(os.path.join(taxi_transform["examples_dir"], "Split-eval", "*")),
      compression_type="GZIP").take(20)]
  handler = labelling.TeacherHandler(
      [teacher_dir, teacher_dir], [None, None], output.transformed_feature_spec(), spec,
      {"task": Task.BINARY})
  results = list(handler.run_inference(records, handler.load_model()))
  assert [r.example for r in results] == records
  teacher = teacher_lib.Teacher(teacher_dir, spec, task=Task.BINARY)
  want = teacher.logits(tf.io.parse_example(records, output.transformed_feature_spec()))
  np.testing.assert_allclose(np.stack([r.inference for r in results]), want.numpy(),
                             rtol=1e-5, atol=1e-6)
  # Written back: the record and its logits parse as one tf.Example.
  parsed = tf.io.parse_example([labelling.with_logits(r) for r in results],
                               labelling.parse_spec(output.transformed_feature_spec(), 1))
  np.testing.assert_allclose(parsed[labelling.TEACHER_LOGITS].numpy(), want.numpy(),
                             rtol=1e-6)
  with pytest.raises(labelling.LabellingError, match="2 teachers but 1 fold_uris"):
    labelling.TeacherHandler([teacher_dir, teacher_dir], [None],
                             output.transformed_feature_spec(), spec, {"task": Task.BINARY})


def test_the_seed_makes_a_rerun_train_the_same_student(taxi_transform, teacher_model,
                                                       tmp_path):
  """Same inputs, same seed: the same student, weight for weight; another
  seed: another student."""
  def weights(name, seed):
    model = _run(taxi_transform, teacher_model, str(tmp_path / name), seed=seed)
    loaded = tf.saved_model.load(path_utils.serving_model_dir(model.uri))
    # In the order the model tracks them (Keras numbers layer names per process).
    return [v.numpy() for v in loaded.variables]
  first, again, other = weights("a", 3), weights("b", 3), weights("c", 4)
  assert first and len(first) == len(again) == len(other)
  for mine, rerun in zip(first, again):
    np.testing.assert_array_equal(mine, rerun)
  assert any(not np.array_equal(mine, theirs) for mine, theirs in zip(first, other))


def test_a_teacher_of_another_transform_that_cannot_read_raw_examples_is_refused(
    taxi_transform, raw_examples_dir, tmp_path):
  """raw_examples say the teacher was trained on another Transform; one whose
  serving_default takes no serialized tf.Examples would be fed this run's
  transformed features, which it never saw: refused, not read anyway."""
  inputs = ["trip_miles_xf", "fare_xf"]
  keras_inputs = [tf.keras.layers.Input(shape=(1,), name=n) for n in inputs]
  model = tf.keras.Model(keras_inputs, tf.keras.layers.Dense(1)(
      tf.keras.layers.concatenate(keras_inputs)))
  uri = str(tmp_path / "feature_teacher")
  model.save(path_utils.serving_model_dir(uri))
  with pytest.raises(teacher_lib.TeacherContractError,
                     match="serving_default does not take serialized tf.Examples"):
    _run(taxi_transform, uri, str(tmp_path / "out"), raw_examples_dir)
  assert _nothing_exported(str(tmp_path / "out"))


def test_rows_labelled_on_a_runner_that_reports_no_metrics_are_counted(
    taxi_transform, teacher_model, tmp_path):
  """Some runners report no Beam counters: the rows written are counted
  instead of taken as none (which dropped a transfer set's rows)."""
  import glob  # pylint: disable=g-import-not-at-top
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import labelling  # pylint: disable=g-import-not-at-top

  class NoMetrics:
    def query(self, unused_filter):
      return {"counters": []}

  class QuietPipeline(beam.Pipeline):
    def run(self, test_runner_api="AUTO"):
      result = super().run(test_runner_api)
      result.metrics = NoMetrics
      return result

  output = tft.TFTransformOutput(taxi_transform["transform_dir"])
  handler = labelling.TeacherHandler(
      [path_utils.serving_model_dir(teacher_model)], [None],
      output.transformed_feature_spec(),
      export.model_input_spec(output, features.LABEL_KEY), {"task": Task.BINARY})
  files = glob.glob(os.path.join(taxi_transform["examples_dir"], "Split-eval", "*"))
  want = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
  assert labelling.run(QuietPipeline(), files, handler, str(tmp_path)) == want > 0
