"""FT: fine-tuning on D_R alone (D_F is never seen), refused without D_R; the shared config."""

from __future__ import annotations

import copy

import pytest
import torch

import amun_plugin
from amun_plugin.errors import InvalidInputError, UnsupportedSettingError
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.training import Schedule, TrainConfig, train_model
from amun_plugin.unlearn.finetune import FinetuneConfig


@pytest.fixture(scope="module")
def host():
    return get_plugin_manager(autoload=False)


def test_ft_is_plain_training_on_the_retain_set_only(host, tiny_model, tiny_data) -> None:
    forget, retain = tiny_data.subset(range(0, 15)), tiny_data.subset(range(15, 90))
    result = amun_plugin.unlearn(tiny_model, forget, retain, method="ft", plugins=host, epochs=3, batch_size=16, seed=4)
    by_hand = copy.deepcopy(tiny_model)
    recipe = TrainConfig(epochs=3, batch_size=16, lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="constant")
    train_model(by_hand, retain, recipe, seed=4)
    for (name, got), want in zip(result.model.state_dict().items(), by_hand.state_dict().values(), strict=True):
        assert torch.equal(got, want), name
    # the forget labels play no part: scrambling them changes nothing
    scrambled = type(forget)(forget.x, (forget.y + 1) % 3, 3)
    again = amun_plugin.unlearn(tiny_model, scrambled, retain, method="ft", plugins=host, epochs=3, batch_size=16,
                                seed=4)
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), result.model.parameters(), strict=True))
    assert result.stats["retain_size"] == 75 and result.stats["train_epochs"] == 3


@pytest.mark.parametrize("method", ["ft", "l1_sparse", "retrain"])
def test_methods_that_need_retain_are_refused_with_alternatives(host, tiny_model, tiny_data, method) -> None:
    with pytest.raises(UnsupportedSettingError, match=rf"'{method}' needs the retain set D_R.*'amun'.*'rl'"):
        amun_plugin.unlearn(tiny_model, tiny_data.subset(range(5)), None, method=method, plugins=host)


def test_finetune_config_maps_onto_a_train_config_and_checks_values() -> None:
    config = FinetuneConfig(epochs=4, lr=0.5, schedule="step", step_size=2)
    recipe = config.train_config(weight_decay=0.0)
    assert (recipe.epochs, recipe.lr, recipe.schedule, recipe.step_size, recipe.weight_decay) == (
        4, 0.5, Schedule.STEP, 2, 0.0)
    assert FinetuneConfig().schedule is Schedule.CONSTANT and FinetuneConfig().weight_decay == 5e-4
    with pytest.raises(InvalidInputError, match="lr must be positive"):
        FinetuneConfig(lr=0.0)
