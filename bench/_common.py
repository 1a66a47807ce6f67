"""Shared by the benchmarks: where their figures go, and finding artifacts."""
import json
import os
from typing import List


def save(out_dir: str, name: str, data: object, table_lines: List[str]) -> None:
  """Writes the raw figures as JSON and the table as markdown, and prints it."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, f"{name}.json"), "w", encoding="utf-8") as f:
    json.dump(data, f, indent=2)
  table = "\n".join(table_lines)
  with open(os.path.join(out_dir, f"{name}.md"), "w", encoding="utf-8") as f:
    f.write(table + "\n")
  print(table)


def newest_artifact(store, type_name: str, component: str):
  """The newest `type_name` artifact `component` wrote, as a TFX Artifact."""
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  found = [a for a in store.get_artifacts_by_type(type_name)
           if f"/{component}/" in a.uri]
  if not found:
    raise SystemExit(f"No {type_name} from {component} in this pipeline root; run "
                     "bench/quality.py first.")
  newest = max(found, key=lambda a: a.id)
  [artifact_type] = store.get_artifact_types_by_id([newest.type_id])
  return artifact_utils.deserialize_artifact(artifact_type, newest)


def pyplot():
  """matplotlib's pyplot, drawing to files only (no display here)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save_figure(fig, path: str) -> None:
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  pyplot().close(fig)


def bar_panel(axis, labels, means, stds, colors, title: str, rotation: int = 30) -> None:
  """One panel of mean ± std bars, the y range fitted around them."""
  axis.bar(range(len(labels)), means, yerr=stds, color=colors[:len(labels)], capsize=3)
  axis.set_xticks(range(len(labels)))
  axis.set_xticklabels(labels, rotation=rotation, ha="right", fontsize=8)
  low, high = min(means) - 3 * max(stds + [1e-4]), max(means) + 3 * max(stds + [1e-4])
  pad = (high - low) * 0.2
  axis.set_ylim(low - pad, high + pad)
  axis.set_title(title, fontsize=10)


def seeded_run_flags(parser, name: str) -> None:
  """The flags every seeded benchmark takes: seeds, tasks, where results and
  scratch go (bench/results, bench/work/<name>)."""
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--only", nargs="*", default=None)
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--work", default=os.path.join("bench", "work", name))
