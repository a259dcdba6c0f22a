"""Per-sample losses an untargeted attack ascends.

- ``AttackLoss.CE``: cross-entropy against the true label, ``-log softmax(z)_y`` (the loss of
  Algorithm 1 in the AMUN paper). Its input gradient is ``J^T (softmax(z) - onehot(y))``, which is
  exactly zero once ``softmax(z)_y == 1.0`` in float32 (a memorising model's training samples):
  such samples never move.
- ``AttackLoss.MARGIN``: the logit margin ``max_{j != y} z_j - z_y`` (Carlini & Wagner, 2017,
  without the clamp). It is linear in the logits, so its gradient does not vanish with confidence,
  and it crosses 0 exactly where the prediction flips.

``TemperedLogits`` is how the cross-entropy attacks of other libraries (torchattacks, ART) are kept
working on such samples without forking them: they attack a *view* of the model whose logits are
divided, per sample, by a temperature that bounds their spread, so their softmax never saturates;
the view's prediction is the model's (a positive per-sample scale keeps the argmax), and the
search checks every success on the real model anyway.
"""

from __future__ import annotations

from enum import Enum

import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError

__all__ = ["AttackLoss", "TemperedLogits", "attack_loss", "logit_margin", "tempered"]


class AttackLoss(str, Enum):
    """The loss an attack ascends: ``"ce"`` (cross-entropy) or ``"margin"`` (logit margin)."""

    CE = "ce"
    MARGIN = "margin"


def attack_loss(logits: Tensor, y: Tensor, kind: AttackLoss | str) -> Tensor:
    """Per-sample loss to ascend.

    Args:
        logits: (N, C) float logits, C >= 2.
        y: (N,) int64 true labels in [0, C).
        kind: ``AttackLoss.CE`` or ``AttackLoss.MARGIN`` (or their string values).

    Returns:
        (N,) float tensor; larger means closer to (or further past) misclassification.
    """
    try:
        kind = AttackLoss(kind)
    except ValueError:
        raise InvalidInputError(f"unknown attack loss {kind!r}; choose one of ce, margin") from None
    if logits.ndim != 2 or logits.shape[1] < 2 or y.shape != (logits.shape[0],):
        raise InvalidInputError(
            f"attack_loss needs logits (N, C >= 2) and labels (N,), got {tuple(logits.shape)} and {tuple(y.shape)}"
        )
    if kind is AttackLoss.CE:
        return F.cross_entropy(logits, y, reduction="none")
    return logit_margin(logits, y)


def logit_margin(logits: Tensor, y: Tensor) -> Tensor:
    """``max_{j != y} z_j - z_y`` per sample: (N, C), (N,) -> (N,); < 0 exactly while the true
    class has the strictly largest logit, and linear in the logits (no saturation)."""
    true_logit = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.amax(dim=1) - true_logit


class TemperedLogits(nn.Module):
    """A view of ``model`` whose logits z (N, C) become z / T, with the per-sample temperature
    T = max(1, (max_j z_j - min_j z_j) / max_spread), computed on each forward pass and detached.

    The view's logits span at most ``max_spread``, so softmax(z / T)_y <= 1 / (1 + e^-max_spread)
    < 1 in float32 and the cross-entropy gradient keeps a usable size (for max_spread 10, at least
    e^-10 ~ 4.5e-5 of the logit-difference gradient, divided by T) where the model's own softmax
    reads exactly 1.0. Samples whose logits already span <= max_spread are untouched (T = 1).
    argmax(view(x)) == argmax(model(x)) for every x. The view owns no parameters (``model`` is a
    submodule, so ``.to(device)`` and ``.eval()`` reach it).
    """

    def __init__(self, model: nn.Module, max_spread: float = 10.0) -> None:
        super().__init__()
        if not max_spread > 0:
            raise InvalidInputError(f"max_spread must be > 0, got {max_spread!r}")
        self.model = model
        self.max_spread = float(max_spread)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x)
        spread = (logits.max(dim=1, keepdim=True).values - logits.min(dim=1, keepdim=True).values).detach()
        return logits / (spread / self.max_spread).clamp(min=1.0)


def tempered(model: nn.Module, max_spread: float | None) -> nn.Module:
    """``TemperedLogits(model, max_spread)`` with ``model``'s own train/eval flag (its submodules'
    flags untouched), or ``model`` itself when ``max_spread`` is None (the raw logits)."""
    if max_spread is None:
        return model
    view = TemperedLogits(model, max_spread)
    view.training = model.training
    return view
