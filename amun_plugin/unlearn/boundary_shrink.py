"""BS: Boundary Shrink (Chen et al., "Boundary Unlearning", CVPR 2023; as in the AMUN paper).

At the start of each epoch the current model is copied and frozen (eval mode). Every forget
sample takes one FGSM step on the frozen copy (L_inf, ``eps`` = 0.1 quantised to 1/255, i.e.
26/255, loss = CE against the true label, no random start, clamped to [0, 1]):

    x' = clip_[0,1](x + eps * sign(grad_x CE(f_copy(x), y))),     y_nb = argmax f_copy(x')

and the live model is trained on the clean input with the neighbouring label:
``L = CE(f(x), y_nb)`` over D_F. With D_R, each epoch first runs the same D_R pre-pass as GA
(:func:`~amun_plugin.unlearn.gradient_ascent.forget_pass_with_retain_prepass`); the copy is
taken after it, right before the forget pass. The copy does not change during an epoch, so all
of D_F is labelled at the epoch's start, which is the same as labelling batch by batch.

Defaults for small models: 10 epochs, SGD lr 0.01 (constant), momentum 0.9, weight decay 5e-4,
batch 128 (RL's setting: BS is RL with the nearest wrong label instead of a random one).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.device import preserved_mode
from amun_plugin.errors import InvalidInputError
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.finetune import FinetuneConfig
from amun_plugin.unlearn.gradient_ascent import forget_pass_with_retain_prepass

__all__ = ["BoundaryShrink", "BoundaryShrinkConfig", "fgsm_neighbour_labels", "quantize_eps"]


def quantize_eps(eps: float, levels: int = 255) -> float:
    """``eps`` rounded to the nearest multiple of 1/levels (0.1 -> 26/255)."""
    return round(float(eps) * levels) / levels


def fgsm_neighbour_labels(model: nn.Module, x: Tensor, y: Tensor, eps: float, batch_size: int = 256) -> Tensor:
    """Labels (N,) of the FGSM points of ``x`` (N, ...) in [0, 1] with true labels ``y`` (N,).

    ``model`` is the frozen copy: it is run in eval mode, its parameters get no gradient, and
    its train/eval flags are restored. Returns ``argmax model(clip(x + eps sign(grad_x CE)))``
    on ``x``'s device.
    """
    outputs = []
    with preserved_mode(model, training=False):
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
            xb = xb.detach().clone().requires_grad_(True)
            loss = F.cross_entropy(model(xb), yb)
            (grad,) = torch.autograd.grad(loss, xb)
            with torch.no_grad():
                x_adv = (xb + eps * grad.sign()).clamp(0.0, 1.0)
                outputs.append(model(x_adv).argmax(dim=1))
    return torch.cat(outputs)


@dataclass(frozen=True)
class BoundaryShrinkConfig(FinetuneConfig):
    """BS's knobs (see :class:`FinetuneConfig`; defaults 10 epochs, lr 0.01) plus the FGSM step.

    Attributes:
        fgsm_eps: L_inf step of the FGSM point, pixel units. (Default: 0.1)
        quantize: round ``fgsm_eps`` to a multiple of 1/255 (the original code's 8-bit grid). (Default: True)
    """

    fgsm_eps: float = 0.1
    quantize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.fgsm_eps > 0:
            raise InvalidInputError(f"fgsm_eps must be positive, got {self.fgsm_eps}")

    @property
    def step(self) -> float:
        """The FGSM step actually used."""
        return quantize_eps(self.fgsm_eps) if self.quantize else float(self.fgsm_eps)


class _NeighbourLabels:
    """Holds the current epoch's labels; ``refresh`` is the epoch start, ``__call__`` the loss."""

    def __init__(self, forget: LabeledData, eps: float, device: torch.device) -> None:
        self.x, self.y = forget.x.to(device), forget.y.to(device)
        self.eps = eps
        self.labels = self.y
        self.changed: list[float] = []

    def refresh(self, _epoch: int, model: nn.Module) -> None:
        frozen = copy.deepcopy(model).requires_grad_(False)
        self.labels = fgsm_neighbour_labels(frozen, self.x, self.y, self.eps)
        self.changed.append(float((self.labels != self.y).float().mean().item()))

    def __call__(self, logits: Tensor, _y: Tensor, indices: Tensor) -> Tensor:
        return F.cross_entropy(logits, self.labels[indices.to(self.labels.device)])


class BoundaryShrink(Unlearner):
    """BS: train D_F towards the labels of its FGSM neighbours on a frozen copy."""

    name = "bs"
    config_class = BoundaryShrinkConfig
    description = "BS (boundary shrink): relabel D_F with the frozen model's prediction at its FGSM point"

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: BoundaryShrinkConfig = self.config
        labels = _NeighbourLabels(request.forget, config.step, ctx.device)
        stats = forget_pass_with_retain_prepass(
            model, request.forget, request.retain, config.train_config(), ctx, labels,
            epoch_start=labels.refresh, progress="BS",
        )
        return {"fgsm_eps": config.step, "label_changed_fraction_per_epoch": labels.changed, **stats}
