"""Per-sample membership signals computed from logits (pure functions)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["logit_scaled_confidence", "true_class_probability"]


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
