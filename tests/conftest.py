"""Shared tiny fixtures: a seeded linear-ish model on 4x4 "images" and matching data."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from amun_plugin.data.base import LabeledData

torch.set_num_threads(1)
os.environ.setdefault("AMUN_DISABLE_PLUGIN_AUTOLOAD", "1")


class TinyNet(nn.Module):
    """(N, 1, 4, 4) -> (N, 3) logits, with penultimate ``features`` and a ``head``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU())
        self.head = nn.Linear(32, 3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_tiny_data(n: int = 90, seed: int = 0) -> LabeledData:
    """Three separable-ish classes of 4x4 images in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([0.2, 0.5, 0.8])
    x = (centres[y].view(-1, 1, 1, 1) + 0.15 * torch.randn(n, 1, 4, 4, generator=g)).clamp(0, 1)
    return LabeledData(x, y, 3, "tiny")


@pytest.fixture
def tiny_data() -> LabeledData:
    return make_tiny_data()


@pytest.fixture
def tiny_model(tiny_data: LabeledData) -> nn.Module:
    """A TinyNet briefly trained on ``tiny_data`` (deterministic)."""
    torch.manual_seed(0)
    model = TinyNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(tiny_data.x), tiny_data.y).backward()
        opt.step()
    return model.eval()
