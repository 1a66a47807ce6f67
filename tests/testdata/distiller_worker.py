"""Runs the Distiller's executor on the tests' taxi fixture in a fresh process.

    python distiller_worker.py '{"fixture": {...}, "teacher": URI, "runs": {...},
                                 "logical_cpus": 2}'

For tests/test_distribute.py: a process of its own, so it can split its CPU
into logical devices before TensorFlow starts, or be one worker of a
TF_CONFIG cluster. Each run (name -> {"out": dir, "properties": {...}})
starts from the same seed; prints {name: the student's eval_* properties}.
"""
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
args = json.loads(sys.argv[1])

import tensorflow as tf  # pylint: disable=g-import-not-at-top

if args.get("logical_cpus"):
  [cpu] = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * args["logical_cpus"])

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from conftest import run_distiller  # pylint: disable=g-import-not-at-top,wrong-import-position

results = {}
for name, run in args["runs"].items():
  if "TF_CONFIG" not in os.environ:  # a worker's strategy must come first
    tf.keras.utils.set_random_seed(0)
  model = run_distiller(args["fixture"], args["teacher"], run["out"], **run["properties"])
  props = model.mlmd_artifact.custom_properties
  results[name] = {key: value.double_value for key, value in props.items()
                   if key.startswith("eval_")}
print("RESULTS " + json.dumps(results))
