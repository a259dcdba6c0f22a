"""Choosing the torch device and keeping a model's train/eval mode intact."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from amun_plugin.errors import InvalidInputError

__all__ = ["resolve_device", "preserved_mode", "model_device"]


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """``None``/"cpu" -> CPU; "cuda"/"cuda:N" -> that GPU (an error if none is available);
    "auto" -> CUDA when available, else CPU."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'auto'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for but CUDA is not available here; use 'cpu' or 'auto'")
    count = torch.cuda.device_count() if resolved.type == "cuda" else 0
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= count:
        raise InvalidInputError(f"device {device!r} does not exist: this machine has {count} CUDA device(s), "
                                f"cuda:0 to cuda:{count - 1}")
    return resolved


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def preserved_mode(model: nn.Module, training: bool | None = None) -> Iterator[nn.Module]:
    """Save the train/eval flag of every submodule, optionally switch to ``training``, and
    restore every flag on exit, whatever happens inside (ART and torchattacks change modes)."""
    saved = [(module, module.training) for module in model.modules()]
    try:
        if training is not None:
            model.train(training)
        yield model
    finally:
        for module, flag in saved:
            module.training = flag
