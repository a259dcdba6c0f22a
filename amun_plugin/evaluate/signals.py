"""Per-sample membership signals of a model on the audit sets. The signals of one batch of logits
(:func:`logit_scaled_confidence`, :func:`true_class_probability`) live with the model's inference
(:mod:`amun_plugin.models.inference`), where unlearners use them too."""

from __future__ import annotations

import numpy as np
import torch

from amun_plugin.evaluate.base import AuditData
from amun_plugin.models.inference import logit_scaled_confidence, predict_logits, true_class_probability

__all__ = ["confidence_by_set", "logit_scaled_confidence", "true_class_probability"]


def confidence_by_set(
    model: torch.nn.Module, data: AuditData, device: str | torch.device = "cpu"
) -> dict[str, np.ndarray]:
    """{"retain"|"forget"|"test": (N,) numpy float64 logit-scaled confidence} of ``model`` on ``data``."""
    return {name: logit_scaled_confidence(predict_logits(model, part.x, device=device), part.y).numpy()
            for name, part in (("retain", data.retain), ("forget", data.forget), ("test", data.test))}
