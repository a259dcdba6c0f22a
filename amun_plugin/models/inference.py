"""Building a model reproducibly (from scratch, or from a checkpoint through the architecture
registry), running it for predictions (eval mode, no gradients), and per-sample quantities of its
logits (the confidence signals that membership attacks and AMUN's calibration read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData, as_labeled_data
from amun_plugin.device import preserved_mode, resolve_device
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.checkpoint import CheckpointMetadata, load_checkpoint
from amun_plugin.registry import Registry

__all__ = ["accuracy", "build_model", "infer_num_classes", "load_model", "logit_scaled_confidence", "predict_logits",
           "true_class_probability"]


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


def load_model(
    path: str | Path, architectures: Registry[ModelArchitecture], device: str | torch.device = "cpu"
) -> tuple[nn.Module, CheckpointMetadata]:
    """A safetensors checkpoint's model, rebuilt through the ``architectures`` registry, in eval mode."""

    def build(metadata: CheckpointMetadata) -> nn.Module:
        architecture = architectures.get(metadata.architecture)(dict(metadata.architecture_config))
        return architecture.build(metadata.num_classes, metadata.input_shape)

    model, metadata = load_checkpoint(path, build, device=device)
    return model.eval(), metadata


def infer_num_classes(model: nn.Module, data: Any) -> int:
    """The number of logits ``model`` returns on one sample of ``data`` (any form ``as_labeled_data`` takes)."""
    sample = data.x[:1] if isinstance(data, LabeledData) else as_labeled_data(data, None, "forget").x[:1]
    first = next(iter(list(model.parameters()) + list(model.buffers())), None)
    device = first.device if first is not None else resolve_device("cpu")
    with torch.no_grad(), preserved_mode(model, training=False):
        try:
            out = model(sample.to(device))
        except Exception as exc:  # a user's model can fail in any way on a wrong input
            raise InvalidInputError(f"the model failed on an input of shape {tuple(sample.shape)}: {exc}") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise InvalidInputError("the model must return logits of shape (N, num_classes)")
    return int(out.shape[1])


def logit_scaled_confidence(logits: Tensor, y: Tensor) -> Tensor:
    """log(p_y / (1 - p_y)) for logits (N, C) and labels (N,), returned as (N,) float64.

    Computed as z_y - logsumexp_{j != y} z_j, which is exact and does not saturate at
    p_y = 1 in floating point (the paper's Fig. 3-5 quantity).
    """
    z = logits.double()
    true = z.gather(1, y.view(-1, 1)).squeeze(1)
    others = z.scatter(1, y.view(-1, 1), float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def true_class_probability(logits: Tensor, y: Tensor) -> Tensor:
    """Softmax probability of the true class, (N,) float64 in [0, 1]."""
    return torch.softmax(logits.double(), dim=1).gather(1, y.view(-1, 1)).squeeze(1)
