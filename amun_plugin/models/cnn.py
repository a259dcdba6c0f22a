"""A small VGG-style convolutional network for small images (digits, Fashion-MNIST, CIFAR)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.layers import check_image_shape, check_mean_std, init_relu_network, make_normalize

__all__ = ["CNN", "CNNConfig", "CNNNet"]

# The second block's output (H/4 x W/4) is adaptively average-pooled to at most 7x7: a 28x28
# input's 7x7 map and an 8x8 input's 2x2 map pass unchanged, larger images are pooled down.
_MAX_POOLED = 7


@dataclass(frozen=True)
class CNNConfig:
    """Options of :class:`CNN`.

    Attributes:
        width: channels of the first conv block (the second has ``2 * width``).
        hidden: width of the fully connected layer before the head.
        mean, std: per-channel normalisation applied inside the model (empty: none).
    """

    width: int = 32
    hidden: int = 128
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if int(self.width) <= 0 or int(self.hidden) <= 0:
            raise InvalidInputError(f"CNN width and hidden must be positive, got {self.width} and {self.hidden}")
        check_mean_std(self.mean, self.std)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    """conv3x3 -> ReLU -> conv3x3 -> ReLU -> 2x2 max-pool; (N, cin, H, W) -> (N, cout, H/2, W/2)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class CNNNet(nn.Module):
    """Normalize -> block(width) -> block(2 width) -> adaptive avg-pool (<= 7x7) -> Linear(hidden) -> ReLU -> head.

    Input (N, C, H, W) in [0, 1] with H, W >= 8; ``features`` returns (N, hidden).
    """

    def __init__(self, num_classes: int, input_shape: tuple[int, int, int], config: CNNConfig) -> None:
        super().__init__()
        channels, width = input_shape[0], int(config.width)
        pooled = (min(input_shape[1] // 4, _MAX_POOLED), min(input_shape[2] // 4, _MAX_POOLED))
        self.normalize = make_normalize(config.mean, config.std, channels)
        self.conv = nn.Sequential(
            _conv_block(channels, width),
            _conv_block(width, 2 * width),
            nn.AdaptiveAvgPool2d(pooled),
            nn.Flatten(),
        )
        flat = 2 * width * pooled[0] * pooled[1]
        self.fc = nn.Sequential(nn.Linear(flat, int(config.hidden)), nn.ReLU())
        self.head = nn.Linear(int(config.hidden), num_classes)
        init_relu_network(self, head=self.head)

    def features(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> penultimate activations (N, hidden)."""
        return self.fc(self.conv(self.normalize(x)))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> logits (N, num_classes)."""
        return self.head(self.features(x))

    def reset_parameters(self) -> None:
        """Re-apply this network's own init step (He init, the head left as reset), as at the end of
        ``__init__``; ``unlearn.retrain.reinitialize`` calls it after resetting every submodule, the
        order of ``__init__``, so a reset draws from the distribution ``build`` draws from."""
        init_relu_network(self, head=self.head)


class CNN(ModelArchitecture):
    """Two conv blocks and a fully connected layer; any channel count, images of 8x8 and up."""

    name = "cnn"
    config_class: ClassVar[type] = CNNConfig
    description = "small VGG-style CNN (2 conv blocks + 1 hidden linear layer) for small images"

    def build(self, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
        shape = check_image_shape(self.name, input_shape)
        if int(num_classes) < 2:
            raise InvalidInputError(f"num_classes must be at least 2, got {num_classes}")
        return CNNNet(int(num_classes), shape, self.config)
