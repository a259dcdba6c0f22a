"""The adaptive-radius minimum-norm backend and AMUN's default (cheap) search mode: invariants,
honest evaluation counts, the eps cap, stalls, and the <= 50 gradient evaluations per sample goal."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from amun_plugin.attacks import NativePGDL2, SearchConfig, nearest_adversarial
from amun_plugin.attacks.losses import AttackLoss, attack_loss, logit_margin
from amun_plugin.attacks.native_min_norm import NativeMinNormConfig, NativeMinNormL2, box_feasible, smooth_margin
from amun_plugin.attacks.search import perturbation_norm
from amun_plugin.data.base import LabeledData
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.amun import AmunConfig


def _memorising(n: int = 120, saturate: float = 3.0) -> tuple[nn.Module, LabeledData]:
    """An MLP that fits random 6x6 images with random labels (train accuracy 100%), its logits
    scaled by ``saturate`` so that about a third of the samples have p_y == 1.0 in float32 (a
    memorising model's regime, where the cross-entropy gradient vanishes)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(n, 1, 6, 6, generator=gen)
    y = torch.randint(0, 4, (n,), generator=gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(36, 96), nn.ReLU(), nn.Linear(96, 4))
        opt = torch.optim.Adam(model.parameters(), lr=3e-2)
        for _ in range(100):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    with torch.no_grad():
        model[-1].weight.mul_(saturate)
        model[-1].bias.mul_(saturate)
    model.eval()
    with torch.no_grad():
        assert bool((model(x).argmax(1) == y).all()), "the test model must memorise its data"
    return model, LabeledData(x, y, 4, "forget")


@pytest.fixture(scope="module")
def memorising() -> tuple[nn.Module, LabeledData]:
    return _memorising()


def test_logit_margin_matches_the_margin_attack_loss() -> None:
    logits = torch.tensor([[3.0, 1.0, -2.0], [0.5, 2.0, 1.0]])
    y = torch.tensor([0, 2])
    assert torch.allclose(logit_margin(logits, y), torch.tensor([-2.0, 1.0]))
    assert torch.equal(logit_margin(logits, y), attack_loss(logits, y, AttackLoss.MARGIN))


def test_box_feasible_blocks_only_moves_out_of_the_box() -> None:
    point = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.5]])
    direction = torch.tensor([[-1.0, 1.0, 1.0, -1.0, -1.0]])
    assert torch.equal(box_feasible(direction, point), torch.tensor([[0.0, 1.0, 0.0, -1.0, -1.0]]))


@pytest.mark.parametrize("options", [{"boundary_steps": 0}, {"boundary_steps": 3}, {},
                                     {"runner_up_steps": 0, "boundary_tol": 0.01}])
def test_search_points_are_misclassified_in_the_box_and_within_their_radius(memorising, options) -> None:
    model, data = memorising
    model.train()
    before = copy.deepcopy(model.state_dict())
    backend = NativeMinNormL2(options)
    adv = nearest_adversarial(model, data, backend, SearchConfig(eps_init=0.05, batch_size=32))
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert adv.found.all() and adv.backend == "native_min_norm"
    with torch.no_grad():
        pred = model.eval()(adv.x_adv).argmax(1)
    assert (pred != data.y).all() and torch.equal(pred, adv.y_adv)
    assert adv.x_adv.min() >= 0 and adv.x_adv.max() <= 1
    assert (perturbation_norm(adv.x_adv, data.x, "l2") <= adv.eps + 1e-5).all()
    assert (adv.grad_evals > 0).all()


def test_perturb_respects_the_cap_and_stalled_samples_leave_early(memorising) -> None:
    model, data = memorising
    out = NativeMinNormL2({"steps": 30}).perturb(model, data.x, data.y, eps=1e-3)
    assert (perturbation_norm(out.x_adv, data.x, "l2") <= 1e-3 + 1e-6).all()
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    with torch.no_grad():
        fooled = model(out.x_adv).argmax(1) != data.y
    assert not fooled.any()  # nobody is that close to the boundary...
    assert out.grad_evals.max() <= 4  # ...and nobody spends 30 steps finding that out


def test_a_large_cap_needs_no_doubling_and_few_evaluations(memorising) -> None:
    model, data = memorising
    adv = nearest_adversarial(model, data, NativeMinNormL2(), SearchConfig(eps_init=10.0))
    assert adv.found.all() and int(adv.doublings.max()) == 0
    # the approach takes < 4 steps on average; every sample then runs the boundary phase
    assert float(adv.grad_evals.double().mean()) < 4 + NativeMinNormConfig().boundary_steps


@pytest.mark.parametrize("boundary_steps", [0, 3])
def test_evaluation_counts_are_exact_on_a_counting_model(memorising, boundary_steps, count_samples) -> None:
    model, data = memorising
    counting = count_samples(model)
    config = SearchConfig(eps_init=0.05, batch_size=32, refine_steps=4)
    adv = nearest_adversarial(counting, data, NativeMinNormL2({"boundary_steps": boundary_steps}), config)
    assert int(adv.grad_evals.sum()) == counting.grad_samples > 0
    assert int(adv.forward_evals.sum()) == counting.forward_samples > 0


def test_a_model_without_gradient_ends_the_call_after_one_evaluation() -> None:
    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[1.0, 0.0]]).expand(x.shape[0], 2) + 0.0 * x.flatten(1).sum(1, keepdim=True)

    x = torch.rand(5, 1, 3, 3)
    out = NativeMinNormL2().perturb(Flat(), x, torch.zeros(5, dtype=torch.long), eps=1.0)
    assert torch.equal(out.x_adv, x) and torch.equal(out.grad_evals, torch.ones(5, dtype=torch.long))


def test_deterministic(memorising) -> None:
    model, data = memorising
    backend = NativeMinNormL2({"boundary_steps": 2})
    a = nearest_adversarial(model, data, backend, SearchConfig(eps_init=None, probe_size=20))
    b = nearest_adversarial(model, data, backend, SearchConfig(eps_init=None, probe_size=20))
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.grad_evals, b.grad_evals)


@pytest.mark.parametrize("bad", [{"steps": 0}, {"patience": 0}, {"overshoot": -0.1}, {"min_progress": 1.0},
                                 {"boundary_steps": -1}, {"origin_pull": 1.5}, {"pull_up": 0.0},
                                 {"pull_down": -1.0}, {"pull_up": float("nan")}, {"far_factor": 1.0},
                                 {"far_factor": float("nan")}, {"approach_smoothing": -0.1}, {"boundary_tol": 1.0},
                                 {"boundary_tol": -0.01}, {"approach_overshoot": -0.1},
                                 {"approach_overshoot": float("nan")}, {"runner_up_steps": -1},
                                 {"runner_up_steps": 1.5}, {"runner_up_ratio": 0.0},
                                 {"runner_up_ratio": float("nan")}])
def test_invalid_options_are_refused(bad) -> None:
    with pytest.raises((ValueError, Exception)):
        NativeMinNormConfig(**bad)


def test_amun_default_search_needs_at_most_50_gradient_evaluations_per_sample(memorising, count_samples) -> None:
    """Counted, not timed: AMUN's default backend, options and search config on a memorising model
    find every sample's adversarial example for <= 50 gradient evaluations per sample on average,
    at a median distance no farther than 5% beyond the paper's procedure (native PGD, CE, 0.04)."""
    model, data = memorising
    host = get_plugin_manager(autoload=False)
    config = AmunConfig()
    backend = host.attacks.get(config.attack)(dict(config.attack_options))
    counting = count_samples(model)
    adv = nearest_adversarial(counting, data, backend, config.search)
    assert adv.found.all()
    assert float(adv.grad_evals.double().mean()) <= 50
    assert int(adv.grad_evals.sum()) == counting.grad_samples
    paper = SearchConfig(eps_init=0.04, max_doublings=8)
    with warnings.catch_warnings():  # saturated samples: CE may have no gradient, failures are reported
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = nearest_adversarial(model, data, NativePGDL2({"loss": "ce"}), paper)
    assert float(reference.grad_evals.double().mean()) > 50  # the paper's procedure is the costly one
    both = reference.found & adv.found & ~adv.already_misclassified
    assert int(both.sum()) >= len(data) // 2
    ratio = adv.distance_l2[both].median() / reference.distance_l2[both].median()
    assert ratio <= 1.05


class _Linear(nn.Module):
    """Two classes on (N, 1, 4, 4) inputs: logits (0, w . (x - c) - b), so the true class 0 holds while
    w . (x - c) < b; the decision boundary is a hyperplane at distance b / ||w|| from c."""

    def __init__(self, w: torch.Tensor, centre: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w, self.centre, self.b = w, centre, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.flatten(1) - self.centre.flatten(1)) @ self.w - self.b
        return torch.stack([torch.zeros_like(z), z], dim=1)


# The settings before issue 12: a fixed weight 0.2 on x's projection, 4 boundary steps.
_BEFORE_ISSUE_12 = {"boundary_steps": 4, "origin_pull": 0.2, "pull_up": 1.0, "pull_down": 1.0, "patience": 2,
                    "min_progress": 0.05, "approach_smoothing": 0.0, "far_factor": float("inf"), "boundary_tol": 0.0,
                    "approach_overshoot": None, "runner_up_steps": 0}
# The default of issue 12's first pass (benchmarks: native_min_norm_issue12_first): 9 fixed boundary steps.
_ISSUE_12_FIRST_PASS = {"boundary_steps": 9, "origin_pull": 0.4, "pull_down": 0.5, "boundary_tol": 0.0,
                        "approach_overshoot": None, "runner_up_steps": 0}


def _flat_boundary_ratio(options: dict) -> float:
    """Distance found / true distance, from a misclassified start 2x the distance away sideways."""
    return _flat_boundary_walk(options)[0]


def _flat_boundary_walk(options: dict) -> tuple[float, int]:
    """(distance found / true distance, gradient evaluations) on the hyperplane of _flat_boundary_ratio."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(16, generator=gen)
    w /= w.norm()
    side = torch.randn(16, generator=gen)
    side -= (side @ w) * w
    side /= side.norm()
    x = torch.full((1, 1, 4, 4), 0.5)
    model = _Linear(w, x, 0.3)  # nearest misclassified point: x + 0.3 w
    start = x + (0.31 * w + 0.6 * side).view(1, 1, 4, 4)
    out = NativeMinNormL2(options).perturb(model, x, torch.zeros(1, dtype=torch.long), eps=10.0, x_init=start)
    assert int(model(out.x_adv).argmax(1)) == 1
    return float(perturbation_norm(out.x_adv, x, "l2")) / 0.3, int(out.grad_evals)


def test_the_boundary_phase_reaches_the_nearest_point_of_a_flat_boundary() -> None:
    """On a hyperplane the linearisation is exact, so the adaptive weight grows to 1 and the
    boundary phase lands on x's projection (plus the overshoot); the fixed weight 0.2 of the
    earlier default left 0.8^4 of the sideways offset (distance ratio ~1.3)."""
    assert _flat_boundary_ratio({}) <= 1.05
    assert _flat_boundary_ratio(_BEFORE_ISSUE_12) > 1.2


def test_search_quality_on_a_memorising_model_against_a_long_reference(memorising) -> None:
    """AMUN's default search (automatic eps_init) against a 60-step boundary walk from a small
    radius: per-sample ratio median <= 1.01 and 90th percentile <= 1.03 (measured 1.000 / 1.007),
    every sample found."""
    model, data = memorising
    adv = nearest_adversarial(model, data, NativeMinNormL2(), SearchConfig(eps_init=None))
    long_walk = {"boundary_steps": 60, "origin_pull": 0.1, "pull_up": 1.0, "pull_down": 1.0}
    reference = nearest_adversarial(model, data, NativeMinNormL2(long_walk), SearchConfig(eps_init=0.05))
    assert adv.found.all() and reference.found.all()
    attacked = ~adv.already_misclassified
    best = torch.minimum(adv.distance_l2, reference.distance_l2)[attacked]
    ratio = adv.distance_l2[attacked] / best
    assert float(ratio.median()) <= 1.01 and float(ratio.quantile(0.9)) <= 1.03


def test_smooth_margin_is_a_lower_bound_that_blends_close_classes_and_sharpens_at_the_boundary() -> None:
    logits = torch.tensor([[5.0, 3.0, 3.0, -4.0], [5.0, 3.0, -1.0, -4.0]], requires_grad=True)
    y = torch.zeros(2, dtype=torch.long)
    hard = -logit_margin(logits, y)
    soft = smooth_margin(logits, y, 0.15)
    assert (soft <= hard + 1e-6).all()
    (grad,) = torch.autograd.grad(soft.sum(), logits)
    assert torch.allclose(grad[0, 1], grad[0, 2]) and float(grad[0, 1]) < -0.4  # two equally close classes
    assert float(grad[1, 2]) > -1e-3 and float(grad[1, 1]) < -0.99  # one clearly closest: the hard margin's
    near = torch.tensor([[3.01, 3.0, 1.0, -4.0]])
    assert torch.allclose(smooth_margin(near, y[:1], 0.15), -logit_margin(near, y[:1]), atol=1e-4)


def test_a_boundary_far_beyond_the_cap_ends_the_call_after_one_evaluation(memorising) -> None:
    """far_factor: the linearised boundary lies more than 2 eps away, so the sample leaves after its
    first step (the search doubles its eps) instead of evaluating again on the sphere."""
    model, data = memorising
    out = NativeMinNormL2().perturb(model, data.x, data.y, eps=1e-3)
    assert (out.grad_evals == 1).all()  # its one step still moves it towards the boundary, within the cap
    assert (perturbation_norm(out.x_adv, data.x, "l2") <= 1e-3 + 1e-6).all()
    walked = NativeMinNormL2({"far_factor": float("inf")}).perturb(model, data.x, data.y, eps=1e-3)
    assert (walked.grad_evals >= 2).all()


def test_a_converged_boundary_walk_stops_early_and_boundary_tol_0_takes_every_step() -> None:
    """On a hyperplane the first boundary step lands on x's projection (pull 1, shifted past it by the
    overshoot x the start's distance: 0.3 + 0.02 x 0.675), the second by the overshoot x the new
    distance (2.3% nearer), the third on the same point (0.05% nearer). The default boundary_tol 0.05
    stops the walk after the second (1 + 2 evaluations), 0.01 (before the runner-up walk) after the
    third; with boundary_tol 0 (issue 12's first pass) it takes all boundary_steps. Two classes: no
    runner-up, so that stage spends nothing."""
    ratio, evals = _flat_boundary_walk({})
    assert ratio <= 1.05 and evals == 3
    ratio_tight, evals_tight = _flat_boundary_walk({"boundary_tol": 0.01})
    assert evals_tight == 4 and ratio_tight <= ratio
    steps = NativeMinNormConfig().boundary_steps
    ratio_all, evals_all = _flat_boundary_walk({"boundary_tol": 0.0})
    assert evals_all == 1 + steps and ratio_all == pytest.approx(ratio_tight, rel=1e-3)
    ratio_first, evals_first = _flat_boundary_walk(_ISSUE_12_FIRST_PASS)  # pull 0.4, 0.8, 1: reaches it too
    assert evals_first == 1 + 9 and ratio_first <= 1.05


def test_approach_overshoot_sets_the_first_step_past_a_flat_boundary() -> None:
    """From x, one approach step on a hyperplane at distance 0.3 lands 0.3 (1 + o) away, o the
    approach overshoot (the overshoot when None); no boundary phase."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(16, generator=gen)
    w /= w.norm()
    x = torch.full((1, 1, 4, 4), 0.5)
    model, y = _Linear(w, x, 0.3), torch.zeros(1, dtype=torch.long)
    for options, expected in (({"approach_overshoot": 0.3}, 0.39), ({"approach_overshoot": None}, 0.306)):
        out = NativeMinNormL2({"boundary_steps": 0, **options}).perturb(model, x, y, eps=10.0)
        assert int(model(out.x_adv).argmax(1)) == 1 and int(out.grad_evals) == 2
        assert float(perturbation_norm(out.x_adv, x, "l2")) == pytest.approx(expected, rel=2e-3)


class _TwoBoundaries(nn.Module):
    """Three classes on (N, 1, 4, 4) inputs: logits (0, a1 . (x - c) - 1, a2 . (x - c) - 3), a1 _|_ a2,
    ||a1|| = 2, ||a2|| = 10: at c class 1 has the larger logit, but class 2's boundary is nearer
    (3 / 10 = 0.3 against 1 / 2 = 0.5), the case where the largest logit leads to the wrong class."""

    def __init__(self, centre: torch.Tensor) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(2)
        basis, _ = torch.linalg.qr(torch.randn(16, 2, generator=gen))
        self.a = torch.stack([2.0 * basis[:, 0], 10.0 * basis[:, 1]], dim=1)
        self.b, self.centre = torch.tensor([1.0, 3.0]), centre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.flatten(1) - self.centre.flatten(1)) @ self.a - self.b
        return torch.cat([torch.zeros_like(z[:, :1]), z], dim=1)


def _two_boundaries(options: dict) -> tuple[float, int, int]:
    """(distance found, its class, gradient evaluations) on :class:`_TwoBoundaries` from x = c."""
    x = torch.full((1, 1, 4, 4), 0.5)
    model = _TwoBoundaries(x)
    out = NativeMinNormL2(options).perturb(model, x, torch.zeros(1, dtype=torch.long), eps=10.0)
    return float(perturbation_norm(out.x_adv, x, "l2")), int(model(out.x_adv).argmax(1)), int(out.grad_evals)


def test_the_runner_up_walk_finds_the_nearer_boundary_of_another_class() -> None:
    """The walk follows the largest logit to class 1's boundary (0.5 away); at that point the
    linearised boundary of the runner-up, class 2, is 0.3 from x (< runner_up_ratio x 0.5), so the
    default walks to it: the point returned is class 2's, 0.3 away (plus the overshoot). Off
    (runner_up_steps 0, the default before) or with a ratio that excludes it, the point stays class
    1's, and the excluded sample spent one evaluation on the check."""
    distance, label, evals = _two_boundaries({})
    assert label == 2 and distance == pytest.approx(0.3, rel=0.03)
    off, off_label, off_evals = _two_boundaries({"runner_up_steps": 0})
    assert off_label == 1 and off == pytest.approx(0.5, rel=0.03)
    assert evals <= off_evals + 1 + NativeMinNormConfig().runner_up_steps
    strict, strict_label, strict_evals = _two_boundaries({"runner_up_ratio": 0.5})
    assert strict_label == 1 and strict == off and strict_evals == off_evals + 1


def test_the_runner_up_walk_keeps_algorithm_1_guarantees_and_counts_every_evaluation(count_samples) -> None:
    """Through the search, with eps doublings: the point is misclassified, in the box, within the eps
    that found it, at most as far as without the runner-up walk, and every gradient pass is counted."""
    x = torch.full((6, 1, 4, 4), 0.5) + 0.02 * torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    model = count_samples(_TwoBoundaries(torch.full((1, 1, 4, 4), 0.5)))
    data = LabeledData(x, torch.zeros(6, dtype=torch.long), 3, "forget")
    adv = nearest_adversarial(model, data, NativeMinNormL2(), SearchConfig(eps_init=0.05))
    off = nearest_adversarial(model.model, data, NativeMinNormL2({"runner_up_steps": 0}), SearchConfig(eps_init=0.05))
    assert adv.found.all() and (adv.y_adv == 2).all() and (off.y_adv == 1).all()
    assert (model.model(adv.x_adv).argmax(1) != 0).all()
    assert (perturbation_norm(adv.x_adv, x, "l2") <= adv.eps + 1e-5).all()
    assert (adv.distance_l2 < 0.7 * off.distance_l2).all()
    assert int(adv.grad_evals.sum()) == model.grad_samples
