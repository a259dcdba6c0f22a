"""DAU: the Barlow-Twins term, the attacker's inputs, and the attacker losing the game."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import amun_plugin
from amun_plugin.errors import UnsupportedSettingError
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.dau import DauConfig
from amun_plugin.unlearn.dau_attacker import (
    MembershipAttacker,
    attack_features,
    barlow_twins_loss,
    logits_and_sensitivity,
)

TINY_ATTACKER = dict(attacker_width=16, attacker_layers=1, attacker_heads=2, attacker_ffn=32, sensitivity_draws=4)


def test_barlow_twins_matches_hand_computed_values() -> None:
    # B = 2: every column standardises to (-1, 1) or (1, -1); C = [[1, -1], [1, -1]]
    f = torch.tensor([[0.0, 5.0], [2.0, 1.0]])
    v = torch.tensor([[1.0, 1.0], [3.0, 4.0]])
    assert barlow_twins_loss(f, v, 5e-3, eps=0.0).item() == pytest.approx((-1 - 1) ** 2 + 5e-3 * (1 + 1))
    # identical features with correlation sqrt(3)/2: diagonal terms vanish, 2 off-diagonal (3/4)
    g = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 3.0]])
    assert barlow_twins_loss(g, g, 5e-3, eps=0.0).item() == pytest.approx(5e-3 * 2 * 0.75)
    assert barlow_twins_loss(f, v).item() == pytest.approx(4.01, rel=1e-4)  # default eps barely matters


def test_sensitivity_of_a_linear_model_is_the_mean_of_abs_w_u() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=True))
    x = torch.rand(5, 1, 2, 2)
    logits, s = logits_and_sensitivity(model, x, draws=6, step=1e-3, generator=torch.Generator().manual_seed(3))
    u = torch.randn((6, 5, 1, 2, 2), generator=torch.Generator().manual_seed(3)).flatten(2)
    expected = (u @ model[1].weight.T).abs().mean(dim=0)
    assert torch.allclose(s, expected, atol=2e-2)
    features = attack_features(logits, torch.tensor([0, 1, 2, 0, 1]), s)
    assert features.shape == (5, 3, 3)
    assert torch.equal(features[:, :, 1], torch.eye(3)[[0, 1, 2, 0, 1]]) and torch.equal(features[:, :, 0], logits)
    assert MembershipAttacker(3, width=8, layers=1, heads=2, ffn=16)(features.detach()).shape == (5, 2)


def test_defaults_follow_the_paper() -> None:
    c = DauConfig()
    assert (c.attack_weight, c.bt_weight, c.bt_off_diagonal, c.attacker_lr, c.epochs) == (0.9, 0.001, 5e-3, 1e-3, 3)
    assert (c.attacker_width, c.attacker_layers, c.attacker_heads, c.attacker_ffn) == (64, 3, 4, 128)
    assert (c.attacker_dropout, c.sensitivity_draws, c.sensitivity_step, c.lr) == (0.2, 10, 1e-3, 0.01)


def test_the_attackers_heldout_accuracy_falls_during_unlearning(memorising) -> None:
    model, members, non_members = memorising
    forget, retain = members.subset(range(20)), members.subset(range(20, 80))
    host = get_plugin_manager(autoload=False)
    stats = amun_plugin.unlearn(
        model, forget, retain, method="dau", validation=non_members, plugins=host, epochs=5, batch_size=16, lr=0.05,
        pair_batch_size=20, attacker_warmup_steps=40, attacker_lr=1e-2, attacker_holdout=0.5, **TINY_ATTACKER,
    ).stats
    # judged on 10 forget + 10 validation samples the attacker never trained on
    assert stats["attacker_heldout_size"] == 10 and "attacker_accuracy_per_epoch" not in stats
    trained = stats["attacker_heldout_accuracy_after_warmup"]  # before the defender moves
    assert trained >= 80  # the memorising model leaks membership, also on unseen samples
    assert stats["attacker_heldout_accuracy_final"] <= trained - 15
    assert len(stats["attacker_heldout_accuracy_per_epoch"]) == 5 and not math.isnan(stats["train_final_loss"])


def test_heldout_samples_never_train_the_attacker(memorising, monkeypatch: pytest.MonkeyPatch) -> None:
    from amun_plugin.unlearn import dau as dau_module

    model, members, non_members = memorising
    forget = members.subset(range(20))
    seen: list[int] = []
    real = dau_module._Game._attacker_step

    def spy(game, features, membership):
        seen.append(int(features.shape[0]))
        held = set(game.held_forget.tolist())
        assert len(held) == 4 and not game.trains_forget[sorted(held)].any()
        return real(game, features, membership)

    monkeypatch.setattr(dau_module._Game, "_attacker_step", spy)
    amun_plugin.unlearn(model, forget, members.subset(range(20, 80)), method="dau", validation=non_members,
                        plugins=get_plugin_manager(autoload=False), epochs=1, batch_size=30, pair_batch_size=20,
                        **TINY_ATTACKER)
    # each pair batch is all 20 forget samples and 20 of the 40 validation ones: the 4 held-out
    # forget samples and the held-out validation samples drawn are left out of every attacker step
    assert seen and all(n <= 40 - 4 for n in seen)


def test_features_come_from_a_named_layer_or_the_model_is_refused(tiny_data) -> None:
    host = get_plugin_manager(autoload=False)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))  # no features() method
    parts = dict(forget=tiny_data.subset(range(10)), retain=tiny_data.subset(range(20, 90)),
                 validation=tiny_data.subset(range(10, 20)), method="dau", plugins=host, epochs=1, **TINY_ATTACKER)
    with pytest.raises(UnsupportedSettingError, match="penultimate features.*layer="):
        amun_plugin.unlearn(plain, **parts)
    result = amun_plugin.unlearn(plain, feature_layer="2", **parts)
    assert not torch.equal(result.model[1].weight, plain[1].weight)
