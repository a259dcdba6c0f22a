"""Native adaptive-radius minimum-norm L2 attack: AMUN's cheap nearest-adversarial search.

A minimum-norm attack in the family of DeepFool (Moosavi-Dezfooli et al., CVPR 2016,
https://arxiv.org/abs/1511.04599), DDN (Rony et al., CVPR 2019) and FMN (Pintor et al., NeurIPS
2021): instead of a fixed radius that is doubled when too small, every step of every sample jumps
to its own first-order estimate of the distance to the decision boundary. Written for AMUN's
Algorithm 1 ('Adversarial Machine UNlearning', Ebrahimpour-Boroojeny et al.), where it replaces the
~4 rounds of 50-step PGD of the reference procedure by a handful of gradient evaluations.

Distance measure: L2, in pixel units of inputs in [0, 1].

Each step, for every sample still in the active set (one forward+backward, counted as one):
    1. forward the current iterate x + delta; if the model misclassifies it, the sample leaves the
       active set and this iterate is its result (the *first* misclassified iterate, as in the
       reference PGD; the search's bisection then pulls it back along x -> x_adv);
    2. the logit margin m = z_y - max_{j != y} z_j (> 0 while correct; it does not saturate like
       the cross-entropy on memorised points) and an input gradient g: that of the smooth margin
       z_y - T logsumexp_{j != y}(z_j / T), T = ``approach_smoothing`` x |m| (a soft maximum over
       the competing classes; its direction leads to a nearer part of the boundary than the hard
       margin's on saturated samples, and it sharpens to the hard margin's as m -> 0); components
       of g that would push a pixel already at 0 or 1 out of [0, 1] are zeroed (box-aware);
    3. step to the linearised boundary, m + g . s = 0, overshooting by ``approach_overshoot`` (o) times
       the current radius plus that step: s = -(d + o (||delta|| + d)) g / ||g|| with d = m / ||g||
       (length capped at 2 eps, finite for tiny g; a large o crosses in fewer steps, farther out,
       and the boundary phase walks back). A point counts as misclassified
       only with a margin below -1e-4 x its largest |logit| (steps aim at twice that), so the
       search's own prediction pass, in other batches with other float rounding, agrees;
    4. project onto the eps-ball around x (``eps`` is only a cap here) and clamp to [0, 1].
Optional boundary phase (``boundary_steps`` > 0), for the samples that crossed: each step takes the
linearised boundary at the current point p (shifted ``overshoot`` * ||p - x|| past it) and moves to
a mix of p's projection onto it and x's projection onto it, one forward+backward per step; the
nearest misclassified point seen is returned. The weight on x's projection is per sample and
adaptive (a trust region on the linearisation): ``origin_pull`` at first, times ``pull_up`` after a
step that found a nearer misclassified point, times ``pull_down`` after one that did not, so samples
whose boundary is nearly flat jump most of the way to x's projection while those on a curved one
creep along it. A sample leaves the phase early once its walk has converged: after a step to a
misclassified point less than a fraction ``boundary_tol`` nearer than the nearest so far, so the
steps go to the samples still creeping. On a curved boundary the first crossing is farther than the nearest point; this
walks along the boundary towards x (the idea of FAB, Croce & Hein, ICML 2020, without its restarts).
Runner-up walk (``runner_up_steps`` > 0): the walk follows the largest competing logit, which on a
memorising model can lead to the boundary of a class c farther from x than another class's. At
the nearest point p found (class c), one more forward+backward gives the margin z_y - z_r against the
runner-up r (the largest logit at p but y's and c's) and its gradient; where x's distance to that
linearised boundary (the DeepFool estimate, made at p) is below ``runner_up_ratio`` x ||p - x||, a
second boundary walk (the same steps, on z_y - z_r) starts from p, and the nearer misclassified point
of the two walks is kept. Models with two classes skip it at no cost.

A sample whose step was cut by the eps cap without reducing its margin by a fraction
``min_progress`` for ``patience`` consecutive steps, that sits on the eps-sphere with the
boundary still a whole radius away, or whose linearised boundary lies beyond ``far_factor`` x eps,
is *stalled*: it leaves the call early (the search then
doubles its eps) instead of spending the remaining steps on the sphere. A sample with an all-zero
gradient (in the feasible directions) cannot move and leaves at once.

Measured (``benchmarks/results/adversarial_search-frontier-runner-up*``, memorising Fashion-MNIST
CNN, 500 forget samples per draw, 51.6-54.8% saturated): with AMUN's default search (automatic eps_init,
10 bisection steps) 14.3-14.5 gradient evaluations per sample, 100% found, per-sample distance / the
best of adv-lib's DDN, FMN, ALMA (100 steps), FAB (20 iterations) and these searches: median
1.013-1.014, p90 1.061 / 1.072 / 1.067 / 1.065 on draws 1, 7 (options chosen on these two), 11 and
13; without the runner-up walk (``runner_up_steps`` 0, ``boundary_tol`` 0.01, issue 12's third pass)
13.8-14.3 evaluations, p90 1.079 / 1.097 / 1.089 / 1.107. Earlier: issue 12's first pass 14.2,
median 1.021, p90 1.107; the settings before issue 12: 11.7, median 1.055, p90 1.305
(``archive/adversarial_search-frontier-walk-ablation``, ``archive/adversarial_search-frontier-before``).

Options: :class:`NativeMinNormConfig`.

Shape:
    - x: (N, ...) float in [0, 1]; y: (N,) int64; eps: (N,) float > 0 (L2 cap per sample).
    - x_init: (N, ...) optional starting iterate (projected into the ball first).
    - output: x_adv (N, ...) in [0, 1] with ||x_adv - x||_2 <= eps; grad_evals (N,) int64, one per
      forward(+backward) pass the sample took part in (a sample fooled at step k used k + 1).

Example::
    >>> out = NativeMinNormL2().perturb(model, x, y, eps=2.0)
    >>> adv = nearest_adversarial(model, forget, NativeMinNormL2(), SearchConfig(eps_init=None))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.attacks.base import AttackBackend, AttackOutput
from amun_plugin.attacks.losses import logit_margin
from amun_plugin.attacks.native_pgd import project_l2, unit_l2

__all__ = ["NativeMinNormConfig", "NativeMinNormL2", "box_feasible", "smooth_margin"]

# A point counts as misclassified when its logit margin is below -_TOLERANCE * max |logit|.
_TOLERANCE = 1e-4


@dataclass(frozen=True)
class NativeMinNormConfig:
    """Options of :class:`NativeMinNormL2` (see the module docstring).

    Attributes:
        steps: forward+backward passes per sample and call at most, before the boundary phase. (Default: 20)
        overshoot: relative overshoot (>= 0) of each linearised step past the boundary. (Default: 0.02)
        patience: eps-capped steps without progress before a sample is stalled. (Default: 1)
        min_progress: relative margin decrease, in [0, 1), that counts as progress. (Default: 0.2)
        boundary_steps: boundary phase steps at most (walking the boundary towards x); 0 = off. (Default: 16)
        origin_pull: first pull weight, in [0, 1], of x's projection in the boundary phase's mix. (Default: 1.0)
            1 jumps straight to x's projection, which a curved boundary rarely leaves misclassified.
        pull_up: factor (> 0) on a sample's pull weight after a boundary step that found a nearer point.
            Capped at 1; pull_up = pull_down = 1 is a fixed weight (before issue 12). (Default: 2.0)
        pull_down: factor (> 0) on a sample's pull weight after a boundary step that found none nearer.
            (Default: 0.7)
        approach_smoothing: relative temperature (>= 0) of the smooth margin whose gradient steps follow.
            A soft maximum over the competing classes (:func:`smooth_margin`); step lengths still
            come from the hard margin; 0 = the hard margin's gradient. (Default: 0.15)
        far_factor: a sample whose linearised boundary lies beyond far_factor x eps is stalled (> 1).
            It leaves the call at once (the search doubles its eps); inf = only the on-the-sphere
            rule. (Default: 2.0)
        boundary_tol: a sample leaves the boundary phase after a step that landed on a misclassified point
            less than this fraction nearer than the nearest so far (its walk has converged), in [0, 1); 0 = every
            crossed sample takes all ``boundary_steps`` (issue 12's first pass). (Default: 0.05; 0.01 before
            the runner-up walk)
        approach_overshoot: the overshoot of the approach steps (>= 0); None = ``overshoot``. A large one
            crosses the boundary in fewer steps, farther out; the boundary phase walks back.
            (Default: 0.3)
        runner_up_steps: boundary steps at most of the runner-up walk; 0 = off (the default of issue 12's
            third pass, with boundary_tol 0.01). (Default: 8)
        runner_up_ratio: the runner-up walk runs where x's linearised distance to the runner-up's boundary
            is below this x the distance found (> 0; inf = every crossed sample). (Default: 1.1)
    """

    steps: int = 20
    overshoot: float = 0.02
    patience: int = 1
    min_progress: float = 0.2
    boundary_steps: int = 16
    origin_pull: float = 1.0
    pull_up: float = 2.0
    pull_down: float = 0.7
    approach_smoothing: float = 0.15
    far_factor: float = 2.0
    boundary_tol: float = 0.05
    approach_overshoot: float | None = 0.3
    runner_up_steps: int = 8
    runner_up_ratio: float = 1.1

    def __post_init__(self) -> None:
        for key, low in (("steps", 1), ("patience", 1), ("boundary_steps", 0), ("runner_up_steps", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        if not (math.isfinite(self.overshoot) and self.overshoot >= 0):
            raise ValueError(f"overshoot must be a finite number >= 0, got {self.overshoot!r}")
        if not (0.0 <= self.min_progress < 1.0):
            raise ValueError(f"min_progress must lie in [0, 1), got {self.min_progress!r}")
        if not (0.0 <= self.origin_pull <= 1.0):
            raise ValueError(f"origin_pull must lie in [0, 1], got {self.origin_pull!r}")
        for key in ("pull_up", "pull_down"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be a finite number > 0, got {value!r}")
        if not (self.far_factor > 1.0):  # inf = off
            raise ValueError(f"far_factor must be a number > 1 (inf = off), got {self.far_factor!r}")
        if not (0.0 <= self.boundary_tol < 1.0):
            raise ValueError(f"boundary_tol must lie in [0, 1), got {self.boundary_tol!r}")
        if self.approach_overshoot is not None and not (
                math.isfinite(self.approach_overshoot) and self.approach_overshoot >= 0):
            raise ValueError(f"approach_overshoot must be None or a number >= 0, got {self.approach_overshoot!r}")
        if not (self.runner_up_ratio > 0):  # inf = every crossed sample walks
            raise ValueError(f"runner_up_ratio must be a number > 0, got {self.runner_up_ratio!r}")
        if not (math.isfinite(self.approach_smoothing) and self.approach_smoothing >= 0):
            raise ValueError(f"approach_smoothing must be a finite number >= 0, got {self.approach_smoothing!r}")


def box_feasible(direction: Tensor, point: Tensor) -> Tensor:
    """``direction`` (n, ...) with the components zeroed that would move a pixel of ``point``
    (n, ...) already at 0 below 0, or one already at 1 above 1."""
    blocked = ((point <= 0) & (direction < 0)) | ((point >= 1) & (direction > 0))
    return direction.masked_fill(blocked, 0.0)


def smooth_margin(logits: Tensor, y: Tensor, smoothing: float) -> Tensor:
    """z_y - T logsumexp_{j != y}(z_j / T) per sample, (N, C), (N,) -> (N,), with the per-sample
    temperature T = ``smoothing`` x |z_y - max_{j != y} z_j| (detached, at least 1e-6): a smooth
    lower bound of the logit margin whose gradient blends the directions towards every competing
    class in proportion to how close it is, and sharpens to the hard margin's near the boundary."""
    hard = -logit_margin(logits, y).detach()
    temperature = (smoothing * hard.abs()).clamp_min(1e-6).unsqueeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    true = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    return true - (temperature * torch.logsumexp(others / temperature, dim=1, keepdim=True)).squeeze(1)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product of (n, ...) tensors -> (n,), accumulated in float64."""
    return (a.flatten(1).double() * b.flatten(1).double()).sum(dim=1)


def _per_sample(v: Tensor, like: Tensor) -> Tensor:
    """(n,) -> (n, 1, ..., 1) broadcastable against ``like`` (n, ...), in its dtype."""
    return v.to(like.dtype).view((-1,) + (1,) * (like.ndim - 1))


class _Walk:
    """Per-sample state of one ``perturb`` call (all tensors on the model's device)."""

    def __init__(self, x: Tensor, y: Tensor, eps: Tensor, x_init: Tensor | None) -> None:
        n = x.shape[0]
        self.x, self.y, self.eps = x, y, eps
        self.x_adv = x.clone() if x_init is None else project_l2(x, x_init.to(x.dtype), eps)
        self.evals = torch.zeros(n, dtype=torch.long, device=x.device)
        self.stalls = torch.zeros(n, dtype=torch.long, device=x.device)
        self.last_margin = torch.full((n,), math.inf, device=x.device)
        self.crossed = torch.zeros(n, dtype=torch.bool, device=x.device)
        self.margin_at = torch.zeros(n, device=x.device)
        self.grad_at = torch.zeros_like(x)
        self.logits_at: Tensor | None = None  # (n, C) logits at x_adv of the crossed samples

    def keep_logits(self, idx: Tensor, logits: Tensor) -> None:
        """Store ``logits`` (k, C) as those at the current points of samples ``idx`` (k,)."""
        if self.logits_at is None:
            self.logits_at = logits.new_zeros((self.x.shape[0], logits.shape[1]))
        self.logits_at[idx] = logits

    def logits_of(self, idx: Tensor) -> Tensor:
        """The stored logits (k, C) at the current points of crossed samples ``idx`` (k,)."""
        if self.logits_at is None:
            raise RuntimeError("no logits stored yet: keep_logits runs when a sample first crosses")
        return self.logits_at[idx]


class NativeMinNormL2(AttackBackend):
    """Minimum-norm L2 attack: linearised steps to the margin's zero level, per-sample radius."""

    name = "native_min_norm"
    config_class: ClassVar[type] = NativeMinNormConfig
    description = "native adaptive-radius minimum-norm L2 attack (DeepFool-style steps on the logit margin)"
    norm = "l2"
    stops_early = True
    scalar_eps = False
    supports_init = True

    def _perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: Tensor, x_init: Tensor | None
    ) -> AttackOutput:
        config: NativeMinNormConfig = self.config
        walk = _Walk(x, y, eps, x_init)
        active = torch.arange(x.shape[0], device=x.device)
        for _ in range(config.steps):
            if active.numel() == 0:
                break
            active = self._approach(model, walk, active)
        crossed = walk.crossed.nonzero(as_tuple=True)[0]
        if config.boundary_steps and crossed.numel():
            self._toward_x(model, walk, crossed, config.boundary_steps)
        if config.runner_up_steps and crossed.numel():
            self._runner_up(model, walk, crossed)
        return AttackOutput(walk.x_adv, walk.evals)

    @staticmethod
    def _margin_and_grad(
        model: nn.Module, walk: _Walk, idx: Tensor, point: Tensor, smoothing: float = 0.0,
        target: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """One forward+backward of ``point`` (the iterates of samples ``idx``), counted in
        ``walk.evals``. Returns (still correct (k,) bool, margin z_y - max_other (k,), its gradient,
        tolerance (k,), logits (k, C)). A point counts as misclassified only when its margin is below
        -tolerance (``_TOLERANCE`` x its largest |logit|, at least that absolute), so that a
        prediction made in another batch (other float rounding) agrees with it. With
        ``smoothing`` > 0 the gradient is that of :func:`smooth_margin` instead (the margin
        returned is still the hard one). With ``target`` (k,) the margin and gradient are those of
        z_y - z_target instead (still correct is still the hard margin's)."""
        with torch.enable_grad():
            xa = point.detach().requires_grad_(True)
            logits = model(xa)
            walk.evals[idx] += 1
            hard = -logit_margin(logits, walk.y[idx])
            if target is not None:
                margin = logits.gather(1, walk.y[idx, None]).squeeze(1) - logits.gather(1, target[:, None]).squeeze(1)
            else:
                margin = hard
            steered = smooth_margin(logits, walk.y[idx], smoothing) if smoothing > 0 and target is None else margin
            (grad,) = torch.autograd.grad(steered.sum(), xa)
        logits = logits.detach()
        tolerance = _TOLERANCE * logits.abs().amax(dim=1).float().clamp_min(1.0)
        return hard.detach().float() > -tolerance, margin.detach().float(), grad.detach(), tolerance, logits

    def _approach(self, model: nn.Module, walk: _Walk, active: Tensor) -> Tensor:
        """One linearised step on the ``active`` samples; those found misclassified are done (their
        margin and gradient are kept for the boundary phase). Returns the samples still active."""
        config: NativeMinNormConfig = self.config
        correct, margin, grad, tolerance, logits = self._margin_and_grad(model, walk, active, walk.x_adv[active],
                                                                         config.approach_smoothing)
        done = active[~correct]
        walk.crossed[done] = True
        walk.keep_logits(done, logits[~correct])
        walk.margin_at[done], walk.grad_at[done] = margin[~correct], grad[~correct]
        keep, point = active[correct], walk.x_adv[active][correct]
        margin, tolerance = margin[correct], tolerance[correct]
        if keep.numel() == 0:
            return keep
        x, cap = walk.x[keep], walk.eps[keep]
        direction = box_feasible(-grad[correct], point)
        gnorm = direction.flatten(1).double().norm(dim=1)
        moving = gnorm > 0
        radius = (point - x).flatten(1).norm(dim=1)
        # signed linear distance to the margin level -2 tolerance, plus the overshoot
        distance = (margin.double() + 2.0 * tolerance.double()) / gnorm
        overshoot = config.overshoot if config.approach_overshoot is None else config.approach_overshoot
        needed = distance + overshoot * (radius.double() + distance.clamp_min(0.0))
        needed = torch.where(moving, needed, math.inf).float()
        target = point + unit_l2(direction) * _per_sample(torch.minimum(needed, 2.0 * cap), point)
        capped = (target - x).flatten(1).norm(dim=1) > cap
        on_sphere = radius >= cap * (1.0 - 1e-4)
        progress = margin < (1.0 - config.min_progress) * walk.last_margin[keep]
        stalls = torch.where(capped & ~progress, walk.stalls[keep] + 1, torch.zeros_like(walk.stalls[keep]))
        hopeless = on_sphere & (needed >= cap)  # on the sphere with the boundary a whole radius away
        hopeless |= (radius + needed) >= config.far_factor * cap  # the boundary far outside the ball
        walk.stalls[keep] = torch.where(hopeless, torch.full_like(stalls, config.patience), stalls)
        walk.last_margin[keep] = margin
        walk.x_adv[keep] = project_l2(x, target, cap)
        return keep[moving & (walk.stalls[keep] < config.patience)]

    def _toward_x(self, model: nn.Module, walk: _Walk, idx: Tensor, steps: int, target: Tensor | None = None) -> None:
        """``steps`` boundary steps for the crossed samples ``idx``: from the current point p, to a
        mix of two points of the linearised boundary at p (shifted ``overshoot`` * ||p - x||
        past it): p's own projection and x's, with a per-sample weight on x's (``origin_pull`` at
        first, times ``pull_up`` after a step that found a nearer misclassified point, times
        ``pull_down`` after one that did not). Keeps the nearest misclassified point seen. A sample
        whose step lands on a misclassified point less than ``boundary_tol`` (relative) nearer than
        its nearest so far stops walking. ``target`` (k,): walk the boundary of z_y - z_target
        (starting from ``walk.margin_at``/``grad_at`` of that margin) instead of the hard margin's."""
        config: NativeMinNormConfig = self.config
        x, cap = walk.x[idx], walk.eps[idx]
        point, margin, grad = walk.x_adv[idx], walk.margin_at[idx], walk.grad_at[idx]
        best, best_norm = point.clone(), (point - x).flatten(1).norm(dim=1)
        best_logits = walk.logits_of(idx)
        pull = torch.full_like(best_norm, config.origin_pull)
        live = torch.arange(idx.numel(), device=idx.device)  # rows of idx still walking
        for _ in range(steps):
            if live.numel() == 0:
                break
            step = self._boundary_step(x[live], cap[live], point[live], margin[live], grad[live],
                                       best_norm[live], pull[live])
            correct, new_margin, new_grad, _, logits = self._margin_and_grad(
                model, walk, idx[live], step, target=None if target is None else target[live])
            point[live], margin[live], grad[live] = step, new_margin, new_grad
            norm = (step - x[live]).flatten(1).norm(dim=1)
            better = ~correct & (norm < best_norm[live])
            converged = ~correct & (norm > (1.0 - config.boundary_tol) * best_norm[live]) & (config.boundary_tol > 0)
            best[live[better]], best_logits[live[better]] = step[better], logits[better]
            best_norm[live] = torch.where(better, norm, best_norm[live])
            pull[live] = torch.where(better, (pull[live] * config.pull_up).clamp(max=1.0),
                                     pull[live] * config.pull_down)
            live = live[~converged]
        walk.x_adv[idx] = best
        walk.keep_logits(idx, best_logits)

    def _runner_up(self, model: nn.Module, walk: _Walk, idx: Tensor) -> None:
        """For the crossed samples ``idx``, at their nearest point p (class c = its prediction): one
        forward+backward of the margin z_y - z_r against the runner-up r (the largest logit at p
        but y's and c's); where x's linearised distance to that boundary is below ``runner_up_ratio``
        x ||p - x||, a boundary walk of at most ``runner_up_steps`` steps along it, keeping the
        nearer misclassified point (a DeepFool choice between c and r, made near the boundary)."""
        config: NativeMinNormConfig = self.config
        logits = walk.logits_of(idx)
        taken = F.one_hot(walk.y[idx], logits.shape[1]).bool() | F.one_hot(logits.argmax(dim=1), logits.shape[1]).bool()
        best_other, runner = logits.masked_fill(taken, float("-inf")).max(dim=1)
        has = torch.isfinite(best_other)  # two classes (or a point still classified y): no runner-up
        idx, runner = idx[has], runner[has]
        if idx.numel() == 0:
            return
        point, x = walk.x_adv[idx], walk.x[idx]
        _, margin, grad, _, _ = self._margin_and_grad(model, walk, idx, point, target=runner)
        gradient = -box_feasible(-grad, point)
        linear = margin.double() + _dot(gradient, x - point)  # z_y - z_r at x, linearised at p
        distance = linear / _dot(gradient, gradient).sqrt().clamp_min(1e-300)
        chosen = distance < config.runner_up_ratio * (point - x).flatten(1).norm(dim=1).double()
        if not bool(chosen.any()):
            return
        walk.margin_at[idx[chosen]], walk.grad_at[idx[chosen]] = margin[chosen], grad[chosen]
        self._toward_x(model, walk, idx[chosen], config.runner_up_steps, target=runner[chosen])

    def _boundary_step(self, x: Tensor, cap: Tensor, point: Tensor, margin: Tensor, grad: Tensor,
                       best_norm: Tensor, pull: Tensor) -> Tensor:
        """The next point of the boundary walk, (k, ...): the mix, with weight ``pull`` (k,) on x's,
        of the projections of ``point`` and of ``x`` onto the linearised boundary at ``point``
        (``margin`` (k,), ``grad``), shifted ``overshoot`` * ``best_norm`` past it, in the eps-ball."""
        delta = point - x
        gradient = -box_feasible(-grad, point)
        g2 = _dot(gradient, gradient)
        level = _dot(gradient, delta) - margin.double() - self.config.overshoot * g2.sqrt() * best_norm.double()
        coeff = torch.where(g2 > 0, 1.0 / g2.clamp_min(1e-300), 0.0)
        own = delta + _per_sample((level - _dot(gradient, delta)) * coeff, delta) * gradient
        origin = _per_sample(level * coeff, delta) * gradient
        weight = _per_sample(pull, delta)
        return project_l2(x, x + (1.0 - weight) * own + weight * origin, cap)
