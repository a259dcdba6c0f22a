"""BS: labels come from the FGSM point (L_inf 26/255) on a frozen copy of the model."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import amun_plugin
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn import boundary_shrink as bs


def test_eps_is_quantised_to_the_8_bit_grid() -> None:
    assert bs.quantize_eps(0.1) == 26 / 255
    assert bs.BoundaryShrinkConfig().step == 26 / 255
    assert bs.BoundaryShrinkConfig(quantize=False).step == 0.1


def test_neighbour_labels_are_the_predictions_at_the_fgsm_point(tiny_model, tiny_data) -> None:
    x, y = tiny_data.x[:30], tiny_data.y[:30]
    tiny_model.zero_grad(set_to_none=True)
    labels = bs.fgsm_neighbour_labels(tiny_model, x, y, eps=0.3, batch_size=7)
    assert all(p.grad is None for p in tiny_model.parameters())  # no gradient on the weights
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(tiny_model(xr), y).backward()
    by_hand = tiny_model((x + 0.3 * xr.grad.sign()).clamp(0, 1)).argmax(dim=1)
    assert torch.equal(labels, by_hand)
    assert bool((labels != y).any())  # the step does flip some labels


def test_bs_trains_on_labels_of_a_frozen_copy_taken_each_epoch(tiny_model, tiny_data, monkeypatch) -> None:
    calls = []
    original = bs.fgsm_neighbour_labels

    def spy(model, x, y, eps, batch_size=256):
        labels = original(model, x, y, eps, batch_size)
        calls.append(({k: v.clone() for k, v in model.state_dict().items()}, model, eps, labels))
        return labels

    monkeypatch.setattr(bs, "fgsm_neighbour_labels", spy)
    forget = tiny_data.subset(range(0, 15))
    host = get_plugin_manager(autoload=False)
    result = amun_plugin.unlearn(tiny_model, forget, None, method="bs", plugins=host, epochs=2, lr=0.5)
    assert len(calls) == 2
    first_state, first_copy, eps, first_labels = calls[0]
    assert eps == 26 / 255
    assert all(torch.equal(first_state[k], v) for k, v in tiny_model.state_dict().items())  # epoch 0: the original
    assert not any(p.requires_grad for p in first_copy.parameters())  # frozen
    assert torch.equal(first_labels, original(tiny_model, forget.x, forget.y, 26 / 255))
    assert any(not torch.equal(calls[1][0][k], v) for k, v in first_state.items())  # epoch 1: the updated model
    assert calls[1][1] is not calls[0][1] and calls[1][1] is not result.model
    assert result.stats["label_changed_fraction_per_epoch"][0] == float((first_labels != forget.y).float().mean())
