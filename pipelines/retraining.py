"""What a retraining run keeps from the runs before it: the schema, the teacher.

Decided when a run's pipeline is built (`plan`), from the pipeline's ML
Metadata. A curated schema (`Settings.schema_file`) is imported as given.
Otherwise the first run infers one (SchemaGen) and every later run imports
that first schema (kept), so a span is validated against what the model was
built on, not against a schema re-inferred from the span itself. The kept
copy tolerates rare new categorical values (see `NEW_VALUE_TOLERANCE`); a new
value in many rows is an anomaly, and the DataGate stops the run.

Training the teacher is the expensive step. With
`Settings.reuse_teacher_spans = N` (> 0), a run whose newest span is fewer
than N spans past the span of the teacher behind the serving student (the
newest teacher whose run pushed its student) imports that teacher (TFX Importer) instead of training one, and the
Distiller feeds it the span's raw examples through its own serving
signature (its own Transform: the new span's would give it other feature
ids). Every N spans the teacher is retrained. Decided from ML Metadata when
the run's pipeline is built, so only `tfx-distill run` offers it; a compiled
Kubeflow package always trains its teacher.
"""

import dataclasses
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from distill_pipelines import mlmd
from distill_pipelines import names
from distill_pipelines.settings import Settings

# A kept schema accepts categorical values it has not seen in up to this
# fraction of a span's rows (TFDV's min_domain_mass = 1 - this); more is an
# anomaly. Rare new values (a new taxi company with a few trips) are normal.
NEW_VALUE_TOLERANCE = 0.01
KEPT_SCHEMA_DIR = "kept_schema"


@dataclasses.dataclass(frozen=True)
class Plan:
  """The schema this run validates against, its teacher, and why, in words."""
  settings: Settings  # with `schema_file` / `teacher_model` set when kept
  schema_note: str
  teacher_note: Optional[str] = None  # None: as the settings say


@dataclasses.dataclass(frozen=True)
class TrainedTeacher:
  """The latest teacher the pipeline's Trainer wrote, and its span."""
  uri: str
  span: int


def _complete_executions(store, pipeline_name: str, node_id: str):
  node = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
  if node is None:
    return []
  done = (metadata_store_pb2.Execution.COMPLETE,)
  return sorted((e for e in store.get_executions_by_context(node.id)
                 if e.last_known_state in done), key=lambda e: e.id)


def first_schema_uri(handle, pipeline_name: str) -> Optional[str]:
  """The schema the first completed SchemaGen run of this pipeline inferred
  (`handle`: an entered `mlmd.connect(...)`)."""
  for execution in _complete_executions(handle.store, pipeline_name, names.SCHEMA_GEN):
    schema = mlmd.execution(handle, execution.id).output(names.SCHEMA_KEY)
    if schema is not None:
      return schema.uri
  return None


def keep_schema(schema_uri: str, out_dir: str) -> str:
  """Writes the kept copy of the schema in `schema_uri`; returns its file.

  Categorical (string-domain) features get a `min_domain_mass` of
  1 - NEW_VALUE_TOLERANCE unless the schema sets one.
  """
  from tfx.utils import io_utils  # pylint: disable=g-import-not-at-top
  schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_uri))
  for feature in schema.feature:
    has_domain = feature.HasField("domain") or feature.HasField("string_domain")
    if has_domain and not feature.distribution_constraints.HasField(
        "min_domain_mass"):
      feature.distribution_constraints.min_domain_mass = 1.0 - NEW_VALUE_TOLERANCE
  path = os.path.join(out_dir, "schema.pbtxt")
  io_utils.write_pbtxt_file(path, schema)
  return path


def _pushed_in_run(handle, execution_id: int) -> bool:
  """Whether the pipeline run of `execution_id` pushed a student."""
  from distill_components.distiller import properties  # pylint: disable=g-import-not-at-top
  runs = [c for c in handle.store.get_contexts_by_execution(execution_id)
          if c.type == "pipeline_run"]
  for run in runs:
    for execution in handle.store.get_executions_by_context(run.id):
      outputs = mlmd.execution(handle, execution.id).outputs
      for pushed in outputs.get(names.PUSHED_MODEL_KEY, []):
        if mlmd.custom(pushed, properties.PUSHED) == 1:
          return True
  return False


def latest_teacher(handle, pipeline_name: str) -> Optional[TrainedTeacher]:
  """The newest teacher the Trainer wrote whose run pushed its student (the
  teacher behind the model serving, not one whose student the gates
  refused), and the ExampleGen span it was trained on (Trainer <- Transform's
  examples <- ExampleGen's, which carry the span). `handle`: an entered
  `mlmd.connect(...)`."""
  for execution in reversed(_complete_executions(handle.store, pipeline_name,
                                                 names.TRAINER)):
    if not _pushed_in_run(handle, execution.id):
      continue
    trainer = mlmd.execution(handle, execution.id)
    model, examples = trainer.output(names.MODEL_KEY), trainer.input(names.EXAMPLES_KEY)
    transform = mlmd.producer(handle, examples.id) if examples else None
    span = mlmd.custom(transform.input(names.EXAMPLES_KEY), "span") if transform else None
    if model is not None and span is not None:
      return TrainedTeacher(model.uri, int(span))
  return None


def newest_span(settings: Settings) -> Optional[int]:
  """The span ExampleGen will read, from the files under the data root."""
  if not settings.input_pattern or "://" in settings.data_root:
    return None
  from distill_pipelines import table  # pylint: disable=g-import-not-at-top
  keyed = table.span_files(settings.data_root, settings.input_pattern)
  return max(keyed)[0] if keyed else None


def _teacher_plan(settings: Settings, handle):
  """(settings, note) for reusing the latest teacher, or (settings, None)."""
  every = settings.reuse_teacher_spans
  if not every or settings.teacher_model:
    return settings, None
  span = newest_span(settings)
  found = latest_teacher(handle, settings.pipeline_name) if handle else None
  if span is None or found is None:
    return settings, f"trained on span {span} (no teacher to reuse yet)"
  age = span - found.span
  if 0 <= age < every:
    # An imported teacher's folds are of another span's rows: none are used.
    return (settings.replace(teacher_model=found.uri, teacher=None, teacher_type=None,
                             teacher_folds=0, teacher_imports=settings.teacher_modules),
            f"reused from span {found.span} ({found.uri}; {age} "
            f"span{'' if age == 1 else 's'} old, retrained every {every})")
  return settings, (f"trained on span {span} (the latest, from span {found.span}, "
                    f"is {age} spans old; retrained every {every})")


def plan(settings: Settings, metadata_path: str) -> Plan:
  """The schema and teacher of the run about to start (see module docstring)."""
  if not os.path.isfile(metadata_path):  # the first run: nothing kept yet
    return _plan(settings, None)
  with mlmd.connect(metadata_path) as handle:
    return _plan(settings, handle)


def _plan(settings: Settings, handle) -> Plan:
  schema_note = "inferred from this span (first run)"
  if settings.schema_file:
    schema_note = f"imported from {settings.schema_file}"
  elif handle is not None:
    first = first_schema_uri(handle, settings.pipeline_name)
    if first:
      kept = keep_schema(first, os.path.join(settings.pipeline_root,
                                             KEPT_SCHEMA_DIR))
      settings = settings.replace(schema_file=kept)
      schema_note = f"kept from the first run ({first})"
  settings, teacher_note = _teacher_plan(settings, handle)
  return Plan(settings, schema_note, teacher_note)
