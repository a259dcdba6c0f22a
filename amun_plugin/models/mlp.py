"""A multi-layer perceptron on flattened inputs (tabular data or small images)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.layers import check_mean_std, init_relu_network, make_normalize

__all__ = ["MLP", "MLPConfig", "MLPNet"]


@dataclass(frozen=True)
class MLPConfig:
    """Options of :class:`MLP`.

    Attributes:
        hidden: widths of the hidden layers (each Linear -> ReLU); may be empty (a linear model).
        mean, std: per-channel normalisation applied inside the model (empty: none).
    """

    hidden: tuple[int, ...] = (256, 256)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if any(int(h) <= 0 for h in self.hidden):
            raise InvalidInputError(f"MLP hidden widths must be positive, got {tuple(self.hidden)}")
        check_mean_std(self.mean, self.std)


class MLPNet(nn.Module):
    """Normalize -> flatten -> [Linear -> ReLU] * len(hidden) -> head.

    Input (N, *input_shape) in [0, 1]; ``features`` returns (N, hidden[-1]) (or the flattened
    normalised input when ``hidden`` is empty); ``forward`` returns logits (N, num_classes).
    """

    def __init__(self, num_classes: int, input_shape: tuple[int, ...], config: MLPConfig) -> None:
        super().__init__()
        channels = input_shape[0] if len(input_shape) > 1 else int(math.prod(input_shape))
        self.normalize = make_normalize(config.mean, config.std, channels)
        layers: list[nn.Module] = [nn.Flatten()]
        width = int(math.prod(input_shape))
        for h in config.hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        init_relu_network(self, head=self.head)

    def features(self, x: Tensor) -> Tensor:
        """x: (N, *input_shape) -> penultimate activations (N, D)."""
        return self.body(self.normalize(x))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, *input_shape) -> logits (N, num_classes)."""
        return self.head(self.features(x))

    def reset_parameters(self) -> None:
        """Re-apply this network's own init step (He init, the head left as reset), as at the end of
        ``__init__``; ``unlearn.retrain.reinitialize`` calls it after resetting every submodule, the
        order of ``__init__``, so a reset draws from the distribution ``build`` draws from."""
        init_relu_network(self, head=self.head)


class MLP(ModelArchitecture):
    """Fully connected network; works for any input shape (it flattens)."""

    name = "mlp"
    config_class: ClassVar[type] = MLPConfig
    description = "multi-layer perceptron on flattened inputs (ReLU hidden layers)"

    def build(self, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
        shape = tuple(int(s) for s in input_shape)
        if not shape or any(s <= 0 for s in shape):
            raise InvalidInputError(f"mlp needs a non-empty input shape of positive sizes, got {shape}")
        if int(num_classes) < 2:
            raise InvalidInputError(f"num_classes must be at least 2, got {num_classes}")
        return MLPNet(int(num_classes), shape, self.config)
