"""The size and serving latency of a SavedModel: one module for report.html and bench/.

- `load` finds the SavedModel of a Model artifact's directory (TFX exports it
  under `Format-Serving`) or of a bare SavedModel directory;
- `saved_model_bytes` is its size on disk, the figure the Distiller records
  in MLMD (the same function, `distill_components.distiller.export`'s);
- `time_calls` times callables in turn, call by call, so that machine noise
  hits each alike (bench/serving.py compares teacher and student with it);
- `serving_latency` is the page's figure: the median of a few calls of
  `serving_default` on serialized tf.Examples, per batch size;
  `features_latency` the same for a signature fed transformed features, and
  `median_latency` for any call (LiteRT's interpreter: litert/convert.py).

Nothing here knows which model it measures, nor TFX's orchestration.
"""

import dataclasses
import statistics
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

# Serving latency: one request, and one batch of this many raw examples.
LATENCY_BATCHES = (1, 256)
# Per model and batch size: at most this many timed calls, or this long.
LATENCY_CALLS, LATENCY_SECONDS = 7, 0.4


@dataclasses.dataclass
class Latency:
  """Median milliseconds per `serving_default` call, by batch size."""
  ms: Dict[int, float] = dataclasses.field(default_factory=dict)
  note: str = ""  # why nothing was measured


def serving_dir(model_dir: str) -> Optional[str]:
  """The directory holding the SavedModel: TFX's `Format-Serving` under a
  Model artifact's URI, else `model_dir` itself; None if neither holds one."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  for candidate in (path_utils.serving_model_dir(model_dir), model_dir):
    if tf.saved_model.contains_saved_model(candidate):
      return candidate
  return None


def load(model_dir: str):
  """The SavedModel in `model_dir` (see `serving_dir`), or None."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  found = serving_dir(model_dir)
  return tf.saved_model.load(found) if found else None


def saved_model_bytes(model_dir: str) -> int:
  """The size on disk of the SavedModel in `model_dir` (see `serving_dir`)."""
  from distill_components.distiller import export  # pylint: disable=g-import-not-at-top
  return export.saved_model_bytes(serving_dir(model_dir) or model_dir)


def input_name(signature) -> str:
  """The one argument of a signature fed serialized tf.Examples."""
  return next(iter(signature.structured_input_signature[1]))


def time_calls(calls: Mapping[str, Callable[[], object]], rounds: int,
               warmup: int = 1, budget_seconds: Optional[float] = None
               ) -> Dict[str, List[float]]:
  """Milliseconds of each call of each callable, in turn, `rounds` times.

  Each callable is first called `warmup` times untimed (tracing, first-call
  costs). With `budget_seconds`, no round starts once that much time has
  passed since the timing began.
  """
  for call in calls.values():
    for _ in range(warmup):
      call()
  times: Dict[str, List[float]] = {name: [] for name in calls}
  began = time.perf_counter()
  for _ in range(rounds):
    if budget_seconds is not None and time.perf_counter() - began >= budget_seconds:
      break
    for name, call in calls.items():
      start = time.perf_counter()
      call()
      times[name].append((time.perf_counter() - start) * 1000)
  return times


def median_latency(make_call: Callable[[int], Callable[[], object]], total: int,
                   batches: Sequence[int] = LATENCY_BATCHES) -> Latency:
  """Median ms of the call `make_call(n)` makes (a batch of the first n of
  `total` inputs), per n, timed alike for every kind of model."""
  latency = Latency()
  for size in batches:
    call = make_call(size)
    times = time_calls({"call": call}, LATENCY_CALLS, budget_seconds=LATENCY_SECONDS)
    latency.ms[min(size, total)] = statistics.median(times["call"])
  return latency


def serving_latency(model_dir: Optional[str], examples: List[bytes],
                    batches: Sequence[int] = LATENCY_BATCHES) -> Latency:
  """Median ms of `serving_default` on the first n of `examples`, per n."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not model_dir:
    return Latency(note="no model recorded")
  if not examples:
    return Latency(note="no eval examples found")
  try:
    model = load(model_dir)
    signature = model.signatures["serving_default"] if model is not None else None
  except Exception as e:  # pylint: disable=broad-except
    return Latency(note=f"could not load: {type(e).__name__}")
  if signature is None:
    return Latency(note=f"no SavedModel in {model_dir}")

  def call(size):
    batch = {input_name(signature): tf.constant(examples[:size])}
    return lambda: signature(**batch)
  return median_latency(call, len(examples), batches)


def features_latency(signature, rows: Mapping[str, object],
                     batches: Sequence[int] = LATENCY_BATCHES) -> Latency:
  """Median ms of a signature fed transformed features (`rows`: name ->
  array, one keyword argument each), per batch size."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  total = len(next(iter(rows.values())))

  def call(size):
    batch = {k: tf.constant(v[:size]) for k, v in rows.items()}
    return lambda: signature(**batch)
  return median_latency(call, total, batches)
