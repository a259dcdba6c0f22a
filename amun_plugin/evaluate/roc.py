"""ROC maths on membership scores: AUC, the curve, and TPR at a fixed FPR (pure functions)."""

from __future__ import annotations

import numpy as np

from amun_plugin.errors import InvalidInputError

__all__ = ["clopper_pearson", "roc_auc", "roc_curve", "tpr_at_fpr", "tpr_at_fpr_ci"]


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


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval of a binomial proportion, as fractions in [0, 1]."""
    from scipy.stats import beta

    if trials <= 0 or not 0 <= successes <= trials:
        raise InvalidInputError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    alpha = 1.0 - level
    lo = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    hi = 1.0 if successes == trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return lo, hi


def tpr_at_fpr_ci(positives: np.ndarray, negatives: np.ndarray, fpr: float,
                  level: float = 0.95) -> tuple[float, float, float]:
    """(TPR, lower, upper) in percent: :func:`tpr_at_fpr` with a Clopper–Pearson interval on the P
    positives, conditional on the threshold chosen on the negatives. With Q negatives an FPR below
    1/Q is only reachable by a threshold above every negative, so the TPR at 0.1% FPR needs
    Q >= 1,000 negatives to be more than a TPR at 0% FPR."""
    tpr = tpr_at_fpr(positives, negatives, fpr)
    trials = int(np.asarray(positives).size)
    lo, hi = clopper_pearson(int(round(tpr / 100.0 * trials)), trials, level)
    return tpr, 100.0 * lo, 100.0 * hi
