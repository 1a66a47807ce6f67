"""Rewrites report.html for a pipeline root's newest run.

    python -m distill_pipelines.report --pipeline-root DIR \\
        --pipeline-name NAME [--out FILE]   # default DIR/report.html
"""

import argparse
import os
from typing import Iterable, Optional


def main(argv: Optional[Iterable[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m distill_pipelines.report",
      description="Writes report.html for a pipeline root's newest run.")
  parser.add_argument("--pipeline-root", required=True)
  parser.add_argument("--pipeline-name", required=True)
  parser.add_argument("--out", help="default: PIPELINE_ROOT/report.html")
  args = parser.parse_args(None if argv is None else list(argv))
  sqlite_path = os.path.join(args.pipeline_root, "metadata.sqlite")
  if not os.path.exists(sqlite_path):
    parser.error(f"no metadata.sqlite in --pipeline-root {args.pipeline_root!r}")
  from distill_pipelines.report import html  # pylint: disable=g-import-not-at-top
  out = args.out or os.path.join(args.pipeline_root, "report.html")
  print(html.write(sqlite_path, args.pipeline_name, out))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
