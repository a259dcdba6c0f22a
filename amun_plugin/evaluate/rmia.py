"""RMIA maths as pure numpy functions: the signal, the reference average, r(x) and the score.

RMIA is the attack of 'Low-Cost High-Power Membership Inference Attacks' (Zarifzadeh, Liu,
Shokri, ICML 2024, https://arxiv.org/abs/2312.03262). Threat model: black-box access to the
target's logits, K reference models trained on random halves of a population.

For a sample x with label y and a model theta with logits z (C,):
    taylor_n(u) = sum_{i < n} u^i / i!          (order n = 4: 1 + u + u^2/2 + u^3/6)
    Pr(x|theta) = taylor_n(z_y/T - m) / (taylor_n(z_y/T - m) + sum_{j != y} taylor_n(z_j/T))
    online:  Pr(x) = (trimmed) mean of Pr(x|theta_k) over all K reference models
    offline: Pr(x) = ((1 + a) * mean of Pr(x|theta_k) over the K/2 OUT models + (1 - a)) / 2
    r(x) = Pr(x|theta_target) / Pr(x)
    score(x) = fraction of population points z with r(x) / r(z) > gamma   (in [0, 1])

Defaults (the RMIA authors' CIFAR-10 setting): T = 2, m = 0.6, n = 4, gamma = 2, a = 0.3.
An odd-degree polynomial (even order n) is negative for very negative u, so Pr can leave
[0, 1]; the formula is kept as published and probabilities are floored at ``floor`` > 0 before
the ratio so that r > 0 and the ordering of r(x) / r(z) is well defined.
"""

from __future__ import annotations

import math

import numpy as np

from amun_plugin.errors import InvalidInputError

__all__ = [
    "DEFAULT_FLOOR",
    "likelihood_ratio",
    "offline_reference",
    "online_reference",
    "rmia_scores",
    "taylor_exp",
    "taylor_softmax_signal",
    "trimmed_mean",
]

DEFAULT_FLOOR = 1e-12


def taylor_exp(u: np.ndarray, order: int) -> np.ndarray:
    """The first ``order`` terms of the Taylor series of exp at 0: sum_{i < order} u^i / i!
    (same shape as ``u``, float64). ``order`` >= 1."""
    if isinstance(order, bool) or int(order) != order or order < 1:
        raise InvalidInputError(f"Taylor order must be a positive integer, got {order!r}")
    u = np.asarray(u, dtype=np.float64)
    total = np.ones_like(u)
    term = np.ones_like(u)
    for i in range(1, int(order)):
        term = term * u / i
        total = total + term
    return total


def taylor_softmax_signal(
    logits: np.ndarray, y: np.ndarray, temperature: float = 2.0, margin: float = 0.6, order: int = 4
) -> np.ndarray:
    """Soft-margin Taylor softmax probability of the true class.

    logits: (..., N, C) (e.g. (K, N, C) for K models); y: (N,) int labels in [0, C).
    Returns (..., N) float64: taylor(z_y/T - m) / (taylor(z_y/T - m) + sum_{j != y} taylor(z_j/T)).
    """
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    if z.ndim < 2 or labels.shape != (z.shape[-2],):
        raise InvalidInputError(f"logits (..., N, C) and labels (N,) do not match: {z.shape} vs {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= z.shape[-1]):
        raise InvalidInputError(f"labels must lie in [0, {z.shape[-1] - 1}]")
    if not temperature > 0:
        raise InvalidInputError(f"temperature must be positive, got {temperature}")
    scaled = z / float(temperature)
    index = np.broadcast_to(labels[:, None], scaled.shape[:-1] + (1,))
    true_scaled = np.take_along_axis(scaled, index, axis=-1)[..., 0]
    all_terms = taylor_exp(scaled, order)
    others = all_terms.sum(axis=-1) - np.take_along_axis(all_terms, index, axis=-1)[..., 0]
    numerator = taylor_exp(true_scaled - float(margin), order)
    denominator = numerator + others
    with np.errstate(divide="ignore", invalid="ignore"):
        signal = numerator / denominator
    return np.where(np.isfinite(signal), signal, 0.0)


def trimmed_mean(values: np.ndarray, valid: np.ndarray | None = None, trim: float = 0.0) -> np.ndarray:
    """Mean of each row of ``values`` (N, K) over its ``valid`` (N, K) entries after dropping
    floor(trim * n_i) of the smallest and of the largest of the row's n_i valid entries.

    trim in [0, 0.5) (scipy's ``proportiontocut``); trim = 0 is the plain mean. Returns (N,).
    """
    v = np.asarray(values, dtype=np.float64)
    mask = np.ones(v.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if v.ndim != 2 or mask.shape != v.shape:
        raise InvalidInputError(f"values and valid must be (N, K) arrays of one shape, got {v.shape}, {mask.shape}")
    if not 0.0 <= trim < 0.5:
        raise InvalidInputError(f"trim must lie in [0, 0.5), got {trim}")
    counts = mask.sum(axis=1)
    if (counts == 0).any():
        raise InvalidInputError("every sample needs at least one reference value to average")
    ordered = np.sort(np.where(mask, v, np.inf), axis=1)  # invalid entries sort last
    cut = np.floor(trim * counts).astype(np.int64)
    position = np.arange(v.shape[1])[None, :]
    keep = (position >= cut[:, None]) & (position < (counts - cut)[:, None])
    return np.where(keep, ordered, 0.0).sum(axis=1) / keep.sum(axis=1)


def online_reference(signals: np.ndarray, trim: float = 0.0) -> np.ndarray:
    """Pr(x) of the online attack: the (trimmed) mean over all reference models.
    signals: (K, N) Pr(x|theta_k). Returns (N,)."""
    s = np.asarray(signals, dtype=np.float64)
    return trimmed_mean(s.T, None, trim)


def offline_reference(signals: np.ndarray, out_mask: np.ndarray, a: float, trim: float = 0.0) -> np.ndarray:
    """Pr(x) of the offline attack: ((1 + a) * mean_OUT + (1 - a)) / 2.

    signals: (K, N) Pr(x|theta_k); out_mask: (K, N) True where x was NOT in model k's training
    data; a in [0, 1] corrects for the OUT-only average underestimating Pr(x). Returns (N,).
    """
    if not 0.0 <= a <= 1.0:
        raise InvalidInputError(f"offline a must lie in [0, 1], got {a}")
    s = np.asarray(signals, dtype=np.float64)
    mean_out = trimmed_mean(s.T, np.asarray(out_mask, dtype=bool).T, trim)
    return ((1.0 + a) * mean_out + (1.0 - a)) / 2.0


def likelihood_ratio(target: np.ndarray, reference: np.ndarray, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """r(x) = Pr(x|theta_target) / Pr(x), both floored at ``floor`` > 0. (N,) -> (N,), > 0."""
    if not floor > 0:
        raise InvalidInputError(f"floor must be positive, got {floor}")
    t = np.maximum(np.asarray(target, dtype=np.float64), floor)
    r = np.maximum(np.asarray(reference, dtype=np.float64), floor)
    if t.shape != r.shape:
        raise InvalidInputError(f"target and reference probabilities differ in shape: {t.shape} vs {r.shape}")
    return t / r


def rmia_scores(ratio_x: np.ndarray, ratio_z: np.ndarray, gamma: float = 2.0) -> np.ndarray:
    """score(x) = |{z : r(x) / r(z) > gamma}| / |Z| for every x.

    ratio_x: (M,) r of the audited points; ratio_z: (Z,) r of the population points, all > 0.
    Since r(z) > 0, r(x)/r(z) > gamma  <=>  r(z) < r(x)/gamma: one sort of r_z and a binary search
    per x, O((M + Z) log Z) instead of the O(M Z) pairwise comparison. Returns (M,) in [0, 1].
    """
    rx = np.asarray(ratio_x, dtype=np.float64).ravel()
    rz = np.sort(np.asarray(ratio_z, dtype=np.float64).ravel())
    if rz.size == 0:
        raise InvalidInputError("the RMIA population Z is empty")
    if not (np.all(rz > 0) and np.all(rx > 0) and np.isfinite(rz).all() and np.isfinite(rx).all()):
        raise InvalidInputError("likelihood ratios must be finite and positive (floor the probabilities)")
    if not (gamma > 0 and math.isfinite(gamma)):
        raise InvalidInputError(f"gamma must be a finite positive number, got {gamma}")
    return np.searchsorted(rz, rx / float(gamma), side="left") / rz.size
