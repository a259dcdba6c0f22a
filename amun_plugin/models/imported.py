"""Your own model: an architecture given by import path, ``target=package.module:factory``.

``factory(num_classes=..., input_shape=...)`` returns a fresh ``torch.nn.Module`` taking inputs in
[0, 1] of shape (N, *input_shape) and returning logits (N, num_classes). Importing the module runs
its code, and a checkpoint's header names the target, so nothing is imported unless its top-level
package is listed in the environment variable ``AMUN_TRUSTED_IMPORTS`` (comma-separated, e.g.
``AMUN_TRUSTED_IMPORTS=mypkg``): a checkpoint from someone else cannot make amun run code you have
not named.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.models.base import ModelArchitecture

__all__ = ["TRUSTED_IMPORTS_ENV", "ImportedModel", "ImportedModelConfig"]

TRUSTED_IMPORTS_ENV = "AMUN_TRUSTED_IMPORTS"
"""Comma-separated top-level packages whose modules the ``import`` architecture may import."""

_TARGET = re.compile(r"^(?P<module>[A-Za-z_]\w*(\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)$")


@dataclass(frozen=True)
class ImportedModelConfig:
    """Options of the import architecture.

    Attributes:
        target: ``package.module:factory``, a callable building the model as
            ``factory(num_classes=..., input_shape=...)``; its top-level package must be listed in
            AMUN_TRUSTED_IMPORTS, and the module must be importable (installed, or its folder on
            PYTHONPATH).
    """

    target: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not _TARGET.match(self.target):
            raise InvalidInputError(f"the import architecture needs target=package.module:factory, got "
                                    f"{self.target!r}")
        if any(part.startswith("__") for part in re.split(r"[.:]", self.target)):
            raise InvalidInputError(f"import target {self.target!r}: dunder names are not allowed")


class ImportedModel(ModelArchitecture):
    """A model built by your own factory function, named by import path (runs your code)."""

    name = "import"
    config_class: ClassVar[type] = ImportedModelConfig
    description = "your own model: target=package.module:factory(num_classes=, input_shape=) (runs your code)"

    def build(self, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
        target = self.config.target
        shape = tuple(int(s) for s in input_shape)
        try:
            model = resolve_factory(target)(num_classes=int(num_classes), input_shape=shape)
        except InvalidInputError:
            raise
        except Exception as exc:  # the user's own code may fail in any way
            raise InvalidInputError(f"{target}(num_classes={num_classes}, input_shape={shape}) failed: "
                                    f"{exc!r}") from exc
        if not isinstance(model, nn.Module):
            raise InvalidInputError(f"{target} returned {type(model).__name__}, not a torch.nn.Module")
        _check_logits(model, target, int(num_classes), shape)
        return model


def resolve_factory(target: str) -> Callable[..., Any]:
    """The callable named by ``package.module:attr``, once its package is trusted; one clear error
    when it is not trusted, cannot be imported or is not callable."""
    module_name, _, attr = target.partition(":")
    _check_trusted(module_name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInputError(f"cannot import {module_name!r} for the import architecture ({exc}); install "
                                "its package or put its folder on PYTHONPATH") from exc
    except Exception as exc:  # importing the user's module runs its code
        raise InvalidInputError(f"importing {module_name!r} failed: {exc!r}") from exc
    found: Any = module
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise InvalidInputError(f"{module_name!r} has no attribute {attr!r} (import target {target!r})")
    if not callable(found):
        raise InvalidInputError(f"import target {target!r} is a {type(found).__name__}, not a callable")
    return found


def trusted_packages() -> frozenset[str]:
    """The top-level packages named in ``AMUN_TRUSTED_IMPORTS``."""
    return frozenset(p.strip() for p in os.environ.get(TRUSTED_IMPORTS_ENV, "").split(",") if p.strip())


def _check_trusted(module_name: str) -> None:
    package = module_name.split(".")[0]
    if package not in trusted_packages():
        raise InvalidInputError(
            f"the import architecture would import {module_name!r}, which runs its code: allow its package with "
            f"{TRUSTED_IMPORTS_ENV}={package} (comma-separated) if you trust it")


def _check_logits(model: nn.Module, target: str, num_classes: int, shape: tuple[int, ...]) -> None:
    """The model maps a (2, *shape) input to (2, num_classes) logits (skipped on the meta device,
    where a checkpoint is first built for its shapes only)."""
    if torch.empty(0).device.type == "meta":
        return
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *shape))
    except Exception as exc:  # the user's forward may fail in any way
        raise InvalidInputError(f"the model of {target} fails on an input of shape {(2, *shape)}: {exc!r}") from exc
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidInputError(f"the model of {target} must return logits of shape (N, {num_classes}), "
                                f"got {got} for N=2")
