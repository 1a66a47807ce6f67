"""The LiteRT export's executor, and the Pusher that carries LiteRT files.

`Executor.Do`: read a sample of transformed train and eval rows (TFXIO),
convert the student (convert.py) to float32 and int8, check the float file
reproduces the SavedModel student and reads the transformed features by
name, write each as `<uri>/Format-Serving/tflite` (TFMA's `tf_lite` layout)
with `features.json`, measure size and latency of teacher, student and
both files alike (the table is recorded on both outputs, `compression`),
and copy the first `GATE_ROWS` transformed eval rows for the LiteRT gate
(`gate_examples`).

`PusherExecutor`: TFX's Pusher, pushing the student SavedModel with the
LiteRT files inside it (`assets.extra/litert/`), the int8 one only when the
LiteRT gate blessed it: they arrive in the same version directory.
"""

import json
import os
from typing import Any, Dict, List, Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as std
from tfx.utils import io_utils
from tfx.utils import path_utils
from tfx_bsl.public import tfxio
from tfx_bsl.tfxio import dataset_options

from distill_components import measure
from distill_components.distiller import custom_ops
from distill_components.distiller import export
from distill_components.distiller import properties
from distill_components.distiller import tasks
from distill_components.litert import convert
from distill_components.litert import features as features_lib
from distill_components.litert import spec as spec_lib

# Rows read per split: the representative sample is drawn from the train
# ones, parity and latency use the eval ones.
_READ_ROWS = 5000
FEATURES_FILE = "features.json"
PUSHED_DIR = os.path.join("assets.extra", "litert")
PUSHED_NAMES = {spec_lib.FLOAT_KEY: "student_float32.tflite",
                spec_lib.INT8_KEY: "student_int8.tflite"}


def read_rows(examples: types.Artifact, split: str, tft_output, label_key: str,
              limit: int = _READ_ROWS) -> Dict[str, np.ndarray]:
  """Up to `limit` transformed rows of `split` (label left out), through TFXIO."""
  source = tfxio.TFExampleRecord(
      file_pattern=[os.path.join(artifact_utils.get_split_uri([examples], split), "*")],
      schema=tft_output.transformed_metadata.schema)
  batch = next(iter(source.TensorFlowDataset(dataset_options.TensorFlowDatasetOptions(
      batch_size=limit, num_epochs=1, shuffle=False))))
  return {k: np.asarray(v) for k, v in batch.items() if k != label_key}


def write_gate_examples(examples: types.Artifact, output: types.Artifact,
                        limit: int = spec_lib.GATE_ROWS) -> int:
  """The first `limit` transformed eval rows, as they are, into `output` (an
  Examples artifact of one split, eval): what the LiteRT gate scores. Reads
  no further than that; returns (and records) how many were written."""
  files = sorted(fileio.glob(os.path.join(
      artifact_utils.get_split_uri([examples], "eval"), "*")))
  compression = "GZIP" if files and files[0].endswith(".gz") else ""
  output.split_names = artifact_utils.encode_split_names(["eval"])
  target = artifact_utils.get_split_uri([output], "eval")
  fileio.makedirs(target)
  written = 0
  with tf.io.TFRecordWriter(os.path.join(target, "data_tfrecord-00000-of-00001.gz"),
                            options="GZIP") as writer:
    for record in tf.data.TFRecordDataset(files, compression_type=compression).take(limit):
      writer.write(record.numpy())
      written += 1
  output.set_int_custom_property(properties.GATE_EXAMPLES, written)
  return written


def _own_bytes(saved_model_bytes: int, tft_output) -> int:
  """A SavedModel's size without this run's Transform inside it."""
  return max(saved_model_bytes - export.saved_model_bytes(
      tft_output.transform_savedmodel_dir), 0)


class Executor(base_executor.BaseExecutor):
  """Writes the student as LiteRT float32 and int8 (see the module's doc)."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    task = tasks.Task.parse(exec_properties[spec_lib.TASK_KEY])
    label_key = exec_properties[spec_lib.LABEL_KEY_KEY]
    tft_output = tft.TFTransformOutput(
        artifact_utils.get_single_uri(input_dict[std.TRANSFORM_GRAPH_KEY]))
    examples = artifact_utils.get_single_instance(input_dict[std.EXAMPLES_KEY])
    student_dir = path_utils.serving_model_path(
        artifact_utils.get_single_uri(input_dict[std.MODEL_KEY]))
    train = read_rows(examples, "train", tft_output, label_key)
    rows = read_rows(examples, "eval", tft_output, label_key)
    sample = convert.representative_rows(
        train, exec_properties.get(spec_lib.REPRESENTATIVE_ROWS_KEY) or
        spec_lib.DEFAULT_REPRESENTATIVE_ROWS, exec_properties.get(spec_lib.SEED_KEY) or 0)

    float_model = convert.convert(student_dir, task, convert.FLOAT32)
    convert.check_inputs(float_model, rows)
    student = tf.saved_model.load(student_dir)
    logits_fn = student.signatures[export.TRANSFORMED_LOGITS_SIGNATURE]
    expected = export.serving_outputs(
        logits_fn(**{k: tf.constant(v) for k, v in rows.items()})[export.LOGITS_OUTPUT],
        task).numpy()
    gap = float(np.max(np.abs(convert.predict(float_model, rows) - expected)))
    if gap > convert.PARITY_TOLERANCE:
      raise convert.ConversionError(
          f"The float32 LiteRT student differs from the SavedModel student by "
          f"{gap:.2g} on the eval rows (at most {convert.PARITY_TOLERANCE} allowed).")
    int8_model, mode, left = convert.convert_int8(student_dir, task, sample)
    logging.info("LiteRT: float32 %d bytes (max gap to the SavedModel %.2g); %s "
                 "%d bytes%s.", len(float_model), gap, mode, len(int8_model),
                 f", ops left in float: {left}" if left else "")

    features = features_lib.describe(tft_output, label_key)
    gated = write_gate_examples(
        examples, artifact_utils.get_single_instance(output_dict[spec_lib.GATE_EXAMPLES_KEY]))
    logging.info("LiteRT gate examples: the first %d transformed eval rows.", gated)
    table = self._compression(input_dict, exec_properties, tft_output, student_dir,
                              logits_fn, rows, float_model, int8_model)
    for key, model, kind in ((spec_lib.FLOAT_KEY, float_model, convert.FLOAT32),
                             (spec_lib.INT8_KEY, int8_model, mode)):
      artifact = artifact_utils.get_single_instance(output_dict[key])
      directory = path_utils.serving_model_path(artifact.uri)
      fileio.makedirs(directory)
      with fileio.open(os.path.join(directory, convert.TFLITE_FILE), "wb") as f:
        f.write(model)
      with fileio.open(os.path.join(directory, FEATURES_FILE), "w") as f:
        json.dump(features, f, indent=1)
      artifact.set_string_custom_property(properties.LITERT_MODE, kind)
      artifact.set_int_custom_property(properties.LITERT_BYTES, len(model))
      artifact.set_string_custom_property(properties.LITERT_FLOAT_OPS,
                                          json.dumps(left if key == spec_lib.INT8_KEY else []))
      artifact.set_float_custom_property(properties.LITERT_FLOAT_GAP, gap)
      artifact.set_string_custom_property(properties.COMPRESSION, json.dumps(table))

  def _compression(self, input_dict, exec_properties, tft_output, student_dir,
                   logits_fn, rows, float_model, int8_model) -> List[Dict[str, Any]]:
    """Teacher, student SavedModel, LiteRT float32 and int8, measured alike:
    file size, own size (without the Transform), parameters, latency at
    batch 1 and 256 on transformed features."""
    params = int(sum(np.prod(v.shape) for v in logits_fn.variables))
    student_bytes = export.saved_model_bytes(student_dir)
    table = []
    teachers = input_dict.get(spec_lib.TEACHER_MODEL_KEY) or []
    if teachers:
      custom_ops.import_modules(json.loads(
          exec_properties.get(spec_lib.TEACHER_IMPORTS_KEY) or "[]"))
      teacher_dir = path_utils.serving_model_path(teachers[0].uri)
      teacher_bytes = export.saved_model_bytes(teacher_dir)
      teacher = tf.saved_model.load(teacher_dir)
      signature = teacher.signatures.get(export.TRANSFORMED_LOGITS_SIGNATURE)
      latency = measure.Latency(note="no transformed_logits signature")
      if signature is not None:
        try:
          latency = measure.features_latency(signature, rows)
        except (TypeError, ValueError, tf.errors.OpError) as e:
          # A teacher of another Transform (imported) reads other features.
          latency = measure.Latency(note=f"not timed on this run's features: "
                                         f"{type(e).__name__}")
      table.append(_row("teacher", teacher_bytes, _own_bytes(teacher_bytes, tft_output),
                        _weights(teacher), latency))
    table.append(_row("student", student_bytes, _own_bytes(student_bytes, tft_output),
                      params, measure.features_latency(logits_fn, rows)))
    for name, model in (("litert_float32", float_model), ("litert_int8", int8_model)):
      table.append(_row(name, len(model), len(model), params,
                        convert.latency(model, rows)))
    return table


def _weights(loaded) -> Optional[int]:
  """Trainable numbers of a loaded SavedModel (None: a tree ensemble's are not
  variables)."""
  count = int(sum(np.prod(v.shape) for v in getattr(loaded, "variables", [])
                  if v.dtype.is_floating))
  return count or None


def _row(model: str, file_bytes: int, own_bytes: int, params: Optional[int],
         latency: measure.Latency) -> Dict[str, Any]:
  return {"model": model, "file_bytes": file_bytes, "own_bytes": own_bytes,
          "params": params, "latency_ms": {str(k): v for k, v in latency.ms.items()},
          "note": latency.note}


class PusherExecutor(pusher_executor.Executor):
  """TFX's Pusher; the pushed version also holds the LiteRT files."""

  def GetModelPath(self, input_dict: Dict[str, List[types.Artifact]]) -> str:
    model_path = super().GetModelPath(input_dict)
    files = {}
    for key, name in PUSHED_NAMES.items():
      if input_dict.get(key):
        files[name] = os.path.join(path_utils.serving_model_path(
            input_dict[key][0].uri), convert.TFLITE_FILE)
    blessings = input_dict.get(spec_lib.LITERT_BLESSING_KEY) or []
    blessed = bool(blessings) and fileio.exists(os.path.join(blessings[0].uri, "BLESSED"))
    if not blessed:
      files.pop(PUSHED_NAMES[spec_lib.INT8_KEY], None)
    if not files:
      return model_path
    staged = os.path.join(self._get_tmp_dir(), "model")
    io_utils.copy_dir(model_path, staged)
    target = os.path.join(staged, PUSHED_DIR)
    fileio.makedirs(target)
    for name, source in files.items():
      io_utils.copy_file(source, os.path.join(target, name), overwrite=True)
    features = os.path.join(os.path.dirname(next(iter(files.values()))), FEATURES_FILE)
    if fileio.exists(features):
      io_utils.copy_file(features, os.path.join(target, FEATURES_FILE), overwrite=True)
    logging.info("Pushing the LiteRT files %s with the student%s.", sorted(files),
                 "" if blessed else " (int8 not blessed by the LiteRT gate: left out)")
    return staged
