"""The SalUn weight-saliency mask (Fan et al., "SalUn: Empowering Machine Unlearning via
Gradient-based Weight Saliency", ICLR 2024), shared by ``salun`` and ``amun_salun``.

Mask: with the model in eval mode, sum over forget batches the gradient of the forgetting loss
``-CE(f(x), y)`` (batch mean) with respect to every trainable parameter, take the absolute value,
rank all parameter elements globally and keep the top ``floor(r * n)`` of the n elements as 1,
the others 0 (ties broken by a stable sort, in ``named_parameters`` order):

    m = 1[ |sum_batches grad_theta(-CE)| >= top-r threshold ],     theta_u = theta_o + m ⊙ Δθ

The update is masked as a whole: :func:`masked_update_hook` (a ``before_step`` hook) adds the
SGD weight decay to the gradient itself and then multiplies by the mask, so it must be used with
an optimiser whose own weight decay is 0. Masked elements then never move (no gradient, no
decay, no momentum), which is what ``theta_u = theta_o + m ⊙ Δθ`` says. (SalUn's code masks the
gradient before an optimiser that still decays every weight; the difference is 5e-4 * lr per
step on the frozen half.)
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.device import model_device, preserved_mode
from amun_plugin.errors import InvalidInputError

__all__ = [
    "SaliencyMask",
    "mask_summary",
    "masked_update_hook",
    "saliency_mask",
    "saliency_scores",
    "top_fraction_mask",
]

SaliencyMask = dict[str, Tensor]
"""Parameter name -> 0/1 tensor of the parameter's shape, dtype and device."""


def saliency_scores(model: nn.Module, forget: LabeledData, batch_size: int = 128) -> dict[str, Tensor]:
    """|sum over forget batches of grad_theta(-CE)| per trainable parameter (eval mode; the
    model's flags are restored and its ``.grad`` fields are not touched)."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise InvalidInputError("the model has no trainable parameters: no saliency mask can be computed")
    device = model_device(model)
    totals = [torch.zeros_like(p) for _, p in named]
    with preserved_mode(model, training=False):
        for xb, yb in zip(forget.x.split(batch_size), forget.y.split(batch_size), strict=True):
            loss = -F.cross_entropy(model(xb.to(device)), yb.to(device))
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
            for total, grad in zip(totals, grads, strict=True):
                if grad is not None:
                    total += grad
    return {name: total.abs() for (name, _), total in zip(named, totals, strict=True)}


def top_fraction_mask(scores: dict[str, Tensor], ratio: float) -> SaliencyMask:
    """1 for the ``floor(ratio * n)`` largest of all n score elements (global ranking, stable
    ties), 0 elsewhere; one tensor per name with the score's shape, dtype and device."""
    if not 0.0 < ratio <= 1.0:
        raise InvalidInputError(f"the saliency ratio must lie in (0, 1], got {ratio}")
    flat = torch.cat([s.detach().flatten().float().cpu() for s in scores.values()])
    keep = int(ratio * flat.numel())
    order = torch.sort(flat, descending=True, stable=True).indices
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[order[:keep]] = True
    mask: SaliencyMask = {}
    start = 0
    for name, score in scores.items():
        part = chosen[start : start + score.numel()].view(score.shape)
        mask[name] = part.to(device=score.device, dtype=score.dtype)
        start += score.numel()
    return mask


def saliency_mask(model: nn.Module, forget: LabeledData, ratio: float = 0.5, batch_size: int = 128) -> SaliencyMask:
    """SalUn's mask of ``model`` for ``forget``: :func:`saliency_scores` then
    :func:`top_fraction_mask` with ``ratio`` (r, default 0.5)."""
    return top_fraction_mask(saliency_scores(model, forget, batch_size), ratio)


def masked_update_hook(mask: SaliencyMask, weight_decay: float = 0.0) -> Callable[[nn.Module], None]:
    """A ``before_step(model)`` hook: ``grad <- (grad + weight_decay * theta) * mask`` for every
    parameter named in ``mask`` (others: ``grad + weight_decay * theta``). Use it with an
    optimiser whose weight decay is 0."""

    def hook(model: nn.Module) -> None:
        for name, param in model.named_parameters():
            if param.grad is None:
                continue
            if weight_decay:
                param.grad.add_(param.detach(), alpha=weight_decay)
            if name in mask:
                param.grad.mul_(mask[name])

    return hook


def mask_summary(mask: SaliencyMask) -> dict[str, Any]:
    """How many parameter elements the mask keeps, in total and as a fraction."""
    total = sum(m.numel() for m in mask.values())
    kept = int(sum(int(m.sum().item()) for m in mask.values()))
    return {"mask_elements": total, "mask_kept": kept, "mask_kept_fraction": kept / total if total else 0.0}
