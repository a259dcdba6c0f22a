"""ROC maths on membership scores: AUC, the curve, and TPR at a fixed FPR (pure functions)."""

from __future__ import annotations

import numpy as np

from amun_plugin.errors import InvalidInputError

__all__ = ["roc_auc", "roc_curve", "tpr_at_fpr"]


def _check(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(positives, dtype=np.float64).ravel()
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise InvalidInputError("ROC needs at least one positive and one negative score")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise InvalidInputError("membership scores must be finite")
    return pos, neg


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area under the ROC curve in percent (50 = chance, 100 = perfect), ties counted half.

    positives: (P,) scores of members; negatives: (Q,) scores of non-members; higher = member.
    Computed from ranks (Mann-Whitney U) in O((P+Q) log(P+Q)).
    """
    pos, neg = _check(positives, negatives)
    scores = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based ranks, ties averaged
    ranks = average_rank[inverse]
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(100.0 * u / (pos.size * neg.size))


def roc_curve(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr), each of shape (K,), from the strictest threshold to the loosest, in [0, 1]."""
    pos, neg = _check(positives, negatives)
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    pos_sorted, neg_sorted = np.sort(pos), np.sort(neg)
    tpr = (pos.size - np.searchsorted(pos_sorted, thresholds, side="left")) / pos.size
    fpr = (neg.size - np.searchsorted(neg_sorted, thresholds, side="left")) / neg.size
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def tpr_at_fpr(positives: np.ndarray, negatives: np.ndarray, fpr: float) -> float:
    """Largest true-positive rate (percent) among thresholds whose false-positive rate <= ``fpr``
    (a fraction, e.g. 0.01)."""
    if not 0.0 <= fpr <= 1.0:
        raise InvalidInputError(f"fpr must be a fraction in [0, 1], got {fpr}")
    fprs, tprs = roc_curve(positives, negatives)
    return float(100.0 * tprs[fprs <= fpr + 1e-12].max())
