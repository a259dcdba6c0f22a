"""RL: forget samples get random labels from the other classes, redrawn at every visit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import amun_plugin
from amun_plugin.models.inference import accuracy
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.random_label import RelabelLoss, random_other_labels


def test_the_relabelling_never_gives_the_true_label_and_covers_the_others() -> None:
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat(2000)  # every class 2000 times
    draws = random_other_labels(y, 10, generator)
    assert not bool((draws == y).any())
    counts = torch.zeros(10, 10)
    counts.index_put_((y, draws), torch.ones(y.numel()), accumulate=True)
    off_diagonal = counts[~torch.eye(10, dtype=torch.bool)]
    assert off_diagonal.min() > 2000 / 9 * 0.6  # each of the 9 other classes ~222 times
    assert torch.equal(torch.diagonal(counts), torch.zeros(10))


def test_the_loss_relabels_only_forget_positions_and_redraws_each_call() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(8, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    loss = RelabelLoss(first_forget=4, num_classes=3, generator=torch.Generator().manual_seed(1))
    retain_only = loss(logits[:4], y[:4], torch.arange(4))
    assert torch.equal(retain_only, F.cross_entropy(logits[:4], y[:4]))
    values = {round(float(loss(logits, y, torch.arange(8))), 6) for _ in range(20)}
    assert len(values) > 1  # fresh random labels at each visit
    assert all(v != round(float(F.cross_entropy(logits, y)), 6) for v in values)


@pytest.mark.parametrize("with_retain", [True, False])
def test_rl_lowers_forget_accuracy(tiny_model, tiny_data, with_retain) -> None:
    forget, retain = tiny_data.subset(range(0, 15)), tiny_data.subset(range(15, 90))
    host = get_plugin_manager(autoload=False)
    result = amun_plugin.unlearn(tiny_model, forget, retain if with_retain else None, method="rl", plugins=host,
                                 epochs=10, lr=0.1, batch_size=16)
    assert accuracy(result.model, forget) < accuracy(tiny_model, forget) - 20
    assert result.stats["train_size"] == (90 if with_retain else 15)
