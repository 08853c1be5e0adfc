"""Layers: the op layer imports nothing above it (frontend, runtime, compiler, the conformance
harness), and the import cycles that used to exist stay gone. Every import counts, also one
inside a function (a late import hides a cycle, it does not remove it)."""
from __future__ import annotations

import ast
from pathlib import Path

import asimc

ROOT = Path(asimc.__file__).resolve().parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return {name for name in found if name.startswith("asimc")}


GRAPH = {_module(p): _imports(p) for p in ROOT.rglob("*.py")}
PACKAGES = {_module(p) for p in ROOT.rglob("__init__.py")}


def _reaches(start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        for target in GRAPH.get(current, ()):
            if target == goal:
                return True
            # A package's __init__ re-exports its modules (``from . import schema`` names the
            # package too): a facade, not a layer, so paths do not run through it.
            if target in GRAPH and target not in seen and target not in PACKAGES:
                seen.add(target)
                todo.append(target)
    return False


def test_the_op_layer_imports_nothing_above_it():
    above = ("asimc.frontend", "asimc.runtime", "asimc.compiler", "asimc.conformance",
             "asimc.passes", "asimc.program", "asimc.commands", "asimc.cli")
    for module, imports in GRAPH.items():
        if module.startswith("asimc.ops"):
            bad = sorted(i for i in imports if i.startswith(above))
            assert not bad, f"{module} imports {bad}"


def test_no_import_cycles_between_these_modules():
    for a, b in (("asimc.compiler", "asimc.report.mapping"),
                 ("asimc.chip.parse", "asimc.chip.syntax_errors"),
                 ("asimc.kernels.problem", "asimc.kernels.mismatch")):
        assert not (_reaches(a, b) and _reaches(b, a)), f"{a} <-> {b}"
