"""The student as LiteRT (TFLite) flatbuffers: float32 and int8, on transformed features.

The flatbuffer is the student's `transformed_logits` signature (export.py)
with the task's serving head on top (sigmoid, softmax or nothing), so it
returns what `serving_default` returns, from the features the Transform
computes. ParseExample and the Transform's lookups stay outside: they are
not LiteRT builtins; a client computes the features (the student SavedModel's
`transform_features` signature, or the vocabularies and scales in
`features.json`).

int8 is full-integer quantization calibrated on a sample of transformed train
rows (float input and output kept: quantize and dequantize run inside the
file, int64 ids stay int64). Calibration is min/max and a student that
concatenates its inputs shares one scale among them, so the sample's float
features are clipped at their 0.1/99.9 percentiles: one 93-sigma trip among
2,000 taxi rows cost int8 0.014 AUC unclipped. An op with no int8 kernel
falls back to float inside the file (`INT8_WITH_FLOAT_OPS`), and a student
that does not quantize at all gets dynamic-range weights (`DYNAMIC_RANGE`);
which one was made is recorded.
"""

from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from distill_components import measure
from distill_components.distiller import export
from distill_components.distiller import tasks

# The file TFMA's `tf_lite` model type loads from a model directory.
TFLITE_FILE = "tflite"
FLOAT32 = "float32"
INT8 = "int8"
INT8_WITH_FLOAT_OPS = "int8_with_float_ops"
DYNAMIC_RANGE = "dynamic_range"
# Float LiteRT must reproduce the SavedModel student this closely.
PARITY_TOLERANCE = 1e-4
_CLIP_PERCENTILE = 99.9

Rows = Dict[str, np.ndarray]


class ConversionError(ValueError):
  """A student LiteRT cannot hold; the message says what to change."""


def _head(logits_fn, task: tasks.Task):
  """transformed features -> {serving output: ...}, as `serving_default`."""
  spec = logits_fn.structured_input_signature[1]

  @tf.function(input_signature=[spec])
  def serve(features):
    logits = logits_fn(**features)[export.LOGITS_OUTPUT]
    return {task.serving_output: export.serving_outputs(logits, task)}
  return serve.get_concrete_function()


def convert(student_dir: str, task: tasks.Task, mode: str,
            representative: Rows = None) -> bytes:
  """The student SavedModel at `student_dir` as a flatbuffer of `mode`."""
  loaded = tf.saved_model.load(student_dir)
  if export.TRANSFORMED_LOGITS_SIGNATURE not in loaded.signatures:
    raise ConversionError(
        f"The student has no {export.TRANSFORMED_LOGITS_SIGNATURE!r} signature; "
        "export it with distill_components.distiller.export.save_model.")
  head = _head(loaded.signatures[export.TRANSFORMED_LOGITS_SIGNATURE], task)
  converter = tf.lite.TFLiteConverter.from_concrete_functions([head], loaded)
  if mode != FLOAT32:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if mode in (INT8, INT8_WITH_FLOAT_OPS):
    count = len(next(iter(representative.values())))
    converter.representative_dataset = lambda: (
        {k: v[i:i + 1] for k, v in representative.items()} for i in range(count))
    if mode == INT8:
      converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  try:
    return converter.convert()
  except Exception as e:  # pylint: disable=broad-except  (the converter's own errors)
    first = next((line for line in str(e).splitlines() if "error" in line.lower()),
                 str(e).splitlines()[0] if str(e) else type(e).__name__)
    raise ConversionError(
        f"LiteRT cannot hold this student ({mode}): {first.strip()[:300]}. Build "
        "the student from LiteRT builtin ops (Dense, Embedding, Concatenate, "
        "the usual activations), or leave LiteRT off (litert=False).") from e


def convert_int8(student_dir: str, task: tasks.Task,
                 representative: Rows) -> Tuple[bytes, str, List[str]]:
  """(flatbuffer, mode, ops left in float): full int8 where it converts."""
  failures = []
  for mode in (INT8, INT8_WITH_FLOAT_OPS, DYNAMIC_RANGE):
    try:
      model = convert(student_dir, task, mode, representative)
    except ConversionError as e:
      failures.append(str(e))
      continue
    left = float_ops(model)
    return model, (INT8_WITH_FLOAT_OPS if mode == INT8 and left else mode), left
  raise ConversionError(failures[-1])


def float_ops(model: bytes) -> List[str]:
  """The ops still computing in float32 (quantize/dequantize aside).

  Asked of the file: the converter keeps an op with no int8 kernel in float
  even when told int8 only (measured: CUMSUM, SIN).
  """
  interpreter = tf.lite.Interpreter(model_content=model)
  dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
  return sorted({op["op_name"] for op in interpreter._get_ops_details()  # pylint: disable=protected-access
                 if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")
                 and any(dtypes.get(i) == np.float32 for i in op["inputs"] if i >= 0)})


def representative_rows(rows: Rows, count: int, seed: int) -> Rows:
  """Up to `count` random rows, float features clipped to their 0.1-99.9
  percentile range (see the module's doc)."""
  total = len(next(iter(rows.values())))
  picked = np.sort(np.random.default_rng(seed).choice(total, min(count, total),
                                                       replace=False))
  sample = {}
  for name, values in rows.items():
    if values.dtype.kind == "f":
      low, high = np.percentile(values, [100 - _CLIP_PERCENTILE, _CLIP_PERCENTILE])
      values = np.clip(values, low, high)
    sample[name] = values[picked]
  return sample


class Runner:
  """A flatbuffer run by LiteRT's interpreter, rows in, serving output out."""

  def __init__(self, model: bytes):
    self.interpreter = tf.lite.Interpreter(model_content=model)
    self._runner = self.interpreter.get_signature_runner()
    self.input_names = sorted(self._runner.get_input_details())

  def _resize(self, batch: int) -> None:
    details = self._runner.get_input_details().values()
    if all(d["shape"][0] == batch for d in details):
      return
    self._runner = None  # it holds the interpreter's tensors
    for detail in details:
      self.interpreter.resize_tensor_input(detail["index"],
                                           [batch, *detail["shape"][1:]])
    self.interpreter.allocate_tensors()
    self._runner = self.interpreter.get_signature_runner()

  def __call__(self, rows: Rows) -> np.ndarray:
    self._resize(len(next(iter(rows.values()))))
    self._feed = {k: rows[k] for k in self.input_names}
    return self.invoke()

  def invoke(self) -> np.ndarray:
    """The output on the rows last given (a copy: the interpreter's own
    buffers must not be held across a resize)."""
    [output] = self._runner(**self._feed).values()
    return np.array(output, copy=True)


def predict(model: bytes, rows: Rows, batch: int = 256) -> np.ndarray:
  """The flatbuffer's outputs on every row, `batch` rows per call."""
  runner = Runner(model)
  total = len(next(iter(rows.values())))
  return np.concatenate([runner({k: v[i:i + batch] for k, v in rows.items()})
                         for i in range(0, total, batch)])


def check_inputs(model: bytes, rows: Mapping[str, np.ndarray]) -> None:
  """The flatbuffer reads exactly the transformed features by name (TFMA
  feeds them so; a missing one it would fill with -1, silently)."""
  names = Runner(model).input_names
  if set(names) != set(rows):
    raise ConversionError(
        f"The LiteRT student reads {names}, the transformed examples hold "
        f"{sorted(rows)}: they must match by name.")


def latency(model: bytes, rows: Rows,
            batches: Sequence[int] = measure.LATENCY_BATCHES) -> measure.Latency:
  """Median ms per interpreter call on the first n rows, per n (the features
  already computed: what an app pays per prediction)."""
  def call(size):
    runner = Runner(model)
    runner({k: v[:size] for k, v in rows.items()})  # resized once, untimed
    return runner.invoke
  return measure.median_latency(call, len(next(iter(rows.values()))), batches)
