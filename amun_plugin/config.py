"""Frozen-dataclass configs: build them from plain mappings (YAML, CLI options) strictly.

Unknown keys are errors, enum fields accept their string values, tuples accept lists, and
YAML is only ever read with ``yaml.safe_load``.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from amun_plugin.errors import InvalidInputError

__all__ = ["NoConfig", "cache_key", "describe_options", "make_config", "config_to_dict", "load_yaml"]

C = TypeVar("C")


@dataclasses.dataclass(frozen=True)
class NoConfig:
    """Config of a component that has no options."""


def make_config(config_class: type[C], values: Mapping[str, Any] | C | None = None, **overrides: Any) -> C:
    """Build ``config_class`` from ``values`` (a mapping or an instance) and ``overrides``.

    Raises :class:`InvalidInputError` naming every unknown key and every value of the wrong type.
    """
    if not dataclasses.is_dataclass(config_class):
        raise TypeError(f"{config_class!r} is not a dataclass")
    if isinstance(values, config_class):
        base: dict[str, Any] = config_to_dict(values, shallow=True)
    else:
        base = dict(typing.cast(Mapping[str, Any], values or {}))
    base.update(overrides)
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.init}
    unknown = sorted(set(base) - set(fields))
    if unknown:
        raise InvalidInputError(
            f"unknown option(s) {', '.join(unknown)} for {config_class.__name__}; "
            f"valid options: {', '.join(sorted(fields)) or '(none)'}"
        )
    hints = typing.get_type_hints(config_class)
    kwargs = {key: _coerce(config_class.__name__, key, value, hints.get(key)) for key, value in base.items()}
    try:
        return config_class(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"invalid {config_class.__name__}: {exc}") from exc


def config_to_dict(config: Any, shallow: bool = False) -> dict[str, Any]:
    """A config as a plain mapping (enums as their values) that YAML / JSON can hold.

    Fields named in the class's ``OMIT_WHEN_DEFAULT`` are left out while they hold their
    default, so adding such a field keeps the content hashes of existing configs unchanged.
    """
    return _to_dict(config, shallow, key=False)


def cache_key(config: Any) -> dict[str, Any]:
    """What of a config can change a result, as plain data (a result's content hash, e.g. a bench
    cell's ``resolved``, is taken of it): :func:`config_to_dict` without the fields named in the
    class's ``NOT_IN_CACHE_KEY`` (ones that cannot change a result), nested configs alike. A field
    added with a default that keeps the old behaviour goes in ``OMIT_WHEN_DEFAULT``: it enters the
    key only once set, so no existing key moves."""
    return _to_dict(config, False, key=True)


def _to_dict(config: Any, shallow: bool, key: bool) -> dict[str, Any]:
    omit = getattr(config, "OMIT_WHEN_DEFAULT", ())
    excluded = getattr(config, "NOT_IN_CACHE_KEY", ()) if key else ()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in excluded or (f.name in omit and value == _default(f)):
            continue
        out[f.name] = value if shallow else _plain(value, key)
    return out


def _default(f: dataclasses.Field) -> Any:
    """A field's default (a default factory's value; ``MISSING`` when it has none)."""
    factory = f.default_factory
    return f.default if factory is dataclasses.MISSING else factory()


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``safe_load``; anything but a mapping is an error."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} must hold a mapping at the top level")
    return data


def _plain(value: Any, key: bool = False) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_dict(value, False, key)
    if isinstance(value, (list, tuple)):
        return [_plain(v, key) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, key) for k, v in value.items()}
    return value


def _coerce(owner: str, key: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` to the field type ``hint`` where that is unambiguous."""
    if hint is None or value is None:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(owner, key, value, non_none[0])
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return make_config(hint, value)
        raise InvalidInputError(f"{owner}.{key}: expected a mapping of {hint.__name__} options, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in hint)
            raise InvalidInputError(f"{owner}.{key}: {value!r} is not one of {choices}") from None
    if origin is tuple and isinstance(value, (list, tuple)):
        inner = args[0] if args and (len(args) == 2 and args[1] is Ellipsis) else None
        return tuple(_coerce(owner, key, v, inner) for v in value) if inner else tuple(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise InvalidInputError(f"{owner}.{key}: expected a number, got {value!r}") from None
    if hint is int and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise InvalidInputError(f"{owner}.{key}: expected an integer, got {value!r}") from None
    if hint is bool and isinstance(value, str):
        lowered = value.lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off"}:
            return False
        raise InvalidInputError(f"{owner}.{key}: expected true/false, got {value!r}")
    if hint in (int, float, bool, str) and not isinstance(value, hint):
        if hint is float and isinstance(value, int):
            return float(value)
        raise InvalidInputError(f"{owner}.{key}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    if hint is int and isinstance(value, bool):
        raise InvalidInputError(f"{owner}.{key}: expected int, got bool")
    return value


_ATTRIBUTE_LINE = re.compile(r"^(?P<names>[A-Za-z_][\w, ]*):\s*(?P<doc>.*)$")


def _attribute_docs(config_class: type) -> dict[str, str]:
    """Field name -> its whole entry under ``Attributes:`` (continuation lines joined) in the
    docstrings of ``config_class`` and its bases (``a, b: text`` documents both)."""
    docs: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        docs.update(_entries(inspect.cleandoc(klass.__dict__.get("__doc__") or "")))
    return docs


def _entries(text: str) -> dict[str, str]:
    """The ``Attributes:`` entries of one docstring, each with its continuation lines joined."""
    entries: dict[str, str] = {}
    names: list[str] = []
    inside, indent = False, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Attributes"):
            inside, indent, names = True, None, []
            continue
        if not inside or not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            inside, names = False, []
            continue
        if depth > indent:
            entries.update({name: _joined(entries[name], stripped) for name in names})
            continue
        match = _ATTRIBUTE_LINE.match(stripped)
        names = [name.strip() for name in match["names"].split(",")] if match else []
        entries.update({name: match["doc"].strip() for name in names if match})
    return entries


def _joined(doc: str, more: str) -> str:
    """``doc`` continued by the next docstring line (a word hyphenated across the break stays whole)."""
    if not doc:
        return more
    return doc + more if doc.endswith("-") and doc[-2:-1].isalpha() else f"{doc} {more}"


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return " | ".join(repr(m.value) for m in hint)
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("amun_plugin.", "")


def describe_options(config_class: type) -> list[dict[str, Any]]:
    """Every option of a component's ``config_class`` (a dataclass): ``name``, ``type`` (text),
    ``default`` (plain JSON data; None when required) and ``doc`` (its docstring line, or "")."""
    if not dataclasses.is_dataclass(config_class):
        return []
    hints = typing.get_type_hints(config_class)
    docs = _attribute_docs(config_class)
    out = []
    for f in dataclasses.fields(config_class):
        if not f.init or f.name.startswith("_"):
            continue
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append({"name": f.name, "type": _type_name(hints.get(f.name, Any)), "default": _plain(default),
                    "doc": docs.get(f.name, "")})
    return out
