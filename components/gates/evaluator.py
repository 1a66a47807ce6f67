"""TFX's Evaluator, with slice thresholds held only on slices large enough.

A gate per slice must not be decided by a slice of a dozen examples: its AUC
is noise. TFMA's own `options.min_slice_size` does not help: TFMA drops the
small slices' metrics and its validator then fails each of their thresholds
as "Metric not found", so a tiny slice blocks every push.

This executor reads the EvalConfig's `options.min_slice_size` as "the smallest
slice that gates": before TFMA runs, it counts the values of each slicing
column in the evaluated splits and replaces every per-slice threshold on
`SlicingSpec(feature_keys=[column])` by one threshold per value with at least
that many examples (`SlicingSpec(feature_values={column: value})`). Smaller
slices keep their metrics (they are still computed and reported) but no
threshold.

It also takes `model_imports`: Python modules imported before TFMA loads the
models, for a baseline (the teacher) whose SavedModel calls ops stock
TensorFlow does not register (TF-DF: tensorflow_decision_forests). On
Kubeflow the Evaluator is a process of its own, so it cannot rely on the
Trainer having imported them. They are imported in the executor's process,
and in every Beam worker that loads a model: the executor hands TFX's
Evaluator a `custom_eval_shared_model` (TFX's own hook) whose model loader
imports them first, and Beam pickles that loader to its workers (the
multi-process DirectRunner's, Dataflow's). (TFMA's model_util itself imports
tensorflow_decision_forests, when installed, wherever it runs; a library of
ops of one's own it does not.)

On Beam's DirectRunner, a gate over at least PROCESSES_FROM_ROWS examples
runs on a worker process per core (`--direct_running_mode=multi_processing`),
unless the pipeline's Beam arguments choose a running mode themselves: TFMA
computes each metric one example at a time in Python, and two processes
took the fidelity gate at 1M rows from 472 to 282 s (docs/scale.md,
bench/gate_rerun.py); on small splits starting the workers (each imports
TensorFlow and TFMA, about 20 s) costs more than it saves. The input needs several files for the workers to
share it (the Scorer writes SHARDS). Other runners (Dataflow, Flink, Spark)
are left to their own arguments. Everything else is TFX's Evaluator unchanged.
"""

import collections
import os
from typing import Any, Dict, Iterable, List, Sequence

from absl import logging
from apache_beam.options import pipeline_options
import pyarrow.compute as pc
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types import component_spec
from tfx.types import standard_component_specs as std
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import proto_utils
from tfx_bsl.coders import example_coder
from tensorflow_metadata.proto.v0 import schema_pb2

from distill_components.distiller import custom_ops

MODEL_IMPORTS_KEY = "model_imports"

_BATCH = 4096
# Eval examples from which a gate runs on a worker process per core.
PROCESSES_FROM_ROWS = 100_000
_DIRECT_RUNNERS = (None, "DirectRunner", "direct")


def beam_args_for(args: Sequence[str], rows: int, cores: int) -> List[str]:
  """The gate's Beam arguments: `args`, plus a worker process per core when
  the DirectRunner evaluates at least PROCESSES_FROM_ROWS rows on several
  cores and `args` choose no running mode."""
  options = pipeline_options.PipelineOptions(list(args))
  runner = options.view_as(pipeline_options.StandardOptions).runner
  chosen = any(a.startswith("--direct_running_mode") for a in args)
  if runner not in _DIRECT_RUNNERS or chosen or cores < 2 or rows < PROCESSES_FROM_ROWS:
    return list(args)
  return [*args, "--direct_running_mode=multi_processing",
          f"--direct_num_workers={cores}"]


def rows_at_least(files: Iterable[str], limit: int) -> int:
  """The rows of the gzipped TFRecord `files`, counted up to `limit`."""
  records = tf.data.TFRecordDataset(
      tf.data.Dataset.list_files(list(files), shuffle=False), compression_type="GZIP")
  return int(records.take(limit).reduce(0, lambda n, _: n + 1))


def slice_sizes(files: Iterable[str], schema: schema_pb2.Schema,
                columns: List[str]) -> Dict[str, collections.Counter]:
  """column -> Counter(value as TFMA prints it -> examples holding it).

  Reads gzipped TFRecords of tf.Examples; decodes only `columns` (TFX-BSL's
  example decoder, the one TFX's TFXIO uses).
  """
  missing = sorted(set(columns) - {f.name for f in schema.feature})
  if missing:
    raise ValueError(f"slice_by names columns the data does not have: {missing}; "
                     f"the columns are {sorted(f.name for f in schema.feature)}")
  projected = schema_pb2.Schema()
  projected.feature.extend(f for f in schema.feature if f.name in columns)
  decoder = example_coder.ExamplesToRecordBatchDecoder(
      projected.SerializeToString())
  counts = {column: collections.Counter() for column in columns}
  records = tf.data.TFRecordDataset(
      tf.data.Dataset.list_files(list(files), shuffle=False),
      compression_type="GZIP").batch(_BATCH)
  for batch in records.as_numpy_iterator():
    table = decoder.DecodeBatch(list(batch))
    for column in columns:
      values = pc.list_flatten(table.column(column))
      for entry in pc.value_counts(values).to_pylist():
        value = entry["values"]
        if isinstance(value, bytes):
          value = value.decode("utf-8", "replace")
        counts[column][str(value)] += entry["counts"]
  return counts


def narrow_slice_thresholds(config: tfma.EvalConfig,
                            sizes: Dict[str, collections.Counter]) -> tfma.EvalConfig:
  """`config` with each per-column slice threshold kept on large slices only.

  Clears `options.min_slice_size` (the minimum is applied here; TFMA's own
  would fail the small slices instead of skipping them).
  """
  minimum = config.options.min_slice_size.value
  narrowed = tfma.EvalConfig()
  narrowed.CopyFrom(config)
  narrowed.options.ClearField("min_slice_size")
  for spec in narrowed.metrics_specs:
    for metric in spec.metrics:
      for bound in metric.per_slice_thresholds:
        kept = []
        for slicing in bound.slicing_specs:
          if len(slicing.feature_keys) == 1 and not slicing.feature_values:
            column = slicing.feature_keys[0]
            kept += [tfma.SlicingSpec(feature_values={column: value})
                     for value, count in sorted(sizes.get(column, {}).items())
                     if count >= minimum]
          else:
            kept.append(slicing)
        del bound.slicing_specs[:]
        bound.slicing_specs.extend(kept)
  return narrowed


def _sliced_columns(config: tfma.EvalConfig) -> List[str]:
  return sorted({s.feature_keys[0] for s in config.slicing_specs
                 if len(s.feature_keys) == 1})


# The modules the running executor imported for its models (set by
# Executor.Do, read by custom_eval_shared_model in the same process).
_model_imports: List[str] = []


def custom_eval_shared_model(eval_saved_model_path: str, model_name: str,
                             eval_config: tfma.EvalConfig, **kwargs):
  """TFMA's default shared model, whose loader imports the models' modules.

  TFX's Evaluator calls the `custom_eval_shared_model` of its module
  (`module_path`), in the executor's process; the loader it returns runs
  wherever Beam runs the model.
  """
  shared = tfma.default_eval_shared_model(
      eval_saved_model_path=eval_saved_model_path, model_name=model_name,
      eval_config=eval_config, **kwargs)
  if _model_imports:
    loader = shared.model_loader
    loader.construct_fn = custom_ops.Importing(_model_imports, loader.construct_fn)
  return shared


class Executor(evaluator_executor.Executor):
  """TFX's Evaluator executor; narrows slice thresholds first (see module)."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    imported = custom_ops.import_modules(
        json_utils.loads(exec_properties.get(MODEL_IMPORTS_KEY) or "[]"))
    if imported and not (exec_properties.get(std.MODULE_FILE_KEY)
                         or exec_properties.get(std.MODULE_PATH_KEY)):
      _model_imports[:] = imported
      exec_properties = {**exec_properties, std.MODULE_PATH_KEY: __name__}
    splits = json_utils.loads(
        exec_properties.get(std.EXAMPLE_SPLITS_KEY) or "null") or ["eval"]
    files = [io_utils.all_files_pattern(uri) for split in splits
             for uri in artifact_utils.get_split_uris(input_dict[std.EXAMPLES_KEY], split)]
    cores = len(os.sched_getaffinity(0))
    args = beam_args_for(self._beam_pipeline_args,
                         rows_at_least(files, PROCESSES_FROM_ROWS), cores)
    if args != self._beam_pipeline_args:
      logging.info("At least %d eval examples: evaluating on %d worker processes.",
                   PROCESSES_FROM_ROWS, cores)
      self._beam_pipeline_args = args
    text = exec_properties.get(std.EVAL_CONFIG_KEY)
    if text:
      config = tfma.EvalConfig()
      proto_utils.json_to_proto(text, config)
      columns = _sliced_columns(config)
      if config.options.min_slice_size.value > 1 and columns:
        if std.SCHEMA_KEY not in input_dict:
          raise ValueError("A sliced gate needs the schema: pass `schema` to the "
                           "Evaluator.")
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict[std.SCHEMA_KEY])))
        sizes = slice_sizes(files, schema, columns)
        minimum = config.options.min_slice_size.value
        for column in columns:
          logging.info("Slices of %s gated (>= %d examples): %s; not gated: %s",
                       column, minimum,
                       sorted(v for v, c in sizes[column].items() if c >= minimum),
                       sorted(v for v, c in sizes[column].items() if c < minimum))
        config = narrow_slice_thresholds(config, sizes)
        exec_properties = dict(exec_properties)
        exec_properties[std.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(config)
    try:
      super().Do(input_dict, output_dict, exec_properties)
    except Exception as e:  # pylint: disable=broad-except
      missing = custom_ops.missing_ops_error(e, "A model the Evaluator loads", imported)
      if missing:
        raise missing from e
      raise


class EvaluatorSpec(std.EvaluatorSpec):
  """TFX's EvaluatorSpec and `model_imports` (a JSON list of module names)."""
  PARAMETERS = {
      **std.EvaluatorSpec.PARAMETERS,
      MODEL_IMPORTS_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }


class Evaluator(evaluator_component.Evaluator):
  """TFX's Evaluator whose slice thresholds skip slices below min_slice_size,
  importing `model_imports` before it loads a model."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self, *, model_imports: Sequence[str] = (), **kwargs):
    """TFX's Evaluator arguments, and `model_imports` (see the module)."""
    if isinstance(model_imports, str):
      raise ValueError("model_imports is a list of Python module names; got "
                       f"{model_imports!r}.")
    super().__init__(**kwargs)
    if model_imports:
      # TFX's __init__ built its own spec; this one is it plus the imports.
      self.spec = EvaluatorSpec(
          **self.spec.inputs, **self.spec.outputs, **self.spec.exec_properties,
          **{MODEL_IMPORTS_KEY: json_utils.dumps(list(model_imports))})
