"""The attack-backend interface: ``perturb(model, x, y, eps)`` with a per-sample radius."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import Tensor, nn

from amun_plugin.config import NoConfig, make_config
from amun_plugin.device import model_device, preserved_mode
from amun_plugin.errors import BackendUnavailableError, InvalidInputError

__all__ = ["AttackBackend", "AttackOutput", "frozen_parameters"]

_NORMS = ("l2", "linf")


@dataclass(frozen=True)
class AttackOutput:
    """What one ``perturb`` call returns.

    x_adv: (N, ...) float tensor in [0, 1], on the device of the input ``x``.
    grad_evals: (N,) int64, forward+backward evaluations spent on each sample.
    """

    x_adv: Tensor
    grad_evals: Tensor


class AttackBackend(ABC):
    """An untargeted evasion attack inside an ``eps``-ball of norm ``norm`` around each input.

    Subclasses write ``_perturb``; this base class owns the invariants: input validation, the
    model's device, eval mode during the attack and the caller's train/eval flags afterwards,
    parameters frozen (no gradient accumulates in the model), outputs clamped to [0, 1], and —
    for libraries that take one eps per call (``scalar_eps``) — grouping samples by radius.

    Class data:
        norm: "l2" or "linf", the norm ``eps`` is measured in.
        stops_early: True when each sample's returned point is the first misclassified iterate
            (so its distance is near-minimal, not ~eps).
        scalar_eps: True when ``_perturb`` needs one radius for the whole batch.
        supports_init: True when ``perturb`` can start from a given iterate ``x_init`` (so an
            eps-doubling search continues where the last round stopped instead of restarting).
        requires: importable top-level modules the backend needs, and their pip names.
    """

    name: ClassVar[str]
    config_class: ClassVar[type] = NoConfig
    description: ClassVar[str] = ""
    norm: ClassVar[str] = "l2"
    stops_early: ClassVar[bool] = False
    scalar_eps: ClassVar[bool] = False
    supports_init: ClassVar[bool] = False
    requires: ClassVar[Mapping[str, str]] = {}

    def __init__(self, config: Mapping[str, Any] | Any | None = None) -> None:
        self.config = make_config(self.config_class, config)

    @classmethod
    def check_class(cls) -> None:
        """Validate the declared capabilities (called at registration)."""
        if cls.norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {cls.norm!r}")

    @classmethod
    def available(cls) -> bool:
        """Whether every module in ``requires`` can be imported."""
        return all(importlib.util.find_spec(module) is not None for module in cls.requires)

    @classmethod
    def ensure_available(cls) -> None:
        """Raise :class:`BackendUnavailableError` naming the pip packages to install."""
        missing = [pip for module, pip in cls.requires.items() if importlib.util.find_spec(module) is None]
        if missing:
            raise BackendUnavailableError(
                f"attack backend {cls.name!r} needs {', '.join(missing)}: pip install {' '.join(missing)}"
            )

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float | Tensor, x_init: Tensor | None = None
    ) -> AttackOutput:
        """Attack every sample of ``x`` (N, ...) in [0, 1] with labels ``y`` (N,) within radius
        ``eps`` (a float or an (N,) tensor, > 0, in the backend's norm, pixel units).
        ``x_init`` (N, ...): a starting iterate, used only by backends with ``supports_init``."""
        self.ensure_available()
        eps_t = _check_inputs(x, y, eps)
        if x_init is not None and x_init.shape != x.shape:
            raise InvalidInputError(f"x_init must have shape {tuple(x.shape)}, got {tuple(x_init.shape)}")
        device = model_device(model)
        xs, ys, es = x.detach().to(device), y.to(device), eps_t.to(device)
        init = x_init.detach().to(device) if (x_init is not None and self.supports_init) else None
        with preserved_mode(model, training=False), frozen_parameters(model):
            if self.scalar_eps:
                output = self._perturb_grouped(model, xs, ys, es, init)
            else:
                output = self._perturb(model, xs, ys, es, init)
        x_adv = output.x_adv.detach().clamp(0.0, 1.0)
        if x_adv.shape != x.shape or output.grad_evals.shape != (x.shape[0],):
            raise RuntimeError(f"backend {self.name!r} returned shapes {tuple(x_adv.shape)}, "
                               f"{tuple(output.grad_evals.shape)} for input {tuple(x.shape)}")
        return AttackOutput(x_adv.to(x.device), output.grad_evals.long().cpu())

    def _perturb_grouped(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: Tensor, x_init: Tensor | None
    ) -> AttackOutput:
        x_adv = x.clone()
        evals = torch.zeros(x.shape[0], dtype=torch.long)
        for value in torch.unique(eps):
            idx = (eps == value).nonzero(as_tuple=True)[0]
            init = x_init[idx] if x_init is not None else None
            part = self._perturb(model, x[idx], y[idx], eps[idx], init)
            x_adv[idx] = part.x_adv.to(x_adv.dtype)
            evals[idx.cpu()] = part.grad_evals.long().cpu()
        return AttackOutput(x_adv, evals)

    @abstractmethod
    def _perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: Tensor, x_init: Tensor | None
    ) -> AttackOutput:
        """Attack ``x`` (N, ...) on the model's device; ``eps`` (N,) (all equal if ``scalar_eps``);
        ``x_init`` is None unless the backend ``supports_init``. The model is in eval mode with
        frozen parameters."""


class frozen_parameters:
    """Context manager: ``requires_grad=False`` on every parameter, restored on exit."""

    def __init__(self, model: nn.Module) -> None:
        self._params = list(model.parameters())
        self._flags = [p.requires_grad for p in self._params]

    def __enter__(self) -> None:
        for p in self._params:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p, flag in zip(self._params, self._flags):
            p.requires_grad_(flag)


def _check_inputs(x: Tensor, y: Tensor, eps: float | Tensor) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise InvalidInputError("x must be a float tensor of shape (N, ...)")
    if not isinstance(y, Tensor) or y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise InvalidInputError(f"y must have shape ({x.shape[0]},), got {tuple(getattr(y, 'shape', ()))}")
    if x.numel() and (x.min() < -1e-6 or x.max() > 1 + 1e-6):
        raise InvalidInputError("x must lie in [0, 1] (normalisation belongs inside the model)")
    eps_t = torch.as_tensor(eps, dtype=torch.float32)
    if eps_t.ndim == 0:
        eps_t = eps_t.expand(x.shape[0]).clone()
    if eps_t.shape != (x.shape[0],):
        raise InvalidInputError(f"eps must be a float or shape ({x.shape[0]},), got {tuple(eps_t.shape)}")
    if not torch.isfinite(eps_t).all() or (eps_t <= 0).any():
        raise InvalidInputError("eps must be finite and > 0")
    return eps_t
