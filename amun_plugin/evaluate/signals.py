"""Per-sample membership signals computed from logits (pure functions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from amun_plugin.evaluate.base import AuditData

__all__ = ["confidence_by_set", "logit_scaled_confidence", "true_class_probability"]


def logit_scaled_confidence(logits: Tensor, y: Tensor) -> Tensor:
    """log(p_y / (1 - p_y)) for logits (N, C) and labels (N,), returned as (N,) float64.

    Computed as z_y - logsumexp_{j != y} z_j, which is exact and does not saturate at
    p_y = 1 in floating point (the paper's Fig. 3-5 quantity).
    """
    z = logits.double()
    true = z.gather(1, y.view(-1, 1)).squeeze(1)
    others = z.scatter(1, y.view(-1, 1), float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def true_class_probability(logits: Tensor, y: Tensor) -> Tensor:
    """Softmax probability of the true class, (N,) float64 in [0, 1]."""
    return torch.softmax(logits.double(), dim=1).gather(1, y.view(-1, 1)).squeeze(1)


def confidence_by_set(
    model: torch.nn.Module, data: AuditData, device: str | torch.device = "cpu"
) -> dict[str, np.ndarray]:
    """{"retain"|"forget"|"test": (N,) numpy float64 logit-scaled confidence} of ``model`` on ``data``."""
    from amun_plugin.models.inference import predict_logits

    return {name: logit_scaled_confidence(predict_logits(model, part.x, device=device), part.y).numpy()
            for name, part in (("retain", data.retain), ("forget", data.forget), ("test", data.test))}
