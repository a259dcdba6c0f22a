"""What ``amun plugins`` lists and ``amun describe NAME`` shows: every registered component by kind
with its options (name, type, default, docstring line), and the plugins that failed to load."""

from __future__ import annotations

import json
from typing import Any, Callable

from amun_plugin.config import describe_options
from amun_plugin.errors import InvalidInputError
from amun_plugin.plugins import PluginHost, get_plugin_manager

__all__ = ["describe_component", "plugins_listing"]


def plugins_listing(host: PluginHost | None = None) -> dict[str, Any]:
    """Every registered component by kind (name, package, plugin, description, options: a list of
    {name, type, default, doc}) and load errors, of ``host`` (default: :func:`get_plugin_manager`)."""
    host = host if host is not None else get_plugin_manager()
    components = {
        kind: [{"name": r.name, "package": r.package, "plugin": r.plugin,
                "description": getattr(r.component, "description", ""),
                "options": describe_options(getattr(r.component, "config_class", object))} for r in entries]
        for kind, entries in host.all_registrations().items()
    }
    errors = [{"plugin": e.plugin, "error": e.error} for e in host.load_errors]
    return {"components": components, "errors": errors}


def describe_component(name: str, echo: Callable[[str], Any], host: PluginHost | None = None) -> list[dict[str, Any]]:
    """Print every component called ``name`` (of any kind) with its options; returns their entries."""
    listing = plugins_listing(host)
    found = [(kind, entry) for kind, entries in listing["components"].items() for entry in entries
             if entry["name"] == name]
    if not found:
        known = sorted({e["name"] for entries in listing["components"].values() for e in entries})
        raise InvalidInputError(f"no component named {name!r}; known: {', '.join(known)}")
    for kind, entry in found:
        echo(f"{entry['name']} ({kind}, {entry['package']}): {entry['description']}")
        if not entry["options"]:
            echo("  no options")
        for option in entry["options"]:
            doc = f"  {option['doc']}" if option["doc"] else ""
            echo(f"  {option['name']}: {option['type']} = {json.dumps(option['default'])}{doc}")
    return [entry for _, entry in found]
