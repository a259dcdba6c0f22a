"""Per-sample losses an untargeted attack ascends.

- ``AttackLoss.CE``: cross-entropy against the true label, ``-log softmax(z)_y`` (the loss of
  Algorithm 1 in the AMUN paper). Its input gradient is ``J^T (softmax(z) - onehot(y))``, which is
  exactly zero once ``softmax(z)_y == 1.0`` in float32 (a memorising model's training samples):
  such samples never move.
- ``AttackLoss.MARGIN``: the logit margin ``max_{j != y} z_j - z_y`` (Carlini & Wagner, 2017,
  without the clamp). It is linear in the logits, so its gradient does not vanish with confidence,
  and it crosses 0 exactly where the prediction flips.
"""

from __future__ import annotations

from enum import Enum

import torch.nn.functional as F
from torch import Tensor

from amun_plugin.errors import InvalidInputError

__all__ = ["AttackLoss", "attack_loss", "logit_margin"]


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
