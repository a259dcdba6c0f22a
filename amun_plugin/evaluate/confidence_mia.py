"""A first membership signal: threshold attack on the logit-scaled confidence.

score(x) = log(p_y / (1 - p_y)); higher = more member-like. Reports the AUC (percent) of the
score separating forget from test (FT), retain from forget (FR) and retain from test (RT) on
equal-size subsamples. A retrained model gives FT ~ 50; a model that memorised D_F gives more.
This is the attack-free signal behind the paper's confidence histograms, not RMIA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.evaluate.roc import balanced_auc
from amun_plugin.evaluate.signals import logit_scaled_confidence
from amun_plugin.models.inference import predict_logits

__all__ = ["ConfidenceMIA", "ConfidenceMIAConfig"]


@dataclass(frozen=True)
class ConfidenceMIAConfig:
    """Options of :class:`ConfidenceMIA`.

    Attributes:
        subsample_seeds: seeded equal-size subsample draws averaged into each AUC. (Default: 3)
    """

    subsample_seeds: int = 3

    def __post_init__(self) -> None:
        if self.subsample_seeds < 1:
            raise ValueError("subsample_seeds must be >= 1")


class ConfidenceMIA(Evaluator):
    name = "confidence_mia"
    config_class = ConfidenceMIAConfig
    description = "AUC of the logit-scaled confidence: forget vs test (FT), retain vs forget (FR), retain vs test (RT)"

    def _evaluate(self, model: nn.Module, data: AuditData, device: torch.device, seed: int) -> EvaluationResult:
        scores = {
            name: logit_scaled_confidence(predict_logits(model, part.x, device=device), part.y).numpy()
            for name, part in (("retain", data.retain), ("forget", data.forget), ("test", data.test))
        }
        rounds = self.config.subsample_seeds
        metrics = {
            "FT_AUC": balanced_auc(scores["forget"], scores["test"], sizes_from=scores, seed=seed, rounds=rounds),
            "FR_AUC": balanced_auc(scores["retain"], scores["forget"], sizes_from=scores, seed=seed, rounds=rounds),
            "RT_AUC": balanced_auc(scores["retain"], scores["test"], sizes_from=scores, seed=seed, rounds=rounds),
        }
        return EvaluationResult(metrics, scores)
