"""The NeurIPS 2023 Machine Unlearning Challenge's forgetting score F (pure maths, numpy).

Definition (Triantafillou et al., 2024; the challenge's ``metric.py``, google-deepmind/
unlearning_evaluation): for every forget example i, U_i holds its logit-scaled confidence under
N_u unlearned models (the unlearner run with N_u seeds from one original model) and R_i under N_r
models retrained on D_R. An (ε, δ)-style estimate ε_i says how well the best threshold rule tells
the two samples apart; ε_i is bucketed into points and F is the mean of the points.

Estimator of ε_i (:func:`example_epsilon`), δ = 1e-5:
  * the "positive" sample is the one with the larger median (ties: the unlearned one);
  * degenerate range: if (smaller range) / (larger range) < 0.01, ε_i = 50 (a sample of N
    identical values, e.g. a deterministic unlearner, is fully distinguishable);
  * single thresholds t: ``linspace(lo, hi, ceil(100 (hi - lo)))`` over the pooled [lo, hi]
    (none when the count is 0, only lo when it is 1); predict "positive" when s >= t;
  * double thresholds: the interval [l, r] predicts the "peaky" sample, the positive one if its
    range is strictly smaller, else the negative one; width = the smaller range; r runs over
    ``linspace(a, b, ceil(100 (b - a)))`` with a = min_peaky + width - 2, b = max_peaky + 2 and,
    for each r, l over ``linspace(r - width - 2, r - width + 2, 400)`` (a linspace per r: one
    ulp of a left threshold decides whether a score on it is inside);
  * per rule, FPR and FNR over the models: FPR = FNR = 0 gives ε = ∞; exactly one of them 0
    discards the rule; otherwise ε_t = max(0, nanmax(log(1 - δ - FPR) - log FNR,
    log(1 - δ - FNR) - log FPR)), the log of a negative number being NaN, so FPR = FNR = 1
    (both terms NaN) discards the rule too;
  * ε_i = max over the kept rules, clipped to [0, 50].

Where the challenge gives no number, ours is stated and tested:
  * both samples one equal constant: ε_i = 0 (every rule has TPR = FPR, i.e. no advantage; the
    challenge discards every rule and stops on an assertion); two different constants: ε_i = 50
    (a threshold between them separates them; the challenge agrees whenever its grid, 0.01
    apart, falls between them, and stops otherwise);
  * every rule discarded (samples too tight for the 0.01 grid): :class:`InvalidInputError`, as
    the challenge's assertion; a number here would be invented.
The challenge computes rates and ε in float32 and its single thresholds with ``torch.linspace``
in float32; ours is float64 throughout (the definition), which can differ only where a score lies
within a float32 rounding of a threshold or ε within ~1e-6 of a bucket edge.

How N caps ε: a rate over N models is a multiple of 1/N, so the largest finite ε a rule can give
is log((1 - δ - 1/N) / (1/N)) ≈ ln(N - 1); anything more separable reads as ε = ∞ -> 50. The
points therefore stop at ``ceil(ln(N - 1))`` (:func:`max_resolvable_epsilon`) with N = N_u, the
number of unlearned models, as in the challenge: 7 for its N = 512, 5 for N = 64, 3 for N = 16.
Bucket k (from 0) is [0.5 k, 0.5 (k + 1)) and scores 2^-k; ε >= ceil(ln(N - 1)) scores 0.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from amun_plugin.errors import InvalidInputError

__all__ = ["DELTA", "EPSILON_CAP", "example_epsilon", "epsilons", "epsilon_points", "forgetting_score",
           "final_score", "left_thresholds", "max_resolvable_epsilon", "rule_epsilon"]

DELTA = 1e-5
EPSILON_CAP = 50.0
BUCKET_WIDTH = 0.5
THRESHOLDS_PER_UNIT = 100
LEFT_BUFFER = 2.0
DEGENERATE_RATIO = 0.01


def rule_epsilon(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """ε of decision rules from their error rates; fpr, fnr: (T,) fractions in [0, 1] -> (T,).

    inf where both rates are 0, NaN (= discarded) where exactly one is 0 or both are 1, else
    max(0, nanmax(log(1 - δ - FPR) - log FNR, log(1 - δ - FNR) - log FPR)).
    """
    fpr = np.asarray(fpr, dtype=np.float64)
    fnr = np.asarray(fnr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(1 - delta - fpr) - np.log(fnr)
        b = np.log(1 - delta - fnr) - np.log(fpr)
        eps = np.maximum(np.fmax(a, b), 0.0)  # fmax skips one NaN; maximum keeps a NaN
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


def _grid(start: float, stop: float) -> np.ndarray:
    """``linspace(start, stop, ceil(100 (stop - start)))``: no point when the count is 0."""
    return np.linspace(start, stop, int(math.ceil((stop - start) * THRESHOLDS_PER_UNIT)))


def left_thresholds(rights: np.ndarray, width: float) -> np.ndarray:
    """(R, 400): row j = ``linspace(r_j - width - 2, r_j - width + 2, 400)``, each row as numpy's
    scalar linspace computes it."""
    count = int(math.ceil(2 * LEFT_BUFFER * THRESHOLDS_PER_UNIT))
    rights = np.asarray(rights, dtype=np.float64)
    return np.linspace(rights - width - LEFT_BUFFER, rights - width + LEFT_BUFFER, count, axis=1)


def _single_threshold(pos: np.ndarray, neg: np.ndarray, delta: float) -> np.ndarray:
    thresholds = _grid(min(pos[0], neg[0]), max(pos[-1], neg[-1]))
    return rule_epsilon(*_rates_above(pos, neg, thresholds), delta)


def _double_threshold(pos: np.ndarray, neg: np.ndarray, delta: float) -> np.ndarray:
    pos_range, neg_range = pos[-1] - pos[0], neg[-1] - neg[0]
    peaky, other = (pos, neg) if pos_range < neg_range else (neg, pos)
    width = min(pos_range, neg_range)
    rights = _grid(peaky[0] + width - LEFT_BUFFER, peaky[-1] + LEFT_BUFFER)
    lefts = left_thresholds(rights, width)
    rights_2d = np.broadcast_to(rights[:, None], lefts.shape)
    return rule_epsilon(*_rates_inside(peaky, other, lefts.ravel(), rights_2d.ravel()), delta)


def _checked(sample: np.ndarray) -> np.ndarray:
    values = np.sort(np.asarray(sample, dtype=np.float64).ravel())
    if values.size < 2:
        raise InvalidInputError(f"need >= 2 models per side, got {values.size}")
    if not np.isfinite(values).all():
        raise InvalidInputError("confidences must be finite")
    return values


def example_epsilon(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> float:
    """ε of one forget example from its confidences under the unlearned (N_u,) and retrained
    (N_r,) models (finite floats; N_u, N_r >= 2), in [0, 50] (see the module docstring)."""
    u, r = _checked(unlearned), _checked(retrained)
    smallest, largest = sorted((u[-1] - u[0], r[-1] - r[0]))
    if largest == 0:
        return 0.0 if u[0] == r[0] else EPSILON_CAP
    if smallest / largest < DEGENERATE_RATIO:
        return EPSILON_CAP
    pos, neg = (u, r) if np.median(u) >= np.median(r) else (r, u)
    rules = np.concatenate([_double_threshold(pos, neg, delta), _single_threshold(pos, neg, delta)])
    kept = rules[~np.isnan(rules)]
    if kept.size == 0:
        raise InvalidInputError("every threshold rule was discarded (both samples are too tight for the "
                                "0.01 threshold grid); the challenge's metric stops here too")
    return float(np.clip(kept.max(), 0.0, EPSILON_CAP))


def epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per-example ε: unlearned (N_u, n) and retrained (N_r, n) confidences (model x example) -> (n,).

    Every rule of one example is evaluated at once (sorted samples, ``searchsorted``); examples are
    looped over because each has its own threshold grid."""
    u, r = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise InvalidInputError(f"confidences must be (models, examples) with equal examples, got {u.shape}, "
                                f"{r.shape}")
    out = np.empty(u.shape[1])
    for i in range(u.shape[1]):
        try:
            out[i] = example_epsilon(u[:, i], r[:, i], delta)
        except InvalidInputError as error:
            raise InvalidInputError(f"forget example {i}: {error}") from None
    return out


def max_resolvable_epsilon(num_models: int) -> int:
    """ceil(ln(N - 1)): where the buckets end for N models per side (N >= 3; at N = 2 no bucket
    is left and every F would be 0)."""
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
    :func:`epsilons`. N (for the buckets) is N_u, the number of unlearned models, as in the challenge."""
    eps = epsilons(unlearned, retrained)
    return float(epsilon_points(eps, np.shape(unlearned)[0]).mean()), eps


def final_score(f: float, unlearned_ra: Sequence[float], retrained_ra: Sequence[float],
                unlearned_ta: Sequence[float], retrained_ta: Sequence[float]) -> float:
    """F x (mean RA unlearned / mean RA retrained) x (mean TA unlearned / mean TA retrained);
    accuracies per model, any consistent unit."""
    ra_r, ta_r = float(np.mean(retrained_ra)), float(np.mean(retrained_ta))
    if ra_r <= 0 or ta_r <= 0:
        raise InvalidInputError("the retrained models' mean RA and TA must be > 0")
    return float(f * (np.mean(unlearned_ra) / ra_r) * (np.mean(unlearned_ta) / ta_r))
