"""Retrain: nothing of the trained weights survives; the recipe mirrors TrainConfig."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import amun_plugin
from amun_plugin.errors import UnsupportedSettingError
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.training import TrainConfig
from amun_plugin.unlearn.retrain import RetrainConfig, reinitialize


@pytest.fixture(scope="module")
def host():
    return get_plugin_manager(autoload=False)


def test_the_result_does_not_depend_on_the_trained_weights(host, tiny_model, tiny_data) -> None:
    forget, retain = tiny_data.subset(range(0, 15)), tiny_data.subset(range(15, 90))
    other = type(tiny_model)()  # the same architecture with entirely different weights
    runs = [amun_plugin.unlearn(m, forget, retain, method="retrain", plugins=host, epochs=3, seed=1).model
            for m in (tiny_model, other)]
    assert all(torch.equal(a, b) for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values()))
    assert not torch.equal(runs[0].head.weight, tiny_model.head.weight)


def test_reinitialize_is_seeded_and_resets_batchnorm_statistics() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model[1].running_mean.fill_(3.0)
    assert reinitialize(model, seed=7) == 2
    first = [p.clone() for p in model.parameters()]
    assert torch.equal(model[1].running_mean, torch.zeros(4))
    reinitialize(model, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(first, model.parameters()))


def test_a_parameter_that_cannot_be_reset_is_refused(host, tiny_model, tiny_data) -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = type(tiny_model)()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) * self.scale

    with pytest.raises(UnsupportedSettingError, match="scale"):
        amun_plugin.unlearn(Scaled(), tiny_data.subset(range(5)), tiny_data.subset(range(5, 90)),
                            method="retrain", plugins=host, epochs=1)


def test_the_recipe_fields_mirror_train_config() -> None:
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert [f.name for f in dataclasses.fields(RetrainConfig)] == names
    config = RetrainConfig(epochs=3, schedule="step", augment="crop")
    assert config.train_config() == TrainConfig(epochs=3, schedule="step", augment="crop")
    assert RetrainConfig().train_config() == TrainConfig()
