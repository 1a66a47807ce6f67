"""Which `tf.distribute` strategy the student trains under, and who exports.

The Distiller trains under the strategy the machine and `TF_CONFIG` call for,
as a TFX Trainer's `run_fn` is expected to:

- `TF_CONFIG` naming more than one task in its cluster (what Vertex AI
  training and Kubeflow's training operators set for each worker):
  `MultiWorkerMirroredStrategy`. Every worker runs the Distiller's executor on
  the same inputs; each trains on its shard of every batch and the gradients
  are all-reduced, so the workers hold the same student. The chief (task
  type `chief`, or worker 0 when the cluster has no chief) exports it and
  records it; the others export to scratch, as Keras asks of every worker.
- Otherwise, more than one GPU (or logical device) here: `MirroredStrategy`
  over them.
- Otherwise TensorFlow's default strategy: no distribution, no cost.

`distribution` (the Distiller's setting) names one instead of "auto":
"none", "mirrored", "multi_worker".
"""
import json
import os
from typing import Optional

import tensorflow as tf

AUTO, NONE, MIRRORED, MULTI_WORKER = "auto", "none", "mirrored", "multi_worker"
CHOICES = (AUTO, NONE, MIRRORED, MULTI_WORKER)


class DistributionError(ValueError):
  """The strategy asked for does not fit this machine or TF_CONFIG."""


def tf_config() -> dict:
  """TF_CONFIG parsed ({} when unset); a value that is not JSON is named."""
  raw = os.environ.get("TF_CONFIG", "")
  if not raw.strip():
    return {}
  try:
    return json.loads(raw)
  except json.JSONDecodeError as e:
    raise DistributionError(f"TF_CONFIG is not JSON ({e}): {raw[:200]!r}") from e


def cluster_size(config: Optional[dict] = None) -> int:
  """The tasks in TF_CONFIG's cluster that train (chief and workers)."""
  cluster = (tf_config() if config is None else config).get("cluster", {})
  return sum(len(cluster.get(kind, ())) for kind in ("chief", "worker"))


def is_chief(config: Optional[dict] = None) -> bool:
  """Whether this process exports and records the student."""
  config = tf_config() if config is None else config
  task = config.get("task", {})
  if cluster_size(config) <= 1 or not task:
    return True
  if "chief" in config.get("cluster", {}):
    return task.get("type") == "chief"
  return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def check(choice: str) -> str:
  if choice not in CHOICES:
    raise DistributionError(f"distribution must be one of {list(CHOICES)}; got {choice!r}.")
  return choice


def strategy(choice: str = AUTO) -> tf.distribute.Strategy:
  """The strategy for `choice` (see the module docstring)."""
  check(choice)
  workers = cluster_size()
  if choice == MULTI_WORKER or (choice == AUTO and workers > 1):
    if workers <= 1:
      raise DistributionError(
          "distribution='multi_worker' needs TF_CONFIG naming the cluster's "
          "workers (Vertex AI and Kubeflow's training operators set it); it is "
          + ("unset." if not tf_config() else f"{os.environ['TF_CONFIG'][:200]!r}."))
    return tf.distribute.MultiWorkerMirroredStrategy()
  devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
  if choice == MIRRORED or (choice == AUTO and len(devices) > 1):
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  return tf.distribute.get_strategy()
