"""CSV datasets the tests generate: shapes other than the taxi label.

- `penguins`: the columns of TFX's penguin example (its module file ships in
  the tfx package, its data does not), three well-separated species.
- `mixed`: string and numeric features with missing values and a string
  label, the kind of table a user brings.
Seeded, so every run writes the same files.
"""
import csv
import os
from typing import List

import numpy as np

PENGUIN_FEATURES = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm",
                    "body_mass_g"]
# Per species: mean of each feature (Adelie, Chinstrap, Gentoo, roughly).
_PENGUIN_MEANS = np.array([[38.8, 18.3, 190.0, 3700.0],
                           [48.8, 18.4, 196.0, 3730.0],
                           [47.5, 15.0, 217.0, 5080.0]])
_PENGUIN_STDS = np.array([2.7, 1.2, 6.5, 450.0])


def _write(path: str, header: List[str], rows: List[list]) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  return path


def penguins(directory: str, rows: int = 330, seed: int = 0) -> str:
  """A penguin-shaped CSV (species 0-2 and four measurements) in `directory`."""
  rng = np.random.default_rng(seed)
  species = rng.integers(0, 3, rows)
  values = _PENGUIN_MEANS[species] + rng.normal(size=(rows, 4)) * _PENGUIN_STDS
  data = [[int(s), *(round(float(v), 1) for v in row)]
          for s, row in zip(species, values)]
  return _write(os.path.join(directory, "penguins.csv"), ["species", *PENGUIN_FEATURES],
                data)


def mixed(directory: str, rows: int = 1200, seed: int = 0,
          with_label: bool = True) -> str:
  """String and numeric features, missing cells, a string label ("churn"/"stay").

  The label depends on a numeric feature, a string feature and their mix, so
  a model must use both kinds to do well. `with_label=False`: the same kind
  of rows without the label column (a transfer set).
  """
  rng = np.random.default_rng(seed)
  plan = rng.choice(["basic", "plus", "pro", "team"], rows, p=[.4, .3, .2, .1])
  region = rng.choice(["north", "south", "east", "west", "centre"], rows)
  tenure = rng.gamma(2.0, 12.0, rows)
  spend = rng.normal(50, 20, rows) + (plan == "pro") * 30
  tickets = rng.poisson(1.5, rows)
  score = (-0.06 * tenure + 0.8 * tickets - 0.02 * spend
           + np.select([plan == "basic", plan == "team"], [1.0, -1.5], 0.0)
           + (region == "east") * 0.7 + rng.normal(0, 0.5, rows))
  label = np.where(score > np.median(score), "churn", "stay")
  data = []
  for i in range(rows):
    row = [plan[i], region[i], round(float(tenure[i]), 2), round(float(spend[i]), 2),
           int(tickets[i]), label[i]]
    if rng.random() < 0.08:
      row[1] = ""  # a missing string
    if rng.random() < 0.08:
      row[2] = ""  # a missing number
    data.append(row)
  columns = ["plan", "region", "tenure_months", "monthly_spend", "tickets", "outcome"]
  if not with_label:
    columns, data = columns[:-1], [row[:-1] for row in data]
  return _write(os.path.join(directory, "customers.csv"), columns, data)
