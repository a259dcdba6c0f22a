"""The RMIA formulas: Taylor signal by hand, the O(N log N) score against brute force, the averages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.rmia import (
    likelihood_ratio,
    offline_reference,
    online_reference,
    rmia_scores,
    taylor_exp,
    taylor_softmax_signal,
    trimmed_mean,
)


def test_taylor_softmax_matches_hand_computation():
    logits = np.array([[2.0, 0.0, -1.0]])
    # T = 2, m = 0.6, order 4: taylor(u) = 1 + u + u^2/2 + u^3/6
    true = 1 + 0.4 + 0.4**2 / 2 + 0.4**3 / 6  # u = 2/2 - 0.6
    other_0 = 1.0  # u = 0
    other_1 = 1 - 0.5 + 0.25 / 2 - 0.125 / 6  # u = -1/2
    expected = true / (true + other_0 + other_1)
    got = taylor_softmax_signal(logits, np.array([0]), temperature=2.0, margin=0.6, order=4)
    assert got.shape == (1,)
    assert got[0] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.490667 / 3.094833, abs=1e-6)  # 0.4817


def test_taylor_signal_batches_over_models_and_high_order_tends_to_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 4))
    y = rng.integers(0, 4, size=5)
    batched = taylor_softmax_signal(logits, y)
    assert batched.shape == (3, 5)
    np.testing.assert_allclose(batched[1], taylor_softmax_signal(logits[1], y))
    softmax = np.exp(logits[0]) / np.exp(logits[0]).sum(1, keepdims=True)
    near = taylor_softmax_signal(logits[0], y, temperature=1.0, margin=0.0, order=30)
    np.testing.assert_allclose(near, softmax[np.arange(5), y], rtol=1e-9)
    assert taylor_exp(np.array([1.0]), 1)[0] == 1.0
    assert taylor_exp(np.array([1.0]), 20)[0] == pytest.approx(math.e)


@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5])
def test_score_equals_brute_force(gamma):
    rng = np.random.default_rng(1)
    rx = rng.lognormal(size=57)
    rz = rng.lognormal(size=83)
    brute = ((rx[:, None] / rz[None, :]) > gamma).mean(axis=1)
    np.testing.assert_array_equal(rmia_scores(rx, rz, gamma), brute)


def test_score_with_self_population_and_ties():
    r = np.array([1.0, 1.0, 4.0, 0.5, 8.0])
    brute = ((r[:, None] / r[None, :]) > 2.0).mean(axis=1)
    np.testing.assert_array_equal(rmia_scores(r, r, 2.0), brute)


def test_trimmed_mean_matches_scipy_and_masks():
    from scipy.stats import trim_mean

    rng = np.random.default_rng(2)
    values = rng.normal(size=(6, 10))
    np.testing.assert_allclose(trimmed_mean(values, None, 0.2), trim_mean(values, 0.2, axis=1))
    mask = np.ones_like(values, dtype=bool)
    mask[:, 7:] = False
    np.testing.assert_allclose(trimmed_mean(values, mask, 0.0), values[:, :7].mean(axis=1))
    np.testing.assert_allclose(trimmed_mean(values, mask, 0.2), trim_mean(values[:, :7], 0.2, axis=1))


def test_online_and_offline_reference():
    signals = np.array([[0.2, 0.9], [0.4, 0.1], [0.6, 0.5], [0.8, 0.3]])  # (K=4, N=2)
    np.testing.assert_allclose(online_reference(signals), [0.5, 0.45])
    out = np.array([[True, False], [False, True], [True, False], [False, True]])
    mean_out = np.array([(0.2 + 0.6) / 2, (0.1 + 0.3) / 2])
    np.testing.assert_allclose(offline_reference(signals, out, a=0.3), ((1.3 * mean_out) + 0.7) / 2)
    np.testing.assert_allclose(offline_reference(signals, out, a=1.0), mean_out)


def test_likelihood_ratio_floors_nonpositive_probabilities():
    ratio = likelihood_ratio(np.array([0.5, -0.2, 0.3]), np.array([0.25, 0.5, 0.0]), floor=1e-6)
    np.testing.assert_allclose(ratio, [2.0, 1e-6 / 0.5, 0.3 / 1e-6])
    assert (ratio > 0).all()


def test_bad_inputs_are_refused():
    with pytest.raises(InvalidInputError, match="labels"):
        taylor_softmax_signal(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(InvalidInputError, match="do not match"):
        taylor_softmax_signal(np.zeros((2, 3)), np.array([0]))
    with pytest.raises(InvalidInputError, match="positive"):
        rmia_scores(np.array([1.0]), np.array([0.0, 1.0]))
    with pytest.raises(InvalidInputError, match="empty"):
        rmia_scores(np.array([1.0]), np.array([]))
    with pytest.raises(InvalidInputError, match="offline a"):
        offline_reference(np.ones((2, 2)), np.ones((2, 2), dtype=bool), a=1.5)
    with pytest.raises(InvalidInputError, match="at least one"):
        trimmed_mean(np.ones((2, 2)), np.zeros((2, 2), dtype=bool))
