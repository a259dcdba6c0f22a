"""Algorithm 1 (nearest_adversarial) over every backend: its invariants, costs and failure modes."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from amun_plugin.attacks import (
    AdversarialSet,
    ArtPGDL2,
    NativePGDL2,
    SearchConfig,
    TorchattacksFFGSM,
    TorchattacksPGDL2,
    nearest_adversarial,
)
from amun_plugin.attacks.search import perturbation_norm
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError

BACKENDS = {
    "native_pgd_l2": lambda: NativePGDL2({"steps": 10}),
    "torchattacks_pgd_l2": lambda: TorchattacksPGDL2({"steps": 10}),
    "torchattacks_ffgsm": lambda: TorchattacksFFGSM(),
    "art_pgd_l2": lambda: ArtPGDL2({"steps": 10}),
}
FAST = SearchConfig(eps_init=0.05, max_doublings=8, batch_size=8)


def _model(scale: float = 1.0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout(0.3),
                              nn.Linear(24, 3))
        model[2].running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        model[-1].weight.mul_(scale)
        model[-1].bias.mul_(scale)
    return model.eval()


def _data(model: nn.Module, n: int = 20, wrong: int = 3) -> LabeledData:
    """Labels = the model's predictions, except the first ``wrong`` samples (misclassified)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(n, 1, 4, 4, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    y[:wrong] = (y[:wrong] + 1) % 3
    return LabeledData(x, y, 3, "forget")


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    return BACKENDS[request.param]()


def test_invariants(backend):
    model = _model()
    data = _data(model)
    model.train()
    before = copy.deepcopy(model.state_dict())
    adv = nearest_adversarial(model, data, backend, FAST)
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert adv.found.all() and adv.backend == backend.name and len(adv) == 20
    with torch.no_grad():
        pred = model.eval()(adv.x_adv).argmax(1)
    assert torch.equal(pred, adv.y_adv)
    assert (pred != data.y).all() and torch.equal(adv.y_true, data.y)
    assert adv.x_adv.min() >= 0 and adv.x_adv.max() <= 1
    assert (perturbation_norm(adv.x_adv, data.x, backend.norm) <= adv.eps + 1e-5).all()
    assert torch.allclose(adv.distance_l2, (adv.x_adv - data.x).flatten(1).norm(dim=1))
    # already misclassified: bit-identical, eps 0, distance 0, one forward, no gradient
    old = adv.already_misclassified
    assert torch.equal(old, torch.arange(20) < 3)
    assert torch.equal(adv.x_adv[old], data.x[old])
    assert (adv.eps[old] == 0).all() and (adv.distance_l2[old] == 0).all()
    assert (adv.grad_evals[old] == 0).all() and (adv.forward_evals[old] == 1).all()
    assert (adv.eps[~old] > 0).all() and (adv.grad_evals[~old] > 0).all()


def test_deterministic(backend):
    model = _model()
    data = _data(model)
    a = nearest_adversarial(model, data, backend, FAST)
    b = nearest_adversarial(model, data, backend, FAST)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.y_adv, b.y_adv) and torch.equal(a.eps, b.eps)


@pytest.mark.parametrize("name", ["native_pgd_l2", "torchattacks_pgd_l2", "torchattacks_ffgsm", "art_pgd_l2"])
def test_evaluation_counts(name, count_samples):
    counting = count_samples(_model())
    data = _data(counting.model)
    adv = nearest_adversarial(counting, data, BACKENDS[name](), FAST)
    assert counting.grad_samples == int(adv.grad_evals.sum()) > 0
    if name == "art_pgd_l2":  # ART also predicts to log its success rate (not counted)
        assert counting.forward_samples >= int(adv.forward_evals.sum())
    else:
        assert counting.forward_samples == int(adv.forward_evals.sum())
    rounds = adv.doublings[~adv.already_misclassified] + 1
    assert torch.equal(adv.forward_evals[~adv.already_misclassified], 1 + rounds + FAST.refine_steps + 1)


def test_margin_finds_saturated_samples_where_ce_fails():
    model = _model(scale=1e4)  # p_y == 1.0 in float32: the CE gradient is exactly zero
    data = _data(model, n=8, wrong=0)
    config = SearchConfig(eps_init=0.05, max_doublings=6, batch_size=8)
    with pytest.warns(RuntimeWarning, match="8 of 8 samples found no adversarial example"):
        ce = nearest_adversarial(model, data, NativePGDL2({"steps": 10}), config)
    assert not ce.found.any() and torch.isinf(ce.eps).all() and (ce.doublings == 6).all()
    assert ce.summary()["failed_indices"] == list(range(8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        margin = nearest_adversarial(model, data, NativePGDL2({"steps": 10, "loss": "margin"}), config)
    assert margin.found.all()
    assert (model(margin.x_adv).argmax(1) != data.y).all()


def test_refinement_moves_points_closer():
    model = _model()
    data = _data(model, wrong=0)
    coarse = nearest_adversarial(model, data, TorchattacksPGDL2({"steps": 10}), SearchConfig(eps_init=0.05,
                                                                                              refine_steps=0))
    fine = nearest_adversarial(model, data, TorchattacksPGDL2({"steps": 10}), SearchConfig(eps_init=0.05))
    assert (fine.distance_l2 <= coarse.distance_l2 + 1e-6).all()
    assert fine.distance_l2.median() < 0.9 * coarse.distance_l2.median()
    assert fine.summary()["median_l2"] == pytest.approx(float(torch.quantile(fine.distance_l2.double(), 0.5)))
    assert torch.equal(fine.eps, coarse.eps)


def test_continue_from_iterate_or_restart():
    model = _model()
    data = _data(model)
    for flag in (True, False):
        adv = nearest_adversarial(model, data, NativePGDL2({"steps": 3}),
                                  SearchConfig(eps_init=0.01, continue_from_iterate=flag, batch_size=8))
        assert adv.found.all() and adv.summary()["max_doublings_used"] > 0
        assert (perturbation_norm(adv.x_adv, data.x, "l2") <= adv.eps + 1e-5).all()


def test_automatic_eps_init_on_the_ladder():
    model = _model()
    data = _data(model, n=24)
    adv = nearest_adversarial(model, data, NativePGDL2({"steps": 10}),
                              SearchConfig(eps_init=None, probe_size=10, probe_quantile=0.9))
    k = math.log2(adv.eps_init / 2.0**-8)
    assert adv.eps_init > 0 and abs(k - round(k)) < 1e-9
    assert adv.found.all()
    attacked = ~adv.already_misclassified
    assert (adv.eps[attacked] <= adv.eps_init).float().mean() >= 0.5


def test_result_helpers():
    model = _model(scale=1e4)
    data = _data(model, n=8, wrong=2)
    with pytest.warns(RuntimeWarning):
        adv = nearest_adversarial(model, data, NativePGDL2({"steps": 5}), SearchConfig(max_doublings=1))
    summary = adv.summary()
    assert summary["n"] == 8 and summary["found"] == 2 and summary["failures"] == 6
    assert summary["already_misclassified"] == 2 and summary["median_l2"] is None  # nothing was attacked
    labeled = adv.as_labeled_data()
    assert isinstance(labeled, LabeledData) and labeled.name == "adversarial" and len(labeled) == 2
    assert torch.equal(labeled.y, adv.y_adv[:2]) and not torch.equal(labeled.y, data.y[:2])
    part = adv.select([0, 5])
    assert isinstance(part, AdversarialSet) and len(part) == 2 and torch.equal(part.found, torch.tensor([True, False]))
    with pytest.raises(InvalidInputError):
        part.select([1]).as_labeled_data()


@pytest.mark.parametrize(
    "options",
    [{"eps_init": 0.0}, {"eps_init": float("inf")}, {"max_doublings": -1}, {"probe_quantile": 1.5},
     {"batch_size": 0}, {"refine_steps": -1}, {"unknown": 1}],
)
def test_config_is_validated(options):
    with pytest.raises(InvalidInputError):
        nearest_adversarial(_model(), _data(_model()), NativePGDL2(), options)


def test_arguments_are_validated():
    model = _model()
    with pytest.raises(InvalidInputError):
        nearest_adversarial(model, (torch.rand(2, 16), torch.tensor([0, 1])), NativePGDL2())
    with pytest.raises(InvalidInputError):
        nearest_adversarial(model, _data(model), NativePGDL2)
    with pytest.raises(InvalidInputError):
        nearest_adversarial(model, LabeledData(torch.rand(4, 1, 4, 4), torch.zeros(4, dtype=torch.long), 5),
                            NativePGDL2())


def test_progress_bar_and_mapping_config(capsys, monkeypatch):
    monkeypatch.setattr("amun_plugin.progress.interactive", lambda: True)  # a terminal: bars are drawn
    model = _model()
    adv = nearest_adversarial(model, _data(model), NativePGDL2({"steps": 5}), {"eps_init": 0.1}, progress=True)
    assert adv.found.all() and adv.eps_init == pytest.approx(0.1)
    assert "nearest adversarial (native_pgd_l2)" in capsys.readouterr().err


def test_model_on_another_device_is_refused():
    model = _model()
    with pytest.raises(InvalidInputError, match="model is on cpu"):
        nearest_adversarial(model, _data(model), NativePGDL2(), device="meta")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(backend):
    model = _model().cuda()
    data = _data(model.cpu())
    model.cuda().train()
    adv = nearest_adversarial(model, data, backend, FAST, device="cuda")
    assert all(m.training for m in model.modules()) and adv.x_adv.device.type == "cpu"
    with torch.no_grad():
        pred = model.eval()(adv.x_adv.cuda()).argmax(1).cpu()
    assert adv.found.all() and torch.equal(pred, adv.y_adv)
    assert (perturbation_norm(adv.x_adv, data.x, backend.norm) <= adv.eps + 1e-5).all()
