"""What every benchmark states about its original model, and the guard that refuses one that
does not memorise (a benchmark of unlearning on such a model measures nothing).

The summary holds train / test accuracy (%), the saturated fraction (% of training samples whose
softmax probability of the true class is exactly 1.0 in float32: there cross-entropy gradients
vanish, so gradient-based unlearners and attacks stall) and, where a reference bank is at hand,
RMIA's RT AUC (% , training members vs test non-members).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from amun_plugin.data.base import LabeledData
from amun_plugin.errors import AmunError
from amun_plugin.models.inference import predict_logits

__all__ = ["CHANCE_MARGIN", "DEFAULT_MIN_TRAIN_ACCURACY", "NotMemorisingError", "check_memorises",
           "format_original", "saturated_fraction"]

DEFAULT_MIN_TRAIN_ACCURACY = 98.0
"""Train accuracy (%) under which an original model is refused."""
CHANCE_MARGIN = 5.0
"""Test accuracy within this many points of 100 / num_classes counts as chance."""


class NotMemorisingError(AmunError):
    """The original model does not memorise its training set (or learnt nothing)."""


def saturated_fraction(model: nn.Module, data: LabeledData, *, device: str = "cpu") -> float:
    """% of ``data``'s samples (x (N, ...), y (N,)) with p_y == 1.0 in float32 under softmax."""
    logits = predict_logits(model, data.x, device=device).float()
    p_y = torch.softmax(logits, dim=1)[torch.arange(len(data)), data.y.cpu().long()]
    return 100.0 * float((p_y == 1.0).float().mean())


def check_memorises(train_accuracy: float, test_accuracy: float, num_classes: int, *,
                    min_train_accuracy: float = DEFAULT_MIN_TRAIN_ACCURACY, what: str = "the original model") -> None:
    """Raise :class:`NotMemorisingError` (one line) if train accuracy (%) is under
    ``min_train_accuracy`` or test accuracy (%) is within :data:`CHANCE_MARGIN` points of chance."""
    chance = 100.0 / num_classes
    if test_accuracy <= chance + CHANCE_MARGIN:
        raise NotMemorisingError(
            f"{what} is at chance: test accuracy {test_accuracy:.1f}% (chance {chance:.1f}% for {num_classes} "
            "classes); it learnt nothing — change the training recipe (e.g. a lower learning rate)")
    if train_accuracy < min_train_accuracy:
        raise NotMemorisingError(
            f"{what} does not memorise: train accuracy {train_accuracy:.1f}% < {min_train_accuracy:g}% "
            "(min_train_accuracy); an unlearning benchmark on it measures nothing — train longer or lower the "
            "threshold knowingly")


def format_original(summary: Mapping[str, Any]) -> str:
    """``train 100.0%, test 86.6%, saturated 29.7%, RMIA RT AUC 63.1%`` from the known keys."""
    parts = [(k, label) for k, label in (("train_accuracy", "train"), ("test_accuracy", "test"),
                                         ("saturated_fraction", "saturated"), ("rt_auc", "RMIA RT AUC"))]
    return ", ".join(f"{label} {float(summary[k]):.1f}%" for k, label in parts if summary.get(k) is not None)
