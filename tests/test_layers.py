"""The house's layers (ARCHITECTURE.md): every module imports only from its own layer or the ones
below, at the top of the file (no import inside a function to dodge a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "amun_plugin"

LAYERS = [
    ("errors", "io", "device", "progress", "config", "executors", "registry", "hookspecs"),
    ("data",),
    ("models",),
    ("training",),
    ("attacks", "art_interop"),
    ("artifacts",),
    ("unlearn",),
    ("evaluate",),
    ("builtin", "plugins"),
    ("api", "art", "testing", "__init__"),
    ("bench", "harness"),
    ("commands",),
    ("cli", "cli_options", "cli_messages"),
]
"""From the ground up; a name is a top-level module or subpackage of amun_plugin."""
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _rank(module: str) -> int:
    """The layer of ``amun_plugin.x.y`` (``amun_plugin`` itself is the package face, ``__init__``)."""
    parts = module.split(".")
    return RANK[parts[1] if len(parts) > 1 else "__init__"]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(tree: ast.Module) -> list[tuple[ast.stmt, str]]:
    found: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "amun_plugin":  # submodules by name
            found += [(node, f"amun_plugin.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node, node.module))
        elif isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
    return [(node, name) for node, name in found if name.split(".")[0] == "amun_plugin"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_run_down_and_sit_at_the_top(path: Path) -> None:
    relative = path.relative_to(PACKAGE).with_suffix("")
    own = "amun_plugin." + ".".join(relative.parts) if relative.parts != ("__init__",) else "amun_plugin"
    rank = _rank(own.replace(".__init__", ""))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    guarded = {id(n) for node in tree.body if isinstance(node, ast.If) for n in ast.walk(node)}
    for node, module in _imports(tree):
        assert _rank(module) <= rank, f"{own} (layer {rank}) imports {module} (layer {_rank(module)}), a higher layer"
        assert id(node) in top_level and id(node) not in guarded, \
            f"{own} imports {module} inside a function or block (line {node.lineno}); import it at the top"


def test_every_module_has_a_layer() -> None:
    names = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()}
    assert names <= set(RANK), f"modules without a layer: {sorted(names - set(RANK))}"
