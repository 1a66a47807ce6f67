"""The Distiller's training defaults, and the loss's temperature and alpha ranges.

The one place of each: the Distiller's arguments, its executor and the
pipeline's `Settings` all default and check them here. Pure Python (no
TensorFlow, no TFX), so the settings and the command line can import it.
`alpha` weighs the **soft** (teacher) term (losses.py).
"""

# bench/distill.py's T x alpha grid over the three taxi tasks and a synthetic
# table, 3 seeds: T = 1, alpha = 1 (soft labels only) trails the best cell of
# each task by at most 1.2 seed spreads, every other cell by more (T = 2,
# alpha = 0.9, the earlier default: 2.6 on the binary label).
DEFAULT_TEMPERATURE = 1.0
DEFAULT_ALPHA = 1.0
# The student's batch and Adam's learning rate (the component's arguments and
# Settings' fields).
DEFAULT_BATCH_SIZE = 256
DEFAULT_LEARNING_RATE = 1e-3
# Rows of each part the two students are scored on at most (choice.py): the
# validation cut and the eval split. Enough to tell two students apart (an
# AUC's standard error is about 0.002 at this size), and a constant cost
# however large the data.
SCORED_ROWS = 50_000


def check_alpha(alpha: float) -> float:
  """`alpha`, unless it lies outside [0, 1] (ValueError; NaN too)."""
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(
        f"alpha weighs the soft (teacher) term and must lie in [0, 1]; got {alpha!r}.")
  return alpha


def check_temperature(temperature: float) -> float:
  """`temperature`, unless it is not > 0 (ValueError; NaN too)."""
  if not temperature > 0.0:
    raise ValueError(f"temperature must be > 0; got {temperature!r}.")
  return temperature
