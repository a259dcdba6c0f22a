"""AMUN+SalUn is AMUN plus the mask: with r = 1 it is AMUN; it shares AMUN's fine-tuning."""

from __future__ import annotations

import pytest
import torch

import amun_plugin
from amun_plugin.errors import InvalidInputError
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn import amun as amun_module


@pytest.fixture(scope="module")
def host():
    return get_plugin_manager(autoload=False)


def test_a_full_mask_gives_exactly_amun(host, tiny_model, tiny_data) -> None:
    forget, retain = tiny_data.subset(range(0, 12)), tiny_data.subset(range(12, 90))
    common = dict(plugins=host, epochs=2, batch_size=32, seed=2)
    amun = amun_plugin.unlearn(tiny_model, forget, retain, method="amun", **common)
    both = amun_plugin.unlearn(tiny_model, forget, retain, method="amun_salun", saliency_ratio=1.0, **common)
    for a, b in zip(amun.model.parameters(), both.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert both.stats["mask_kept_fraction"] == 1.0
    assert both.stats["adversarial"]["median_l2"] == amun.stats["adversarial"]["median_l2"]


def test_it_runs_through_amuns_fine_tuning_with_the_mask_hook(host, tiny_model, tiny_data, monkeypatch) -> None:
    hooks = []
    original = amun_module.finetune_on_union

    def spy(model, forget, retain, adversarial, config, ctx, before_step=None, holdout=None, **kwargs):
        hooks.append(before_step)
        if before_step is not None:  # AMUN+SalUn: the hook applies the weight decay, not the optimiser
            assert config.train_config().weight_decay == 0.0 and config.weight_decay == 5e-4
        return original(model, forget, retain, adversarial, config, ctx, before_step, holdout, **kwargs)

    monkeypatch.setattr(amun_module, "finetune_on_union", spy)
    amun_plugin.unlearn(tiny_model, tiny_data.subset(range(9)), None, method="amun_salun", plugins=host, epochs=1)
    amun_plugin.unlearn(tiny_model, tiny_data.subset(range(9)), None, method="amun", plugins=host, epochs=1)
    assert callable(hooks[0]) and hooks[1] is None


def test_the_ratio_is_checked(host, tiny_model, tiny_data) -> None:
    with pytest.raises(InvalidInputError, match="saliency_ratio"):
        amun_plugin.unlearn(tiny_model, tiny_data.subset(range(9)), method="amun_salun", plugins=host,
                            saliency_ratio=1.5)
