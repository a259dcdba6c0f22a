"""Fixtures of the unlearning tests: a tiny model that memorises random labels."""

from __future__ import annotations

import pytest
from tiny_fixtures import make_memorising
from torch import nn

from amun_plugin.data.base import LabeledData


@pytest.fixture
def memorising() -> tuple[nn.Module, LabeledData, LabeledData]:
    """(model, members, non-members) of ``tiny_fixtures.make_memorising``: a TinyNet at 100% on 80
    random images with random labels, and 40 non-members only memorisation tells apart."""
    return make_memorising()
