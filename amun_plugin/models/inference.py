"""Building a model reproducibly and running it for predictions (eval mode, no gradients)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.device import preserved_mode, resolve_device
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.base import ModelArchitecture

__all__ = ["accuracy", "build_model", "predict_logits"]


def build_model(
    architecture: ModelArchitecture, num_classes: int, input_shape: tuple[int, ...], seed: int
) -> nn.Module:
    """``architecture.build(num_classes, input_shape)`` with its initialisation drawn from a CPU
    RNG seeded with ``seed``: the same seed gives identical weights. torch's global RNG state is
    saved and restored around the call, so the caller's random stream is not disturbed."""
    if not isinstance(architecture, ModelArchitecture):
        raise InvalidInputError(f"expected a ModelArchitecture, got {type(architecture).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))
        model = architecture.build(int(num_classes), tuple(int(s) for s in input_shape))
    if not isinstance(model, nn.Module):
        raise InvalidInputError(
            f"architecture {architecture.name!r} built a {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def predict_logits(
    model: nn.Module, x: Tensor, *, device: str | torch.device = "cpu", batch_size: int = 512
) -> Tensor:
    """Logits (N, C) of ``model`` on ``x`` (N, ...), returned on the CPU.

    Runs in eval mode under ``torch.no_grad`` in batches of ``batch_size`` on ``device`` (the model
    is moved there); every submodule's train/eval flag is restored afterwards.
    """
    if batch_size <= 0:
        raise InvalidInputError(f"batch_size must be positive, got {batch_size}")
    if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[0] == 0:
        raise InvalidInputError("x must be a non-empty tensor of shape (N, ...)")
    target = resolve_device(device)
    model.to(target)
    outputs: list[Tensor] = []
    with preserved_mode(model, training=False), torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            outputs.append(model(x[start : start + batch_size].to(target)).float().cpu())
    return torch.cat(outputs)


def accuracy(
    model: nn.Module, data: LabeledData, *, device: str | torch.device = "cpu", batch_size: int = 512
) -> float:
    """Top-1 accuracy of ``model`` on ``data`` in percent (0-100), eval mode, no gradients."""
    logits = predict_logits(model, data.x, device=device, batch_size=batch_size)
    return 100.0 * float((logits.argmax(dim=1) == data.y.cpu()).float().mean().item())
