"""NativePGDL2 and the attack losses: the reference procedure of AMUN's Algorithm 1."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amun_plugin.attacks import AttackLoss, NativePGDL2, attack_loss
from amun_plugin.attacks.native_pgd import project_l2, unit_l2
from amun_plugin.errors import InvalidInputError


def _linear(scale: float = 1.0, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].weight.mul_(scale)
        model[1].bias.mul_(scale)
    return model.eval()


def _data(model: nn.Module, n: int = 12, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return x, y


def _reference_first_misclassified(model, x, y, eps, steps, ratio):
    """Plain per-sample PGD loop (no batching tricks) returning the first misclassified iterate."""
    out, evals = x.clone(), torch.zeros(x.shape[0], dtype=torch.long)
    for i in range(x.shape[0]):
        xi = x[i : i + 1].clone()
        for _ in range(steps):
            xi.requires_grad_(True)
            logits = model(xi)
            evals[i] += 1
            if logits.argmax(1).item() != y[i].item():
                break
            (g,) = torch.autograd.grad(F.cross_entropy(logits, y[i : i + 1]), xi)
            xi = xi.detach() + eps[i] * ratio * g / g.norm()
            d = xi - x[i : i + 1]
            xi = (x[i : i + 1] + d * min(1.0, float(eps[i] / d.norm()))).clamp(0, 1)
        out[i] = xi.detach()
    return out, evals


def test_attack_loss_values():
    logits = torch.tensor([[3.0, 1.0, 0.5], [0.0, 2.0, 5.0]])
    y = torch.tensor([0, 1])
    assert torch.allclose(attack_loss(logits, y, "ce"), F.cross_entropy(logits, y, reduction="none"))
    assert torch.allclose(attack_loss(logits, y, AttackLoss.MARGIN), torch.tensor([-2.0, 3.0]))
    with pytest.raises(InvalidInputError):
        attack_loss(logits, y, "hinge")


def test_margin_keeps_a_gradient_where_ce_saturates():
    logits = torch.tensor([[200.0, 0.0, -10.0]], requires_grad=True)
    y = torch.tensor([0])
    (g_ce,) = torch.autograd.grad(attack_loss(logits, y, "ce").sum(), logits)
    (g_margin,) = torch.autograd.grad(attack_loss(logits, y, "margin").sum(), logits)
    assert torch.count_nonzero(g_ce) == 0
    assert torch.equal(g_margin, torch.tensor([[-1.0, 1.0, 0.0]]))


def test_unit_l2_and_projection():
    grad = torch.zeros(3, 1, 2, 2)
    grad[1] = 1e-30  # would underflow to a zero norm without rescaling
    grad[2, 0, 0, 0] = -5.0
    unit = unit_l2(grad)
    assert torch.count_nonzero(unit[0]) == 0
    assert torch.allclose(unit[1:].flatten(1).norm(dim=1), torch.ones(2))
    x = torch.full((2, 4), 0.5)
    far = x + torch.tensor([[0.3, 0.4, 0.0, 0.0], [0.01, 0.0, 0.0, 0.0]])
    out = project_l2(x, far, torch.tensor([0.25, 0.25]))
    assert torch.allclose((out - x).norm(dim=1), torch.tensor([0.25, 0.01]))


def test_matches_a_plain_reference_loop_with_early_stop():
    model = _linear()
    x, y = _data(model)
    eps = torch.linspace(0.3, 1.5, x.shape[0])
    out = NativePGDL2({"steps": 20}).perturb(model, x, y, eps)
    ref, ref_evals = _reference_first_misclassified(model, x, y, eps, 20, 0.1)
    assert torch.allclose(out.x_adv, ref, atol=1e-5)
    assert torch.equal(out.grad_evals, ref_evals)
    fooled = model(out.x_adv).argmax(1) != y
    assert fooled.any() and (~fooled).any()  # the test exercises both branches
    assert ((out.x_adv - x).flatten(1).norm(dim=1) <= eps + 1e-5).all()


def test_grad_evals_count_every_sample_in_each_forward_backward(count_samples):
    model = count_samples(_linear())
    x, y = _data(model.model)
    out = NativePGDL2({"steps": 15}).perturb(model, x, y, 0.4)
    assert model.grad_samples == int(out.grad_evals.sum()) > 0
    assert out.grad_evals.max() <= 15 and out.grad_evals.min() >= 1


def test_zero_gradient_takes_no_step_and_margin_moves():
    model = _linear(scale=1e4)  # softmax saturates: p_y == 1.0, CE gradient exactly 0
    x, y = _data(model, n=6)
    ce = NativePGDL2({"steps": 5}).perturb(model, x, y, 1.0)
    assert torch.equal(ce.x_adv, x)
    assert torch.equal(ce.grad_evals, torch.full((6,), 5))
    margin = NativePGDL2({"steps": 5, "loss": "margin"}).perturb(model, x, y, 1.0)
    assert ((margin.x_adv - x).flatten(1).norm(dim=1) > 0.05).all()


def test_starts_from_x_init_projected_into_the_ball():
    model = _linear()
    x, y = _data(model, n=8)
    far = NativePGDL2({"steps": 50}).perturb(model, x, y, 10.0).x_adv
    fooled = model(far).argmax(1) != y
    assert fooled.any()
    out = NativePGDL2({"steps": 50}).perturb(model, x, y, 100.0, x_init=far)
    assert torch.equal(out.x_adv[fooled], far[fooled])  # already misclassified at iterate 0
    assert (out.grad_evals[fooled] == 1).all()
    small = NativePGDL2({"steps": 1}).perturb(model, x, y, 0.05, x_init=far)
    assert ((small.x_adv - x).flatten(1).norm(dim=1) <= 0.05 + 1e-6).all()


def test_config_is_validated():
    with pytest.raises(InvalidInputError):
        NativePGDL2({"steps": 0})
    with pytest.raises(InvalidInputError):
        NativePGDL2({"loss": "hinge"})
    with pytest.raises(InvalidInputError):
        NativePGDL2({"step_ratio": -0.1})
    assert NativePGDL2({"loss": "margin"}).config.loss is AttackLoss.MARGIN
