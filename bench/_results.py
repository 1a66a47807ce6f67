"""Where every benchmark leaves its figures: NAME.json and NAME.md in --out."""
import json
import os
from typing import List


def save(out_dir: str, name: str, data: object, table_lines: List[str]) -> None:
  """Writes the raw figures as JSON and the table as markdown, and prints it."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, f"{name}.json"), "w", encoding="utf-8") as f:
    json.dump(data, f, indent=2)
  table = "\n".join(table_lines)
  with open(os.path.join(out_dir, f"{name}.md"), "w", encoding="utf-8") as f:
    f.write(table + "\n")
  print(table)
