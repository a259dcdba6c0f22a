"""SalUn: the saliency mask keeps exactly the top-r fraction, and masked weights never move."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import amun_plugin
from amun_plugin.errors import InvalidInputError
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.saliency import masked_update_hook, saliency_mask, saliency_scores, top_fraction_mask


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9, 1.0])
def test_the_mask_keeps_exactly_the_top_fraction(ratio) -> None:
    generator = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(7, 5, generator=generator), "b": torch.rand(13, generator=generator)}
    mask = top_fraction_mask(scores, ratio)
    total = 48
    assert sum(int(m.sum()) for m in mask.values()) == int(ratio * total)
    kept = torch.cat([s[m.bool()] for s, m in zip(scores.values(), mask.values())])
    dropped = torch.cat([s[~m.bool()] for s, m in zip(scores.values(), mask.values())])
    if dropped.numel():
        assert kept.min() > dropped.max()
    assert all(mask[k].shape == scores[k].shape for k in scores)
    with pytest.raises(InvalidInputError, match="ratio"):
        top_fraction_mask(scores, 0.0)


def test_scores_are_the_summed_gradient_of_negative_cross_entropy(tiny_model, tiny_data) -> None:
    forget = tiny_data.subset(range(12))
    tiny_model.train()
    scores = saliency_scores(tiny_model, forget, batch_size=5)  # batches of 5, 5, 2
    assert tiny_model.training  # mode restored
    expected = {name: torch.zeros_like(p) for name, p in tiny_model.named_parameters()}
    for start in (0, 5, 10):
        part = forget.subset(range(start, min(start + 5, 12)))
        grads = torch.autograd.grad(-F.cross_entropy(tiny_model(part.x), part.y), list(tiny_model.parameters()))
        for name, g in zip(expected, grads):
            expected[name] += g
    for name, score in scores.items():
        assert torch.allclose(score, expected[name].abs(), atol=1e-6), name


def test_the_hook_masks_the_whole_update_weight_decay_included(tiny_model) -> None:
    mask = {name: torch.zeros_like(p) for name, p in tiny_model.named_parameters()}
    mask["head.bias"] = torch.ones_like(tiny_model.head.bias)
    for p in tiny_model.parameters():
        p.grad = torch.ones_like(p)
    masked_update_hook(mask, weight_decay=0.5)(tiny_model)
    assert torch.equal(tiny_model.head.weight.grad, torch.zeros_like(tiny_model.head.weight))
    assert torch.allclose(tiny_model.head.bias.grad, 1 + 0.5 * tiny_model.head.bias.detach())


@pytest.mark.parametrize("method", ["salun", "amun_salun"])
@pytest.mark.parametrize("with_retain", [True, False])
def test_masked_weights_get_no_step(tiny_model, tiny_data, method, with_retain) -> None:
    forget, retain = tiny_data.subset(range(0, 15)), tiny_data.subset(range(15, 90))
    host = get_plugin_manager(autoload=False)
    result = amun_plugin.unlearn(tiny_model, forget, retain if with_retain else None, method=method, plugins=host,
                                 epochs=2, lr=0.1, batch_size=16, saliency_ratio=0.3)
    mask = saliency_mask(tiny_model, forget, 0.3)
    before, after = dict(tiny_model.named_parameters()), dict(result.model.named_parameters())
    for name, m in mask.items():
        frozen = m == 0
        assert torch.equal(after[name][frozen], before[name][frozen]), name  # no gradient, no decay
    moved = sum(int((after[n][m == 1] != before[n][m == 1]).sum()) for n, m in mask.items())
    assert moved > 0.5 * sum(int(m.sum()) for m in mask.values())
    total = sum(p.numel() for p in tiny_model.parameters())
    assert result.stats["mask_kept"] == int(0.3 * total)
