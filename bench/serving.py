"""Serving cost: teacher vs student SavedModels from one pipeline run.

    .venv/bin/python bench/serving.py [--pipeline-root bench/work/quality] [--out bench/results]

Takes the newest teacher (Trainer) and student (Distiller) models recorded in
the run's MLMD (run bench/quality.py, or `make run` with --pipeline-root,
first), and measures for each: SavedModel bytes, parameters (from the
Distiller's record), and the latency of `serving_default` on serialized raw
taxi examples at batch 1 and 256 (p50 and p99 over repeated calls, after a
warm-up), alternating teacher and student call by call so that machine noise
hits both alike. To show where the time goes it also times, the same way,
the parsing + Transform graph alone, each model alone on transformed
features (the `transformed_logits` signature), and a call of a no-op
`tf.function`; and each model's `serving_default` and `transform_features`
called 200 times inside one `tf.while_loop`, so that no Python runs between
calls, as in a C++ model server. Each signature is fed examples with the raw
features its graph parses (read from its ParseExampleV2 op), so
`transform_features` gets the raw label and `serving_default` does not. Writes
serving.json, serving.md and serving.png.
"""
import argparse
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf


import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
from distill_components.distiller import custom_ops
from distill_components.distiller import export
from distill_components import measure
from distill_pipelines import report
from distill_pipelines.taxi import raw_data

BATCHES = (1, 256)
PROFILE = ("student transform_features", "teacher model only", "student model only",
           "no-op tf.function call")


IN_GRAPH_CALLS = 200
SIGNATURES = ("serving_default", "transform_features")
# What raw_data.serialize writes for each dtype a parse spec can ask for.
_PY_TYPES = {tf.int64: int, tf.float32: float, tf.string: bytes}


def parsed_features(fn) -> Dict[str, Tuple[type, bool]]:
  """The raw features a signature parses from its serialized tf.Examples.

  The signature's input spec is only a string tensor; the feature spec lives in
  the ParseExampleV2 ops of its graph (the Transform's raw spec, the label left
  out by `serving_default` only), read here from their constant inputs.

  Args:
    fn: a loaded signature (a ConcreteFunction taking `examples`).

  Returns:
    Feature name -> (int, float or bytes; whether every example must carry it,
    i.e. a FixedLenFeature without default).

  Raises:
    ValueError: if the graph parses no tf.Example, or not with constant keys.
  """
  graph = fn.graph.as_graph_def()
  parsed = {}
  for nodes in (graph.node, *(f.node_def for f in graph.library.function)):
    by_name = {n.name: n for n in nodes}

    def const(name, by_name=by_name):
      node = by_name.get(name.split(":")[0])
      if node is None or node.op != "Const":
        raise ValueError(f"{fn.name}: ParseExampleV2 input {name!r} is not a constant.")
      return tf.make_ndarray(node.attr["value"].tensor)

    for node in nodes:
      if node.op != "ParseExampleV2":
        continue
      sparse, dense, ragged = ([k.decode() for k in const(i).ravel()]
                               for i in node.input[2:5])
      defaults = [const(i) for i in node.input[5:5 + len(dense)]]
      attr = lambda key, node=node: [tf.as_dtype(t) for t in node.attr[key].list.type]
      for keys, dtypes, required in (
          (sparse, attr("sparse_types"), [False] * len(sparse)),
          (dense, attr("Tdense"), [d.size == 0 for d in defaults]),
          (ragged, attr("ragged_value_types"), [False] * len(ragged))):
        for key, dtype, req in zip(keys, dtypes, required):
          was_required = parsed.get(key, (None, False))[1]
          parsed[key] = (_PY_TYPES[dtype], req or was_required)
  if not parsed:
    raise ValueError(f"{fn.name} parses no tf.Example (no ParseExampleV2 op).")
  return parsed


def _serialize(rows: Sequence[Dict[str, str]], parsed: Dict[str, Tuple[type, bool]],
               what: str) -> List[bytes]:
  """`rows` as serialized raw tf.Examples with the features in `parsed` only.

  Raises:
    SystemExit: if a row lacks a value for a feature `parsed` requires.
  """
  missing = sorted({k for r in rows for k, (_, required) in parsed.items()
                    if required and r.get(k, "") == ""})
  if missing:
    raise SystemExit(f"{what} requires {missing}, which some benchmark rows of "
                     f"{raw_data.csv_path()} lack.")
  return raw_data.serialize([{k: v for k, v in r.items() if k in parsed} for r in rows],
                            {k: t for k, (t, _) in parsed.items()})


def _in_graph_ms(fn, inputs: tf.Tensor, rounds: int = 5) -> float:
  """Milliseconds per call of `fn` with no Python in between: IN_GRAPH_CALLS
  calls in one tf.while_loop (what a C++ server pays, RPC aside); median of
  `rounds`."""
  def body(i, total):
    out = next(iter(fn(examples=inputs).values()))
    return i + 1, total + tf.reduce_sum(tf.cast(out, tf.float32))

  loop = tf.function(lambda: tf.while_loop(
      lambda i, _: i < IN_GRAPH_CALLS, body, (tf.constant(0), tf.constant(0.0)))[1],
                     autograph=False)
  loop().numpy()
  times = []
  for _ in range(rounds):
    t0 = time.perf_counter()
    loop().numpy()
    times.append((time.perf_counter() - t0) / IN_GRAPH_CALLS * 1e3)
  return float(np.median(times))


def _plot(path: str, results) -> None:
  plt = _common.pyplot()
  names = ("teacher", "student", *PROFILE)
  in_graph = ("teacher", "student")
  fig, axes = plt.subplots(1, len(BATCHES), figsize=(13, 4.5))
  for ax, batch in zip(axes, BATCHES):
    p50 = [results[n][f"batch_{batch}"]["p50_ms"] for n in names]
    p99 = [results[n][f"batch_{batch}"]["p99_ms"] for n in names]
    ax.barh(names, p99, color="lightgray", label="p99")
    ax.barh(names, p50, color="tab:blue", label="p50")
    ax.barh([f"{n}, in graph" for n in in_graph],
            [results[n][f"batch_{batch}"]["in_graph_serving_default_ms"] for n in in_graph],
            color="tab:green", label="in graph (no Python per call)")
    ax.invert_yaxis()
    ax.set_xlabel("ms per call")
    ax.set_title(f"serving_default latency, batch {batch}")
    ax.legend()
  _common.save_figure(fig, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", default=os.path.join("bench", "work", "quality"))
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--calls", type=int, default=200,
                      help="timed calls per model and batch size")
  parser.add_argument("--teacher-imports", nargs="*",
                      default=["tensorflow_decision_forests"],
                      help="modules the teacher's ops need (the demo's trees: TF-DF)")
  args = parser.parse_args(argv)
  custom_ops.import_modules(args.teacher_imports)
  store = report.open_store(os.path.join(args.pipeline_root, "metadata.sqlite"))
  student = _common.newest_artifact(store, "Model", "Distiller")
  teacher = _common.newest_artifact(store, "Model", "Trainer")
  models = {
      "teacher": (teacher.uri, student.get_int_custom_property("teacher_params") or None),
      "student": (student.uri, student.get_int_custom_property("student_params")),
  }
  saved = {k: measure.load(uri) for k, (uri, _) in models.items()}
  rows = raw_data.read_rows(max(BATCHES), start=1000)
  parsed = {(k, sig): parsed_features(m.signatures[sig])
            for k, m in saved.items() for sig in SIGNATURES}
  # Per model and signature: `transform_features` parses the raw label too.
  examples = {key: _serialize(rows, spec, f"{key[0]}'s {key[1]}")
              for key, spec in parsed.items()}
  results = {k: {"saved_model_bytes": measure.saved_model_bytes(uri), "params": n}
             for k, (uri, n) in models.items()}
  for name in PROFILE:
    results[name] = {}
  noop = tf.function(lambda examples: tf.identity(examples)).get_concrete_function(
      tf.TensorSpec([None], tf.string))
  for batch in BATCHES:
    inputs = {key: tf.constant(e[:batch]) for key, e in examples.items()}
    transformed = saved["student"].signatures["transform_features"](
        examples=inputs["student", "transform_features"])

    def model_only(model, transformed=transformed):
      fn = saved[model].signatures[export.TRANSFORMED_LOGITS_SIGNATURE]
      kwargs = {k: transformed[k] for k in fn.structured_input_signature[1]}
      return lambda: fn(**kwargs)

    calls_of = {
        **{k: (lambda fn=m.signatures["serving_default"], x=inputs[k, "serving_default"]:
               fn(examples=x))
           for k, m in saved.items()},
        # Profile: what serving runs before any weight is touched (the
        # student's parsing and Transform graph, the teacher's are the same),
        # each model alone on transformed features, and calling a no-op.
        "student transform_features": (
            lambda fn=saved["student"].signatures["transform_features"],
            x=inputs["student", "transform_features"]: fn(examples=x)),
        "teacher model only": model_only("teacher"),
        "student model only": model_only("student"),
        "no-op tf.function call": (
            lambda x=inputs["student", "serving_default"]: {"out": noop(x)}),
    }
    calls = args.calls if batch == 1 else max(args.calls // 4, 20)
    # Call by call in turn, so machine noise hits all alike; each call waits
    # for its output's values. Five warm-up calls each: tracing, first calls.
    times = measure.time_calls(
        {name: (lambda call=call: next(iter(call().values())).numpy())
         for name, call in calls_of.items()}, calls, warmup=5)
    for name, ms in times.items():
      results[name][f"batch_{batch}"] = {
          "p50_ms": float(np.percentile(ms, 50)),
          "p99_ms": float(np.percentile(ms, 99)),
          "calls": calls}
    for name, m in saved.items():
      for signature in SIGNATURES:
        results[name][f"batch_{batch}"][f"in_graph_{signature}_ms"] = _in_graph_ms(
            m.signatures[signature], inputs[name, signature])
  ratios = {
      "saved_model_smaller": results["teacher"]["saved_model_bytes"]
      / results["student"]["saved_model_bytes"],
      # A tree teacher has no weights to count (None).
      "params_fewer": (results["teacher"]["params"] / results["student"]["params"]
                       if results["teacher"]["params"] else None),
  }
  for batch in BATCHES:
    for q in ("p50_ms", "p99_ms"):
      ratios[f"batch_{batch}_{q}_faster"] = (
          results["teacher"][f"batch_{batch}"][q] / results["student"][f"batch_{batch}"][q])
  for batch in BATCHES:
    ratios[f"batch_{batch}_p50_transform_share_of_student"] = (
        results["student transform_features"][f"batch_{batch}"]["p50_ms"]
        / results["student"][f"batch_{batch}"]["p50_ms"])
    ratios[f"batch_{batch}_p50_model_only_faster"] = (
        results["teacher model only"][f"batch_{batch}"]["p50_ms"]
        / results["student model only"][f"batch_{batch}"]["p50_ms"])
  t, s = results["teacher"], results["student"]
  lines = ["| | teacher | student | teacher / student |", "|---|---|---|---|",
           f"| SavedModel MB | {t['saved_model_bytes'] / 1e6:.2f} | "
           f"{s['saved_model_bytes'] / 1e6:.2f} | {ratios['saved_model_smaller']:.1f}x |",
           (f"| parameters | {t['params']:,} | {s['params']:,} | {ratios['params_fewer']:.1f}x |"
            if ratios["params_fewer"] else
            f"| parameters | - (trees) | {s['params']:,} | |")]
  for batch in BATCHES:
    for q in ("p50_ms", "p99_ms"):
      lines.append(
          f"| serving_default, batch {batch}, {q[:3]} (ms) | "
          f"{t[f'batch_{batch}'][q]:.2f} | {s[f'batch_{batch}'][q]:.2f} | "
          f"{ratios[f'batch_{batch}_{q}_faster']:.1f}x |")
  lines += ["", "Where the time goes (p50, ms per call):", "",
            "| | " + " | ".join(f"batch {b}" for b in BATCHES) + " |",
            "|---" * (len(BATCHES) + 1) + "|"]
  for name in ("teacher", "student", *PROFILE):
    lines.append(f"| {name} | " + " | ".join(
        f"{results[name][f'batch_{b}']['p50_ms']:.2f}" for b in BATCHES) + " |")
  for name in ("teacher", "student"):
    for signature in SIGNATURES:
      lines.append(f"| {name} {signature}, in graph (no Python per call) | " + " | ".join(
          f"{results[name][f'batch_{b}'][f'in_graph_{signature}_ms']:.2f}"
          for b in BATCHES) + " |")
  for b in BATCHES:
    ratios[f"batch_{b}_in_graph_faster"] = (
        results["teacher"][f"batch_{b}"]["in_graph_serving_default_ms"]
        / results["student"][f"batch_{b}"]["in_graph_serving_default_ms"])
  lines.append("| serving_default in graph, teacher / student | " + " | ".join(
      f"{ratios[f'batch_{b}_in_graph_faster']:.1f}x" for b in BATCHES) + " |")
  lines.append("| model only, teacher / student | " + " | ".join(
      f"{ratios[f'batch_{b}_p50_model_only_faster']:.1f}x" for b in BATCHES) + " |")
  _plot(os.path.join(args.out, "serving.png"), results)
  fed = {k: {sig: sorted(parsed[k, sig]) for sig in SIGNATURES} for k in saved}
  _common.save(args.out, "serving",
               {"models": results, "ratios": ratios, "raw_features_fed": fed}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
