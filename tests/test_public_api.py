"""The public surface (docs/api.md): ``amun_plugin.__all__`` and the ``__all__`` of each public
namespace resolve and are documented there, and the benchmark scripts import nothing else from
amun_plugin and nothing from ``tests/``."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

import amun_plugin

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))
NAMESPACES = amun_plugin.PUBLIC_NAMESPACES


def _sections() -> dict[str, str]:
    """docs/api.md's text under each ``## `namespace` `` heading."""
    parts = re.split(r"^## `([\w.]+)`\n", DOC.read_text(encoding="utf-8"), flags=re.M)
    return {name: re.split(r"^## ", text, flags=re.M)[0] for name, text in zip(parts[1::2], parts[2::2])}


def _public(namespace: str) -> set[str]:
    return set(importlib.import_module(namespace).__all__)


def test_the_documented_namespaces_are_the_public_ones() -> None:
    assert list(_sections()) == list(NAMESPACES)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_public_name_resolves_and_is_documented_under_its_namespace(namespace: str) -> None:
    module = importlib.import_module(namespace)
    names = module.__all__
    assert len(names) == len(set(names)), f"{namespace}.__all__ repeats a name"
    assert [n for n in names if not hasattr(module, n)] == [], f"{namespace}.__all__ names what it lacks"
    section = _sections()[namespace]
    undocumented = sorted(n for n in names if f"`{n}`" not in section)
    assert undocumented == [], f"docs/api.md does not document these names of {namespace}: {undocumented}"


def _imports(script: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in ``script`` (names empty for ``import module``)."""
    found = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
    return found


def _package_attributes(script: Path) -> set[str]:
    """The ``X`` of every ``amun_plugin.X`` the script reads after ``import amun_plugin``."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "amun_plugin"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_scripts_import_only_the_public_surface(script: Path) -> None:
    wrong = []
    for line, module, names in _imports(script):
        if module.split(".")[0] != "amun_plugin":
            continue
        if module not in NAMESPACES:
            wrong.append(f"line {line}: {module} is not a public namespace")
        elif names:
            wrong += [f"line {line}: {module}.{n} is not public" for n in names if n not in _public(module)]
    wrong += [f"amun_plugin.{a} is not public" for a in sorted(_package_attributes(script) - _public("amun_plugin"))]
    assert wrong == [], f"{script.name} imports internals (docs/api.md lists the public names): {wrong}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_scripts_do_not_depend_on_the_tests(script: Path) -> None:
    """Nothing a script imports comes from ``tests/`` (which pytest puts on ``sys.path`` here)."""
    tests = ROOT / "tests"
    for _, module, _ in _imports(script):
        assert module.split(".")[0] != "tests", f"{script.name} imports {module}"
        spec = importlib.util.find_spec(module.split(".")[0])
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        assert origin is None or tests not in origin.parents, f"{script.name} imports {module} from {origin}"
