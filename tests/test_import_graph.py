"""The product code's import graph: layering, the taxi demo kept apart, no cycles.

Pure `ast` parsing of the source files (nothing is imported), so it runs in the
fast tier. Run it as a script to print the violations and a summary:
`python tests/test_import_graph.py`.
"""
import ast
import functools
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Top-level folders, lowest first: a module imports from its own layer or lower.
LAYERS = {"components": 0, "pipelines": 1, "kubeflow": 2, "cli": 3}
TAXI = "distill_pipelines.taxi"
# The preset lookup is the one module outside pipelines/taxi/ that may import it.
TAXI_IMPORTERS = {"distill_cli.presets"}


@functools.lru_cache(maxsize=None)
def folders():
  """Import name -> folder, read from setup.py's `_FOLDERS` literal."""
  for node in ast.parse(_read("setup.py")).body:
    if isinstance(node, ast.Assign) and any(
        getattr(t, "id", None) == "_FOLDERS" for t in node.targets):
      return ast.literal_eval(node.value)
  raise AssertionError("setup.py has no `_FOLDERS = {...}` literal")


def _read(path):
  with open(os.path.join(ROOT, path), encoding="utf-8") as f:
    return f.read()


@functools.lru_cache(maxsize=None)
def modules():
  """Module name -> (file relative to ROOT, is_package) for every product module."""
  found = {}
  for name, folder in folders().items():
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
      dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
      rel = os.path.relpath(dirpath, ROOT)  # e.g. pipelines/report
      package = name + rel[len(os.path.normpath(folder)):].replace(os.sep, ".")
      for f in sorted(filenames):
        if f == "__init__.py":
          found[package] = (os.path.join(rel, f), True)
        elif f.endswith(".py"):
          found[f"{package}.{f[:-3]}"] = (os.path.join(rel, f), False)
  return found


def _known(name):
  """The longest prefix of `name` that is a product module, else None."""
  parts = name.split(".")
  while parts and ".".join(parts) not in modules():
    parts.pop()
  return ".".join(parts) or None


def _imported(module, node):
  """The dotted names an import statement or `importlib.import_module` call names."""
  if isinstance(node, ast.Import):
    return [a.name for a in node.names]
  if isinstance(node, ast.ImportFrom):
    base = node.module or ""
    if node.level:
      package = module.split(".") if modules()[module][1] else module.split(".")[:-1]
      package = package[:len(package) - node.level + 1]
      base = ".".join(package + ([base] if base else []))
    return [base if a.name == "*" else f"{base}.{a.name}" for a in node.names]
  if (isinstance(node, ast.Call) and node.args
      and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
      and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
          "import_module", "__import__")):
    return [node.args[0].value]
  return []


@functools.lru_cache(maxsize=None)
def raw_imports():
  """Every import of a product name: (file, line, module, name as written)."""
  found = []
  for module, (path, _) in modules().items():
    for node in ast.walk(ast.parse(_read(path), path)):
      for name in _imported(module, node):
        if name.split(".")[0] in folders():
          found.append((path, node.lineno, module, name))
  return sorted(set(found))


@functools.lru_cache(maxsize=None)
def imports():
  """Every product-to-product import: (file, line, module, imported module)."""
  edges = {(f, line, a, _known(b)) for f, line, a, b in raw_imports()}
  return sorted(e for e in edges if e[3] and e[3] != e[2])


def unresolved():
  """Imports of a product name no module file or module text has (script only)."""
  missing = []
  for f, line, a, name in raw_imports():
    target = _known(name)
    rest = name[len(target) + 1:].split(".")[0] if target else name
    if not target or rest and not re.search(rf"\b{rest}\b", _read(modules()[target][0])):
      missing.append((f, line, a, name))
  return missing


def folder_of(module):
  """distill_pipelines.report.summary -> pipelines/report."""
  return os.path.dirname(modules()[module][0])


def top_folder(module):
  """distill_pipelines.report.summary -> pipelines."""
  return folder_of(module).split(os.sep)[0]


def cycles(edges):
  """The shortest cycle through each node of the graph `edges`, deduplicated."""
  graph = {}
  for a, b in edges:
    if a != b:
      graph.setdefault(a, set()).add(b)
  found = set()
  for start in sorted(graph):
    paths, seen = [[start]], {start}
    while paths:  # Breadth first, so the first cycle back to `start` is a shortest.
      path = paths.pop(0)
      nexts = sorted(graph.get(path[-1], ()))
      if start in nexts:
        first = path.index(min(path))  # Rotated to start at its smallest node.
        found.add(tuple(path[first:] + path[:first]))
        break
      for n in nexts:
        if n not in seen:
          seen.add(n)
          paths.append(path + [n])
  return [list(c) + [c[0]] for c in sorted(found)]


def _lines(edges):
  return "\n".join(f"{f}:{line}: {a} -> {b}" for f, line, a, b in edges)


def setup_problems():
  """Folders setup.py installs but LAYERS lacks, or with modules setup.py lacks."""
  unlayered = sorted(set(folders().values()) - set(LAYERS))
  unlisted = sorted(f for f in LAYERS if f not in folders().values() and any(
      n.endswith(".py") for _, _, files in os.walk(os.path.join(ROOT, f)) for n in files))
  return ([f"setup.py _FOLDERS folder missing from LAYERS: {f}" for f in unlayered]
          + [f"folder with modules missing from setup.py _FOLDERS: {f}" for f in unlisted])


def upward_imports():
  return [e for e in imports() if LAYERS[top_folder(e[2])] < LAYERS[top_folder(e[3])]]


def taxi_imports():
  return [e for e in imports()
          if f"{e[3]}.".startswith(f"{TAXI}.") and not f"{e[2]}.".startswith(f"{TAXI}.")
          and e[2] not in TAXI_IMPORTERS]


def graph_cycles(key=lambda module: module):
  """Each cycle of the graph of key(module) as text, with the imports making it up."""
  report = []
  for cycle in cycles((key(a), key(b)) for _, _, a, b in imports()):
    steps = set(zip(cycle, cycle[1:]))
    edges = [e for e in imports() if (key(e[2]), key(e[3])) in steps]
    report.append(f"{' -> '.join(cycle)}\n{_lines(edges)}")
  return "\n".join(report)


def test_every_setup_folder_is_layered():
  problems = setup_problems()
  assert not problems, "\n".join(problems)


def test_no_upward_imports():
  bad = upward_imports()
  assert not bad, f"imports from a lower layer to a higher one ({LAYERS}):\n{_lines(bad)}"


def test_taxi_demo_imported_only_by_presets():
  bad = taxi_imports()
  assert not bad, f"{TAXI} imported outside pipelines/taxi/ and presets:\n{_lines(bad)}"


def test_no_module_cycles():
  report = graph_cycles()
  assert not report, f"import cycles between modules:\n{report}"


def test_no_top_level_folder_cycles():
  report = graph_cycles(top_folder)
  assert not report, f"import cycles between top-level folders:\n{report}"


def test_no_folder_cycles_subfolders_too():
  report = graph_cycles(folder_of)
  assert not report, f"import cycles between folders (subfolders too):\n{report}"


def main():
  print(f"{len(modules())} modules, {len(imports())} imports between them; "
        f"folders {folders()}")
  failed = False
  for title, text in [
      ("setup.py and LAYERS", "\n".join(setup_problems())),
      ("upward imports", _lines(upward_imports())),
      ("taxi demo imported outside pipelines/taxi/ and presets", _lines(taxi_imports())),
      ("module cycles", graph_cycles()),
      ("top-level folder cycles", graph_cycles(top_folder)),
      ("folder cycles, subfolders too", graph_cycles(folder_of)),
      ("imports of missing product modules (not failed)", _lines(unresolved()))]:
    print(f"\n== {title}:" + (f"\n{text}" if text else " none"))
    failed |= bool(text) and "not failed" not in title
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
