"""The option parsing of the ``amun`` command line (:mod:`amun_plugin.cli`): ``key=value`` pairs,
the forget split the options name, and the forget-split options shared by several commands."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

import click

from amun_plugin.errors import InvalidInputError


def _pairs(values: tuple[str, ...]) -> dict[str, Any]:
    """``("epochs=5", "lr=0.01", "hidden=[64,64]")`` -> a mapping; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"option {item!r} must look like key=value")
        out[key.strip()] = _yaml().safe_load(raw)
    return out


def _yaml() -> Any:
    return importlib.import_module("yaml")


def _split_config(fraction: float | None, indices: str | None, classes: str | None, seed: int) -> Any:
    """The forget split (a ``SplitConfig``) the options name, or None when none is given (never a silent default)."""
    chosen = [v is not None for v in (fraction, indices, classes)]
    if sum(chosen) > 1:
        raise InvalidInputError("give only one of --forget-fraction, --forget-indices, --forget-classes")
    splits = importlib.import_module("amun_plugin.data.splits")
    SplitConfig, SplitKind = splits.SplitConfig, splits.SplitKind  # noqa: N806
    if indices is not None:
        return SplitConfig(kind=SplitKind.INDICES, indices=_int_list(indices, "--forget-indices"), seed=seed)
    if classes is not None:
        return SplitConfig(kind=SplitKind.CLASSES, classes=_int_list(classes, "--forget-classes"), seed=seed)
    if fraction is not None:
        return SplitConfig(kind=SplitKind.RANDOM, fraction=fraction, seed=seed)
    return None


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    path = Path(text)
    raw = path.read_text() if path.is_file() else text
    try:
        return tuple(int(v) for v in raw.replace("\n", ",").split(",") if v.strip())
    except ValueError:
        raise InvalidInputError(f"{flag} takes comma-separated integers or a file of them") from None


def split_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--forget-fraction", type=float, default=None, help="random fraction of the train set"),
        click.option("--forget-indices", default=None, help="comma-separated train indices, or a file"),
        click.option("--forget-classes", default=None, help="comma-separated class ids"),
        click.option("--split-seed", type=int, default=0, show_default=True),
    ]):
        command = option(command)
    return command
