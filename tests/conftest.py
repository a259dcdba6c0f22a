"""Shared tiny fixtures: a seeded linear-ish model on 4x4 "images" and matching data
(``tiny_fixtures.py``)."""

from __future__ import annotations

import os

import pytest
import torch
from tiny_fixtures import TinyNet, make_tiny_data
from torch import nn

from amun_plugin.data.base import LabeledData

torch.set_num_threads(1)
os.environ.setdefault("AMUN_DISABLE_PLUGIN_AUTOLOAD", "1")


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
