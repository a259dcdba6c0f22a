"""A per-example likelihood-ratio test in the style of U-LiRA (Hayes et al., SaTML 2025), numpy.

The attacker tells an unlearned model from a retrained one by one forget example's confidence.
For example i, Gaussians are fitted to its confidence under the unlearned runs, N(μ_U, σ_U²), and
under the retrained runs, N(μ_R, σ_R²); a model m is scored on example i by the log likelihood
ratio log N(s_mi | U) − log N(s_mi | R) (higher = "unlearned"). Leave-one-out: the Gaussian of
m's own group is fitted without m, so no model is scored by a fit to itself. Every (model,
example) pair is one trial: positives are the unlearned models' pairs, negatives the retrained
models' pairs. Reported: TPR at 1% and 0.1% FPR and the AUC (percent), each with a 95%
percentile-bootstrap interval over *models* (both groups resampled with replacement, the pairs
of a model kept together, since pairs of one model are not independent). Ideal after unlearning:
TPR at x% FPR ≈ x%, AUC ≈ 50. A variance is floored at ``var_floor`` (a deterministic unlearner
gives N identical values: its pairs are then perfectly separable unless the retrained ones match).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.roc import roc_auc, tpr_at_fpr

__all__ = ["LOW_FPRS", "loo_gaussian", "ulira_scores", "ulira_test"]

LOW_FPRS = (0.01, 0.001)


def loo_gaussian(samples: np.ndarray, var_floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out mean and variance: samples (N, n) -> (N, n) each, row m fitted without row m."""
    n = samples.shape[0]
    total, squares = samples.sum(axis=0), (samples**2).sum(axis=0)
    mean = (total[None, :] - samples) / (n - 1)
    var = (squares[None, :] - samples**2) / (n - 1) - mean**2
    return mean, np.maximum(var * (n - 1) / max(n - 2, 1), var_floor)


def _log_normal(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def ulira_scores(unlearned: np.ndarray, retrained: np.ndarray,
                 var_floor: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Log likelihood ratios (unlearned vs retrained) of every model on every example:
    unlearned (N_u, n), retrained (N_r, n) confidences -> ((N_u, n), (N_r, n)); N_u, N_r >= 3."""
    u, r = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1] or min(u.shape[0], r.shape[0]) < 3:
        raise InvalidInputError(f"need (models >= 3, examples) confidences per side, got {u.shape}, {r.shape}")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise InvalidInputError("confidences must be finite")
    mu_u, var_u = u.mean(0), np.maximum(u.var(0, ddof=1), var_floor)
    mu_r, var_r = r.mean(0), np.maximum(r.var(0, ddof=1), var_floor)
    loo_mu_u, loo_var_u = loo_gaussian(u, var_floor)
    loo_mu_r, loo_var_r = loo_gaussian(r, var_floor)
    pos = _log_normal(u, loo_mu_u, loo_var_u) - _log_normal(u, mu_r, var_r)
    neg = _log_normal(r, mu_u, var_u) - _log_normal(r, loo_mu_r, loo_var_r)
    return pos, neg


def _metrics(pos: np.ndarray, neg: np.ndarray) -> dict[str, float]:
    out = {f"TPR@{100 * f:g}%FPR": tpr_at_fpr(pos, neg, f) for f in LOW_FPRS}
    out["AUC"] = roc_auc(pos, neg)
    return out


def ulira_test(unlearned: np.ndarray, retrained: np.ndarray, *, bootstrap: int = 200, seed: int = 0,
               var_floor: float = 1e-6) -> dict[str, Any]:
    """The test's metrics (percent) with 95% bootstrap intervals over models.

    Returns {"TPR@1%FPR": value, "TPR@1%FPR_ci": [lo, hi], "TPR@0.1%FPR": ..., "AUC": ..., "trials":
    {"positive": N_u * n, "negative": N_r * n}}. ``bootstrap`` = 0 skips the intervals.
    """
    pos, neg = ulira_scores(unlearned, retrained, var_floor)
    point = _metrics(pos.ravel(), neg.ravel())
    out: dict[str, Any] = dict(point)
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws: dict[str, list[float]] = {k: [] for k in point}
        for _ in range(bootstrap):
            p = pos[rng.integers(0, pos.shape[0], pos.shape[0])].ravel()
            q = neg[rng.integers(0, neg.shape[0], neg.shape[0])].ravel()
            for key, value in _metrics(p, q).items():
                draws[key].append(value)
        for key, values in draws.items():
            out[f"{key}_ci"] = [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
    out["trials"] = {"positive": int(pos.size), "negative": int(neg.size)}
    return out
