"""What ``amun plugins`` lists: every registered component by kind, and the plugins that failed."""

from __future__ import annotations

from typing import Any

from amun_plugin.plugins import PluginHost, get_plugin_manager

__all__ = ["plugins_listing"]


def plugins_listing(host: PluginHost | None = None) -> dict[str, Any]:
    """Every registered component by kind (name, package, plugin, description) and load errors,
    of ``host`` (a PluginHost; default: a fresh one from :func:`get_plugin_manager`)."""
    host = host if host is not None else get_plugin_manager()
    components = {
        kind: [{"name": r.name, "package": r.package, "plugin": r.plugin,
                "description": getattr(r.component, "description", "")} for r in entries]
        for kind, entries in host.all_registrations().items()
    }
    errors = [{"plugin": e.plugin, "error": e.error} for e in host.load_errors]
    return {"components": components, "errors": errors}


