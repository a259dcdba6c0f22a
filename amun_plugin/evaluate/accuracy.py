"""Unlearn / retain / test accuracy (UA, RA, TA), in percent."""

from __future__ import annotations

import torch
from torch import nn

from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.models.inference import predict_logits

__all__ = ["AccuracyEvaluator"]


class AccuracyEvaluator(Evaluator):
    """UA = accuracy on D_F (not 100 - acc), RA on D_R, TA on D_T, all in percent (0-100)."""

    name = "accuracy"
    description = "UA / RA / TA: accuracy on the forget, retain and test sets (percent)"

    def _evaluate(self, model: nn.Module, data: AuditData, device: torch.device, seed: int) -> EvaluationResult:
        metrics: dict[str, float] = {}
        for key, part in (("UA", data.forget), ("RA", data.retain), ("TA", data.test)):
            predictions = predict_logits(model, part.x, device=device).argmax(dim=1)
            metrics[key] = float(100.0 * (predictions == part.y).double().mean().item())
        return EvaluationResult(metrics)
