"""The stock TFX taxi pipeline that ships in the `tfx` package, as our
benchmarks compare with it.

    .venv/bin/python bench/stock.py --data-root DIR --pipeline-root DIR [--beam-arg A ...]

`tfx.examples.chicago_taxi_pipeline.taxi_pipeline_native_keras`, unchanged:
CsvExampleGen, StatisticsGen, SchemaGen, ExampleValidator, Transform, Trainer
(1000 steps), a resolver, Evaluator, Pusher; under LocalDagRunner.
"""
import argparse
import os
import sys
import time
from typing import List

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

NAME = "stock-taxi"


def run(root: str, data_root: str, beam_args: List[str]) -> float:
  """Runs the stock pipeline in `root` on `data_root`; its wall seconds."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as stock  # pylint: disable=g-import-not-at-top
  examples_dir = os.path.dirname(stock.__file__)
  definition = stock._create_pipeline(  # pylint: disable=protected-access
      pipeline_name=NAME, pipeline_root=root, data_root=data_root,
      module_file=os.path.join(examples_dir, "taxi_utils_native_keras.py"),
      serving_model_dir=os.path.join(root, "serving_model"),
      metadata_path=os.path.join(root, "metadata.sqlite"),
      beam_pipeline_args=list(beam_args))
  start = time.monotonic()
  tfx.orchestration.LocalDagRunner().run(definition)
  return time.monotonic() - start


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data-root", required=True)
  parser.add_argument("--pipeline-root", required=True)
  parser.add_argument("--beam-arg", action="append", dest="beam_args", default=[])
  args = parser.parse_args(argv)
  run(args.pipeline_root, args.data_root, args.beam_args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
