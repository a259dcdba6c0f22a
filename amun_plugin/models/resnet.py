"""Residual networks for small images: ResNet-18 (CIFAR variant) and a small 3-stage ResNet.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016. The CIFAR variant of
ResNet-18 (the one of the AMUN paper) uses a 3x3 stride-1 stem convolution without max-pooling,
BasicBlocks [2, 2, 2, 2] with widths 64, 128, 256, 512 and global average pooling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.layers import check_image_shape, check_mean_std, init_relu_network, make_normalize

__all__ = ["BasicBlock", "ResNet18", "ResNet18Config", "ResNetNet", "SmallResNet", "SmallResNetConfig"]


@dataclass(frozen=True)
class ResNet18Config:
    """Options of :class:`ResNet18`.

    Attributes:
        mean, std: per-channel normalisation (x - mean) / std inside the model, one value or C each (empty: none).
    """

    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_mean_std(self.mean, self.std)


@dataclass(frozen=True)
class SmallResNetConfig:
    """Options of :class:`SmallResNet`.

    Attributes:
        width: channels of the first stage (stages have width, 2 width, 4 width).
        blocks_per_stage: BasicBlocks in each of the 3 stages.
        mean, std: per-channel normalisation applied inside the model (empty: none).
    """

    width: int = 16
    blocks_per_stage: int = 1
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if int(self.width) <= 0 or int(self.blocks_per_stage) <= 0:
            raise InvalidInputError(
                f"SmallResNet width and blocks_per_stage must be positive, got {self.width} and {self.blocks_per_stage}"
            )
        check_mean_std(self.mean, self.std)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, cin, H, W) -> (N, cout, H / stride, W / stride)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetNet(nn.Module):
    """Normalize -> 3x3 stem conv-BN-ReLU -> stages of BasicBlocks -> global avg-pool -> head.

    Input (N, C, H, W) in [0, 1]; ``features`` returns (N, widths[-1]).
    """

    def __init__(
        self,
        num_classes: int,
        channels: int,
        widths: Sequence[int],
        blocks: Sequence[int],
        mean: Sequence[float] = (),
        std: Sequence[float] = (),
    ) -> None:
        super().__init__()
        self.normalize = make_normalize(mean, std, channels)
        self.stem = nn.Sequential(
            nn.Conv2d(channels, widths[0], 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        stages: list[nn.Module] = []
        cin = widths[0]
        for index, (cout, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if index == 0 else 2
            layers = [BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(count)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(cin, num_classes)
        init_relu_network(self, head=self.head)

    def features(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> globally pooled activations (N, widths[-1])."""
        return self.pool(self.stages(self.stem(self.normalize(x))))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> logits (N, num_classes)."""
        return self.head(self.features(x))

    def reset_parameters(self) -> None:
        """Re-apply this network's own init step (He init, the head left as reset), as at the end of
        ``__init__``; ``unlearn.retrain.reinitialize`` calls it after resetting every submodule, the
        order of ``__init__``, so a reset draws from the distribution ``build`` draws from."""
        init_relu_network(self, head=self.head)


def _check_classes(num_classes: int) -> int:
    if int(num_classes) < 2:
        raise InvalidInputError(f"num_classes must be at least 2, got {num_classes}")
    return int(num_classes)


class ResNet18(ModelArchitecture):
    """ResNet-18, CIFAR variant (3x3 stem, no max-pool); about 11.2 M parameters."""

    name = "resnet18"
    config_class: ClassVar[type] = ResNet18Config
    description = "ResNet-18, CIFAR variant (3x3 stride-1 stem, no max-pool, BasicBlocks [2, 2, 2, 2])"

    def build(self, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
        shape = check_image_shape(self.name, input_shape)
        cfg = self.config
        return ResNetNet(_check_classes(num_classes), shape[0], (64, 128, 256, 512), (2, 2, 2, 2), cfg.mean, cfg.std)


class SmallResNet(ModelArchitecture):
    """A 3-stage ResNet (widths w, 2w, 4w; strides 1, 2, 2) for quick CPU experiments."""

    name = "small_resnet"
    config_class: ClassVar[type] = SmallResNetConfig
    description = "small 3-stage ResNet (widths w, 2w, 4w) with BasicBlocks, for CPU-sized experiments"

    def build(self, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
        shape = check_image_shape(self.name, input_shape)
        cfg = self.config
        width, count = int(cfg.width), int(cfg.blocks_per_stage)
        widths, blocks = (width, 2 * width, 4 * width), (count, count, count)
        return ResNetNet(_check_classes(num_classes), shape[0], widths, blocks, cfg.mean, cfg.std)
