"""A tiny, seeded model and data, for plugin authors' tests (e.g. with
:func:`amun_plugin.unlearn.check_unlearner`) and for the measurements behind amun_plugin's own tests::

    check_unlearner(host, "my_method", model_factory=TinyNet, data=make_tiny_data(), options={"epochs": 1})

Everything here is deterministic and runs in a second on one CPU core.
"""

from __future__ import annotations

import torch
from torch import nn

from amun_plugin.data.base import LabeledData

__all__ = ["TinyNet", "make_memorising", "make_tiny_data"]


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


def make_memorising(seed: int = 0) -> tuple[nn.Module, LabeledData, LabeledData]:
    """(model, members, non-members): a fresh TinyNet trained (Adam, 400 full-batch steps) to 100%
    accuracy on 80 random 4x4 images with random labels (3 classes); 40 more such images are the
    non-members, so only memorisation tells the two apart. The model is in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(120, 1, 4, 4, generator=generator)
    y = torch.randint(0, 3, (120,), generator=generator)
    members, non_members = LabeledData(x[:80], y[:80], 3, "members"), LabeledData(x[80:], y[80:], 3, "non-members")
    torch.manual_seed(seed)  # seeds the global RNG, as the tests that use it expect
    model = TinyNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(400):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(members.x), members.y).backward()
        optimizer.step()
    return model.eval(), members, non_members
