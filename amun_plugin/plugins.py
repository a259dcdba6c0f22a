"""The plugin host: built-ins and entry-point plugins, collected through the same hooks, and the
loading that needs them (a dataset or an architecture by name, a checkpoint's model and data).

The host is the only module that knows every component kind; the layers below it (unlearn,
evaluate) receive its registries as a :class:`~amun_plugin.registry.Components` and never import it.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import pluggy
import torch
from torch import nn

from amun_plugin import builtin, hookspecs
from amun_plugin.attacks.base import AttackBackend
from amun_plugin.data.base import DatasetBundle
from amun_plugin.data.source import DatasetSource
from amun_plugin.errors import InvalidInputError, PluginError
from amun_plugin.evaluate.base import Evaluator
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.checkpoint import CheckpointMetadata
from amun_plugin.models.inference import load_model
from amun_plugin.registry import Registry
from amun_plugin.unlearn.base import Unlearner

__all__ = [
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginLoadError",
    "get_plugin_manager",
]

ENTRY_POINT_GROUP = "amun_plugin"
DISABLE_AUTOLOAD_ENV = "AMUN_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_PLUGIN = "amun_plugin.builtin"

_log = logging.getLogger(__name__)

# hook name -> (registry attribute, base class): the one list of component kinds
_KINDS: dict[str, tuple[str, type[Any]]] = {
    "amun_register_unlearners": ("unlearners", Unlearner),
    "amun_register_attacks": ("attacks", AttackBackend),
    "amun_register_evaluators": ("evaluators", Evaluator),
    "amun_register_datasets": ("datasets", DatasetSource),
    "amun_register_models": ("models", ModelArchitecture),
}


@dataclass(frozen=True)
class PluginLoadError:
    """A plugin that could not be loaded or whose registrations failed."""

    plugin: str
    error: str


class PluginHost:
    """A pluggy ``PluginManager`` plus one validated registry per component kind.

    Name policy (all five kinds): a name belongs to whoever registered it first. The built-ins
    always come first; installed plugins follow in the order of their entry-point names (then
    distribution name and value), whatever order the environment lists them in, so of two plugins
    registering one name the one whose entry-point name sorts first keeps it. A plugin that
    registers a name already taken, or whose register hook raises, is *refused as a whole* (none of
    its components is kept) with a :class:`PluginError` naming that plugin — the newcomer — and the
    plugin and component that keep the name.
    ``register`` raises it; ``load_entry_points`` reports it once in ``load_errors`` (and as a
    warning) and carries on, unless the host is ``strict``.

    Each plugin's hooks are called once, through pluggy's hook caller restricted to that plugin,
    when it is registered, into staged copies of the registries that replace the live ones only if
    every hook of that plugin succeeded.
    """

    unlearners: Registry[Unlearner]
    attacks: Registry[AttackBackend]
    evaluators: Registry[Evaluator]
    datasets: Registry[DatasetSource]
    models: Registry[ModelArchitecture]

    def __init__(self, strict: bool = False) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.strict = strict
        self.load_errors: list[PluginLoadError] = []
        self._packages: dict[str, str] = {}
        self._order: list[str] = []  # plugin names in registration order
        for attribute, base in _KINDS.values():
            setattr(self, attribute, Registry(attribute, base))

    def register(self, plugin: Any, name: str | None = None, package: str | None = None) -> str:
        """Add ``plugin`` (a module or object with hook implementations) and its components.

        Raises PluginError (naming the plugin) when pluggy refuses it, one of its hooks raises, or
        a component is invalid or takes a name already registered; the host is then unchanged."""
        try:
            plugin_name = self.manager.register(plugin, name=name)
            self.manager.check_pending()
        except (ValueError, pluggy.PluginValidationError) as exc:
            if name is not None and self.manager.has_plugin(name):
                self.manager.unregister(name=name)
            raise PluginError(f"plugin {name or plugin!r} could not be registered: {exc}") from exc
        assert plugin_name is not None
        self._packages[plugin_name] = package or _package_of(plugin)
        try:
            self._collect_plugin(plugin_name)
        except PluginError:
            self.manager.unregister(name=plugin_name)  # leave the host as it was
            del self._packages[plugin_name]
            raise
        self._order.append(plugin_name)
        return plugin_name

    def _collect_plugin(self, plugin_name: str) -> None:
        """Call ``plugin_name``'s register hooks into staged registries; commit only if all pass."""
        package = self._packages[plugin_name]
        staged = {attribute: getattr(self, attribute).copy() for attribute, _ in _KINDS.values()}
        for hook_name, (attribute, _) in _KINDS.items():
            registry = staged[attribute]
            try:
                self._hook_of(plugin_name, hook_name)(
                    register=lambda component, r=registry: r.add(component, plugin_name, package))
            except PluginError:
                raise
            except Exception as exc:  # a third-party hook may fail in any way; report it by name
                raise PluginError(f"plugin {plugin_name!r} failed in {hook_name}: {exc!r}") from exc
        for attribute, registry in staged.items():
            setattr(self, attribute, registry)

    def _hook_of(self, plugin_name: str, hook_name: str) -> pluggy.HookCaller:
        """pluggy's caller of ``hook_name`` restricted to the one plugin ``plugin_name``."""
        others = [p for name, p in self.manager.list_name_plugin() if name != plugin_name and p is not None]
        return self.manager.subset_hook_caller(hook_name, remove_plugins=others)

    def _report(self, plugin: str, exc: BaseException) -> None:
        error = exc if isinstance(exc, PluginError) else PluginError(f"plugin {plugin!r} failed: {exc!r}")
        if self.strict or plugin == BUILTIN_PLUGIN:
            raise error from exc
        self.load_errors.append(PluginLoadError(plugin, str(error)))
        warnings.warn(str(error), RuntimeWarning, stacklevel=3)

    def load_entry_points(self, entry_points: Iterable[metadata.EntryPoint] | None = None) -> None:
        """Load every ``amun_plugin`` entry point, sorted by name (see the name policy); a broken
        one is reported by name, not fatal."""
        eps = installed_entry_points() if entry_points is None else entry_points
        for ep in sorted(eps, key=lambda ep: (ep.name, _distribution_of(ep), ep.value)):
            if self.manager.has_plugin(ep.name):
                continue
            package = _distribution_of(ep)
            try:
                module = ep.load()
            except Exception as exc:  # importing third-party code can raise anything
                self._report(ep.name, PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc!r}"))
                continue
            try:
                self.register(module, name=ep.name, package=package)
            except PluginError as exc:
                self._report(ep.name, exc)

    def add_commands(self, cli: Any) -> None:
        """Let each plugin add sub-commands to the ``amun`` CLI (a click Group), in registration
        order. A plugin whose hook raises, or that replaces a command already there, is reported
        (named, with its error) and its additions are undone; the other commands keep working."""
        for plugin_name in self._order:
            before = dict(cli.commands)
            try:
                self._hook_of(plugin_name, "amun_register_commands")(cli=cli)
                taken = sorted(n for n in before if cli.commands.get(n) is not before[n])
                if taken:
                    raise PluginError(f"plugin {plugin_name!r} replaced the command(s) {', '.join(taken)}, "
                                      "which are already registered")
            except Exception as exc:  # a third-party hook may fail in any way; report it by name
                cli.commands.clear()
                cli.commands.update(before)
                error = exc if isinstance(exc, PluginError) else PluginError(
                    f"plugin {plugin_name!r} failed in amun_register_commands: {exc!r}")
                self._report(plugin_name, error)

    def all_registrations(self) -> dict[str, list[Any]]:
        """Every registry's entries, by kind, for listing."""
        return {attribute: list(getattr(self, attribute)) for attribute, _ in _KINDS.values()}

    def load_dataset(self, name: str, options: Mapping[str, Any] | None = None) -> DatasetBundle:
        """The registered dataset ``name`` loaded with ``options`` (its config fields)."""
        return self.datasets.get(name)(dict(options or {})).load()

    def make_architecture(self, name: str, options: Mapping[str, Any] | None = None) -> ModelArchitecture:
        """The registered architecture ``name`` configured with ``options``."""
        return self.models.get(name)(dict(options or {}))

    def load_model(self, path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, CheckpointMetadata]:
        """A safetensors checkpoint's model (eval mode), its architecture rebuilt through the registry."""
        return load_model(path, self.models, device)

    def load_checkpoint_dataset(self, metadata: CheckpointMetadata,
                                options: Mapping[str, Any] | None = None) -> DatasetBundle:
        """The dataset a checkpoint was trained on. The header is untrusted: it names the dataset,
        and of its options only the dataset's ``header_options`` (sizes, seeds: which samples) are
        used; everything else — a ``root`` folder, ``download`` — comes from ``options`` (the
        user's command line) or the dataset's defaults. Ignored header options are logged."""
        if metadata.dataset is None:
            raise InvalidInputError("the checkpoint does not record its dataset; train it with `amun train`")
        source = self.datasets.get(metadata.dataset)
        header = dict(metadata.dataset_config)
        allowed = set(getattr(source, "header_options", ()))
        ignored = sorted(k for k in header if k not in allowed and k not in (options or {}))
        if ignored:
            _log.warning("note: ignoring the checkpoint's dataset option(s) %s (a header never sets paths or "
                         "downloads); pass --dataset-option key=value to set them", ", ".join(ignored))
        chosen = {k: v for k, v in header.items() if k in allowed}
        return source({**chosen, **dict(options or {})}).load()


def get_plugin_manager(autoload: bool | None = None, strict: bool = False) -> PluginHost:
    """A fresh host with the built-ins and, unless disabled, every installed plugin.

    Autoloading of entry points is off when ``autoload`` is False or when the environment
    variable ``AMUN_DISABLE_PLUGIN_AUTOLOAD`` is set (to anything but "" or "0").
    With ``strict`` a broken plugin raises :class:`PluginError` instead of a warning.
    """
    host = PluginHost(strict=strict)
    host.register(builtin, name=BUILTIN_PLUGIN, package="amun_plugin")
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") in ("", "0")
    if autoload:
        host.load_entry_points()
    return host


def installed_entry_points() -> list[metadata.EntryPoint]:
    """The ``amun_plugin`` entry points of every installed distribution (tests replace this)."""
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def _distribution_of(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else ep.value.split(".")[0]


def _package_of(plugin: Any) -> str:
    module = getattr(plugin, "__module__", None) if not hasattr(plugin, "__file__") else plugin.__name__
    return str(module or type(plugin).__module__).split(".")[0]
