"""TRADES (``amun_plugin.training.robust.TradesLoss``) against the paper and the authors' code.

Zhang et al. (2019), "Theoretically Principled Trade-off between Robustness and Accuracy", eq. (5):
loss = CE(f(x), y) + beta * KL(f(x) || f(x')), the KL summed over classes and averaged over the
batch (the authors' ``trades.py``: ``(1 / batch_size) * KLDivLoss(size_average=False)(log f(x'), f(x))``),
x' by L_inf PGD on KL(f(x) || f(x')) with the model in eval mode.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from tiny_fixtures import TinyNet, make_tiny_data
from torch import Tensor, nn

import amun_plugin.training.loop as loop
from amun_plugin.data.base import LabeledData
from amun_plugin.models.mlp import MLP
from amun_plugin.training.loop import TrainConfig
from amun_plugin.training.robust import TradesConfig, TradesLoss, train_original


def _tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TinyNet()


def _kl_rows(p_log: Tensor, q_log: Tensor) -> Tensor:
    """KL(p || q) per row (B,) from log-probabilities (B, C), written out by hand."""
    return (p_log.exp() * (p_log - q_log)).sum(dim=1)


def test_loss_is_natural_ce_plus_beta_batchmean_kl_of_clean_to_adversarial(monkeypatch: pytest.MonkeyPatch) -> None:
    data, model, beta = make_tiny_data(12), _tiny_net(), 2.5
    with torch.no_grad():
        model.head.weight.mul_(30.0)  # confident outputs: KL large enough to compare directions
    x_adv = (data.x + 0.2 * torch.randn(data.x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    loss_fn = TradesLoss(model, data, TradesConfig(beta=beta, eps=0.1, steps=1), seed=0)
    monkeypatch.setattr(loss_fn, "_attack", lambda x: x_adv)  # a fixed x' isolates the outer loss
    loss = loss_fn(model(data.x), data.y, torch.arange(12))

    p_log, q_log = F.log_softmax(model(data.x), dim=1), F.log_softmax(model(x_adv), dim=1)
    ce = -p_log[torch.arange(12), data.y].mean()
    forward_kl, reverse_kl = _kl_rows(p_log, q_log).mean(), _kl_rows(q_log, p_log).mean()
    gap = float((forward_kl - reverse_kl).detach())
    assert abs(gap) > 0.05 * float(forward_kl.detach())  # this instance tells the two directions apart
    expected = ce + beta * forward_kl
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # the gradient flows through f(x) in both terms (the target is not detached) and through f(x')
    params = list(model.parameters())
    grads, expected_grads = torch.autograd.grad(loss, params), torch.autograd.grad(expected, params)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


class _BatchNormNet(nn.Module):
    """BatchNorm whose running stats never move (momentum 0): train and eval outputs differ."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.BatchNorm1d(16, momentum=0.0), nn.ReLU(),
                                 nn.Linear(16, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _authors_trades(model: nn.Module, x: Tensor, y: Tensor, noise: Tensor, cfg: TradesConfig) -> tuple[Tensor, Tensor]:
    """A port of ``trades_loss`` from github.com/yaodongyu/TRADES (trades.py, distance 'l_inf'),
    step size eps / 4 as the package uses; returns (x_adv, loss)."""
    model.eval()
    x_adv = x.detach() + 0.001 * noise
    for _ in range(cfg.steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1), reduction="sum")
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + cfg.eps / 4 * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - cfg.eps), x + cfg.eps).clamp(0.0, 1.0)
    model.train()
    logits = model(x)
    robust = (1.0 / len(x)) * F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1), reduction="sum")
    return x_adv, F.cross_entropy(logits, y) + cfg.beta * robust


def test_matches_a_port_of_the_authors_code_with_batchnorm_in_train_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the attack's target: f(x) in eval mode (as the authors), not the train-mode logits."""
    generator = torch.Generator().manual_seed(0)
    x = 0.1 + 0.8 * torch.rand(16, 1, 4, 4, generator=generator)  # interior: the start needs no clamp
    y = torch.arange(16) % 3
    data, cfg = LabeledData(x, y, 3, "interior"), TradesConfig(beta=6.0, eps=0.1, steps=4)
    torch.manual_seed(0)
    model = _BatchNormNet().train()
    reference = copy.deepcopy(model)
    loss_fn = TradesLoss(model, data, cfg, seed=5)
    seen: list[Tensor] = []
    attack = loss_fn._attack
    monkeypatch.setattr(loss_fn, "_attack", lambda x_: seen.append(attack(x_)) or seen[-1])
    loss = loss_fn(model(x), y, torch.arange(16))

    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    x_adv_ref, loss_ref = _authors_trades(reference, x, y, noise, cfg)
    torch.testing.assert_close(seen[0], x_adv_ref, rtol=0, atol=1e-6)
    assert loss.item() == pytest.approx(loss_ref.item(), rel=1e-5)
    assert model.training and all(m.training for m in model.modules())


def test_attack_stays_in_the_linf_ball_and_the_pixel_box_and_raises_the_kl() -> None:
    data, model, eps = make_tiny_data(30), _tiny_net(), 0.2
    assert (data.x == 0).any() and (data.x == 1).any()  # pixels on both box edges
    loss_fn = TradesLoss(model.eval(), data, TradesConfig(eps=eps, steps=6), seed=2)
    x_adv = loss_fn._attack(data.x)
    gap = (x_adv - data.x).abs()
    assert float(gap.max()) <= eps + 1e-6 and float(gap.max()) >= 0.99 * eps  # projection active, at the radius
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0

    start = (data.x + 0.001 * torch.randn(data.x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    with torch.no_grad():
        clean = F.log_softmax(model(data.x), dim=1)
        kl_start = _kl_rows(clean, F.log_softmax(model(start), dim=1)).sum()
        kl_adv = _kl_rows(clean, F.log_softmax(model(x_adv), dim=1)).sum()
    assert float(kl_adv) > 100 * float(kl_start) + 1e-3


def test_restores_modes_and_requires_grad_and_leaves_grads_and_data_alone() -> None:
    data, model = make_tiny_data(12), _tiny_net()
    model.train()
    model.head.eval()  # mixed modes must come back as they were
    model.body[1].weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    pixels = data.x.clone()
    loss = TradesLoss(model, data, TradesConfig(steps=3), seed=0)(model(data.x), data.y, torch.arange(12))
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())  # the attack's gradients go to x' only
    assert torch.equal(data.x, pixels) and not data.x.requires_grad
    loss.backward()
    assert model.body[1].weight.grad is None and model.head.weight.grad is not None


def test_deterministic_for_a_seed() -> None:
    data = make_tiny_data(12)

    def run(seed: int) -> Tensor:
        model = _tiny_net()
        return TradesLoss(model, data, TradesConfig(eps=0.1, steps=2), seed)(model(data.x), data.y, torch.arange(12))

    torch.manual_seed(123)
    first = run(0)
    torch.manual_seed(456)  # the global RNG must not matter
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))


def test_train_original_attacks_around_the_augmented_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``augment: crop`` the KL compares f(aug x) with f(x') near aug x, not near raw x."""
    augmented: list[Tensor] = []
    attacked: list[Tensor] = []
    real_augment, real_attack = loop.augment_batch, TradesLoss._attack
    monkeypatch.setattr(loop, "augment_batch", lambda *a, **k: augmented.append(real_augment(*a, **k)) or augmented[-1])
    monkeypatch.setattr(TradesLoss, "_attack", lambda self, x: attacked.append(x) or real_attack(self, x))
    recipe = TrainConfig(epochs=2, batch_size=10, lr=0.05, augment="crop")
    model, _ = train_original(MLP({"hidden": (8,)}), make_tiny_data(30), recipe, variant="trades", options={"steps": 1})
    assert len(attacked) == len(augmented) == 6
    for x_attacked, x_augmented in zip(attacked, augmented):
        torch.testing.assert_close(x_attacked, x_augmented, rtol=0, atol=0)
    raw, rows = make_tiny_data(30).x.flatten(1), torch.cat(attacked).flatten(1)
    unchanged = (rows[:, None, :] == raw[None]).all(dim=-1).any(dim=-1)
    assert float(unchanged.float().mean()) < 0.5  # most crops moved the image: raw x would be caught
    assert not model._forward_pre_hooks  # the recording hook is gone with training
