"""``mis``: the SVC membership attack of earlier unlearning papers (MIA-efficacy, "MIS").

As used by e.g. 'Model Sparsity Can Simplify Machine Unlearning' (Jia et al., NeurIPS 2023) and
SalUn (Fan et al., ICLR 2024), after 'Systematic Evaluation of Privacy Risks of Machine Learning
Models' (Song & Mittal, USENIX Security 2021). Threat model: black-box softmax outputs.

Features from the softmax p (C,) of the model in eval mode, for a sample with label y:
    correctness = 1[argmax p == y]      confidence = p_y      entropy = -sum_j p_j log p_j
    modified entropy (Song & Mittal) Mentr = -(1 - p_y) log p_y - sum_{j != y} p_j log(1 - p_j)
Shadow members: |D_T| random samples of D_R (label 1); shadow non-members: D_T (label 0). One
RBF SVC (C = 3, gamma = "auto", scikit-learn) is fitted per feature (a 1-D input) and predicts D_F.
MIS = 100 x fraction of D_F predicted NON-member by the confidence SVC (higher = more forgotten;
a retrained model's value is the reference). The other features are reported as MIS_<feature>.

Options: :class:`MISConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.models.inference import predict_logits

__all__ = ["FEATURES", "MISConfig", "MISEvaluator", "log_one_minus_softmax", "modified_entropy", "softmax_features"]

FEATURES = ("correctness", "confidence", "entropy", "m_entropy")


@dataclass(frozen=True)
class MISConfig:
    """Options of :class:`MISEvaluator`.

    Attributes:
        C: regularisation parameter C (> 0) of each RBF SVC. (Default: 3.0)
        kernel_gamma: the RBF kernel's gamma: "auto" (1 / n_features), "scale" or a number as text. (Default: "auto")
        max_shadow: cap on the shadow members and on the shadow non-members (each); None = min(|D_T|, |D_R|).
            Bounds the O(n^2) SVC fit. (Default: None)
    """

    C: float = 3.0
    kernel_gamma: str = "auto"
    max_shadow: int | None = None

    def __post_init__(self) -> None:
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        if self.max_shadow is not None and self.max_shadow < 2:
            raise ValueError(f"max_shadow must be >= 2 or null, got {self.max_shadow}")


def log_one_minus_softmax(logits: Tensor) -> Tensor:
    """log(1 - p_j) for every class, (N, C) float64, without cancellation: log1p(-p_j) where
    p_j < 1/2, and for the (at most one) class with p_j >= 1/2 the exact
    logsumexp_{k != j} z_k - logsumexp_k z_k."""
    z = logits.double()
    log_p = torch.log_softmax(z, dim=1)
    out = torch.log1p(-log_p.exp())
    top = z.argmax(dim=1, keepdim=True)
    others = torch.logsumexp(z.scatter(1, top, float("-inf")), dim=1, keepdim=True) - torch.logsumexp(z, 1, True)
    exact_top = torch.where(log_p.gather(1, top).exp() >= 0.5, others, out.gather(1, top))
    return out.scatter(1, top, exact_top)


def modified_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Mentr = -(1 - p_y) log p_y - sum_{j != y} p_j log(1 - p_j), (N,) float64 >= 0, from logits
    (N, C) and labels (N,). Zero for a perfectly confident correct prediction."""
    log_p = torch.log_softmax(logits.double(), dim=1)
    log_q = log_one_minus_softmax(logits)  # log(1 - p)
    idx = y.view(-1, 1).long()
    true_term = -log_q.gather(1, idx).exp() * log_p.gather(1, idx)
    wrong = -(log_p.exp() * log_q).scatter(1, idx, 0.0)
    return true_term.squeeze(1) + wrong.sum(dim=1)


def softmax_features(logits: Tensor, y: Tensor) -> dict[str, np.ndarray]:
    """The four MIS features of logits (N, C) and labels (N,), each an (N,) float64 array."""
    log_p = torch.log_softmax(logits.double(), dim=1)
    p = log_p.exp()
    idx = y.view(-1, 1).long()
    return {
        "correctness": (logits.argmax(dim=1) == y).double().numpy(),
        "confidence": p.gather(1, idx).squeeze(1).numpy(),
        "entropy": (-(p * log_p).nan_to_num(0.0).sum(dim=1)).numpy(),
        "m_entropy": modified_entropy(logits, y).numpy(),
    }


class MISEvaluator(Evaluator):
    name = "mis"
    config_class: ClassVar[type] = MISConfig
    description = "SVC attack of earlier unlearning papers: MIS = % of D_F predicted non-member (confidence)"

    def _evaluate(self, model: nn.Module, data: AuditData, device: torch.device, seed: int) -> EvaluationResult:
        config: MISConfig = self.config
        rng = np.random.default_rng(seed)
        n = min(len(data.test), len(data.retain), config.max_shadow or len(data.test))
        if n < 2:
            raise InvalidInputError("MIS needs at least 2 retain and 2 test samples for its shadow sets")
        members = data.retain.subset(np.sort(rng.choice(len(data.retain), n, replace=False)))
        nonmembers = data.test.subset(np.sort(rng.choice(len(data.test), n, replace=False)))
        features = {name: softmax_features(predict_logits(model, part.x, device=device), part.y.cpu())
                    for name, part in (("member", members), ("nonmember", nonmembers), ("forget", data.forget))}
        metrics: dict[str, float] = {}
        for feature in FEATURES:
            nonmember_rate = _svc_nonmember_rate(features, feature, config)
            metrics["MIS" if feature == "confidence" else f"MIS_{feature}"] = nonmember_rate
        scores = {"forget": features["forget"]["confidence"]}
        return EvaluationResult(metrics, scores)


def _svc_nonmember_rate(features: dict[str, dict[str, np.ndarray]], feature: str, config: MISConfig) -> float:
    """Fit the RBF SVC on one feature of the shadow sets; % of D_F it predicts non-member."""
    from sklearn.svm import SVC

    gamma: str | float = config.kernel_gamma
    if gamma not in ("auto", "scale"):
        gamma = float(gamma)
    x = np.concatenate([features["member"][feature], features["nonmember"][feature]]).reshape(-1, 1)
    labels = np.concatenate([np.ones(len(features["member"][feature])), np.zeros(len(features["nonmember"][feature]))])
    svc = SVC(C=float(config.C), kernel="rbf", gamma=gamma)
    svc.fit(x, labels)
    predicted = svc.predict(features["forget"][feature].reshape(-1, 1))
    return float(100.0 * np.mean(predicted == 0))
