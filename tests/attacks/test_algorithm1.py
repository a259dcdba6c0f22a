"""PAPER_SETTINGS' search is the paper's Algorithm 1 exactly: checked against a direct port.

The port follows Algorithm 1 of the AMUN paper sample by sample, with none of the package's
machinery (batching, backends, active sets): PGD-L2 on the cross-entropy, 50 steps per round,
alpha = eps / 10, the gradient normalised to unit L2 norm, projection onto the eps-ball and [0, 1],
stop at the first misclassified iterate; a sample not fooled after 50 steps doubles eps and
continues from its current iterate.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amun_plugin.attacks import NativePGDL2, SearchConfig, nearest_adversarial
from amun_plugin.config import make_config
from amun_plugin.data.base import LabeledData
from amun_plugin.models import MLP, build_model
from amun_plugin.training import TrainConfig, train_model
from amun_plugin.unlearn.amun import PAPER_SETTINGS, AmunConfig


def algorithm1_port(model: nn.Module, x: torch.Tensor, y: int, eps: float = 0.04, steps: int = 50,
                    max_doublings: int = 20) -> tuple[torch.Tensor, int, float]:
    """One sample x (1, ...) with label y -> (x_adv, the model's label on it, final eps)."""
    x_adv = x.clone()
    for _ in range(max_doublings + 1):
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            logits = model(x_adv)
            if int(logits.argmax(dim=1)) != y:
                return x_adv.detach(), int(logits.argmax(dim=1)), eps
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([y])), x_adv)
            x_new = x_adv.detach() + (eps / 10) * grad / grad.norm()
            delta = x_new - x
            delta = delta * min(1.0, eps / float(delta.norm()))
            x_adv = (x + delta).clamp(0.0, 1.0)
        with torch.no_grad():
            label = int(model(x_adv).argmax(dim=1))
        if label != y:
            return x_adv.detach(), label, eps
        eps *= 2
    raise AssertionError("the port found no adversarial example")


def _tiny_model_and_data() -> tuple[nn.Module, LabeledData]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 6, 6, generator=g)
    y = (x.flatten(1)[:, :18].sum(dim=1) > x.flatten(1)[:, 18:].sum(dim=1)).long() + 2 * (x[:, 0, 0, 0] > 0.5).long()
    data = LabeledData(x, y, 4)
    model = build_model(MLP({"hidden": (32,)}), 4, (1, 6, 6), seed=0)
    train_model(model, data, TrainConfig(epochs=30, batch_size=16, lr=0.05))
    return model.eval(), data


def test_paper_settings_search_is_algorithm_1_to_1e_6() -> None:
    torch.set_num_threads(1)
    model, data = _tiny_model_and_data()
    config = make_config(AmunConfig, PAPER_SETTINGS)
    assert config.attack == "native_pgd_l2" and config.search.refine_steps == 0
    assert config.search.mode_name == "Algorithm 1"
    backend = NativePGDL2(dict(config.attack_options))
    result = nearest_adversarial(model, data, backend, config.search)
    assert bool(result.found.all())
    attacked = 0
    for i in range(len(data)):
        x_adv, label, eps = algorithm1_port(model, data.x[i:i + 1], int(data.y[i]))
        assert float((result.x_adv[i] - x_adv[0]).abs().max()) < 1e-6, f"sample {i}"
        assert int(result.y_adv[i]) == label
        if not bool(result.already_misclassified[i]):
            assert float(result.eps[i]) == pytest.approx(eps, rel=1e-6)  # stored as float32
            attacked += 1
    assert attacked >= 60 and int(result.doublings.max()) >= 1  # the doubling path is exercised


def test_algorithm_1_plus_bisection_moves_the_points_closer() -> None:
    model, data = _tiny_model_and_data()
    strict = SearchConfig(eps_init=0.04, refine_steps=0)
    bisection = SearchConfig(eps_init=0.04)
    assert bisection.mode_name == "Algorithm 1 + bisection"
    backend = NativePGDL2({"loss": "ce"})
    a = nearest_adversarial(model, data, backend, strict)
    b = nearest_adversarial(model, data, backend, bisection)
    moved = a.found & ~a.already_misclassified
    assert bool((b.distance_l2[moved] <= a.distance_l2[moved] + 1e-6).all())
    assert float(b.distance_l2[moved].median()) < float(a.distance_l2[moved].median())
