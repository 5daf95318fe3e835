"""Imports point one way: no module of compzoo imports (even lazily, inside a function) a module that
imports it back. Checked on the source, so a cycle fails here before it fails for a user."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "compzoo"


def _module(path: Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    names = []
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    found |= {name for name in names if name in modules}
  return found


def test_compzoo_has_no_import_cycles():
  paths = {_module(p): p for p in PACKAGE.rglob("*.py")}
  graph = {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}
  # A package's __init__ re-exporting its own submodules is not a cycle through code.
  graph = {name: {d for d in deps if not d.startswith(name + ".")} for name, deps in graph.items()}
  done, path = set(), []

  def visit(name):
    if name in path:
      raise AssertionError("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
    if name in done:
      return
    path.append(name)
    for dependency in sorted(graph[name]):
      visit(dependency)
    path.pop()
    done.add(name)

  for name in sorted(graph):
    visit(name)
  assert "compzoo.zoo" not in set().union(*(graph[m] for m in graph if m.startswith("compzoo.codecs")))
