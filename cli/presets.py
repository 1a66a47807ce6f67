"""Named `Settings` presets: a whole pipeline's settings under one name.

`tfx-distill run` with no `--label` runs the default preset (the taxi demo on
the Chicago taxi CSV that ships inside tfx). A preset is a module that
defines:

- `PIPELINE_NAME`: its pipeline's name;
- `embedded_data_root()`: the data it runs on when no data root is given;
- `LABEL_SOURCE_COLUMNS`: the columns its label is computed from, and
  `READ_COLUMNS`: the columns its preprocessing reads (checked in the CSV
  before anything runs; READ_COLUMNS may not be empty in every row);
- `settings(**overrides)`: its `Settings`, overrides winning;
- `teacher_settings(teacher_type)`: its own teacher of that type as settings
  (ValueError for a type it has none of).

This module is the only one outside a preset's folder that imports it; the
command line hands the preset to `distill_pipelines.inputs.settings_from`.
"""

PRESETS = ("taxi",)
DEFAULT = "taxi"


def load(name: str = DEFAULT):
  """The preset module named `name`."""
  if name == "taxi":
    from distill_pipelines.taxi import config  # pylint: disable=g-import-not-at-top
    return config
  raise ValueError(f"No preset {name!r}; the presets are {list(PRESETS)}.")
