"""The LiteRT export's and the LiteRT-carrying Pusher's ComponentSpecs."""
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as std
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

TASK_KEY = "task"
LABEL_KEY_KEY = "label_key"
REPRESENTATIVE_ROWS_KEY = "representative_rows"
SEED_KEY = "seed"
TEACHER_MODEL_KEY = "teacher_model"
TEACHER_IMPORTS_KEY = "teacher_imports"
FLOAT_KEY = "litert_float"
INT8_KEY = "litert_int8"
LITERT_BLESSING_KEY = "litert_blessing"
GATE_EXAMPLES_KEY = "gate_examples"
DEFAULT_REPRESENTATIVE_ROWS = 300
# Transformed eval rows the LiteRT gate scores (the first ones): TFMA runs a
# LiteRT file one example at a time, and int8 against float32 is told apart
# long before a million rows.
GATE_ROWS = 50_000



class LiteRTExportSpec(ComponentSpec):
  """The student (a Model), the Transform's outputs -> two LiteRT Models."""
  PARAMETERS = {
      TASK_KEY: ExecutionParameter(type=str),
      LABEL_KEY_KEY: ExecutionParameter(type=str),
      # Transformed train rows the int8 calibration sees.
      REPRESENTATIVE_ROWS_KEY: ExecutionParameter(type=int, optional=True),
      SEED_KEY: ExecutionParameter(type=int, optional=True),
      # JSON list of modules registering the teacher's ops (TF-DF).
      TEACHER_IMPORTS_KEY: ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      std.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      std.TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
      # The Transform's transformed examples (train: calibration; eval: checks).
      std.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      # Measured beside the student, when given.
      TEACHER_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
  }
  OUTPUTS = {
      FLOAT_KEY: ChannelParameter(type=standard_artifacts.Model),
      INT8_KEY: ChannelParameter(type=standard_artifacts.Model),
      # The first GATE_ROWS transformed eval rows, for the LiteRT gate.
      GATE_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }


class PusherSpec(std.PusherSpec):
  """TFX's Pusher's, and the LiteRT files pushed with the model."""
  INPUTS = {
      **std.PusherSpec.INPUTS,
      FLOAT_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
      INT8_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
      LITERT_BLESSING_KEY: ChannelParameter(
          type=standard_artifacts.ModelBlessing, optional=True),
  }
