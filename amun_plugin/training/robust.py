"""Original-model training variants of the ``robust`` suite (AMUN paper §6.2.2), on the one
training loop (:func:`amun_plugin.training.train_model`):

* ``trades`` (Zhang et al., 2019): loss = CE(f(x), y) + beta * KL(f(x) || f(x')), x' found by
  ``steps`` steps of L_inf PGD (step ``eps / 4``, random start 0.001 * N(0, 1)) maximising the KL
  inside the ``eps`` ball, model in eval mode during the attack. Plugged in as ``loss_fn``; x' is
  searched around the *unaugmented* sample (the loss hook sees the batch indices, not the
  augmented pixels), so use it with ``augment: none`` for the exact recipe.
* ``lipschitz``: after every optimizer step, the spectral norm of every Conv2d / Linear layer —
  as the linear operator it applies to its actual input shape — is estimated by warm-started
  power iteration and the weight is scaled down to ``max_norm`` when it exceeds it
  (W <- W * max_norm / sigma). This is the projection of Miyato-style spectral normalisation
  applied as a hard clip; Boroojeny et al. (2024) clip the singular values exactly, which
  changes only the top of the spectrum. A final clip with ``final_iterations`` runs at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.config import make_config
from amun_plugin.data.base import LabeledData
from amun_plugin.device import preserved_mode, resolve_device
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.inference import build_model
from amun_plugin.training.loop import TrainConfig, TrainStats, make_optimizer, train_model

__all__ = ["LipschitzClipper", "LipschitzConfig", "TradesConfig", "TradesLoss", "train_original"]


@dataclass(frozen=True)
class TradesConfig:
    """beta: weight of the KL term; eps: L_inf radius (pixels in [0, 1]); steps: PGD steps."""

    beta: float = 6.0
    eps: float = 0.1
    steps: int = 5

    def __post_init__(self) -> None:
        if self.beta < 0 or self.eps <= 0 or self.steps < 1:
            raise InvalidInputError(f"invalid TRADES options: beta >= 0, eps > 0, steps >= 1 needed; got {self}")


@dataclass(frozen=True)
class LipschitzConfig:
    """max_norm: the spectral-norm bound of every layer; iterations: power iterations per step."""

    max_norm: float = 1.0
    iterations: int = 2
    final_iterations: int = 50

    def __post_init__(self) -> None:
        if self.max_norm <= 0 or self.iterations < 1 or self.final_iterations < 1:
            raise InvalidInputError(f"invalid Lipschitz options: max_norm > 0, iterations >= 1 needed; got {self}")


class TradesLoss:
    """``loss_fn(logits, y, indices)`` of TRADES for ``model`` trained on ``data``."""

    def __init__(self, model: nn.Module, data: LabeledData, config: TradesConfig, seed: int) -> None:
        self.model, self.data, self.config = model, data, config
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, logits: Tensor, y: Tensor, indices: Tensor) -> Tensor:
        x = self.data.x[indices.to(self.data.x.device)].to(logits.device)
        target = F.softmax(logits.detach(), dim=1)
        x_adv = self._attack(x, target)
        robust = F.kl_div(F.log_softmax(self.model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
        return F.cross_entropy(logits, y) + self.config.beta * robust

    def _attack(self, x: Tensor, target: Tensor) -> Tensor:
        eps, step = self.config.eps, self.config.eps / 4
        noise = torch.randn(x.shape, generator=self.generator).to(x.device)
        x_adv = (x + 0.001 * noise).clamp(0.0, 1.0)
        with preserved_mode(self.model, training=False):
            for _ in range(self.config.steps):
                x_adv.requires_grad_(True)
                kl = F.kl_div(F.log_softmax(self.model(x_adv), dim=1), target, reduction="sum")
                (grad,) = torch.autograd.grad(kl, x_adv)
                x_adv = x_adv.detach() + step * grad.sign()
                x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
        return x_adv.detach()


class LipschitzClipper:
    """Scales every Conv2d / Linear weight of ``model`` so its operator norm is <= max_norm."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], config: LipschitzConfig, seed: int) -> None:
        self.model, self.config = model, config
        self.layers: list[nn.Conv2d | nn.Linear] = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        if not self.layers:
            raise InvalidInputError("Lipschitz clipping needs at least one Conv2d or Linear layer")
        shapes: dict[nn.Module, tuple[int, ...]] = {}

        def record(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            shapes.setdefault(module, tuple(inputs[0].shape[1:]))

        hooks = [layer.register_forward_pre_hook(record) for layer in self.layers]
        device = next(model.parameters()).device
        try:
            with torch.no_grad(), preserved_mode(model, training=False):
                model(torch.zeros((1, *input_shape), device=device))
        finally:
            for hook in hooks:
                hook.remove()
        generator = torch.Generator().manual_seed(int(seed))
        self.vectors = {layer: _unit(torch.randn((1, *shapes[layer]), generator=generator)) for layer in self.layers}

    def __call__(self, iterations: int | None = None) -> list[float]:
        """Clip every layer; returns the estimated spectral norms before clipping."""
        sigmas = []
        for layer in self.layers:
            sigma = self._power_iteration(layer, iterations or self.config.iterations)
            if sigma > self.config.max_norm:
                with torch.no_grad():
                    layer.weight.mul_(self.config.max_norm / sigma)
            sigmas.append(sigma)
        return sigmas

    def _power_iteration(self, layer: nn.Conv2d | nn.Linear, iterations: int) -> float:
        weight = layer.weight.detach()
        v = self.vectors[layer].to(weight.device)
        for _ in range(iterations):
            v = v.requires_grad_(True)
            u = _apply(layer, weight, v)
            (back,) = torch.autograd.grad(u, v, grad_outputs=u.detach())  # A^T A v
            v = _unit(back.detach())
        self.vectors[layer] = v
        with torch.no_grad():
            return float(_apply(layer, weight, v).norm())


def _apply(layer: nn.Conv2d | nn.Linear, weight: Tensor, v: Tensor) -> Tensor:
    """The layer's linear part (no bias) applied to v."""
    if isinstance(layer, nn.Linear):
        return v @ weight.t()
    assert isinstance(layer, nn.Conv2d)
    return F.conv2d(v, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)


def _unit(v: Tensor) -> Tensor:
    norm = float(v.norm())
    return v / norm if norm > 0 and math.isfinite(norm) else torch.ones_like(v) / math.sqrt(v.numel())


def train_original(
    architecture: ModelArchitecture, data: LabeledData, recipe: TrainConfig, *, variant: str = "standard",
    options: Mapping[str, Any] | None = None, seed: int = 0, device: str | torch.device = "cpu",
    progress: bool | str = False,
) -> tuple[nn.Module, TrainStats]:
    """A freshly initialised (seeded) model trained on ``data`` with ``recipe`` and the training
    ``variant`` ("standard", "trades" or "lipschitz"; ``options`` configure it); eval mode."""
    model = build_model(architecture, data.num_classes, data.input_shape, seed).to(resolve_device(device))
    kwargs: dict[str, Any] = {}
    clipper = None
    if variant == "trades":
        kwargs["loss_fn"] = TradesLoss(model, data, make_config(TradesConfig, options), seed)
    elif variant == "lipschitz":
        clipper = LipschitzClipper(model, data.input_shape, make_config(LipschitzConfig, options), seed)
        clipper(clipper.config.final_iterations)
        optimizer = make_optimizer(model, recipe)
        def clip_after_step(_optimizer: Any, _args: Any, _kwargs: Any) -> None:
            clipper()

        optimizer.register_step_post_hook(clip_after_step)
        kwargs["optimizer"] = optimizer
    elif variant != "standard" or options:
        raise InvalidInputError(f"unknown training variant {variant!r} (or options given for 'standard')")
    stats = train_model(model, data, recipe, device=device, seed=seed, progress=progress, **kwargs)
    if clipper is not None:
        clipper(clipper.config.final_iterations)
    return model.eval(), stats
