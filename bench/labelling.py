"""Teacher labelling: on Beam (one worker, two worker processes) or in process.

    .venv/bin/python bench/labelling.py --pipeline-root ROOT [ROOT ...]

For each pipeline root (one our pipeline ran in, e.g. bench/scale.py's
bench/work/scale/<rows>/pipeline), takes the newest Transform outputs and
teacher, and labels the train split three ways, each in a fresh subprocess
whose process tree's resident memory is sampled every 0.2 s:

- `beam, 1 worker`: labelling.run on Beam's DirectRunner, in memory, one
  worker (the pipeline's default Beam arguments);
- `beam, 2 workers`: the same with `--direct_running_mode=multi_processing
  --direct_num_workers=2` (two local worker processes);
- `in process`: teacher_cache.write, the teacher called batch by batch in
  the Distiller's process;

and runs the whole Distiller executor as the pipeline ran it (its MLMD
execution properties), in a fresh subprocess too:

- `distiller, online`: the default (the teacher called on every batch);
- `distiller, labelled on beam`: with cache_teacher_outputs (the teacher
  labels the train split on Beam, one worker, first).

Reports rows, wall seconds (the subprocess, TensorFlow's import included, and
the labelling or executor alone), rows per second, the speed-up over one
Beam worker, and peak RSS: the Distiller's own memory, without what a
pipeline's earlier components left in its process. Writes labelling.json
and labelling.md.
"""
import argparse
import glob
import json
import os
import sys
import tempfile
import time

import tensorflow as tf

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
import scale  # pylint: disable=g-bad-import-order  # bench/scale.py

MODES = {
    "beam, 1 worker": ["--direct_num_workers=1"],
    "beam, 2 workers": ["--direct_running_mode=multi_processing",
                        "--direct_num_workers=2"],
    "in process": None,
}
DISTILLER_MODES = {"distiller, online": 0, "distiller, labelled on beam": 1}


def _distill_once(root: str, mode: str, out: str) -> None:
  """In this process: the Distiller's executor as the pipeline ran it."""
  import distiller_profile  # pylint: disable=g-import-not-at-top  # bench/distiller_profile.py
  from distill_components.distiller import spec as spec_lib  # pylint: disable=g-import-not-at-top
  from distill_pipelines import report  # pylint: disable=g-import-not-at-top
  store = report.open_store(os.path.join(root, "metadata.sqlite"))
  inputs = {"teacher_model": [_common.newest_artifact(store, "Model", "Trainer")],
            "examples": [_common.newest_artifact(store, "Examples", "Transform")],
            "transform_graph": [_common.newest_artifact(store, "TransformGraph",
                                                        "Transform")]}
  properties = dict(distiller_profile._exec_properties(store),  # pylint: disable=protected-access
                    **{spec_lib.CACHE_TEACHER_OUTPUTS_KEY: DISTILLER_MODES[mode],
                       spec_lib.TEACHER_LABELLING_KEY: "beam"})
  scratch = tempfile.mkdtemp(prefix="distiller-")
  seconds, _ = distiller_profile._profiled_run(inputs, properties, scratch)  # pylint: disable=protected-access
  rows = 0
  for path in glob.glob(os.path.join(scratch, "soft_labels", "*", "*.gz")):
    rows += sum(1 for _ in tf.data.TFRecordDataset(path, compression_type="GZIP"))
  with open(out, "w", encoding="utf-8") as f:
    json.dump({"rows": rows, "seconds": seconds}, f)


def _label_once(root: str, mode: str, out: str) -> None:
  """In this process: labels the root's train split one way; writes
  {"rows", "seconds"} to `out`."""
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  from tfx_bsl.public import tfxio  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import export  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import labelling  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import teacher as teacher_lib  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import teacher_cache  # pylint: disable=g-import-not-at-top
  from distill_pipelines import report  # pylint: disable=g-import-not-at-top
  from distill_pipelines.taxi import config as taxi  # pylint: disable=g-import-not-at-top

  store = report.open_store(os.path.join(root, "metadata.sqlite"))
  examples = _common.newest_artifact(store, "Examples", "Transform")
  graph = _common.newest_artifact(store, "TransformGraph", "Transform")
  teacher_artifact = _common.newest_artifact(store, "Model", "Trainer")
  settings = taxi.settings(pipeline_root=root, data_root=root)  # as bench/scale.py runs it
  label_key = settings.transformed_label
  output = tft.TFTransformOutput(graph.uri)
  spec = export.model_input_spec(output, label_key)
  teacher_dir = path_utils.serving_model_path(teacher_artifact.uri)
  reading = {"task": settings.task, "imports": settings.teacher_modules}
  files = [os.path.join(artifact_utils.get_split_uri([examples], "train"), "*")]
  scratch = tempfile.mkdtemp(prefix="labelling-")
  start = time.monotonic()
  if MODES[mode] is None:
    teacher = teacher_lib.Teacher(teacher_dir, spec, **reading)
    data = tfxio.TFExampleRecord(
        files[0], schema=output.transformed_metadata.schema).TensorFlowDataset(
            tfxio.TensorFlowDatasetOptions(batch_size=1024, label_key=label_key,
                                           num_epochs=1, shuffle=False))
    rows = teacher_cache.write(teacher.logits, data, os.path.join(scratch, "cache"))
  else:
    handler = labelling.TeacherHandler(
        [teacher_dir], [None], output.transformed_feature_spec(), spec, reading)
    rows = labelling.run(beam.Pipeline(argv=MODES[mode]), files, handler, scratch)
  seconds = time.monotonic() - start
  with open(out, "w", encoding="utf-8") as f:
    json.dump({"rows": rows, "seconds": seconds}, f)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pipeline-root", nargs="+", required=True)
  parser.add_argument("--out", default=os.path.join("bench", "results"))
  parser.add_argument("--one", nargs=3, metavar=("ROOT", "MODE", "OUT"),
                      help=argparse.SUPPRESS)  # a subprocess's single run
  args = parser.parse_args(argv)
  if args.one:
    (_distill_once if args.one[1] in DISTILLER_MODES else _label_once)(*args.one)
    return 0
  results = {}
  for root in args.pipeline_root:
    for mode in [*MODES, *DISTILLER_MODES]:
      with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        measured = scale.run_measured(
            [sys.executable, os.path.abspath(__file__), "--pipeline-root", root,
             "--one", root, mode, out], os.path.join(tmp, "log"))
        with open(out, encoding="utf-8") as f:
          measured.update(json.load(f))
      measured.pop("samples")
      results.setdefault(root, {})[mode] = measured
      print(f"  {root} {mode}: {measured['rows']:,} rows labelled; {measured['seconds']:.1f} s, "
            f"peak RSS {measured['peak_rss_bytes'] / 2**30:.2f} GiB", file=sys.stderr)
  lines = ["| pipeline root | what | rows labelled | seconds (labelling or executor) | "
           "rows/s | speed-up over beam, 1 worker | process wall s | peak RSS (GiB) |",
           "|---" * 8 + "|"]
  for root, by_mode in results.items():
    one = by_mode["beam, 1 worker"]["seconds"]
    for mode, m in by_mode.items():
      labelling_only = mode in MODES
      lines.append(
          f"| {os.path.basename(os.path.dirname(os.path.abspath(root)))} | {mode} | "
          f"{m['rows']:,} | {m['seconds']:.1f} | "
          + (f"{m['rows'] / m['seconds']:,.0f} | {one / m['seconds']:.2f}x"
             if labelling_only else " | ")
          + f" | {m['wall_seconds']:.0f} | {m['peak_rss_bytes'] / 2**30:.2f} |")
  _common.save(args.out, "labelling", {"results": results}, lines)
  return 0


if __name__ == "__main__":
  sys.exit(main())
