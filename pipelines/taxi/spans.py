"""Retraining on spans, played locally: what a production schedule does.

    .venv/bin/python -m distill_pipelines.taxi.spans --workdir /tmp/spans

The embedded taxi CSV is cut into spans that arrive one at a time under
`WORKDIR/data/span-N/`, and after each arrival the run a cron job would start
reads the newest span, as

    tfx-distill run --data-root WORKDIR/data --input-pattern 'span-{SPAN}/*.csv'
                    --pipeline-root WORKDIR/pipeline [SCENARIO_GATES]

would (the same settings check, `inputs.settings_from`, and the same local
run, `local.run`; the gates' bounds set for spans this small: see
SCENARIO_GATES).

1. span 1 (half of the rows): the first run; the schema is inferred, the
   teacher trained, the student passes the fidelity gate and, with nothing
   serving yet, is pushed as version 1.
2. span 2 (the other half, same distribution): validated against the kept
   schema of run 1; a new teacher and student are trained; the student is
   pushed as version 2 only if it is no worse than version 1 (it should be,
   and is).
3. span 2 again, by hand, with botched training (a handful of steps for the
   teacher and for both students: the distilled one and the one trained
   alone, so the Distiller's fallback to the student alone cannot save it):
   the student copies its teacher closely enough for the fidelity gate,
   but it is much worse than version 2: the no-regression gate refuses it,
   nothing pushed.
4. span 3, whose `payment_type` shifted (a payment type the schema has never
   seen, in 40% of the trips): the DataGate stops the run before any
   training; nothing pushed.

Prints each run's summary, then one line per run: exit status, what stopped
it, the serving versions after it. Exit status 0 when every run ended as
expected.
"""

import argparse
import csv
import dataclasses
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from distill_pipelines.taxi import raw_data

NEW_PAYMENT_TYPE = "Mobile Wallet"
# The scenario's gates, in both modes: a span of 7.5k rows leaves ~2.5k eval
# rows, on which two honest students differ by more than the demo's bounds
# (measured on span 2 with the shipped steps: calibration 1.06-1.11 where
# the model serving had 0.98, log loss 5-8% above it), so the demo's bounds
# would refuse span 2's student on noise. These still refuse the botched
# training of step 3 by far.
# (--gate-max-drop 0.05 --serving-max-drop 0.03 --max-log-loss-increase 0.15
# --calibration-tolerance 0.2)
SCENARIO_GATES = {"gate": {"max_drop": 0.05},
                  "no_regression": {"max_drop": 0.03, "max_log_loss_increase": 0.15,
                                    "calibration_tolerance": 0.2}}
# --quick: few training steps (for tests).
QUICK_STEPS = {"train_steps": 300, "distill_steps": 1000, "eval_steps": 20}
SHIFTED_FRACTION = 0.4


def _write(rows: Sequence[Dict[str, str]], fieldnames, path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)


def span_rows(span: int) -> List[Dict[str, str]]:
  """The rows of span 1, 2 or 3 (see module docstring)."""
  with open(raw_data.csv_path(), newline="", encoding="utf-8") as f:
    # The one trip of 15,002 with a pickup census tract is left out: in the
    # span holding it CsvExampleGen would read that column as INT, in the
    # other as BYTES (always empty), and the DataGate would rightly refuse
    # the type change.
    rows = [r for r in csv.DictReader(f) if not r["pickup_census_tract"]]
  if span == 1:
    return rows[0::2]
  shifted = [dict(r) for r in rows[1::2]]
  if span == 3:
    for i, row in enumerate(shifted):
      if i % 5 < round(SHIFTED_FRACTION * 5):  # 2 rows in 5
        row["payment_type"] = NEW_PAYMENT_TYPE
  return shifted


def add_span(data_root: str, span: int) -> str:
  """Writes span `span` under data_root/span-{span}/; returns its file."""
  rows = span_rows(span)
  path = os.path.join(data_root, f"span-{span}", "data.csv")
  _write(rows, list(rows[0]), path)
  return path


@dataclasses.dataclass
class Step:
  """One scheduled run: the span it reads and what it should do."""
  name: str
  span: int
  settings: Dict[str, Any]  # what this run changes, named like Settings' fields
  expect_pushed: bool
  expect_stopped_by: Optional[str]


def steps(botched_steps: int = 3) -> List[Step]:
  return [
      Step("span 1 arrives", 1, {}, True, None),
      Step("span 2 arrives", 2, {}, True, None),
      Step("span 2, botched training", 2,
           {"teacher_type": "mlp", "train_steps": botched_steps,
            "distill_steps": botched_steps, "gate": {"threshold": 0, "max_drop": 1}},
           False, "no regression (student vs serving model)"),
      Step("span 3 arrives (shifted)", 3, {}, False, "data validation"),
  ]


@dataclasses.dataclass
class Outcome:
  step: Step
  exit_status: int
  stopped_by: Optional[str]
  pushed_to: Optional[str]
  versions: List[str]
  seconds: float

  @property
  def as_expected(self) -> bool:
    return (bool(self.pushed_to) == self.step.expect_pushed
            and self.stopped_by == self.step.expect_stopped_by)


def merged(*layers: Dict[str, Any]) -> Dict[str, Any]:
  """Settings values, later layers winning; the gates' dicts merge key by key."""
  result: Dict[str, Any] = {}
  for layer in layers:
    for key, value in layer.items():
      result[key] = ({**result.get(key, {}), **value} if isinstance(value, dict)
                     else value)
  return result


def play(workdir: str, extra: Dict[str, Any]) -> List[Outcome]:
  """Plays every step in `workdir` with `extra` settings; returns what each
  run did."""
  from distill_pipelines import inputs  # pylint: disable=g-import-not-at-top
  from distill_pipelines import local  # pylint: disable=g-import-not-at-top
  from distill_pipelines import report  # pylint: disable=g-import-not-at-top
  from distill_pipelines.taxi import config  # pylint: disable=g-import-not-at-top
  data_root = os.path.join(workdir, "data")
  root = os.path.join(workdir, "pipeline")
  serving = os.path.join(root, "serving_model")
  outcomes = []
  for step in steps():
    if not os.path.isdir(os.path.join(data_root, f"span-{step.span}")):
      add_span(data_root, step.span)
    values = merged({"data_root": data_root, "input_pattern": "span-{SPAN}/*.csv",
                     "pipeline_root": root}, extra, step.settings)
    print(f"\n=== {step.name}: tfx-distill run --input-pattern 'span-{{SPAN}}/*.csv'"
          + (f" with {step.settings}" if step.settings else ""), flush=True)
    started = time.time()
    status = local.run(inputs.settings_from(values, preset=config))
    summary = report.summarize(os.path.join(root, "metadata.sqlite"),
                               config.PIPELINE_NAME)
    outcomes.append(Outcome(
        step, status, summary.stopped_by, summary.pushed_to,
        sorted(os.listdir(serving)) if os.path.isdir(serving) else [],
        time.time() - started))
  return outcomes


def render(outcomes: Sequence[Outcome]) -> str:
  lines = [f"{'run':<26}{'exit':>5}  {'stopped by':<43}"
           f"{'versions serving':>17}{'seconds':>9}  as expected"]
  for o in outcomes:
    lines.append(f"{o.step.name:<26}{o.exit_status:>5}  "
                 f"{o.stopped_by or '-':<43}{len(o.versions):>17}{o.seconds:>9.0f}"
                 f"  {'yes' if o.as_expected else 'NO'}")
  return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True,
                      help="where the spans, the pipeline root and MLMD go")
  parser.add_argument("--quick", action="store_true",
                      help="few training steps (for tests), not the demo's")
  args = parser.parse_args(argv)
  if os.path.exists(os.path.join(args.workdir, "pipeline")):
    parser.error(f"{args.workdir} already holds a pipeline; give a new --workdir")
  outcomes = play(args.workdir, merged(QUICK_STEPS, SCENARIO_GATES) if args.quick
                  else SCENARIO_GATES)
  print("\n" + render(outcomes))
  return 0 if all(o.as_expected for o in outcomes) else 1


if __name__ == "__main__":
  sys.exit(main())
