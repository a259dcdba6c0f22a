"""Original-model training variants of the ``robust`` suite (AMUN paper §6.2.2), on the one
training loop (:func:`amun_plugin.training.train_model`):

* ``trades`` (Zhang et al., 2019): loss = CE(f(x), y) + beta * KL(f(x) || f(x')) (KL summed over
  classes, averaged over the batch), x' found by ``steps`` steps of L_inf PGD (step ``eps / 4``,
  random start 0.001 * N(0, 1), clamped to [0, 1]) maximising KL(f(x) || f(x')) inside the ``eps``
  ball, model in eval mode during the attack (its target f(x) too, as in the authors' code).
  Plugged in as ``loss_fn``; under :func:`train_original` x is the batch the model was trained on
  (augmented when the recipe augments), recorded by a forward pre-hook that is removed afterwards.
* ``lipschitz``: after every optimizer step, the spectral norm of every Conv2d / Linear layer —
  as the linear operator it applies to its actual input shape — is estimated by warm-started
  power iteration and the weight is scaled down to ``max_norm`` when it exceeds it
  (W <- W * max_norm / sigma). This is the projection of Miyato-style spectral normalisation
  applied as a hard clip; Boroojeny et al. (2024) clip the singular values exactly, which
  changes only the top of the spectrum. A final clip with ``final_iterations`` runs at the end.
  Only Conv2d / Linear weights are clipped: the product of their norms bounds the network's L2
  Lipschitz constant only when every other layer is 1-Lipschitz (ReLU, non-overlapping max
  pooling), not across BatchNorm layers or residual additions.
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
        finite = math.isfinite(self.beta) and math.isfinite(self.eps)
        if not finite or self.beta < 0 or self.eps <= 0 or self.steps < 1:
            raise InvalidInputError(
                f"invalid TRADES options: finite beta >= 0, finite eps > 0, steps >= 1 needed; got {self}"
            )


@dataclass(frozen=True)
class LipschitzConfig:
    """max_norm: the spectral-norm bound of every layer; iterations: power iterations per step."""

    max_norm: float = 1.0
    iterations: int = 2
    final_iterations: int = 50

    def __post_init__(self) -> None:
        if not math.isfinite(self.max_norm) or self.max_norm <= 0 or self.iterations < 1 or self.final_iterations < 1:
            raise InvalidInputError(
                "invalid Lipschitz options: finite max_norm > 0, iterations >= 1, final_iterations >= 1 needed; "
                f"got {self}"
            )


class TradesLoss:
    """``loss_fn(logits, y, indices)`` of TRADES for ``model`` trained on ``data``.

    x is the model's last training input when :meth:`record_inputs` hooked it (the augmented
    batch the ``logits`` (B, C) came from), else ``data.x[indices]``.
    """

    def __init__(self, model: nn.Module, data: LabeledData, config: TradesConfig, seed: int) -> None:
        self.model, self.data, self.config = model, data, config
        self.generator = torch.Generator().manual_seed(int(seed))
        self._input: Tensor | None = None

    def record_inputs(self) -> torch.utils.hooks.RemovableHandle:
        """Hook the model so each training forward's input is the x of the next call; remove the
        returned handle when training ends."""

        def remember(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            self._input = inputs[0].detach()  # the loop calls loss_fn right after the forward

        return self.model.register_forward_pre_hook(remember)

    def __call__(self, logits: Tensor, y: Tensor, indices: Tensor) -> Tensor:
        x, self._input = self._input, None
        if x is None or x.shape[0] != logits.shape[0]:
            x = self.data.x[indices.to(self.data.x.device)].to(logits.device)
        x_adv = self._attack(x)
        robust = F.kl_div(F.log_softmax(self.model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
        self._input = None  # not the forwards of this call
        return F.cross_entropy(logits, y) + self.config.beta * robust

    def _attack(self, x: Tensor) -> Tensor:
        """x' (B, ...) in the eps ball around x (B, ...) and in [0, 1]; parameters' .grad untouched."""
        eps, step = self.config.eps, self.config.eps / 4
        noise = torch.randn(x.shape, generator=self.generator).to(x.device)
        x_adv = (x + 0.001 * noise).clamp(0.0, 1.0)
        with preserved_mode(self.model, training=False), torch.enable_grad():
            with torch.no_grad():
                target = F.softmax(self.model(x), dim=1)
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
        with torch.enable_grad():  # A^T is autograd's backward; callers may be under no_grad
            for _ in range(iterations):
                v = v.requires_grad_(True)
                u = _apply(layer, weight, v)
                (back,) = torch.autograd.grad(u, v, grad_outputs=u.detach())  # A^T A v
                v = _unit(back.detach())
        self.vectors[layer] = v
        with torch.no_grad():
            return float(_apply(layer, weight, v).norm())


def _apply(layer: nn.Conv2d | nn.Linear, weight: Tensor, v: Tensor) -> Tensor:
    """The layer's linear part (no bias) applied to v (1, *input_shape); a conv keeps its
    ``padding_mode`` (circular / reflect / replicate padding is part of the operator)."""
    if isinstance(layer, nn.Linear):
        return v @ weight.t()
    assert isinstance(layer, nn.Conv2d)
    return layer._conv_forward(v, weight, None)


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
    hooks: list[torch.utils.hooks.RemovableHandle] = []
    if variant == "trades":
        kwargs["loss_fn"] = trades = TradesLoss(model, data, make_config(TradesConfig, options), seed)
        hooks.append(trades.record_inputs())
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
    try:
        stats = train_model(model, data, recipe, device=device, seed=seed, progress=progress, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    if clipper is not None:
        clipper(clipper.config.final_iterations)
    return model.eval(), stats
