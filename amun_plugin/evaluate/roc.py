"""ROC maths on membership scores, shared by every evaluator: AUC, the curve, TPR at a fixed FPR
(with its Clopper–Pearson interval), AUC on balanced subsamples and the low-FPR metric set.

The curve and the AUC are scikit-learn's (``sklearn.metrics``); this module adds the input checks,
the percent scale and the protocols of the paper. Scores: higher = member.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from sklearn import metrics

from amun_plugin.errors import InvalidInputError

__all__ = ["LOW_FPRS", "balanced_auc", "clopper_pearson", "membership_tpr_metrics", "roc_auc", "roc_curve",
           "tpr_at_fpr", "tpr_at_fpr_ci"]

LOW_FPRS = (0.001, 0.01)
"""The false-positive rates of :func:`membership_tpr_metrics` (0.1% and 1%)."""


def _labelled(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of (P + Q,): members first, labelled 1; refuses empty or non-finite input."""
    pos = np.asarray(positives, dtype=np.float64).ravel()
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise InvalidInputError("ROC needs at least one positive and one negative score")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise InvalidInputError("membership scores must be finite")
    return np.r_[np.ones(pos.size), np.zeros(neg.size)], np.r_[pos, neg]


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area under the ROC curve in percent (50 = chance, 100 = perfect), ties counted half.

    positives: (P,) scores of members; negatives: (Q,) scores of non-members; higher = member.
    """
    labels, scores = _labelled(positives, negatives)
    return float(100.0 * metrics.roc_auc_score(labels, scores))


def roc_curve(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr), each of shape (K,), from (0, 0) through every distinct score as a threshold
    (strictest first) to the loosest, as fractions in [0, 1]."""
    labels, scores = _labelled(positives, negatives)
    fpr, tpr, _ = metrics.roc_curve(labels, scores, drop_intermediate=False)
    return fpr, tpr


def tpr_at_fpr(positives: np.ndarray, negatives: np.ndarray, fpr: float) -> float:
    """Largest true-positive rate (percent) among thresholds whose false-positive rate <= ``fpr``
    (a fraction, e.g. 0.01)."""
    if not 0.0 <= fpr <= 1.0:
        raise InvalidInputError(f"fpr must be a fraction in [0, 1], got {fpr}")
    fprs, tprs = roc_curve(positives, negatives)
    return float(100.0 * tprs[fprs <= fpr + 1e-12].max())


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval of a binomial proportion, as fractions in [0, 1]."""
    from scipy.stats import beta  # slow to import, and only this function needs it

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


def balanced_auc(
    positives: np.ndarray, negatives: np.ndarray, *, sizes_from: Mapping[str, np.ndarray], seed: int, rounds: int
) -> float:
    """AUC (percent) on subsamples of equal size m = min of all set sizes, averaged over ``rounds``
    seeded draws (the paper's protocol: |D_F| may be much smaller than |D_R|)."""
    m = min(len(v) for v in sizes_from.values())
    values = []
    for r in range(rounds):
        rng = np.random.default_rng(seed * 1000 + r)
        pos = positives[rng.choice(len(positives), m, replace=False)]
        neg = negatives[rng.choice(len(negatives), m, replace=False)]
        values.append(roc_auc(pos, neg))
    return float(np.mean(values))


def membership_tpr_metrics(parts: Mapping[str, np.ndarray], fprs: tuple[float, ...] = LOW_FPRS) -> dict[str, float]:
    """TPR (%) at each FPR for forget vs test ("FT_TPR@1%FPR") and retain vs test ("RT_TPR@...")
    on the full sets, each with its 95% Clopper–Pearson interval ("FT_TPR@1%FPR_lo" / "_hi", over
    the positives; :func:`tpr_at_fpr_ci`); ``parts`` maps "retain"/"forget"/"test" to (N,) scores."""
    out = {}
    for prefix, positive in (("FT", "forget"), ("RT", "retain")):
        for fpr in fprs:
            name = f"{prefix}_TPR@{100 * fpr:g}%FPR"
            out[name], out[f"{name}_lo"], out[f"{name}_hi"] = tpr_at_fpr_ci(parts[positive], parts["test"], fpr)
    return out
