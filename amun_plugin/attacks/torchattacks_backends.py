"""Attack backends that delegate to torchattacks (https://github.com/Harry24k/adversarial-attacks-pytorch).

``TorchattacksPGDL2`` — "torchattacks_pgd_l2", the design card's default backend:
    PGD with an L2 bound (Madry et al., 2018, https://arxiv.org/abs/1706.06083) as
    ``torchattacks.PGDL2(model, eps, alpha=eps * step_ratio, steps, random_start=False)``:
    cross-entropy against the true label, gradient normalised per sample to unit L2, projection
    onto the eps-ball, clamp to [0, 1]. It always runs all ``steps`` (no early stop), so a found
    point lies near the ball's surface; the nearest-example search refines it by bisection.
    Distance measure: L2. Options: :class:`TorchattacksPGDConfig`.
    grad_evals: ``steps`` per sample per call.

``TorchattacksFFGSM`` — "torchattacks_ffgsm", the weak attack of the AMUN paper's App. E.5:
    FFGSM ('Fast is better than free', Wong et al., 2020, https://arxiv.org/abs/2001.03994) as
    ``torchattacks.FFGSM(model, eps, alpha=eps * alpha_ratio)``: a uniform random start in the
    L_inf ball, one gradient-sign step of size alpha, projection onto the ball, clamp to [0, 1].
    Inside the eps-doubling search this is "walk along a sign direction in growing steps, with a
    fresh random perturbation each round". Distance measure: L_inf. Options:
    :class:`TorchattacksFFGSMConfig`.
    grad_evals: 1 per sample per call.

Both take one eps per call (``scalar_eps``; the base class groups samples by radius).
Shape: x (N, ...) float in [0, 1] (non-image inputs are presented to torchattacks as
(N, 1, 1, D)), y (N,) int64, eps (N,) > 0; output x_adv (N, ...) in [0, 1].
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn

from amun_plugin.attacks.base import AttackBackend, AttackOutput
from amun_plugin.attacks.losses import tempered

__all__ = ["TorchattacksFFGSM", "TorchattacksFFGSMConfig", "TorchattacksPGDConfig", "TorchattacksPGDL2"]

@dataclass(frozen=True)
class TorchattacksPGDConfig:
    """Options of :class:`TorchattacksPGDL2` (see the module docstring).

    Attributes:
        steps: PGD iterations per call, all run (no early stop). (Default: 50)
        step_ratio: PGD step size alpha / eps, recomputed for every eps. (Default: 0.1)
        max_logit_spread: bound on the logits' spread (max - min) of the model the attack sees; None = raw.
            The view is :class:`~amun_plugin.attacks.losses.TemperedLogits` (a per-sample temperature),
            so the attack keeps a gradient where the softmax reads 1.0 in float32; None = the raw
            model (torchattacks as published). Success is judged on the real model. (Default: 10.0)
    """

    steps: int = 50
    step_ratio: float = 0.1
    max_logit_spread: float | None = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if not (math.isfinite(self.step_ratio) and self.step_ratio > 0):
            raise ValueError(f"step_ratio must be a finite number > 0, got {self.step_ratio!r}")
        check_max_logit_spread(self.max_logit_spread)


@dataclass(frozen=True)
class TorchattacksFFGSMConfig:
    """Options of :class:`TorchattacksFFGSM` (see the module docstring).

    Attributes:
        alpha_ratio: FFGSM step size alpha / eps. (Default: 1.25, torchattacks' 10/255 over 8/255)
        seed: seed of the random start (each call's generator is seeded with (seed, eps)). (Default: 0)
            Runs are deterministic and torch's global RNG is left untouched.
        max_logit_spread: bound on the logits' spread (max - min) of the model the attack sees; None = raw.
            As for :class:`TorchattacksPGDConfig`. (Default: 10.0)
    """

    alpha_ratio: float = 1.25
    seed: int = 0
    max_logit_spread: float | None = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.alpha_ratio) and self.alpha_ratio > 0):
            raise ValueError(f"alpha_ratio must be a finite number > 0, got {self.alpha_ratio!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        check_max_logit_spread(self.max_logit_spread)


def check_max_logit_spread(value: float | None) -> None:
    """``max_logit_spread`` is None or a finite number > 0 (a ValueError otherwise)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"max_logit_spread must be None or a finite number > 0, got {value!r}")


class _AsImages(nn.Module):
    """Shows a model of (N, *shape) inputs to torchattacks as one of (N, 1, 1, D) images
    (torchattacks reshapes per-sample norms to (N, 1, 1, 1))."""

    def __init__(self, model: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.shape = shape

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.reshape(x.shape[0], *self.shape))


def _run(attack_class: Any, model: nn.Module, x: Tensor, y: Tensor, max_logit_spread: float | None,
         **kwargs: Any) -> Tensor:
    """``attack_class(view, **kwargs)(x, y)`` with gradients enabled and the model kept in eval
    mode, where ``view`` is the model seen through ``tempered(model, max_logit_spread)``; 4-D image
    batches go in as they are, anything else as (N, 1, 1, D)."""
    shape = tuple(x.shape[1:])
    view = tempered(model, max_logit_spread)
    target = view if x.ndim == 4 else _AsImages(view, shape).eval()
    inputs = x if x.ndim == 4 else x.reshape(x.shape[0], 1, 1, -1)
    attack = attack_class(target, **kwargs)
    with torch.enable_grad():
        adv = attack(inputs, y)
    model.eval()  # torchattacks re-enables train mode when it saw it on entry; keep the attack's eval
    return adv.detach().reshape(x.shape).to(x.dtype)


class _TorchattacksBackend(AttackBackend):
    """The one body of both backends: one eps per call, every step run, torchattacks imported only
    when an attack runs. A subclass names the torchattacks class (``attack``) and gives its options
    for a radius (``_options``), the gradient evaluations per sample (``_grad_evals``) and,
    if it draws random numbers, the RNG context of a call (``_rng``)."""

    name: ClassVar[str]
    attack: ClassVar[str]
    stops_early = False
    scalar_eps = True
    supports_init = False
    requires = {"torchattacks": "torchattacks"}

    def _perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: Tensor, x_init: Tensor | None
    ) -> AttackOutput:
        import torchattacks

        radius = float(eps[0])
        with self._rng(x.device, radius):
            adv = _run(getattr(torchattacks, self.attack), model, x, y, self.config.max_logit_spread,
                       **self._options(radius))
        return AttackOutput(adv, torch.full((x.shape[0],), self._grad_evals(), dtype=torch.long))

    def _options(self, radius: float) -> dict[str, Any]:
        raise NotImplementedError

    def _grad_evals(self) -> int:
        raise NotImplementedError

    def _rng(self, device: torch.device, radius: float) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()


class TorchattacksPGDL2(_TorchattacksBackend):
    """torchattacks.PGDL2 without random start (the design card's default backend)."""

    name = "torchattacks_pgd_l2"
    attack = "PGDL2"
    config_class: ClassVar[type] = TorchattacksPGDConfig
    description = "torchattacks PGDL2 (L2 PGD, no random start, all steps run)"
    norm = "l2"

    def _options(self, radius: float) -> dict[str, Any]:
        return {"eps": radius, "alpha": radius * self.config.step_ratio, "steps": int(self.config.steps),
                "random_start": False}

    def _grad_evals(self) -> int:
        return int(self.config.steps)


class TorchattacksFFGSM(_TorchattacksBackend):
    """torchattacks.FFGSM (L_inf), seeded: the paper's weak, one-gradient-per-round attack."""

    name = "torchattacks_ffgsm"
    attack = "FFGSM"
    config_class: ClassVar[type] = TorchattacksFFGSMConfig
    description = "torchattacks FFGSM (L_inf random start + one sign step; App. E.5's weak attack)"
    norm = "linf"

    def _options(self, radius: float) -> dict[str, Any]:
        return {"eps": radius, "alpha": radius * self.config.alpha_ratio}

    def _grad_evals(self) -> int:
        return 1

    def _rng(self, device: torch.device, radius: float) -> contextlib.AbstractContextManager[Any]:
        return _seeded(device, _call_seed(int(self.config.seed), radius))


def _call_seed(seed: int, eps: float) -> int:
    """A seed that depends on the configured seed and the radius (so each doubling round of the
    search draws a fresh random start, reproducibly)."""
    return (seed * 1_000_003 + int(round(eps * 2**24))) % (2**63)


@contextlib.contextmanager
def _seeded(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the RNG of ``device`` with ``seed`` inside, restoring every RNG state touched on exit."""
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        if cuda:
            with torch.cuda.device(cuda[0]):
                torch.cuda.manual_seed(seed)
        else:
            torch.default_generator.manual_seed(seed)
        yield
