"""Fixtures of the unlearning tests: a tiny model that memorises random labels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amun_plugin.data.base import LabeledData


@pytest.fixture
def memorising(tiny_model: nn.Module) -> tuple[nn.Module, LabeledData, LabeledData]:
    """(model, members, non-members): a fresh TinyNet trained to 100% accuracy on 80 random 4x4
    images with random labels (3 classes); 40 more such images are the non-members, so only
    memorisation tells the two apart. The model is in eval mode."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(120, 1, 4, 4, generator=generator)
    y = torch.randint(0, 3, (120,), generator=generator)
    members, non_members = LabeledData(x[:80], y[:80], 3, "members"), LabeledData(x[80:], y[80:], 3, "non-members")
    torch.manual_seed(0)
    model = type(tiny_model)()  # the shared TinyNet architecture, freshly initialised
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(400):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(members.x), members.y).backward()
        optimizer.step()
    return model.eval(), members, non_members
