"""Every attack backend keeps the model intact and honours its radius, per sample."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from amun_plugin.attacks import ArtPGDL2, AttackBackend, NativePGDL2, TorchattacksFFGSM, TorchattacksPGDL2
from amun_plugin.attacks.search import perturbation_norm
from amun_plugin.errors import InvalidInputError

BACKENDS = {
    "native_pgd_l2": lambda: NativePGDL2({"steps": 8}),
    "torchattacks_pgd_l2": lambda: TorchattacksPGDL2({"steps": 8}),
    "torchattacks_ffgsm": lambda: TorchattacksFFGSM(),
    "art_pgd_l2": lambda: ArtPGDL2({"steps": 8}),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request) -> AttackBackend:
    return BACKENDS[request.param]()


def _model(flat_input: bool = False) -> nn.Module:
    """A seeded MLP with BatchNorm and Dropout (train/eval mode matters for both)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers = [] if flat_input else [nn.Flatten()]
        model = nn.Sequential(
            *layers, nn.Linear(16, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout(0.3), nn.Linear(24, 3)
        )
        bn = model[-4]
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    return model


def _data(model: nn.Module, shape=(1, 4, 4), n: int = 10):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(n, *shape, generator=gen)
    model.eval()
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return x, y


def test_class_data_is_consistent(backend):
    type(backend).check_class()
    assert backend.available()
    assert backend.norm == ("linf" if backend.name == "torchattacks_ffgsm" else "l2")
    assert backend.stops_early is (backend.name == "native_pgd_l2")
    assert backend.scalar_eps is (backend.name != "native_pgd_l2")


def test_model_state_is_restored(backend):
    model = _model()
    x, y = _data(model)
    model.train()
    model[-1].weight.requires_grad_(False)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    before = copy.deepcopy(model.state_dict())
    out = backend.perturb(model, x, y, 0.3)
    assert all(m.training for m in model.modules())
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # weights and BatchNorm running stats
    assert out.x_adv.shape == x.shape and out.grad_evals.dtype == torch.long


def test_eval_mode_models_stay_in_eval(backend):
    model = _model().eval()
    x, y = _data(model)
    backend.perturb(model, x, y, 0.3)
    assert not any(m.training for m in model.modules())


def test_outputs_in_range_and_inside_their_ball(backend):
    model = _model()
    x, y = _data(model)
    eps = torch.where(torch.arange(x.shape[0]) % 2 == 0, torch.tensor(0.05), torch.tensor(2.0))
    out = backend.perturb(model, x, y, eps)
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    dist = perturbation_norm(out.x_adv, x, backend.norm)
    assert (dist <= eps + 1e-5).all()
    assert (dist[eps > 1] > 0.05 + 1e-3).any()  # the large radius was really used for its group
    expected = {"torchattacks_ffgsm": 1, "native_pgd_l2": None}.get(backend.name, 8)
    if expected is not None:
        assert torch.equal(out.grad_evals, torch.full((x.shape[0],), expected))
    else:
        assert (out.grad_evals >= 1).all() and (out.grad_evals <= 8).all()


def test_non_image_inputs(backend):
    model = _model(flat_input=True)
    x, y = _data(model, shape=(16,))
    out = backend.perturb(model, x, y, 0.5)
    assert out.x_adv.shape == x.shape
    assert (perturbation_norm(out.x_adv, x, backend.norm) <= 0.5 + 1e-5).all()


def test_deterministic_and_global_rng_untouched(backend):
    model = _model().eval()
    x, y = _data(model)
    state = torch.get_rng_state()
    first = backend.perturb(model, x, y, 0.2).x_adv
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(backend.perturb(model, x, y, 0.2).x_adv, first)


def test_ffgsm_seed_changes_the_random_start():
    model = _model().eval()
    x, y = _data(model)
    a = TorchattacksFFGSM({"seed": 0}).perturb(model, x, y, 0.2).x_adv
    b = TorchattacksFFGSM({"seed": 1}).perturb(model, x, y, 0.2).x_adv
    assert not torch.equal(a, b)


def test_inputs_are_validated(backend):
    model = _model().eval()
    x, y = _data(model)
    with pytest.raises(InvalidInputError):
        backend.perturb(model, x * 2 + 1, y, 0.1)
    with pytest.raises(InvalidInputError):
        backend.perturb(model, x, y, 0.0)
    with pytest.raises(InvalidInputError):
        type(backend)({"no_such_option": 1})


def _saturating_model() -> nn.Module:
    """A linear 3-class model on 16 inputs whose logits differ by hundreds: softmax(z)_y == 1.0 in
    float32 and every other probability underflows to 0, so plain cross-entropy has no gradient."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[400.0] * 8 + [0.0] * 8, [0.0] * 8 + [400.0] * 8, [0.0] * 16]))
        model[1].bias.copy_(torch.tensor([0.0, 0.0, 800.0]))
    return model


@pytest.mark.parametrize("name", ["torchattacks_pgd_l2", "torchattacks_ffgsm", "art_pgd_l2"])
def test_cross_entropy_backends_move_saturated_samples(name):
    model = _saturating_model().eval()
    x = torch.zeros(4, 1, 4, 4)
    x[:, 0, :2] = 1.0  # first half lit: logit 0 is 3200, the others <= 800
    y = torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        assert torch.softmax(model(x), dim=1)[:, 0].eq(1.0).all()
    eps = 3.0 if name != "torchattacks_ffgsm" else 0.9
    raw = BACKENDS[name]().__class__({"max_logit_spread": None}).perturb(model, x, y, eps).x_adv
    with torch.no_grad():
        assert (model(raw).argmax(dim=1) == y).all()  # the published attack is stuck (zero gradient)
    adv = BACKENDS[name]().perturb(model, x, y, eps).x_adv
    with torch.no_grad():
        assert (model(adv).argmax(dim=1) != y).all()
    assert (perturbation_norm(adv, x, BACKENDS[name]().norm) <= eps + 1e-4).all()


def test_tempered_view_keeps_the_prediction_and_bounds_the_spread():
    from amun_plugin.attacks.losses import TemperedLogits

    model = _saturating_model().eval()
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    view = TemperedLogits(model, 10.0)
    with torch.no_grad():
        z, v = model(x), view(x)
    assert torch.equal(z.argmax(dim=1), v.argmax(dim=1))
    assert ((v.max(dim=1).values - v.min(dim=1).values) <= 10.0 + 1e-4).all()
    assert list(view.parameters()) == list(model.parameters())
    with pytest.raises(ValueError, match="max_logit_spread"):
        TorchattacksPGDL2({"max_logit_spread": 0.0})
