"""Registries that validate what plugins register and remember who registered it.

:class:`Components` is what the layers below the plugin host receive: the five registries, read
only. ``amun_plugin.plugins.PluginHost`` is one; the unlearners and evaluators never import it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, Protocol, TypeVar

from amun_plugin.errors import InvalidInputError, PluginError

__all__ = ["Components", "Registration", "Registry"]

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass(frozen=True)
class Registration(Generic[T]):
    """One registered component: its name, class, and the plugin / package that registered it."""

    name: str
    component: type[T]
    plugin: str
    package: str


class Registry(Generic[T]):
    """Components of one kind (unlearners, attacks, ...), keyed by their class attribute ``name``.

    ``add`` refuses anything that is not a subclass of ``base``, has no valid ``name``, reuses a
    name, or fails the base class's ``check_class`` (declared capabilities) with a PluginError
    that names the plugin. A name belongs to its first registrant: a second ``add`` of the same
    name is refused, naming the newcomer and the plugin that keeps the name.
    """

    def __init__(self, kind: str, base: type[T]) -> None:
        self.kind = kind
        self.base = base
        self._entries: dict[str, Registration[T]] = {}

    def add(self, component: object, plugin: str, package: str) -> None:
        if not (isinstance(component, type) and issubclass(component, self.base)):
            raise PluginError(
                f"plugin {plugin!r} registered {component!r} as one of the {self.kind}, "
                f"but it is not a subclass of {self.base.__module__}.{self.base.__qualname__}"
            )
        name = getattr(component, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"plugin {plugin!r}: {component.__qualname__}.name must be a lower-case identifier "
                f"(letters, digits, '_', '-'), got {name!r}"
            )
        if name in self._entries:
            other = self._entries[name]
            raise PluginError(
                f"plugin {plugin!r} registered {self.kind[:-1]} {name!r} "
                f"({component.__module__}.{component.__qualname__}), which plugin {other.plugin!r} "
                f"({other.component.__module__}.{other.component.__qualname__}) already registered; "
                f"the name stays with {other.plugin!r} and plugin {plugin!r} is refused"
            )
        check: Callable[[], None] | None = getattr(component, "check_class", None)
        if check is not None:
            try:
                check()
            except (TypeError, ValueError) as exc:
                raise PluginError(f"plugin {plugin!r}: {self.kind[:-1]} {name!r} is invalid: {exc}") from exc
        self._entries[name] = Registration(name, component, plugin, package)

    def copy(self) -> "Registry[T]":
        """An independent registry with the same entries (to stage additions)."""
        other: Registry[T] = Registry(self.kind, self.base)
        other._entries = dict(self._entries)
        return other

    def get(self, name: str) -> type[T]:
        """The component called ``name``; an unknown name lists the known ones."""
        try:
            return self._entries[name].component
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise InvalidInputError(f"unknown {self.kind[:-1]} {name!r}; registered {self.kind}: {known}") from None

    def registration(self, name: str) -> Registration[T]:
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Registration[T]]:
        return iter(self._entries[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._entries)


class Components(Protocol):
    """The registries of every component kind, as the plugin host holds them (read only)."""

    @property
    def unlearners(self) -> Registry[Any]: ...

    @property
    def attacks(self) -> Registry[Any]: ...

    @property
    def evaluators(self) -> Registry[Any]: ...

    @property
    def datasets(self) -> Registry[Any]: ...

    @property
    def models(self) -> Registry[Any]: ...
