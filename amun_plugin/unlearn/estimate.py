"""The retrain-free estimate of an unlearned model's Avg Gap, from data the deleting party has.

A retrained model classifies D_F as well as unseen data (UA ~ TA), keeps its accuracy on unseen
data and on D_R, and gives D_F the membership signal of unseen data. The **estimated Avg Gap**
is the paper's Avg Gap with the retrained model's values replaced by these estimates, measured
with the current model on a held-out set H (samples the model never trained on)::

    mean( |acc(D_F) - acc0(H)|,  |acc(H) - acc0(H)|,  |AUC(D_F vs H) - 50|,  [|acc(D_R') - acc0(D_R')|] )

acc0 is the original model's accuracy, D_R' a fixed random sample of D_R of |H| samples (the last
term only with D_R), and AUC(D_F vs H) the ROC AUC (%) of a :class:`MembershipProbe` separating
D_F from H: by default :class:`ConfidenceProbe` (the logit-scaled confidence
log p_y - log sum_{j != y} p_j); with a reference bank, RMIA (``evaluate/rmia_probe.py``), the
attack the true Avg Gap is measured with. AMUN's calibration, ``method="auto"`` and the
retrain-free audit all read this one estimate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.data.overlap import shared_samples
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.inference import logit_scaled_confidence, predict_logits

__all__ = [
    "ConfidenceProbe",
    "MembershipProbe",
    "ProxyMeasure",
    "check_holdout",
    "estimated_gap",
    "holdout_resolution",
    "measure_proxy",
    "retain_probe",
    "within_budget",
]


@runtime_checkable
class MembershipProbe(Protocol):
    """A membership signal of D_F against held-out data for the estimated gap: ``auc`` returns the
    ROC AUC in % of scores separating ``forget`` (positives) from ``holdout`` (50 = D_F looks unseen)."""

    name: str

    def auc(self, model: nn.Module, forget: LabeledData, holdout: LabeledData,
            device: str | torch.device = "cpu") -> float:
        ...


class ConfidenceProbe:
    """The default probe: the AUC of the logit-scaled confidence (no reference models needed)."""

    name = "confidence"

    def scores(self, model: nn.Module, forget: LabeledData, holdout: LabeledData,
               device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """Per-sample scores (higher = member) of ``forget`` and ``holdout``: their logit-scaled confidence."""
        return (logit_scaled_confidence(predict_logits(model, forget.x, device=device), forget.y.cpu()).numpy(),
                logit_scaled_confidence(predict_logits(model, holdout.x, device=device), holdout.y.cpu()).numpy())

    def auc(self, model: nn.Module, forget: LabeledData, holdout: LabeledData,
            device: str | torch.device = "cpu") -> float:
        return scores_auc(*self.scores(model, forget, holdout, device))


def confidence_auc(forget_logits: Tensor, forget_y: Tensor, holdout_logits: Tensor, holdout_y: Tensor) -> float:
    """ROC AUC (%) of the logit-scaled confidence separating the forget logits from the held-out ones."""
    return scores_auc(logit_scaled_confidence(forget_logits, forget_y.cpu()).numpy(),
                      logit_scaled_confidence(holdout_logits, holdout_y.cpu()).numpy())


def scores_auc(forget_scores: np.ndarray, holdout_scores: np.ndarray) -> float:
    """ROC AUC (%) of membership scores separating ``forget`` (positives) from ``holdout``."""
    labels = np.r_[np.ones(len(forget_scores)), np.zeros(len(holdout_scores))]
    return 100.0 * float(roc_auc_score(labels, np.r_[forget_scores, holdout_scores]))


@dataclass(frozen=True)
class ProxyMeasure:
    """What the deleting party can measure of one model: accuracies in %, AUC in % (50 = D_F
    indistinguishable from held-out data); ``retain_accuracy`` is None without D_R."""

    forget_accuracy: float
    holdout_accuracy: float
    forget_holdout_auc: float
    retain_accuracy: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {"forget_accuracy": self.forget_accuracy, "holdout_accuracy": self.holdout_accuracy,
                "forget_holdout_auc": self.forget_holdout_auc, "retain_accuracy": self.retain_accuracy}


def check_holdout(holdout: LabeledData, forget: LabeledData, retain: LabeledData | None,
                  max_shared: float = 0.01) -> LabeledData:
    """``holdout`` without the samples it shares with D_F or D_R (identical images).

    Samples the model trained on cannot stand for unseen data: when more than ``max_shared`` of
    the held-out samples are in D_F or D_R (a split mix-up) the holdout is refused; a few exact
    duplicates (real datasets have some, e.g. Fashion-MNIST's train and test) are dropped with a
    one-line warning. An empty holdout is refused."""
    if len(holdout) == 0:
        raise InvalidInputError("holdout is empty: pass samples the model never trained on "
                                "(a validation or test split)")
    shared = torch.zeros(len(holdout), dtype=torch.bool)
    for part in (forget, retain):
        if part is not None:
            found = shared_samples(holdout.x, part.x)
            if found.float().mean().item() > max_shared:
                raise InvalidInputError(
                    f"holdout shares {int(found.sum())} sample(s) with {part.name}: held-out data must be samples the "
                    "model never trained on (a validation or test split)")
            shared |= found
    if not shared.any():
        return holdout
    if bool(shared.all()):
        raise InvalidInputError("every holdout sample is also a training sample")
    warnings.warn(f"holdout: dropped {int(shared.sum())} sample(s) identical to training samples", stacklevel=3)
    return holdout.subset(torch.nonzero(~shared).squeeze(1), name=holdout.name)


def holdout_resolution(accuracy: float, size: int, budget: float) -> tuple[float, int]:
    """How well ``size`` held-out samples measure an accuracy of ``accuracy`` %: the 95% half-width
    in points (normal approximation, 1.96 sqrt(p (1 - p) / n)) and the holdout size at which it is
    ``budget`` / 2 points. Losses of held-out accuracy smaller than the half-width go unseen.
    Measured (``benchmarks/results/calibration_holdout-fmnist-paper``, n = 5 forget sets): without
    D_R, 200 held-out images let AMUN lose 6.9 points of test accuracy unseen (Avg Gap 5.11),
    2,000 held the loss to 3.7 (Avg Gap 3.92, paired -1.19 +- 0.82)."""
    p = min(max(accuracy / 100.0, 0.0), 1.0)
    variance = max(p * (1.0 - p), 1e-4)
    half_width = 100.0 * 1.96 * math.sqrt(variance / max(1, size))
    needed = math.ceil(variance * (100.0 * 1.96 / max(budget / 2.0, 1e-6)) ** 2)
    return half_width, needed


def retain_probe(retain: LabeledData | None, size: int, seed: int) -> LabeledData | None:
    """A fixed random sample of ``size`` retain samples (all of D_R when smaller), or None."""
    if retain is None:
        return None
    if len(retain) <= size:
        return retain
    order = torch.randperm(len(retain), generator=torch.Generator().manual_seed(seed))[:size]
    return retain.subset(order.sort().values, name="retain probe")


def measure_proxy(model: nn.Module, forget: LabeledData, holdout: LabeledData,
                  retain_sample: LabeledData | None = None, *, device: str | torch.device = "cpu",
                  membership: MembershipProbe | None = None) -> ProxyMeasure:
    """Accuracies on D_F, H (and the retain sample) and the D_F-vs-H AUC of ``membership``
    (default: :class:`ConfidenceProbe`) of ``model`` (eval mode, no gradients; modes restored)."""
    forget_logits = predict_logits(model, forget.x, device=device)
    holdout_logits = predict_logits(model, holdout.x, device=device)
    if membership is None:
        auc = confidence_auc(forget_logits, forget.y, holdout_logits, holdout.y)
    else:
        auc = float(membership.auc(model, forget, holdout, device=device))
    retain_acc = None
    if retain_sample is not None:
        retain_logits = predict_logits(model, retain_sample.x, device=device)
        retain_acc = _accuracy(retain_logits, retain_sample.y)
    return ProxyMeasure(_accuracy(forget_logits, forget.y), _accuracy(holdout_logits, holdout.y), auc, retain_acc)


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return 100.0 * float((logits.argmax(dim=1) == y.cpu()).double().mean().item())


def estimated_gap(current: ProxyMeasure, original: ProxyMeasure) -> tuple[float, dict[str, float]]:
    """The estimated Avg Gap (points, lower is better) of ``current`` and its terms, with the
    retrained model's UA and TA estimated by the original model's held-out accuracy, its RA by
    the original's retain accuracy, and its MIA AUC by 50 (see the module docstring)."""
    terms = {
        "UA": abs(current.forget_accuracy - original.holdout_accuracy),
        "TA": abs(current.holdout_accuracy - original.holdout_accuracy),
        "MIA": abs(current.forget_holdout_auc - 50.0),
    }
    if current.retain_accuracy is not None and original.retain_accuracy is not None:
        terms["RA"] = abs(current.retain_accuracy - original.retain_accuracy)
    return float(np.mean(list(terms.values()))), terms


def within_budget(current: ProxyMeasure, original: ProxyMeasure, budget: float) -> bool:
    """Held-out (and retain) accuracy at most ``budget`` points below the original model's."""
    if current.holdout_accuracy < original.holdout_accuracy - budget:
        return False
    if current.retain_accuracy is not None and original.retain_accuracy is not None:
        return current.retain_accuracy >= original.retain_accuracy - budget
    return True
