"""The hooks a plugin implements to add components to amun_plugin.

A plugin is any object (usually a module) with functions decorated by ``amun_plugin.hookimpl``.
Third-party packages expose it through the entry-point group ``amun_plugin``::

    [project.entry-points."amun_plugin"]
    my_plugin = "my_package.amun_hooks"

Each ``register`` callback takes one class; it is validated on the spot (right base class,
unique ``name``, declared capabilities) and a failure names the plugin.

Each plugin's hooks are called once (through pluggy's hook caller), when the plugin is registered.
Names belong to whoever registered them first: the built-ins, then installed plugins in the order
of their entry-point names (not the order the environment lists them in). A plugin reusing a taken
name (any of the five kinds), or whose hook raises, is refused as a whole and reported with the
plugin that keeps the name; the other plugins and the built-ins keep working.
``amun_register_commands`` may add new sub-commands but not replace existing ones.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

__all__ = ["PROJECT_NAME", "hookspec", "hookimpl"]

PROJECT_NAME = "amun_plugin"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[type], None]


@hookspec
def amun_register_unlearners(register: Register) -> None:
    """Register :class:`amun_plugin.unlearn.base.Unlearner` subclasses (e.g. ``register(MyMethod)``)."""


@hookspec
def amun_register_attacks(register: Register) -> None:
    """Register :class:`amun_plugin.attacks.base.AttackBackend` subclasses (adversarial-example backends)."""


@hookspec
def amun_register_evaluators(register: Register) -> None:
    """Register :class:`amun_plugin.evaluate.base.Evaluator` subclasses (metrics, membership attacks)."""


@hookspec
def amun_register_datasets(register: Register) -> None:
    """Register :class:`amun_plugin.data.source.DatasetSource` subclasses."""


@hookspec
def amun_register_models(register: Register) -> None:
    """Register :class:`amun_plugin.models.base.ModelArchitecture` subclasses."""


@hookspec
def amun_register_commands(cli: Any) -> None:
    """Add sub-commands to the ``amun`` command line (``cli`` is the root ``click.Group``)."""
