"""Which ``amun_plugin`` entry points the code under test sees (imported as ``from plugin_isolation
import ...``, like ``tiny_fixtures``).

The plugin host reads installed plugins with ``importlib.metadata.entry_points(group="amun_plugin")``.
The root ``conftest.py`` makes that call return nothing for every test, so a plugin installed in the
environment (or ``AMUN_DISABLE_PLUGIN_AUTOLOAD=0`` in the shell) changes no test; a test that installs
fake plugins hands their entry points in with :func:`only_entry_points`. Other groups (console
scripts, pytest plugins) are untouched. The stdlib is patched, not the host, so the host's own
reading code runs in every test, whatever module it lives in.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import pytest

__all__ = ["GROUP", "entry_points_under", "only_entry_points"]

GROUP = "amun_plugin"
_REAL_ENTRY_POINTS = metadata.entry_points


def only_entry_points(monkeypatch: pytest.MonkeyPatch, provided: Iterable[metadata.EntryPoint] = ()) -> None:
    """Until the test ends, ``entry_points(group="amun_plugin")`` returns ``provided`` only."""
    chosen = metadata.EntryPoints(tuple(provided))

    def entry_points(**params: Any) -> Any:
        if params.get("group") == GROUP:
            rest = {k: v for k, v in params.items() if k != "group"}
            return chosen.select(**rest) if rest else chosen
        return _REAL_ENTRY_POINTS(**params)

    monkeypatch.setattr(metadata, "entry_points", entry_points)


def entry_points_under(root: Path) -> list[metadata.EntryPoint]:
    """The ``amun_plugin`` entry points of the distributions (``*.dist-info``) under ``root``."""
    return [ep for dist in metadata.distributions(path=[str(root)]) for ep in dist.entry_points if ep.group == GROUP]
