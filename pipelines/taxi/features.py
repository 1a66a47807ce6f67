"""The Chicago taxi features, shared by the preprocessing, teacher and student.

Plain constants (no TensorFlow), so the command line can check a CSV against
them without importing TensorFlow.

The label is TFX's "big tipper": the tip was more than 20% of the fare.
"""
from typing import Dict

# Raw columns that serving requests never carry: the label is derived from
# `tips` (and `fare`, which is also a feature).
RAW_LABEL_KEYS = ("tips",)
# Raw columns a CSV must have for the label to be computed.
LABEL_SOURCE_COLUMNS = ("tips", "fare")
LABEL_KEY = "big_tipper"

DENSE_FLOAT_KEYS = ("trip_miles", "fare", "trip_seconds")
# Categorical integer features and how many values each may take.
CATEGORICAL_MAX_VALUES = {
    "trip_start_hour": 24,
    "trip_start_day": 8,
    "trip_start_month": 13,
}
BUCKET_KEYS = ("pickup_latitude", "pickup_longitude", "dropoff_latitude",
               "dropoff_longitude")
BUCKET_COUNT = 10
VOCAB_KEYS = ("payment_type", "company")
VOCAB_SIZE = 1000
OOV_SIZE = 10


# Every raw column the preprocessing reads: none may be empty in a whole span.
READ_COLUMNS = (*LABEL_SOURCE_COLUMNS, *DENSE_FLOAT_KEYS, *CATEGORICAL_MAX_VALUES,
                *BUCKET_KEYS, *VOCAB_KEYS)


def transformed_name(key: str) -> str:
  return key + "_xf"


def categorical_sizes() -> Dict[str, int]:
  """Transformed name -> number of distinct ids, for every integer feature."""
  sizes = {transformed_name(k): n for k, n in CATEGORICAL_MAX_VALUES.items()}
  sizes.update({transformed_name(k): BUCKET_COUNT for k in BUCKET_KEYS})
  sizes.update({transformed_name(k): VOCAB_SIZE + OOV_SIZE for k in VOCAB_KEYS})
  return sizes
