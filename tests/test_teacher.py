"""The teacher contract: any Keras teacher, or an explicit signature, read as logits.

Tiny models over a synthetic transformed feature spec, saved the ways TFX
modules save them, read back and compared number for number with what the
model itself computes. No pipeline, no Beam: a fake stands in for the
Transform graph where a saving function needs one.
"""
import importlib
import os
import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from distill_components.distiller import export
from distill_components.distiller import outputs
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller.tasks import Task

Teacher = teacher_lib.Teacher
TeacherContractError = teacher_lib.TeacherContractError

FLOATS = ("a_xf", "b_xf", "c_xf")
FEATURES = {**{n: tf.TensorSpec([None, 1], tf.float32, n) for n in FLOATS},
            "n_xf": tf.TensorSpec([None, 1], tf.int64, "n_xf")}
INPUTS = ("a_xf", "b_xf", "n_xf")  # c_xf is an extra feature no model reads
STYLES = ("model.save", "tf.saved_model.save")
# TFX's serving functions hand a Keras model every transformed feature; Keras
# warns about the ones it does not read, as it should.
pytestmark = pytest.mark.filterwarnings("ignore:Input dict contained keys")


def _batch(size=8):
  rng = np.random.default_rng(0)
  batch = {n: tf.constant(rng.normal(size=(size, 1)) * 2, tf.float32) for n in FLOATS}
  batch["n_xf"] = tf.constant(rng.integers(0, 5, size=(size, 1)), tf.int64)
  return batch


def _model(head=None, units=1, inputs=INPUTS):
  """Inputs named after transformed features -> Dense -> `head` (an
  activation name for the final Dense, or a function of the hidden layer)."""
  tf.keras.utils.set_random_seed(0)
  keras_inputs = [tf.keras.Input(shape=(1,), name=n) for n in inputs]
  x = tf.keras.layers.Dense(8, activation="tanh")(
      tf.keras.layers.concatenate(keras_inputs))
  out = head(x) if callable(head) else tf.keras.layers.Dense(units, activation=head)(x)
  return tf.keras.Model(keras_inputs, out)


def _expected(model, batch):
  """What the model computes, fed the way a live Keras model accepts them."""
  return model(batch).numpy()


class _Transform(tf.keras.layers.Layer):
  """Stands in for the TFT layer: raw 'x' -> transformed 'x_xf'."""

  def call(self, raw):  # pylint: disable=arguments-differ
    return {f"{k}_xf": v for k, v in raw.items()}


class _FakeTransformOutput:
  """Just enough of tft.TFTransformOutput for the saving functions under test."""

  def __init__(self, floats, ints=(), label="label"):
    self._raw = {k: tf.io.FixedLenFeature([1], tf.float32) for k in floats}
    self._raw.update({k: tf.io.FixedLenFeature([1], tf.int64) for k in (*ints, label)})

  def raw_feature_spec(self):
    return dict(self._raw)

  def transformed_feature_spec(self):
    return {f"{k}_xf": v for k, v in self._raw.items()}

  def transform_features_layer(self):
    return _Transform()


def _tfx_signatures(model, tft_output, label="label"):
  """penguin_utils_base.make_serving_signatures, with a label of our own."""
  model.tft_layer = tft_output.transform_features_layer()
  examples = tf.TensorSpec([None], tf.string, name="examples")

  @tf.function(input_signature=[examples])
  def serve(serialized):
    spec = tft_output.raw_feature_spec()
    spec.pop(label)
    return {"outputs": model(model.tft_layer(tf.io.parse_example(serialized, spec)))}

  @tf.function(input_signature=[examples])
  def transform_features(serialized):
    return model.tft_layer(tf.io.parse_example(serialized, tft_output.raw_feature_spec()))

  return {"serving_default": serve, "transform_features": transform_features}


def _save(model, directory, style):
  if style == "model.save":
    model.save(directory)
  else:  # as TFX's Keras examples' run_fn does
    tft_output = _FakeTransformOutput(("a", "b", "c"), ("n",))
    tf.saved_model.save(model, directory, signatures=_tfx_signatures(model, tft_output))
  return directory


_HEADS = {"linear": {}, "sigmoid": {"head": "sigmoid"}, "relu": {"head": "relu"},
          "softmax": {"head": "softmax", "units": 3}}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """saved(head, style) -> (model, directory); each saved once per module."""
  cache = {}

  def get(head, style):
    if (head, style) not in cache:
      model = _model(**_HEADS[head])
      cache[head, style] = model, _save(
          model, str(tmp_path_factory.mktemp(head)), style)
    return cache[head, style]
  return get


def _log_odds(p):
  return np.log(p) - np.log1p(-p)


@pytest.mark.parametrize("style", STYLES)
def test_linear_head_is_read_as_logits(saved, style):
  model, directory = saved("linear", style)
  teacher = Teacher(directory, FEATURES, task=Task.BINARY)
  batch = _batch()
  np.testing.assert_allclose(teacher.logits(batch).numpy(), _expected(model, batch),
                             rtol=1e-5, atol=1e-6)
  assert teacher.width == 1
  assert teacher.input_names == sorted(INPUTS)
  assert teacher.num_params == model.count_params()
  assert "ends in BiasAdd" in teacher.source and "-> logits" in teacher.source


@pytest.mark.parametrize("style", STYLES)
def test_sigmoid_head_is_read_as_probabilities(saved, style):
  model, directory = saved("sigmoid", style)
  teacher = Teacher(directory, FEATURES, task=Task.BINARY)
  batch = _batch()
  probs = _expected(model, batch)
  logits = teacher.logits(batch).numpy()
  np.testing.assert_allclose(logits, _log_odds(probs), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(tf.sigmoid(logits).numpy(), probs, rtol=1e-5)
  assert "ends in Sigmoid" in teacher.source and "-> probabilities" in teacher.source


@pytest.mark.parametrize("style", STYLES)
def test_softmax_head_is_read_as_probabilities(saved, style):
  model, directory = saved("softmax", style)
  teacher = Teacher(directory, FEATURES, task=Task.MULTICLASS)
  batch = _batch()
  probs = _expected(model, batch)
  logits = teacher.logits(batch).numpy()
  assert teacher.width == 3
  np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, rtol=1e-5)
  # Log-softmax up to a per-example constant.
  shift = logits - np.log(probs)
  np.testing.assert_allclose(shift, shift[:, :1].repeat(3, axis=1), atol=1e-5)
  assert "Softmax" in teacher.source


def test_final_activation_layer_is_seen(tmp_path):
  model = _model(lambda x: tf.keras.layers.Activation("sigmoid", name="squash")(
      tf.keras.layers.Dense(1)(x)))
  teacher = Teacher(_save(model, str(tmp_path / "t"), "tf.saved_model.save"),
                    FEATURES, task=Task.BINARY)
  assert "layer 'squash' ends in Sigmoid" in teacher.source
  batch = _batch()
  np.testing.assert_allclose(tf.sigmoid(teacher.logits(batch)).numpy(),
                             _expected(model, batch), rtol=1e-5)


class _Subclassed(tf.keras.Model):
  """Reads a dict of features; `softmax_by_hand` hides what the output is."""

  def __init__(self, softmax_by_hand=False):
    super().__init__()
    self._by_hand = softmax_by_hand
    self.dense = tf.keras.layers.Dense(3 if softmax_by_hand else 1,
                                       activation=None if softmax_by_hand else "sigmoid")

  def call(self, features):  # pylint: disable=arguments-differ
    out = self.dense(tf.concat([features["a_xf"], features["b_xf"]], axis=-1))
    if self._by_hand:
      return tf.exp(out) / tf.reduce_sum(tf.exp(out), axis=-1, keepdims=True)
    return out


def test_subclassed_model_reading_a_dict_is_seen(tmp_path):
  tf.keras.utils.set_random_seed(0)
  model = _Subclassed()
  batch = _batch()
  probs = model({n: batch[n] for n in ("a_xf", "b_xf")}).numpy()
  directory = str(tmp_path / "t")
  tf.saved_model.save(model, directory)
  teacher = Teacher(directory, FEATURES, task=Task.BINARY)
  assert teacher.input_names == ["a_xf", "b_xf"]
  assert "Sigmoid" in teacher.source
  np.testing.assert_allclose(teacher.logits(batch).numpy(), _log_odds(probs),
                             rtol=1e-4, atol=1e-4)


def _clipped_sigmoid(x):
  return tf.keras.layers.Lambda(lambda t: tf.clip_by_value(tf.sigmoid(t), 0.01, 0.99))(
      tf.keras.layers.Dense(1)(x))


def test_head_that_cannot_be_seen_needs_teacher_outputs(tmp_path):
  model = _model(_clipped_sigmoid)
  directory = _save(model, str(tmp_path / "t"), "model.save")
  with pytest.raises(TeacherContractError,
                     match=r"layer 'lambda\w*' ends in Maximum.*teacher_outputs"):
    Teacher(directory, FEATURES, task=Task.BINARY)
  batch = _batch()
  probs = _expected(model, batch)
  as_probs = Teacher(directory, FEATURES, task=Task.BINARY, outputs="probabilities")
  np.testing.assert_allclose(as_probs.logits(batch).numpy(), _log_odds(probs),
                             rtol=1e-4, atol=1e-4)
  assert "teacher_outputs='probabilities'" in as_probs.source
  as_logits = Teacher(directory, FEATURES, task=Task.BINARY, outputs="logits")
  np.testing.assert_allclose(as_logits.logits(batch).numpy(), probs, rtol=1e-6)


def test_hand_made_softmax_of_a_subclassed_model_needs_teacher_outputs(tmp_path):
  tf.keras.utils.set_random_seed(0)
  model = _Subclassed(softmax_by_hand=True)
  batch = _batch()
  probs = model({n: batch[n] for n in ("a_xf", "b_xf")}).numpy()
  directory = str(tmp_path / "t")
  model.save(directory)
  with pytest.raises(TeacherContractError, match=r"the output is RealDiv.*teacher_outputs"):
    Teacher(directory, FEATURES, task=Task.MULTICLASS)
  teacher = Teacher(directory, FEATURES, task=Task.MULTICLASS, outputs="probabilities")
  np.testing.assert_allclose(tf.nn.softmax(teacher.logits(batch)).numpy(), probs,
                             rtol=1e-5)


@pytest.mark.parametrize("head,said,seen", [("sigmoid", "logits", "probabilities"),
                                            ("linear", "probabilities", "logits")])
def test_teacher_outputs_contradicting_the_model_is_refused(saved, head, said, seen):
  _, directory = saved(head, "tf.saved_model.save")
  with pytest.raises(TeacherContractError,
                     match=f"teacher_outputs says '{said}'.*visibly emits {seen}"):
    Teacher(directory, FEATURES, task=Task.BINARY, outputs=said)


_SHAPE_ONLY = {
    "Reshape": lambda y: tf.keras.layers.Reshape((1,))(y),
    "Flatten": lambda y: tf.keras.layers.Flatten()(y),
    "squeeze, expand_dims": lambda y: tf.keras.layers.Lambda(
        lambda t: tf.expand_dims(tf.squeeze(t, -1), -1))(y),
    "cast": lambda y: tf.keras.layers.Lambda(lambda t: tf.cast(t, tf.float32))(y),
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("after", sorted(_SHAPE_ONLY))
def test_head_is_read_through_shape_only_layers(tmp_path, after, style):
  """A Sigmoid followed by layers that only reshape or cast its output (TFX's
  taxi module ends in Dense(1, 'sigmoid') then Reshape((1,)))."""
  model = _model(lambda x: _SHAPE_ONLY[after](
      tf.keras.layers.Dense(1, activation="sigmoid", name="head")(x)))
  teacher = Teacher(_save(model, str(tmp_path / "t"), style), FEATURES, task=Task.BINARY)
  assert "layer 'head' ends in Sigmoid" in teacher.source
  assert "-> probabilities" in teacher.source
  batch = _batch()
  np.testing.assert_allclose(teacher.logits(batch).numpy(),
                             _log_odds(_expected(model, batch)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("style", ["model.save", "tf.saved_model.save (no signatures)"])
def test_dict_inputs_of_several_dtypes_get_their_own_specs(tmp_path, style):
  """Inputs declared out of sorted order, int32 among float32: each input's
  spec is its own, by name (tf.nest would pair them in sorted order)."""
  tf.keras.utils.set_random_seed(0)
  inputs = {"n_xf": tf.keras.Input(shape=(1,), name="n_xf", dtype="int32"),
            "b_xf": tf.keras.Input(shape=(1,), name="b_xf", dtype=tf.float32),
            "a_xf": tf.keras.Input(shape=(1,), name="a_xf", dtype=tf.float32)}
  x = tf.keras.layers.concatenate(
      [tf.keras.layers.CategoryEncoding(num_tokens=5)(inputs["n_xf"]),
       inputs["b_xf"], inputs["a_xf"]])
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(x))
  directory = str(tmp_path / "t")
  if style == "model.save":
    model.save(directory)
  else:
    tf.saved_model.save(model, directory)
  teacher = Teacher(directory, FEATURES, task=Task.BINARY)
  # pylint: disable-next=protected-access
  assert {n: s.dtype for n, s in teacher._inputs.items()} == {
      "n_xf": tf.int32, "b_xf": tf.float32, "a_xf": tf.float32}
  batch = _batch()
  want = model({"n_xf": tf.cast(batch["n_xf"], tf.int32), "a_xf": batch["a_xf"],
                "b_xf": batch["b_xf"]}).numpy()
  np.testing.assert_allclose(teacher.logits(batch).numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("style", ["model.save", "tf.saved_model.save"])
def test_tfx_taxi_example_model_is_read_unchanged(tmp_path, style):
  """TFX's own taxi_utils_native_keras model: a dict of float32 and int32
  inputs, a Sigmoid then a Reshape."""
  taxi = importlib.import_module(
      "tfx.examples.chicago_taxi_pipeline.taxi_utils_native_keras")
  tf.keras.utils.set_random_seed(0)
  model = taxi._build_keras_model([8, 4])  # pylint: disable=protected-access
  directory = str(tmp_path / "taxi")
  if style == "model.save":
    model.save(directory)
  else:
    tf.saved_model.save(model, directory)
  # What TFT writes: the z-scored floats as float32, every id as int64.
  floats = {f"{k}_xf" for k in taxi._DENSE_FLOAT_FEATURE_KEYS}  # pylint: disable=protected-access
  spec = {name: tf.TensorSpec([None], tf.float32 if name in floats else tf.int64, name)
          for name in model.input}
  teacher = Teacher(directory, spec, task=Task.BINARY)
  assert "ends in Sigmoid" in teacher.source and "-> probabilities" in teacher.source
  assert teacher.input_names == sorted(model.input)
  rng = np.random.default_rng(2)
  batch = {name: (tf.constant(rng.normal(size=6), tf.float32) if name in floats
                  else tf.constant(rng.integers(0, 10, size=6), tf.int64))
           for name in spec}
  probs = model({name: tf.cast(v[:, None], tf.float32 if name in floats else tf.int32)
                 for name, v in batch.items()}).numpy()
  np.testing.assert_allclose(teacher.logits(batch).numpy(), _log_odds(probs),
                             rtol=1e-4, atol=1e-4)


def _penguin_modules():
  """TFX's penguin_utils_keras and _base, imported as they ship.

  Their `from tfx import v1` loads every TFX component and cloud extension
  (about 25 s alone) for run_fn / tuner_fn, which these tests do not call. If
  nothing imported tfx.v1 yet, a stand-in serves that import only, and every
  trace of it is removed afterwards so a later import gets the real modules.
  """
  names = ["tfx.examples.penguin.penguin_utils_keras",
           "tfx.examples.penguin.penguin_utils_base"]
  if "tfx.v1" in sys.modules:
    return [importlib.import_module(n) for n in names]
  sys.modules["tfx.v1"] = mock.MagicMock()
  try:
    return [importlib.import_module(n) for n in names]
  finally:
    del sys.modules["tfx.v1"]
    package = importlib.import_module("tfx.examples.penguin")
    for name in names:
      sys.modules.pop(name, None)
      if hasattr(package, name.rpartition(".")[2]):
        delattr(package, name.rpartition(".")[2])


def test_penguin_example_model_is_read_as_logits(tmp_path):
  """TFX's own penguin Keras model, saved the way its run_fn saves it."""
  penguin, base = _penguin_modules()
  tf.keras.utils.set_random_seed(0)
  # pylint: disable-next=protected-access
  model = penguin._make_keras_model(penguin._get_hyperparameters())
  tft_output = _FakeTransformOutput(base.FEATURE_KEYS, label="species")
  directory = str(tmp_path / "penguin")
  tf.saved_model.save(model, directory,
                      signatures=base.make_serving_signatures(model, tft_output))
  spec = export.model_input_spec(tft_output, "species_xf")
  teacher = Teacher(directory, spec, task=Task.MULTICLASS)
  assert teacher.width == 3
  assert teacher.input_names == sorted(base.transformed_name(k) for k in base.FEATURE_KEYS)
  assert "-> logits" in teacher.source
  rng = np.random.default_rng(1)
  batch = {n: tf.constant(rng.normal(size=(5, 1)), tf.float32) for n in spec}
  np.testing.assert_allclose(teacher.logits(batch).numpy(), model(batch).numpy(),
                             rtol=1e-5, atol=1e-6)


def _signature_module(output_name, signature="transformed_logits"):
  """A plain tf.Module with a hand-written signature over transformed features."""
  module = tf.Module()
  module.w = tf.Variable([0.5, -0.25])

  @tf.function
  def fn(a_xf, n_xf):
    z = a_xf * module.w[0] + tf.cast(n_xf, tf.float32) * module.w[1]
    return {output_name: tf.sigmoid(z) if output_name == "probabilities" else z}

  concrete = fn.get_concrete_function(a_xf=FEATURES["a_xf"], n_xf=FEATURES["n_xf"])
  return module, {signature: concrete}


@pytest.mark.parametrize("output_name", ["logits", "probabilities"])
def test_explicit_signature_is_used(tmp_path, output_name):
  module, signatures = _signature_module(output_name)
  directory = str(tmp_path / "t")
  tf.saved_model.save(module, directory, signatures=signatures)
  teacher = Teacher(directory, FEATURES, task=Task.BINARY)
  assert teacher.source == f"signature 'transformed_logits' ({output_name})"
  assert teacher.input_names == ["a_xf", "n_xf"] and teacher.num_params == 2
  batch = _batch()
  expected = (batch["a_xf"].numpy() * 0.5
              - batch["n_xf"].numpy().astype(np.float32) * 0.25)
  np.testing.assert_allclose(teacher.logits(batch).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_named_signature_is_used_and_must_exist(tmp_path):
  module, signatures = _signature_module("logits", signature="my_logits")
  directory = str(tmp_path / "t")
  tf.saved_model.save(module, directory, signatures=signatures)
  teacher = Teacher(directory, FEATURES, task=Task.BINARY, signature_name="my_logits")
  assert teacher.source == "signature 'my_logits' (logits)"
  with pytest.raises(TeacherContractError, match=(
      r"no signature 'other'; its signatures and their inputs: "
      r"\{'my_logits': \['a_xf', 'n_xf'\]\}")):
    Teacher(directory, FEATURES, task=Task.BINARY, signature_name="other")


def test_regression_teacher_outputs_are_predictions(saved):
  for head in ("relu", "sigmoid"):
    model, directory = saved(head, "tf.saved_model.save")
    teacher = Teacher(directory, FEATURES, task=Task.REGRESSION)
    batch = _batch()
    np.testing.assert_allclose(teacher.logits(batch).numpy(), _expected(model, batch),
                               rtol=1e-5, atol=1e-6)
    assert "regression: predictions as they are" in teacher.source
  with pytest.raises(TeacherContractError, match="regression"):
    Teacher(directory, FEATURES, task=Task.REGRESSION, outputs="probabilities")


def test_logits_inside_tf_function(saved, tmp_path):
  keras_teacher = Teacher(saved("sigmoid", "model.save")[1], FEATURES, task=Task.BINARY)
  module, signatures = _signature_module("probabilities")
  tf.saved_model.save(module, str(tmp_path / "s"), signatures=signatures)
  signature_teacher = Teacher(str(tmp_path / "s"), FEATURES, task=Task.BINARY)
  batch = _batch()
  for teacher in (keras_teacher, signature_teacher):
    step = tf.function(lambda features, t=teacher: t.logits(features) * 1.0)
    np.testing.assert_allclose(step(batch).numpy(), teacher.logits(batch).numpy(),
                               rtol=1e-6)


def test_scalar_features_feed_inputs_of_shape_1(saved):
  """Transform's FixedLenFeature([]) is [batch]; Keras Input(shape=(1,)) takes it."""
  model, directory = saved("linear", "tf.saved_model.save")
  teacher = Teacher(directory,
                    {n: tf.TensorSpec([None], s.dtype, n) for n, s in FEATURES.items()},
                    task=Task.BINARY)
  batch = _batch()
  flat = {n: tf.reshape(v, [-1]) for n, v in batch.items()}
  np.testing.assert_allclose(teacher.logits(flat).numpy(), _expected(model, batch),
                             rtol=1e-5, atol=1e-6)


def _string_input_model():
  tf.keras.utils.set_random_seed(0)
  text = tf.keras.Input(shape=(1,), name="n_xf", dtype=tf.string)
  number = tf.keras.layers.Lambda(tf.strings.to_number)(text)
  return tf.keras.Model(text, tf.keras.layers.Dense(1)(number))


def _two_output_model():
  tf.keras.utils.set_random_seed(0)
  x = tf.keras.Input(shape=(1,), name="a_xf")
  return tf.keras.Model(x, [tf.keras.layers.Dense(1)(x), tf.keras.layers.Dense(2)(x)])


@pytest.mark.parametrize("build,match", [
    (lambda: _model(inputs=("a_xf", "zzz_xf")),
     r"reads \['zzz_xf'\].*they have \['a_xf', 'b_xf', 'c_xf', 'n_xf'\]"),
    (_string_input_model, r"wants 'n_xf' as string.*hold int64"),
    (_two_output_model, r"returns 2 outputs"),
    (lambda: _model(lambda x: tf.keras.layers.Lambda(lambda t: t[:, 0])(
        tf.keras.layers.Dense(1)(x))), r"returns shape \(None,\).*\[batch, K\]"),
])
def test_keras_teacher_that_does_not_fit_is_refused(tmp_path, build, match):
  directory = _save(build(), str(tmp_path / "t"), "model.save")
  with pytest.raises(TeacherContractError, match=match):
    Teacher(directory, FEATURES, task=Task.BINARY, outputs="logits")


def test_not_a_saved_model_is_refused(tmp_path):
  (tmp_path / "notes.txt").write_text("not a model")
  with pytest.raises(TeacherContractError, match=r"holds no SavedModel \(found \['notes.txt'\]\)"):
    Teacher(str(tmp_path), FEATURES, task=Task.BINARY)
  with pytest.raises(TeacherContractError, match="does not exist"):
    Teacher(str(tmp_path / "missing"), FEATURES, task=Task.BINARY)


def test_plain_module_is_refused_with_what_it_has(tmp_path):
  tf.saved_model.save(tf.Module(), str(tmp_path / "bare"))
  with pytest.raises(TeacherContractError,
                     match=r"no signature 'transformed_logits'.*\{\}.*not a Keras model"):
    Teacher(str(tmp_path / "bare"), FEATURES, task=Task.BINARY)
  module = tf.Module()
  module.f = tf.function(lambda x: {"outputs": tf.strings.length(x)},
                         input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  tf.saved_model.save(module, str(tmp_path / "serving"),
                      signatures={"serving_default": module.f})
  with pytest.raises(TeacherContractError,
                     match=r"\{'serving_default': \['examples'\]\}.*not a Keras model"):
    Teacher(str(tmp_path / "serving"), FEATURES, task=Task.BINARY)


def test_save_model_refuses_a_model_ending_in_a_sigmoid(tmp_path):
  tft_output = _FakeTransformOutput(("a", "b", "c"), ("n",))
  kwargs = dict(label_key="label_xf", raw_label_keys=["label"])
  with pytest.raises(ValueError, match=r"layer 'dense_\d+' ends in Sigmoid \(activation sigmoid\)"):
    export.save_model(_model("sigmoid"), str(tmp_path / "s"), tft_output, **kwargs)
  softmax = _model(lambda x: tf.keras.layers.Activation("softmax", name="probs")(
      tf.keras.layers.Dense(3)(x)))
  with pytest.raises(ValueError, match=r"layer 'probs' ends in Softmax"):
    export.save_model(softmax, str(tmp_path / "m"), tft_output, task=Task.MULTICLASS,
                      **kwargs)
  assert not os.listdir(tmp_path)
  # A regression model may end in a sigmoid: its outputs are predictions.
  export.save_model(_model("sigmoid"), str(tmp_path / "r"), tft_output,
                    task=Task.REGRESSION, **kwargs)


def test_save_model_round_trip_through_the_signature(tmp_path):
  """A model saved by export serves probabilities and teaches in logits."""
  tft_output = _FakeTransformOutput(("a", "b", "c"), ("n",))
  model = _model()
  directory = str(tmp_path / "student")
  export.save_model(model, directory, tft_output, label_key="label_xf",
                    raw_label_keys=["label"])
  teacher = Teacher(directory, FEATURES, task=Task.BINARY)
  assert teacher.source == "signature 'transformed_logits' (logits)"
  batch = _batch()
  np.testing.assert_allclose(teacher.logits(batch).numpy(), _expected(model, batch),
                             rtol=1e-5, atol=1e-6)
  examples = [tf.train.Example(features=tf.train.Features(feature={
      **{k: tf.train.Feature(float_list=tf.train.FloatList(
          value=[float(batch[f"{k}_xf"][i, 0])])) for k in ("a", "b", "c")},
      "n": tf.train.Feature(int64_list=tf.train.Int64List(
          value=[int(batch["n_xf"][i, 0])]))})).SerializeToString() for i in range(8)]
  served = tf.saved_model.load(directory).signatures["serving_default"](
      examples=tf.constant(examples))
  assert set(served) == {Task.BINARY.serving_output}
  np.testing.assert_allclose(served["probabilities"].numpy(),
                             tf.sigmoid(_expected(model, batch)).numpy(), rtol=1e-5)


def test_head_of_a_live_model_matches_the_restored_one(saved):
  """One detector for export (live model) and teacher (restored model)."""
  model, directory = saved("softmax", "tf.saved_model.save")
  live = outputs.head(tf.function(lambda f: model(f, training=False))
                      .get_concrete_function({n: FEATURES[n] for n in INPUTS}))
  restored = outputs.head(
      tf.saved_model.load(directory).__call__.concrete_functions[0])
  assert live.op == restored.op == "Softmax"
  assert live.layer == restored.layer == model.layers[-2].name  # [-1]: tft_layer
  assert live.kind == restored.kind == outputs.PROBABILITIES


def test_tf_df_classifier_is_named_when_its_head_cannot_be_seen(tmp_path):
  """A TF-DF Keras model's probabilities come out of its own op: the error
  says it is TF-DF and what to set; with the setting, it is read."""
  tfdf = importlib.import_module("tensorflow_decision_forests")
  rng = np.random.default_rng(0)
  x = {n: rng.normal(size=200).astype(np.float32) for n in ("a_xf", "b_xf")}
  y = (x["a_xf"] + x["b_xf"] > 0).astype(np.int64)
  model = tfdf.keras.GradientBoostedTreesModel(num_trees=5, verbose=0)
  model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(50), verbose=0)
  directory = str(tmp_path / "trees")
  model.save(directory)
  spec = {n: tf.TensorSpec([None], tf.float32, n) for n in x}
  with pytest.raises(TeacherContractError,
                     match=r"the output is StridedSlice.*This is a TF-DF model"):
    Teacher(directory, spec, task=Task.BINARY, imports=("tensorflow_decision_forests",))
  teacher = Teacher(directory, spec, task=Task.BINARY, outputs="probabilities",
                    imports=("tensorflow_decision_forests",))
  batch = {n: tf.constant(v[:8]) for n, v in x.items()}
  np.testing.assert_allclose(tf.sigmoid(teacher.logits(batch)).numpy(),
                             model.predict(batch, verbose=0), rtol=1e-4, atol=1e-5)
