"""Stop the run when the data breaks its schema, before any training.

TFX's ExampleValidator writes anomalies but never fails: Transform and the
Trainer run on whatever arrived. `DataGate` reads the ExampleValidator's
anomalies and fails, naming each anomaly, when there is any; the pipeline
makes Transform depend on it (`add_upstream_node`), so a span whose statistics
violate the schema (a new categorical value in many rows, a feature suddenly
missing) trains nothing and pushes nothing.
"""

import os
from typing import List

from tensorflow_data_validation.utils import anomalies_util
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils


class DataAnomaliesError(RuntimeError):
  """The examples violate the schema; the message lists the anomalies."""


def describe(anomalies_uri: str, split_names: str) -> List[str]:
  """One line per anomaly, per split: feature, short and long description."""
  lines = []
  for split in artifact_utils.decode_split_names(split_names):
    split_dir = os.path.join(anomalies_uri, f"Split-{split}")
    if not fileio.exists(split_dir):
      raise DataAnomaliesError(
          f"The {split} split's anomalies are missing ({split_dir}): the "
          "ExampleValidator did not validate it, so nothing was trained or pushed.")
    anomalies = anomalies_util.load_anomalies_binary(
        io_utils.get_only_uri_in_dir(split_dir))
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f"{split} split, feature {feature!r}: {info.short_description}"
                   f" ({info.description})")
    if anomalies.HasField("dataset_anomaly_info"):
      info = anomalies.dataset_anomaly_info
      lines.append(f"{split} split, whole dataset: {info.short_description} "
                   f"({info.description})")
  return lines


@tfx.dsl.components.component
def DataGate(
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies],
) -> None:
  """Fails when the ExampleValidator found any anomaly (see module)."""
  found = describe(anomalies.uri, anomalies.split_names)
  if found:
    raise DataAnomaliesError(
        "The examples do not match the schema, so nothing was trained or "
        "pushed:\n  " + "\n  ".join(found) + "\nFix the data, or update the "
        "schema if the change is intended (--schema).")
