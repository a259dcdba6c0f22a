"""Fixtures of the unlearning tests: a tiny model that memorises random labels."""

from __future__ import annotations

import pytest
import torch
from tiny_fixtures import make_memorising
from torch import nn

from amun_plugin.data.base import LabeledData
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.training import TrainConfig, train_classifier


@pytest.fixture
def memorising() -> tuple[nn.Module, LabeledData, LabeledData]:
    """(model, members, non-members) of ``tiny_fixtures.make_memorising``: a TinyNet at 100% on 80
    random images with random labels, and 40 non-members only memorisation tells apart."""
    return make_memorising()


@pytest.fixture(scope="module")
def host():
    return get_plugin_manager(autoload=False)


@pytest.fixture(scope="module")
def memorised(host):
    """An MLP that memorises 200 digits (train 100%, held-out ~94%, forget-vs-held-out AUC ~64):
    (model, forget (40), retain (160), holdout (200 test digits))."""
    bundle = host.load_dataset("digits", {})
    order = torch.randperm(len(bundle.train), generator=torch.Generator().manual_seed(0))[:200].sort().values
    train = bundle.train.subset(order)
    torch.set_num_threads(1)
    model = train_classifier(host.make_architecture("mlp", {"hidden": [256, 256]}), train,
                             TrainConfig(epochs=100, batch_size=16, lr=0.05, schedule="cosine"), seed=0)
    forget, retain = train.subset(range(0, 40), "forget"), train.subset(range(40, 200), "retain")
    return model, forget, retain, bundle.test.subset(range(0, 200), "holdout")
