"""Native L2 PGD with per-sample early stopping: the attack of AMUN's Algorithm 1.

PGD in 'Towards Deep Learning Models Resistant to Adversarial Attacks' (Madry et al., 2018,
https://arxiv.org/abs/1706.06083), as used by AMUN ('Adversarial Machine UNlearning', Ebrahimpour-
Boroojeny et al.) to find the nearest adversarial example of every forget sample.

Distance measure: L2, in pixel units of inputs in [0, 1].

Each step, for every sample still in the active set:
    1. forward the current iterate; if the model already misclassifies it, the sample leaves the
       active set and this iterate is its result (the *first* misclassified iterate, so its
       distance is near-minimal instead of ~eps);
    2. otherwise ascend the loss along the gradient normalised to unit L2 norm per sample, with
       step size ``alpha = eps * step_ratio`` (per sample). A sample whose gradient is exactly zero
       takes no step (no division by zero);
    3. project onto the eps-ball around x (per-sample eps) and clamp to [0, 1].
No random start. Only active samples are batched through the model.

Options: :class:`NativePGDConfig`.

Shape:
    - x: (N, ...) float in [0, 1]; y: (N,) int64; eps: (N,) float > 0 (L2 radius per sample).
    - x_init: (N, ...) optional starting iterate (projected into the ball first).
    - output: x_adv (N, ...) in [0, 1] with ||x_adv - x||_2 <= eps; grad_evals (N,) int64, one per
      forward(+backward) pass the sample took part in (a sample that stops at step k used k + 1;
      one never fooled used ``steps``).

Example::
    >>> out = NativePGDL2({"steps": 50, "loss": "margin"}).perturb(model, x, y, eps=0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from amun_plugin.attacks.base import AttackBackend, AttackOutput
from amun_plugin.attacks.losses import AttackLoss, attack_loss

__all__ = ["NativePGDConfig", "NativePGDL2", "project_l2", "unit_l2"]


@dataclass(frozen=True)
class NativePGDConfig:
    """Options of :class:`NativePGDL2` (see the module docstring).

    Attributes:
        steps: gradient steps per call at most (a sample stops at its first misclassified iterate). (Default: 50)
        step_ratio: step size alpha / eps, per sample, recomputed for every eps. (Default: 0.1)
        loss: "ce" (cross-entropy, the paper's) or "margin" (logit margin, keeps a gradient when p_y == 1.0).
            (Default: "ce")
    """

    steps: int = 50
    step_ratio: float = 0.1
    loss: AttackLoss = AttackLoss.CE

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if not (math.isfinite(self.step_ratio) and self.step_ratio > 0):
            raise ValueError(f"step_ratio must be a finite number > 0, got {self.step_ratio!r}")
        object.__setattr__(self, "loss", AttackLoss(self.loss))


def unit_l2(grad: Tensor) -> Tensor:
    """Each sample's gradient scaled to unit L2 norm; an all-zero gradient stays zero.

    grad: (n, ...) -> (n, ...). Scaling by the max-abs entry first keeps tiny (denormal) gradients
    from underflowing to a zero norm."""
    flat = grad.flatten(1)
    ones = torch.ones(1, dtype=flat.dtype, device=flat.device)
    peak = flat.abs().amax(dim=1, keepdim=True)
    flat = flat / torch.where(peak > 0, peak, ones)
    norm = flat.norm(dim=1, keepdim=True)
    return (flat / torch.where(norm > 0, norm, ones)).view_as(grad)


def project_l2(x: Tensor, x_new: Tensor, eps: Tensor) -> Tensor:
    """``x_new`` projected onto the L2 ball of radius ``eps`` around ``x``, then clamped to [0, 1].

    x, x_new: (n, ...); eps: (n,) > 0. Clamping after projection only shrinks |delta|."""
    delta = x_new - x
    norm = delta.flatten(1).norm(dim=1)
    factor = (eps.to(delta.dtype) / norm).clamp(max=1.0)  # norm == 0 gives inf -> 1
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (x + delta * factor.view(shape)).clamp(0.0, 1.0)


class NativePGDL2(AttackBackend):
    """L2 PGD, no random start, unit-normalised gradients, per-sample eps and early stopping."""

    name = "native_pgd_l2"
    config_class: ClassVar[type] = NativePGDConfig
    description = "native L2 PGD with per-sample early stop (AMUN Algorithm 1's attack)"
    norm = "l2"
    stops_early = True
    scalar_eps = False
    supports_init = True

    def _perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: Tensor, x_init: Tensor | None
    ) -> AttackOutput:
        config: NativePGDConfig = self.config
        x_adv = x.clone() if x_init is None else project_l2(x, x_init.to(x.dtype), eps)
        evals = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        active = torch.arange(x.shape[0], device=x.device)
        for _ in range(config.steps):
            if active.numel() == 0:
                break
            active = self._step(model, x, y, eps, x_adv, evals, active)
        return AttackOutput(x_adv, evals)

    def _step(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: Tensor, x_adv: Tensor, evals: Tensor, active: Tensor
    ) -> Tensor:
        """One PGD step on the ``active`` samples, updating ``x_adv`` and ``evals`` in place;
        returns the samples still correctly classified (still active)."""
        config: NativePGDConfig = self.config
        with torch.enable_grad():
            xa = x_adv[active].detach().requires_grad_(True)
            logits = model(xa)
            evals[active] += 1
            correct = logits.argmax(dim=1) == y[active]
            if not bool(correct.any()):
                return active[correct]
            loss = attack_loss(logits[correct], y[active][correct], config.loss).sum()
            (grad,) = torch.autograd.grad(loss, xa)
        keep = active[correct]
        step = unit_l2(grad[correct]) * (eps[keep] * config.step_ratio).view((-1,) + (1,) * (x.ndim - 1))
        x_adv[keep] = project_l2(x[keep], xa.detach()[correct] + step.to(x.dtype), eps[keep])
        return keep
