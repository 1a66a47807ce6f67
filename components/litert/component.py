"""The student for other runtimes: `LiteRTExport`, and a `Pusher` that pushes
the LiteRT files with the SavedModel student.

    export = LiteRTExport(model=distiller.outputs["model"],
                          transform_graph=transform.outputs["transform_graph"],
                          examples=transform.outputs["transformed_examples"],
                          task="binary", label_key="tips_xf")
    gate = Evaluator(examples=transform.outputs["transformed_examples"],
                     model=export.outputs["litert_int8"],
                     baseline_model=export.outputs["litert_float"], ...)
    Pusher(model=distiller.outputs["model"], model_blessing=...,
           litert_float=export.outputs["litert_float"],
           litert_int8=export.outputs["litert_int8"],
           litert_blessing=gate.outputs["blessing"], push_destination=...)
"""
import json
from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from distill_components.distiller import tasks
from distill_components.litert import executor
from distill_components.litert import spec as spec_lib


class LiteRTExport(base_component.BaseComponent):
  """Writes the student as LiteRT float32 and int8 (executor.py, convert.py)."""
  SPEC_CLASS = spec_lib.LiteRTExportSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, *, model: types.BaseChannel, transform_graph: types.BaseChannel,
               examples: types.BaseChannel, task, label_key: str,
               teacher_model: Optional[types.BaseChannel] = None,
               teacher_imports: Sequence[str] = (),
               representative_rows: int = spec_lib.DEFAULT_REPRESENTATIVE_ROWS,
               seed: int = 0):
    if representative_rows < 1:
      raise ValueError(f"representative_rows must be >= 1; got {representative_rows}.")
    if not label_key:
      raise ValueError("label_key (the transformed label feature) is required.")
    super().__init__(spec=spec_lib.LiteRTExportSpec(
        model=model, transform_graph=transform_graph, examples=examples,
        teacher_model=teacher_model, task=tasks.Task.parse(task).value,
        label_key=label_key, representative_rows=representative_rows, seed=seed,
        teacher_imports=json.dumps(list(teacher_imports)),
        litert_float=types.Channel(type=standard_artifacts.Model),
        litert_int8=types.Channel(type=standard_artifacts.Model),
        gate_examples=types.Channel(type=standard_artifacts.Examples)))


class Pusher(base_component.BaseComponent):
  """TFX's Pusher; the pushed version also holds `assets.extra/litert/`: the
  float32 file, and the int8 one only when `litert_blessing` blessed it."""
  SPEC_CLASS = spec_lib.PusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.PusherExecutor)

  def __init__(self, *, model: types.BaseChannel, model_blessing: types.BaseChannel,
               push_destination: pusher_pb2.PushDestination,
               litert_float: Optional[types.BaseChannel] = None,
               litert_int8: Optional[types.BaseChannel] = None,
               litert_blessing: Optional[types.BaseChannel] = None):
    if (litert_int8 is None) != (litert_blessing is None):
      raise ValueError("litert_int8 and litert_blessing go together: the int8 "
                       "file is pushed only when its gate blessed it.")
    super().__init__(spec=spec_lib.PusherSpec(
        model=model, model_blessing=model_blessing, push_destination=push_destination,
        custom_config=json_utils.dumps(None), litert_float=litert_float,
        litert_int8=litert_int8, litert_blessing=litert_blessing,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
