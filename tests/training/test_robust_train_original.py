"""``train_original`` with each variant on the tiny fixture, and the refusal of bad options."""

from __future__ import annotations

import math

import pytest
import torch
import torchattacks
from tiny_fixtures import make_tiny_data
from torch import nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.models.inference import build_model
from amun_plugin.models.mlp import MLP
from amun_plugin.training.loop import TrainConfig
from amun_plugin.training.robust import LipschitzClipper, train_original

ARCH = MLP({"hidden": (32,)})
RECIPE = TrainConfig(epochs=15, batch_size=30, lr=0.1, momentum=0.9)
OPTIONS = {"standard": None, "trades": {"beta": 6.0, "eps": 0.1, "steps": 5}, "lipschitz": {"max_norm": 0.8}}


@pytest.mark.parametrize("variant", ["standard", "trades", "lipschitz"])
def test_each_variant_trains_and_returns_an_eval_model_and_its_stats(variant: str) -> None:
    data = make_tiny_data(90)
    recipe = TrainConfig(epochs=3, batch_size=30, lr=0.1)
    model, stats = train_original(ARCH, data, recipe, variant=variant, options=OPTIONS[variant], seed=1)
    assert not any(m.training for m in model.modules())
    assert (stats.epochs, stats.steps, len(stats.loss_per_epoch)) == (3, 9, 3)
    assert all(math.isfinite(v) for v in stats.loss_per_epoch) and stats.final_loss == stats.loss_per_epoch[-1]
    assert not model._forward_pre_hooks and not model._forward_hooks  # nothing left hooked on the model
    initial = build_model(ARCH, 3, data.input_shape, seed=1)
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), initial.parameters()))  # it trained
    again, _ = train_original(ARCH, data, recipe, variant=variant, options=OPTIONS[variant], seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))  # seeded


def test_lipschitz_training_clips_after_every_step_and_ends_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    data, calls = make_tiny_data(150), []
    real_call = LipschitzClipper.__call__
    monkeypatch.setattr(LipschitzClipper, "__call__", lambda self, it=None: calls.append(it) or real_call(self, it))
    model, stats = train_original(ARCH, data, RECIPE, variant="lipschitz", options={"max_norm": 0.8}, seed=0)
    assert calls == [50] + [None] * stats.steps + [50]  # a clip before, after every SGD step, and a final one
    norms = [float(torch.linalg.matrix_norm(m.weight.detach().double(), ord=2)) for m in model.modules()
             if isinstance(m, nn.Linear)]
    assert len(norms) == 2 and max(norms) <= 0.8 * (1 + 1e-4)
    assert max(norms) >= 0.8 * (1 - 1e-2)  # the clip was active: plain SGD here leaves norms above 1
    unclipped, _ = train_original(ARCH, data, RECIPE, seed=0)
    assert max(float(torch.linalg.matrix_norm(m.weight.detach(), ord=2)) for m in unclipped.modules()
               if isinstance(m, nn.Linear)) > 1.0
    generator = torch.Generator().manual_seed(0)
    x, x2 = torch.rand(300, 1, 4, 4, generator=generator), torch.rand(300, 1, 4, 4, generator=generator)
    with torch.no_grad():
        ratio = (model(x) - model(x2)).norm(dim=1) / (x - x2).flatten(1).norm(dim=1)
    assert float(ratio.max()) <= math.prod(norms) * (1 + 1e-5)


def _pgd_accuracy(model: nn.Module, eps: float) -> float:
    """Accuracy (fraction) under torchattacks L_inf PGD (10 steps of eps / 4, no random start) on
    300 fresh tiny samples (another seed than the training set)."""
    test = make_tiny_data(300, seed=1)
    x_adv = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=10, random_start=False)(test.x, test.y)
    with torch.no_grad():
        return float((model(x_adv).argmax(dim=1) == test.y).float().mean())


def test_trades_is_more_robust_than_standard_training_on_the_same_data_and_seed() -> None:
    """The margin's origin: ``benchmarks/results/trades_fixture_margin`` (``benchmarks/
    trades_fixture_margin.py``, n = 12 training seeds, this fixture, recipe and attack): TRADES ahead
    in 12 of 12, by +11.6 ± 3.6 points (mean ± 95% t), smallest +2.0; seed 0: 81.0% vs 59.0% (+22.0).
    The test asks seed 0 for 10 points. With beta = 0 (no KL term) both trainings coincide (gap 0)."""
    data = make_tiny_data(150)
    standard, _ = train_original(ARCH, data, RECIPE, seed=0)
    trades, _ = train_original(ARCH, data, RECIPE, variant="trades", options=OPTIONS["trades"], seed=0)
    assert _pgd_accuracy(trades, 0.1) >= _pgd_accuracy(standard, 0.1) + 0.10


@pytest.mark.parametrize(
    ("variant", "options", "field"),
    [
        ("trades", {"beta": -1.0}, "beta"),
        ("trades", {"beta": float("nan")}, "beta"),
        ("trades", {"eps": 0.0}, "eps"),
        ("trades", {"eps": -0.1}, "eps"),
        ("trades", {"eps": float("inf")}, "eps"),
        ("trades", {"steps": 0}, "steps"),
        ("lipschitz", {"max_norm": 0.0}, "max_norm"),
        ("lipschitz", {"max_norm": -1.0}, "max_norm"),
        ("lipschitz", {"max_norm": float("nan")}, "max_norm"),
        ("lipschitz", {"iterations": 0}, "iterations"),
        ("lipschitz", {"final_iterations": 0}, "final_iterations"),
        ("trades", {"radius": 0.1}, "radius"),
        ("standard", {"beta": 1.0}, "standard"),
        ("adversarial", None, "adversarial"),
    ],
)
def test_bad_options_are_refused_with_a_clear_error(variant: str, options: dict | None, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        train_original(ARCH, make_tiny_data(30), TrainConfig(epochs=1), variant=variant, options=options)
