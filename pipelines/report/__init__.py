"""What a person sees after a run: the text summary and report.html.

Everything is read back from ML Metadata through `distill_pipelines.mlmd`
(the one reader, on TFX's and MLMD's helpers) and from what TFMA wrote:

- `evaluation`: what TFMA wrote for each gate (figures per slice, plots,
  thresholds, failures);
- `summary`: `RunSummary`, `summarize` and `render`, the text
  `tfx-distill run` prints at the end;
- `page`, `figures`, `html` and `templates/`: report.html (the page's data,
  its matplotlib plots, its jinja2 templates); `python -m
  distill_pipelines.report` rewrites one.

Model size and serving latency are measured in `distill_components.measure`,
which bench/ uses too. Importing this package loads neither TensorFlow nor
TFX: the command line imports it before it checks its flags.
"""

from distill_pipelines.report.evaluation import gate_failures
from distill_pipelines.mlmd import ComponentRun
from distill_pipelines.mlmd import component_runs
from distill_pipelines.mlmd import open_store
from distill_pipelines.report.summary import GateResult
from distill_pipelines.report.summary import ModelSide
from distill_pipelines.report.summary import NAME_WIDTH
from distill_pipelines.report.summary import RunSummary
from distill_pipelines.report.summary import choice_lines
from distill_pipelines.report.summary import ratio
from distill_pipelines.report.summary import render
from distill_pipelines.report.summary import summarize

__all__ = [
    "ComponentRun", "GateResult", "ModelSide", "NAME_WIDTH", "RunSummary",
    "choice_lines", "component_runs", "gate_failures", "open_store", "ratio",
    "render", "summarize",
]
