"""GA: the forget loss goes up; with D_R every epoch starts with a D_R pass at the scheduled lr."""

from __future__ import annotations

import pytest
import torch.nn.functional as F

import amun_plugin
from amun_plugin.models.inference import predict_logits
from amun_plugin.plugins import get_plugin_manager


def _forget_loss(model, data) -> float:
    return float(F.cross_entropy(predict_logits(model, data.x), data.y))


@pytest.mark.parametrize("with_retain", [True, False])
def test_ga_raises_the_forget_loss(memorising, with_retain) -> None:
    model, members, _ = memorising
    forget, retain = members.subset(range(0, 20)), members.subset(range(20, 80))
    host = get_plugin_manager(autoload=False)
    result = amun_plugin.unlearn(model, forget, retain if with_retain else None, method="ga", plugins=host,
                                 epochs=3, lr=0.2, batch_size=5)
    assert _forget_loss(result.model, forget) > 10 * _forget_loss(model, forget)
    assert result.stats["train_loss_per_epoch"][0] < 0  # the optimised loss is -CE


def test_the_retain_prepass_runs_before_every_epoch_at_that_epochs_lr(tiny_model, tiny_data) -> None:
    forget, retain = tiny_data.subset(range(0, 15)), tiny_data.subset(range(15, 90))
    host = get_plugin_manager(autoload=False)
    stats = amun_plugin.unlearn(tiny_model, forget, retain, method="ga", plugins=host, epochs=3, lr=0.1,
                                schedule="step", step_size=1, gamma=0.5).stats
    assert stats["retain_passes"] == 3
    assert stats["retain_lr_per_epoch"] == pytest.approx([0.1, 0.05, 0.025])
    assert stats["train_lr_per_epoch"] == pytest.approx([0.1, 0.05, 0.025])
    without = amun_plugin.unlearn(tiny_model, forget, None, method="ga", plugins=host, epochs=3).stats
    assert without["retain_passes"] == 0
