"""Shared tiny fixtures: a seeded linear-ish model on 4x4 "images" and matching data
(``tiny_fixtures.py``); every test isolated from plugins installed in the environment
(``plugin_isolation.py``)."""

from __future__ import annotations

import os

import pytest
import torch
from plugin_isolation import only_entry_points
from tiny_fixtures import TinyNet, make_tiny_data
from torch import nn

from amun_plugin.data.base import LabeledData

torch.set_num_threads(1)
# Set (not defaulted): "0" in the shell would otherwise let installed plugins into every test.
os.environ["AMUN_DISABLE_PLUGIN_AUTOLOAD"] = "1"


@pytest.fixture(autouse=True)
def _no_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees an installed ``amun_plugin`` entry point, even with autoload switched on."""
    monkeypatch.setenv("AMUN_DISABLE_PLUGIN_AUTOLOAD", "1")
    only_entry_points(monkeypatch)


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
