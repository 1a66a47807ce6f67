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

TF_CONFIG is read by TensorFlow's own `TFConfigClusterResolver`, the reader
`MultiWorkerMirroredStrategy` uses, so the cluster counted here is the one
the strategy joins.
"""
import json
import os
from typing import Optional

import tensorflow as tf

_Resolver = tf.distribute.cluster_resolver.ClusterResolver

AUTO, NONE, MIRRORED, MULTI_WORKER = "auto", "none", "mirrored", "multi_worker"
CHOICES = (AUTO, NONE, MIRRORED, MULTI_WORKER)


class DistributionError(ValueError):
  """The strategy asked for does not fit this machine or TF_CONFIG."""


def cluster_resolver() -> _Resolver:
  """TensorFlow's `TFConfigClusterResolver` on TF_CONFIG, checked here: a
  value that is not JSON is named now, not deep inside a strategy."""
  if not os.environ.get("TF_CONFIG", "").strip():
    # Unset or blank: no cluster (the resolver would fail on a blank value).
    return tf.distribute.cluster_resolver.SimpleClusterResolver(tf.train.ClusterSpec({}))
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  try:
    resolver.cluster_spec()  # the resolver parses TF_CONFIG on each read
  except json.JSONDecodeError as e:
    raise DistributionError(
        f"TF_CONFIG is not JSON ({e}): {os.environ['TF_CONFIG'][:200]!r}") from e
  return resolver


def cluster_size(resolver: Optional[_Resolver] = None) -> int:
  """The tasks in TF_CONFIG's cluster that train (chief and workers)."""
  cluster = (resolver or cluster_resolver()).cluster_spec().as_dict()
  return sum(len(cluster.get(kind, ())) for kind in ("chief", "worker"))


def is_chief(resolver: Optional[_Resolver] = None) -> bool:
  """Whether this process exports and records the student."""
  resolver = resolver or cluster_resolver()
  no_task = resolver.task_type is None and resolver.task_id is None
  if cluster_size(resolver) <= 1 or no_task:
    return True
  if "chief" in resolver.cluster_spec().jobs:
    return resolver.task_type == "chief"
  return resolver.task_type == "worker" and (resolver.task_id or 0) == 0


def check(choice: str) -> str:
  if choice not in CHOICES:
    raise DistributionError(f"distribution must be one of {list(CHOICES)}; got {choice!r}.")
  return choice


def strategy(choice: str = AUTO) -> tf.distribute.Strategy:
  """The strategy for `choice` (see the module docstring)."""
  check(choice)
  resolver = cluster_resolver()
  workers = cluster_size(resolver)
  if choice == MULTI_WORKER or (choice == AUTO and workers > 1):
    if workers <= 1:
      raw = os.environ.get("TF_CONFIG", "")
      raise DistributionError(
          "distribution='multi_worker' needs TF_CONFIG naming the cluster's "
          "workers (Vertex AI and Kubeflow's training operators set it); it is "
          + (f"{raw[:200]!r}." if raw.strip() else "unset."))
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
  devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
  if choice == MIRRORED or (choice == AUTO and len(devices) > 1):
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  return tf.distribute.get_strategy()
