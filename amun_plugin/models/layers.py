"""Small building blocks shared by the built-in architectures."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError

__all__ = ["Normalize", "make_normalize", "check_mean_std", "check_image_shape", "init_relu_network"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel (dim 1), as the model's first op.

    Inputs stay in [0, 1] outside the model, so attacks and their budgets work in pixel space.
    ``mean`` and ``std`` hold one value per channel (or a single value for all channels) and are
    stored as buffers, so they travel with ``state_dict`` and ``.to(device)``.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        check_mean_std(mean, std)
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]))
        self.register_buffer("std", torch.tensor([float(s) for s in std]))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, ...) -> same shape."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x - self.mean.view(shape)) / self.std.view(shape)

    def extra_repr(self) -> str:
        return f"mean={self.mean.tolist()}, std={self.std.tolist()}"


def check_mean_std(mean: Sequence[float], std: Sequence[float], channels: int | None = None) -> None:
    """Raise :class:`InvalidInputError` unless mean/std have matching lengths, std > 0, and
    (when ``channels`` is given) one value per channel or a single shared value."""
    if len(mean) != len(std):
        raise InvalidInputError(
            f"mean has {len(mean)} values but std has {len(std)}; give one value per channel for both, or neither"
        )
    if any(float(s) <= 0 for s in std):
        raise InvalidInputError(f"std values must be positive, got {tuple(std)}")
    if channels is not None and len(mean) not in (0, 1, channels):
        raise InvalidInputError(
            f"mean/std have {len(mean)} values but the input has {channels} channels; "
            f"give {channels} values (one per channel) or a single value"
        )


def make_normalize(mean: Sequence[float], std: Sequence[float], channels: int) -> nn.Module:
    """A :class:`Normalize` layer, or ``nn.Identity`` when no mean/std were given."""
    check_mean_std(mean, std, channels)
    if not mean:
        return nn.Identity()
    if len(mean) == 1 and channels > 1:
        mean, std = tuple(mean) * channels, tuple(std) * channels
    return Normalize(mean, std)


def check_image_shape(name: str, input_shape: Sequence[int], min_size: int = 8) -> tuple[int, int, int]:
    """Validate an image input shape (C, H, W) with H, W >= ``min_size``; return it as a tuple."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or any(s <= 0 for s in shape):
        raise InvalidInputError(f"{name} needs image inputs of shape (C, H, W), got {shape}")
    if shape[1] < min_size or shape[2] < min_size:
        raise InvalidInputError(
            f"{name} needs images of at least {min_size}x{min_size} pixels, got {shape[1]}x{shape[2]}; "
            "use the 'mlp' architecture for smaller inputs"
        )
    return shape  # type: ignore[return-value]


def init_relu_network(model: nn.Module, head: nn.Module | None = None) -> None:
    """He (Kaiming) initialisation for ReLU networks, in place.

    Conv weights: normal, fan_out (as torchvision's ResNet/VGG); other Linear layers: normal,
    fan_in; biases 0; BatchNorm weight 1, bias 0. ``head`` keeps torch's default init (small
    logits at the start). PyTorch's default init shrinks activations layer by layer, which
    makes plain (BatchNorm-free) CNNs learn slowly at the start.
    """
    for module in model.modules():
        if module is head:
            continue
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
        else:
            continue
        if module.bias is not None:
            nn.init.zeros_(module.bias)
