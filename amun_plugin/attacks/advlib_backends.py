"""Optional attack backends that delegate to adv-lib's minimum-norm L2 attacks
(https://github.com/jeromerony/adversarial-library, pip name ``adv-lib``; extra ``amun_plugin[advlib]``).

The best published minimum-norm L2 attacks, for users who want them for D_A (and as the yardstick
of ``benchmarks/adversarial_search.py --frontier``):

- ``advlib_ddn``: DDN, 'Decoupling Direction and Norm' (Rony et al., CVPR 2019,
  https://arxiv.org/abs/1811.09600), ``adv_lib.attacks.ddn(model, x, y, steps, γ, init_norm,
  levels=None)`` (no 8-bit quantisation: distances are measured in continuous pixel space).
- ``advlib_fmn``: FMN, 'Fast Minimum-norm Adversarial Attacks' (Pintor et al., NeurIPS 2021,
  https://arxiv.org/abs/2102.12827), ``adv_lib.attacks.fmn(model, x, y, norm=2, steps, α_init)``.
- ``advlib_alma``: ALMA, 'Augmented Lagrangian Adversarial Attacks' (Rony et al., ICCV 2021,
  https://arxiv.org/abs/2011.11857), ``adv_lib.attacks.alma(model, x, y, distance='l2', num_steps)``.
- ``advlib_fab``: FAB, 'Minimally distorted Adversarial Examples with a Fast Adaptive Boundary
  Attack' (Croce & Hein, ICML 2020, https://arxiv.org/abs/1907.02044), ``adv_lib.attacks.fab(model,
  x, y, norm=2, n_iter)``. Each iteration takes the full Jacobian of the logits (one backward pass
  per class), which ``grad_evals`` does not count (it counts forward passes with an input gradient).

Behind the ``perturb`` interface: these attacks take no radius; each call runs the attack from x
(or, for FMN, from ``x_init`` when it is adversarial) and projects its point onto the eps-ball
(``eps`` (N,) L2, pixel units). Inside Algorithm 1 (``nearest_adversarial``) they make sense with
``eps_init`` = sqrt of the input dimension (the diameter of [0, 1]^D) and ``max_doublings=0``: one
round, then the bisection; with a small eps_init every doubling reruns the whole attack, and a
sample the attack misses is missed again at every doubling (FMN as published misses some:
2.2% of 500 Fashion-MNIST samples in ``benchmarks/results/adversarial_search-frontier``).

Distance measure: L2. grad_evals: the forward passes with an input gradient the attack ran on each
sample (every sample takes part in every pass: these attacks run all their steps on the batch).

Installing adv-lib pulls ``visdom`` (a source distribution only), whose build imports
``pkg_resources`` (removed from setuptools 81); build it with an older setuptools (``ADVLIB_INSTALL``:
older pip reads the pin for the build from PIP_CONSTRAINT, pip 26 from PIP_BUILD_CONSTRAINT).
The backends are registered only when ``adv_lib`` and ``visdom`` can be imported; used without them
they raise :class:`~amun_plugin.errors.BackendUnavailableError` naming the extra.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from amun_plugin.attacks.base import AttackBackend, AttackOutput
from amun_plugin.attacks.native_pgd import project_l2
from amun_plugin.errors import BackendUnavailableError

__all__ = ["ADVLIB_BACKENDS", "ADVLIB_EXTRA", "ADVLIB_INSTALL", "AdvLibALMA", "AdvLibDDN", "AdvLibFAB", "AdvLibFMN",
           "AdvLibStepsConfig", "advlib_available", "available_advlib_backends"]

ADVLIB_EXTRA = "amun_plugin[advlib]"
ADVLIB_INSTALL = ("echo 'setuptools<81' > advlib-build.txt && PIP_CONSTRAINT=advlib-build.txt "
                  f"PIP_BUILD_CONSTRAINT=advlib-build.txt pip install '{ADVLIB_EXTRA}'")
"""The one command that installs the extra: visdom's build needs setuptools<81 (old and new pip)."""
_INSTALL = f"install it with {ADVLIB_INSTALL}"


def advlib_available() -> bool:
    """Whether adv-lib and its import-time dependency visdom are installed (no import is done)."""
    return all(importlib.util.find_spec(module) is not None for module in ("adv_lib", "visdom"))


def _import_attacks() -> Any:
    """``adv_lib.attacks``, or :class:`BackendUnavailableError` naming the extra."""
    try:
        return importlib.import_module("adv_lib.attacks")
    except ImportError as exc:
        raise BackendUnavailableError(f"the adv-lib attack backends need adv-lib ({exc}): {_INSTALL}") from exc


@dataclass(frozen=True)
class AdvLibStepsConfig:
    """Options of the adv-lib backends.

    steps (int): iterations of the attack (DDN/FMN ``steps``, ALMA ``num_steps``, FAB ``n_iter``).
        (Default: 100)
    """

    steps: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")


class _Counting(nn.Module):
    """The model, counting the samples of forward passes that carry an input gradient."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.grad_samples = 0

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            self.grad_samples += x.shape[0]
        return self.model(x)


class _AdvLibBackend(AttackBackend):
    """Shared plumbing: availability, the counting view, the projection onto the eps-ball."""

    config_class: ClassVar[type] = AdvLibStepsConfig
    norm = "l2"
    stops_early = True
    scalar_eps = False
    supports_init = False

    @classmethod
    def available(cls) -> bool:
        return advlib_available()

    @classmethod
    def ensure_available(cls) -> None:
        if not advlib_available():
            raise BackendUnavailableError(f"attack backend {cls.name!r} needs adv-lib: {_INSTALL}")

    def _perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: Tensor, x_init: Tensor | None
    ) -> AttackOutput:
        attacks = _import_attacks()
        counting = _Counting(model).eval()
        with torch.enable_grad():
            adv = self._attack(attacks, counting, x, y, x_init).detach().to(x.dtype)
        model.eval()
        adv = project_l2(x, adv.clamp(0.0, 1.0), eps)
        per_sample = math.ceil(counting.grad_samples / max(x.shape[0], 1))
        return AttackOutput(adv, torch.full((x.shape[0],), per_sample, dtype=torch.long))

    def _attack(self, attacks: Any, model: nn.Module, x: Tensor, y: Tensor, x_init: Tensor | None) -> Tensor:
        raise NotImplementedError


class AdvLibDDN(_AdvLibBackend):
    """adv-lib DDN (L2, no quantisation)."""

    name = "advlib_ddn"
    description = "adv-lib DDN (decoupled direction and norm, minimum-norm L2)"

    def _attack(self, attacks: Any, model: nn.Module, x: Tensor, y: Tensor, x_init: Tensor | None) -> Tensor:
        return attacks.ddn(model, x, y, steps=int(self.config.steps), levels=None)


class AdvLibFMN(_AdvLibBackend):
    """adv-lib FMN (L2). Not ``supports_init``: FMN runs its fixed number of steps from any start,
    so resuming from the last round's points would cost as much as starting afresh."""

    name = "advlib_fmn"
    description = "adv-lib FMN (fast minimum-norm, L2)"

    def _attack(self, attacks: Any, model: nn.Module, x: Tensor, y: Tensor, x_init: Tensor | None) -> Tensor:
        return attacks.fmn(model, x, y, norm=2, steps=int(self.config.steps))


class AdvLibALMA(_AdvLibBackend):
    """adv-lib ALMA (L2)."""

    name = "advlib_alma"
    description = "adv-lib ALMA (augmented Lagrangian, L2)"

    def _attack(self, attacks: Any, model: nn.Module, x: Tensor, y: Tensor, x_init: Tensor | None) -> Tensor:
        return attacks.alma(model, x, y, distance="l2", num_steps=int(self.config.steps))


class AdvLibFAB(_AdvLibBackend):
    """adv-lib FAB (L2); its per-class Jacobian backward passes are not in ``grad_evals``."""

    name = "advlib_fab"
    description = "adv-lib FAB (fast adaptive boundary, L2)"

    def _attack(self, attacks: Any, model: nn.Module, x: Tensor, y: Tensor, x_init: Tensor | None) -> Tensor:
        return attacks.fab(model, x, y, norm=2, n_iter=int(self.config.steps))


ADVLIB_BACKENDS: tuple[type[AttackBackend], ...] = (AdvLibDDN, AdvLibFMN, AdvLibALMA, AdvLibFAB)


def available_advlib_backends() -> tuple[type[AttackBackend], ...]:
    """The adv-lib backend classes when adv-lib is installed, else ``()`` (what gets registered)."""
    return ADVLIB_BACKENDS if advlib_available() else ()
