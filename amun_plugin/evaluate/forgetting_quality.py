"""The NeurIPS 2023 Machine Unlearning Challenge's forgetting score F (pure maths, numpy).

Definition (Triantafillou et al., 2024; ``shared/REFERENCE.md``, "NeurIPS 2023 forgetting
score"): for every forget example i, U_i holds its logit-scaled confidence under N unlearned
models (the unlearner run with N seeds from one original model) and R_i under N models retrained
on D_R (N seeds). An (ε, δ)-style estimate ε_i says how well the best threshold rule tells the
two samples apart; ε_i is bucketed into points and F is the mean of the points.

Estimator of ε_i (:func:`example_epsilon`), δ = 1e-5:
  * the "positive" sample is the one with the larger median;
  * degenerate range: if (range of the narrower) / (range of the wider) < 0.01, ε_i = 50 (a
    sample of N identical values, e.g. a deterministic unlearner, is fully distinguishable). When
    both ranges are 0: ε_i = 0 if the two constants are equal, else 50;
  * single thresholds t: a linspace over [min, max] of both samples, 100 thresholds per unit of
    confidence (at least 2); predict "positive" when s >= t;
  * double thresholds: the interval [l, r] predicts the peakier sample (smaller standard
    deviation) inside it; with width = range of the peaky sample, r runs over a linspace from
    min_peaky + width - 2 to max_peaky + 2 (100 values per unit) and, for each r, l over
    (r - width) ± 2 (400 values);
  * per rule, FPR and FNR over the N models: FPR = FNR = 0 gives ε = ∞; exactly one of them 0
    discards the rule; otherwise ε_t = max(0, log(1 - δ - FPR) - log FNR, log(1 - δ - FNR) - log FPR)
    (a log of a non-positive number counts as -∞);
  * ε_i = max over the kept rules (0 when every rule is discarded), clipped to [0, 50].

How N caps ε: a rate over N models is a multiple of 1/N, so the largest finite ε a rule can give
is log((1 - δ - 1/N) / (1/N)) ≈ ln(N - 1); anything more separable reads as ε = ∞ -> 50. The
points therefore stop at ``ceil(ln(N - 1))`` (:func:`max_resolvable_epsilon`): 7 for the
competition's N = 512, 5 for N = 64, 3 for N = 16. Bucket k (from 0) is [0.5 k, 0.5 (k + 1))
and scores 2^-k; ε >= ceil(ln(N - 1)) scores 0. A smaller N cannot resolve ε above ln(N - 1).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from amun_plugin.errors import InvalidInputError

__all__ = ["DELTA", "EPSILON_CAP", "example_epsilon", "epsilons", "epsilon_points", "forgetting_score",
           "final_score", "max_resolvable_epsilon", "rule_epsilon"]

DELTA = 1e-5
EPSILON_CAP = 50.0
BUCKET_WIDTH = 0.5
THRESHOLDS_PER_UNIT = 100
LEFT_VALUES = 400
DEGENERATE_RATIO = 0.01


def rule_epsilon(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """ε of decision rules from their error rates; fpr, fnr: (T,) fractions in [0, 1] -> (T,).

    inf where both rates are 0, NaN (= discarded) where exactly one is 0, else
    max(0, log(1 - δ - FPR) - log FNR, log(1 - δ - FNR) - log FPR).
    """
    fpr = np.asarray(fpr, dtype=np.float64)
    fnr = np.asarray(fnr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(1 - delta - fpr > 0, np.log(np.maximum(1 - delta - fpr, 1e-300)), -np.inf) - np.log(fnr)
        b = np.where(1 - delta - fnr > 0, np.log(np.maximum(1 - delta - fnr, 1e-300)), -np.inf) - np.log(fpr)
        eps = np.maximum(0.0, np.maximum(a, b))
    both = (fpr == 0) & (fnr == 0)
    one = (fpr == 0) ^ (fnr == 0)
    return np.where(both, np.inf, np.where(one, np.nan, eps))


def _rates_above(pos: np.ndarray, neg: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rule "positive iff s >= t": (FPR, FNR) for sorted pos (P,), neg (Q,) and thresholds (T,)."""
    fpr = 1.0 - np.searchsorted(neg, thresholds, side="left") / neg.size
    fnr = np.searchsorted(pos, thresholds, side="left") / pos.size
    return fpr, fnr


def _rates_inside(peaky: np.ndarray, other: np.ndarray, left: np.ndarray,
                  right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rule "peaky iff l <= s <= r": (FPR, FNR) for sorted samples and bounds of any equal shape."""

    def inside(sample: np.ndarray) -> np.ndarray:
        count = np.searchsorted(sample, right, side="right") - np.searchsorted(sample, left, side="left")
        return np.maximum(count, 0) / sample.size

    return inside(other), 1.0 - inside(peaky)


def _single_threshold(pos: np.ndarray, neg: np.ndarray, delta: float) -> np.ndarray:
    lo, hi = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    count = max(2, int(math.ceil(THRESHOLDS_PER_UNIT * (hi - lo))))
    return rule_epsilon(*_rates_above(pos, neg, np.linspace(lo, hi, count)), delta)


def _double_threshold(u: np.ndarray, r: np.ndarray, delta: float) -> np.ndarray:
    peaky, other = (u, r) if np.std(u) <= np.std(r) else (r, u)
    width = float(peaky[-1] - peaky[0])
    start, stop = peaky[0] + width - 2.0, peaky[-1] + 2.0
    rights = np.linspace(start, stop, max(2, int(math.ceil(THRESHOLDS_PER_UNIT * (stop - start)))))
    offsets = np.linspace(-2.0, 2.0, LEFT_VALUES)
    lefts = rights[:, None] - width + offsets[None, :]  # (R, 400)
    rights = np.broadcast_to(rights[:, None], lefts.shape)
    return rule_epsilon(*_rates_inside(peaky, other, lefts.ravel(), rights.ravel()), delta)


def example_epsilon(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> float:
    """ε of one forget example from its confidences under the unlearned (N_u,) and retrained
    (N_r,) models (finite floats; N_u, N_r >= 2), in [0, 50] (see the module docstring)."""
    u = np.sort(np.asarray(unlearned, dtype=np.float64).ravel())
    r = np.sort(np.asarray(retrained, dtype=np.float64).ravel())
    if u.size < 2 or r.size < 2:
        raise InvalidInputError(f"need >= 2 models per side, got {u.size} unlearned and {r.size} retrained")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise InvalidInputError("confidences must be finite")
    ranges = sorted((u[-1] - u[0], r[-1] - r[0]))
    if ranges[1] == 0:
        return 0.0 if u[0] == r[0] else EPSILON_CAP
    if ranges[0] / ranges[1] < DEGENERATE_RATIO:
        return EPSILON_CAP
    pos, neg = (u, r) if np.median(u) >= np.median(r) else (r, u)
    rules = np.concatenate([_single_threshold(pos, neg, delta), _double_threshold(u, r, delta)])
    kept = rules[~np.isnan(rules)]
    best = float(kept.max()) if kept.size else 0.0
    return float(np.clip(best, 0.0, EPSILON_CAP))


def epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per-example ε: unlearned (N_u, n) and retrained (N_r, n) confidences (model x example) -> (n,).

    Every rule of one example is evaluated at once (sorted samples, ``searchsorted``); examples are
    looped over because each has its own threshold grid."""
    u, r = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise InvalidInputError(f"confidences must be (models, examples) with equal examples, got {u.shape}, "
                                f"{r.shape}")
    return np.array([example_epsilon(u[:, i], r[:, i], delta) for i in range(u.shape[1])])


def max_resolvable_epsilon(num_models: int) -> int:
    """ceil(ln(N - 1)): where the buckets end for N models per side (N >= 3)."""
    if num_models < 3:
        raise InvalidInputError(f"the forgetting score needs N >= 3 models per side, got {num_models}")
    return int(math.ceil(math.log(num_models - 1)))


def epsilon_points(eps: np.ndarray, num_models: int) -> np.ndarray:
    """Points of ε values (n,) for N models: bucket k = floor(ε / 0.5) scores 2^-k below
    ceil(ln(N - 1)), 0 from there on -> (n,) in [0, 1]."""
    eps = np.asarray(eps, dtype=np.float64)
    if (eps < 0).any() or np.isnan(eps).any():
        raise InvalidInputError("ε must be >= 0")
    top = max_resolvable_epsilon(num_models)
    buckets = np.floor(np.minimum(eps, top) / BUCKET_WIDTH)
    return np.where(eps < top, np.power(2.0, -buckets), 0.0)


def forgetting_score(unlearned: np.ndarray, retrained: np.ndarray) -> tuple[float, np.ndarray]:
    """F = mean points over the forget set, and the per-example ε (n,); confidences as in
    :func:`epsilons`. N (for the buckets) is the smaller of the two model counts."""
    eps = epsilons(unlearned, retrained)
    n_models = min(np.shape(unlearned)[0], np.shape(retrained)[0])
    return float(epsilon_points(eps, n_models).mean()), eps


def final_score(f: float, unlearned_ra: Sequence[float], retrained_ra: Sequence[float],
                unlearned_ta: Sequence[float], retrained_ta: Sequence[float]) -> float:
    """F x (mean RA unlearned / mean RA retrained) x (mean TA unlearned / mean TA retrained);
    accuracies per model, any consistent unit."""
    ra_r, ta_r = float(np.mean(retrained_ra)), float(np.mean(retrained_ta))
    if ra_r <= 0 or ta_r <= 0:
        raise InvalidInputError("the retrained models' mean RA and TA must be > 0")
    return float(f * (np.mean(unlearned_ra) / ra_r) * (np.mean(unlearned_ta) / ta_r))
