"""The gates' one pass of inference: `Scorer`.

TFX's Evaluator runs every model it gates inside TFMA, per gate: the student
once in each of two gates, the teacher (a tree ensemble, say) in one, each
through its Transform graph, and every raw column decoded each time. The
Scorer reads the eval split once, calls each model's `serving_default` on
batches of serialized raw examples (the same call TFMA makes), takes the
transformed label from the candidate's `transform_features`, and writes
compact examples: the label, one prediction column per model, the slicing
columns and nothing else, with their schema. The Evaluators then read these
through ModelSpecs of TFMA's `materialized_prediction` type (a
`prediction_key` per model), so TFMA loads no model and runs no inference:
the gates' thresholds, slices and validation results stay TFMA's.

    scorer = Scorer(examples=example_gen.outputs["examples"],
                    schema=schema_gen.outputs["schema"],
                    model=distiller.outputs["model"],
                    baseline_model=trainer.outputs["model"],
                    serving_model=resolver.outputs["model"],  # may be empty
                    label_key="tips_xf", slice_by=["trip_start_day"])
    Evaluator(examples=scorer.outputs["scored_examples"],
              schema=scorer.outputs["scored_schema"],
              model=distiller.outputs["model"],
              baseline_model=trainer.outputs["model"],
              eval_config=...)  # ModelSpecs: scorer.model_spec(...)

It is a Beam job (the pipeline's Beam runner: the DirectRunner here,
Dataflow/Flink/Spark elsewhere); each worker loads the models once. It writes
SHARDS files, so the Evaluators' worker processes can share them.
"""

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants as tfma_constants
from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.components.base import executor_spec
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as std
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import path_utils
from tensorflow_metadata.proto.v0 import schema_pb2

from distill_components.distiller import custom_ops

SERVING_MODEL_KEY = "serving_model"
SCORED_EXAMPLES_KEY = "scored_examples"
SCORED_SCHEMA_KEY = "scored_schema"
LABEL_KEY_KEY = "label_key"
SLICE_BY_KEY = "slice_by"
MODEL_IMPORTS_KEY = "model_imports"
MODEL_NAMES_KEY = "model_names"
# Custom property of the scored examples: JSON list of the models scored.
SCORED_MODELS = "scored_models"
SPLIT = "eval"
_PREDICTION_PREFIX = "__prediction__"
# Output names TFMA itself looks for in a model's dict of outputs, in its order.
_PREDICTION_OUTPUTS = ("scores", "outputs", "predictions", "logistic",
                       "probabilities", "logits")
_BATCH = dict(min_batch_size=256, max_batch_size=4096)
# Files the scored split is written in: a gzipped file is read whole by one
# worker, so an Evaluator on several worker processes needs several.
SHARDS = 4


def prediction_key(model_name: str) -> str:
  """The scored examples' column holding `model_name`'s predictions."""
  return _PREDICTION_PREFIX + model_name


def model_spec(name: str, label_key: str, is_baseline: bool = False) -> tfma.ModelSpec:
  """The Evaluator's ModelSpec of a model the Scorer scored."""
  return tfma.ModelSpec(name=name, is_baseline=is_baseline,
                        model_type=tfma_constants.MATERIALIZED_PREDICTION,
                        prediction_key=prediction_key(name), label_key=label_key)


class ScorerSpec(ComponentSpec):
  """Raw examples and up to three models -> compact scored eval examples."""
  PARAMETERS = {
      LABEL_KEY_KEY: ExecutionParameter(type=str),
      SLICE_BY_KEY: ExecutionParameter(type=str),  # JSON list of raw columns
      # JSON {input key: model name in the EvalConfigs}.
      MODEL_NAMES_KEY: ExecutionParameter(type=str),
      # JSON list of modules registering a model's ops (TF-DF).
      MODEL_IMPORTS_KEY: ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      std.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      std.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
      std.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      std.BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model,
                                               optional=True),
      SERVING_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
  }
  OUTPUTS = {
      SCORED_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      SCORED_SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
  }


def _prediction(name: str, outputs: Dict[str, tf.Tensor]) -> np.ndarray:
  """The model's prediction, [batch, width], picked as TFMA picks it."""
  if len(outputs) == 1:
    value = next(iter(outputs.values()))
  else:
    found = next((k for k in _PREDICTION_OUTPUTS if k in outputs), None)
    if found is None:
      raise ValueError(
          f"The {name} model's serving_default returns {sorted(outputs)}; the "
          f"gates need one output, or one named {' or '.join(_PREDICTION_OUTPUTS)}.")
    value = outputs[found]
  value = np.asarray(value, np.float32)
  return value.reshape(len(value), -1)


def _call(signature, batch: List[bytes]) -> Dict[str, tf.Tensor]:
  """A signature of one string input, called with the serialized examples."""
  (argument,) = signature.structured_input_signature[1]
  return signature(**{argument: tf.constant(batch)})


class _Score(beam.DoFn):
  """Batches of serialized raw examples -> serialized scored examples."""

  def __init__(self, models: Dict[str, str], candidate: str, label_key: str,
               columns: Sequence[str], imports: Sequence[str]):
    self._paths = models
    self._candidate = candidate
    self._label_key = label_key
    self._columns = list(columns)
    self._imports = list(imports)
    self._models: Dict[str, Any] = {}

  def setup(self):
    custom_ops.import_modules(self._imports)
    self._models = {name: tf.saved_model.load(path) for name, path in self._paths.items()}

  def process(self, batch: List[bytes]) -> Iterable[bytes]:
    predictions = {name: _prediction(name, _call(model.signatures["serving_default"], batch))
                   for name, model in self._models.items()}
    labels = _call(self._models[self._candidate].signatures["transform_features"],
                   batch)[self._label_key].numpy().reshape(len(batch), -1)
    for row, serialized in enumerate(batch):
      raw = tf.train.Example.FromString(serialized).features.feature
      scored = tf.train.Example()
      out = scored.features.feature
      for column in self._columns:
        if column in raw:
          out[column].CopyFrom(raw[column])
      label = labels[row]
      if label.dtype.kind in "iub":
        out[self._label_key].int64_list.value.extend(label.astype(np.int64).tolist())
      else:
        out[self._label_key].float_list.value.extend(label.astype(np.float32).tolist())
      for name, values in predictions.items():
        out[prediction_key(name)].float_list.value.extend(values[row].tolist())
      yield scored.SerializeToString()


def scored_schema(raw: schema_pb2.Schema, columns: Sequence[str], label_key: str,
                  label_dtype: int, widths: Dict[str, int]) -> schema_pb2.Schema:
  """The scored examples' schema: the raw schema's slicing columns, the label,
  one fixed-width float feature per model."""
  schema = schema_pb2.Schema()
  schema.feature.extend(f for f in raw.feature if f.name in set(columns))
  dense = [(label_key, label_dtype, 1)] + [
      (prediction_key(name), schema_pb2.FLOAT, width) for name, width in widths.items()]
  for name, dtype, width in dense:  # in every example, of a fixed width
    feature = schema.feature.add(name=name, type=dtype)
    feature.presence.min_fraction = 1.0
    feature.shape.dim.add(size=width)
  return schema


class Executor(base_beam_executor.BaseBeamExecutor):
  """Scores the eval split with every model given (see the module)."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    names = json_utils.loads(exec_properties[MODEL_NAMES_KEY])
    models = {names[key]: path_utils.serving_model_path(
        input_dict[key][0].uri, path_utils.is_old_model_artifact(input_dict[key][0]))
              for key in (std.MODEL_KEY, std.BASELINE_MODEL_KEY, SERVING_MODEL_KEY)
              if input_dict.get(key)}
    candidate = names[std.MODEL_KEY]
    label_key = exec_properties[LABEL_KEY_KEY]
    columns = json_utils.loads(exec_properties[SLICE_BY_KEY])
    imports = custom_ops.import_modules(
        json_utils.loads(exec_properties.get(MODEL_IMPORTS_KEY) or "[]"))
    raw_schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
        artifact_utils.get_single_uri(input_dict[std.SCHEMA_KEY])))
    missing = sorted(set(columns) - {f.name for f in raw_schema.feature})
    if missing:
      raise ValueError(f"slice_by names columns the data does not have: {missing}; "
                       f"the columns are {sorted(f.name for f in raw_schema.feature)}")
    examples = input_dict[std.EXAMPLES_KEY][0]
    split_uri = artifact_utils.get_split_uri([examples], SPLIT)
    probe = _Score(models, candidate, label_key, columns, imports)
    probe.setup()  # here too: fail in the executor, not in a worker, and learn the widths
    first = next(iter(tf.data.TFRecordDataset(
        tf.io.gfile.glob(os.path.join(split_uri, "*")), compression_type="GZIP").take(1)))
    widths = {name: _prediction(name, _call(model.signatures["serving_default"],
                                            [first.numpy()])).shape[1]
              for name, model in probe._models.items()}  # pylint: disable=protected-access
    label = _call(probe._models[candidate].signatures["transform_features"],  # pylint: disable=protected-access
                  [first.numpy()])[label_key]
    label_dtype = schema_pb2.INT if label.dtype.is_integer or label.dtype.is_bool else (
        schema_pb2.FLOAT)

    scored = output_dict[SCORED_EXAMPLES_KEY][0]
    scored.split_names = artifact_utils.encode_split_names([SPLIT])
    examples_utils.set_payload_format(scored, example_gen_pb2.FORMAT_TF_EXAMPLE)
    scored.set_string_custom_property(SCORED_MODELS, json.dumps(sorted(models)))
    out_dir = artifact_utils.get_split_uri([scored], SPLIT)
    with self._make_beam_pipeline() as pipeline:
      _ = (pipeline
           | "Read" >> beam.io.ReadFromTFRecord(os.path.join(split_uri, "*"))
           | "Batch" >> beam.BatchElements(**_BATCH)
           | "Score" >> beam.ParDo(_Score(models, candidate, label_key, columns, imports))
           | "Write" >> beam.io.WriteToTFRecord(
               os.path.join(out_dir, "scored"), file_name_suffix=".gz",
               num_shards=SHARDS))
    io_utils.write_pbtxt_file(
        os.path.join(artifact_utils.get_single_uri(output_dict[SCORED_SCHEMA_KEY]),
                     "schema.pbtxt"),
        scored_schema(raw_schema, columns, label_key, label_dtype, widths))


class Scorer(base_beam_component.BaseBeamComponent):
  """Scores the eval split once for every gate (see the module)."""
  SPEC_CLASS = ScorerSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self, *, examples: types.BaseChannel, schema: types.BaseChannel,
               model: types.BaseChannel, label_key: str,
               model_names: Dict[str, str],
               baseline_model: Optional[types.BaseChannel] = None,
               serving_model: Optional[types.BaseChannel] = None,
               slice_by: Sequence[str] = (), model_imports: Sequence[str] = ()):
    """`model_names`: the name each model has in the EvalConfigs, by input
    (`model`, `baseline_model`, `serving_model`)."""
    if not label_key:
      raise ValueError("label_key (the transformed label feature) is required.")
    given = {std.MODEL_KEY} | {k for k, c in ((std.BASELINE_MODEL_KEY, baseline_model),
                                               (SERVING_MODEL_KEY, serving_model)) if c}
    if set(model_names) != given:
      raise ValueError(f"model_names must name exactly the models given {sorted(given)}; "
                       f"got {sorted(model_names)}.")
    super().__init__(spec=ScorerSpec(
        examples=examples, schema=schema, model=model, baseline_model=baseline_model,
        serving_model=serving_model, label_key=label_key,
        slice_by=json.dumps(list(slice_by)), model_names=json.dumps(model_names),
        model_imports=json.dumps(list(model_imports)),
        scored_examples=types.Channel(type=standard_artifacts.Examples),
        scored_schema=types.Channel(type=standard_artifacts.Schema)))
