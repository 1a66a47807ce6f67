"""The Distiller under tf.distribute: two logical CPUs, and two worker processes."""
import json
import os
import socket
import subprocess
import sys

import pytest
from tfx.utils import path_utils

from conftest import run_distiller
from distill_components.distiller import distribute

WORKER = os.path.join(os.path.dirname(__file__), "testdata", "distiller_worker.py")


def _cluster(workers: int, chief: bool = False):
  ports = []
  for _ in range(workers + chief):
    with socket.socket() as s:
      s.bind(("localhost", 0))
      ports.append(s.getsockname()[1])
  addresses = [f"localhost:{p}" for p in ports]
  cluster = {"worker": addresses[chief:]}
  if chief:
    cluster["chief"] = addresses[:1]
  return cluster


@pytest.mark.parametrize("config, chief, size", [
    ({}, True, 0),
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, True, 1),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}},
     True, 2),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}},
     False, 2),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker",
                                                                 "index": 0}}, False, 2),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief",
                                                                 "index": 0}}, True, 2),
])
def test_the_chief_is_named_by_tf_config(config, chief, size, monkeypatch):
  monkeypatch.setenv("TF_CONFIG", json.dumps(config))
  assert distribute.is_chief() is chief
  assert distribute.cluster_size() == size


def test_a_strategy_that_does_not_fit_is_named(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(distribute.DistributionError, match="needs TF_CONFIG"):
    distribute.strategy("multi_worker")
  with pytest.raises(distribute.DistributionError, match="must be one of"):
    distribute.strategy("tpu")
  monkeypatch.setenv("TF_CONFIG", "{not json")
  for call in (lambda: distribute.strategy("auto"), distribute.is_chief):
    with pytest.raises(distribute.DistributionError, match="TF_CONFIG is not JSON"):
      call()
  monkeypatch.setenv("TF_CONFIG", " ")  # blank: as if unset
  assert distribute.cluster_size() == 0 and distribute.is_chief()
  monkeypatch.delenv("TF_CONFIG")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # One CPU here: auto trains without a strategy.
  assert distribute.strategy("auto") is tf.distribute.get_strategy()


def _worker(args: dict, tf_config=None) -> subprocess.Popen:
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  env["TF_USE_LEGACY_KERAS"] = "1"
  env["CUDA_VISIBLE_DEVICES"] = ""
  if tf_config:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return subprocess.Popen([sys.executable, WORKER, json.dumps(args)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _results(process: subprocess.Popen, timeout: int = 600) -> dict:
  out, err = process.communicate(timeout=timeout)
  assert process.returncode == 0, err[-4000:]
  [line] = [l for l in out.splitlines() if l.startswith("RESULTS ")]
  return json.loads(line[len("RESULTS "):])


def _fixture(taxi_transform):
  return {k: taxi_transform[k] for k in ("examples_dir", "transform_dir")}


def test_two_logical_cpus_train_the_student_one_device_trains(
    taxi_transform, teacher_model, tmp_path):
  """MirroredStrategy over 2 CPUs splits each batch in two; the summed
  gradients are the one-device gradients, so the losses agree."""
  runs = {name: {"out": str(tmp_path / name),
                 "properties": {"distribution": name, "cache_teacher_outputs": 1}}
          for name in ("none", "mirrored")}
  results = _results(_worker({"fixture": _fixture(taxi_transform),
                              "teacher": teacher_model, "runs": runs,
                              "logical_cpus": 2}))
  one, two = results["none"], results["mirrored"]
  for key in ("eval_loss", "eval_soft_loss", "eval_hard_loss"):
    assert two[key] == pytest.approx(one[key], rel=2e-3), key
  assert two["eval_agreement"] == pytest.approx(one["eval_agreement"], abs=0.01)
  for name in runs:
    assert os.path.isfile(os.path.join(
        path_utils.serving_model_dir(os.path.join(tmp_path, name, "model")),
        "saved_model.pb"))


def test_two_worker_processes_train_one_student_the_chief_exports(
    taxi_transform, teacher_model, tmp_path):
  cluster = _cluster(2)
  workers = []
  for index in range(2):
    out = str(tmp_path / f"worker{index}")
    workers.append(_worker(
        {"fixture": _fixture(taxi_transform), "teacher": teacher_model,
         "runs": {"multi": {"out": out, "properties": {"cache_teacher_outputs": 1}}}},
        {"cluster": cluster, "task": {"type": "worker", "index": index}}))
  chief, other = (_results(w) for w in workers)
  alone = run_distiller(taxi_transform, teacher_model, str(tmp_path / "alone"),
                        cache_teacher_outputs=1).mlmd_artifact.custom_properties
  # Each worker trained on its half of every batch; the student is one.
  assert chief["multi"]["eval_loss"] == pytest.approx(
      alone["eval_loss"].double_value, rel=0.25)
  assert chief["multi"]["eval_agreement"] > 0.5
  assert other["multi"] == {}  # recorded nothing
  chief_model = path_utils.serving_model_dir(str(tmp_path / "worker0" / "model"))
  assert os.path.isfile(os.path.join(chief_model, "saved_model.pb"))
  assert not os.path.exists(tmp_path / "worker1" / "model")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from conftest import raw_examples  # pylint: disable=g-import-not-at-top
  from distill_pipelines.taxi import features  # pylint: disable=g-import-not-at-top
  serialized = raw_examples(taxi_transform["rows"][:4], taxi_transform["types"],
                            drop=features.RAW_LABEL_KEYS)
  probs = tf.saved_model.load(chief_model).signatures["serving_default"](
      examples=tf.constant(serialized))
  assert next(iter(probs.values())).shape == (4, 1)
