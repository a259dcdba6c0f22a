"""The NeurIPS 2023 forgetting score: ε estimator, buckets, F and the final score (hand-computed cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.forgetting_quality import (
    DELTA,
    EPSILON_CAP,
    epsilon_points,
    epsilons,
    example_epsilon,
    final_score,
    forgetting_score,
    max_resolvable_epsilon,
    rule_epsilon,
)


def test_identical_distributions_give_zero():
    sample = np.random.default_rng(0).normal(size=32)
    assert example_epsilon(sample, sample.copy()) == 0.0


def test_fully_separable_samples_reach_the_cap():
    sample = np.random.default_rng(1).normal(size=16)
    assert example_epsilon(sample, sample + 100.0) == EPSILON_CAP
    assert example_epsilon(sample + 100.0, sample) == EPSILON_CAP


def test_degenerate_range_is_the_cap_and_equal_constants_are_zero():
    spread = np.linspace(0.0, 1.0, 8)
    assert example_epsilon(np.full(8, 0.5), spread) == EPSILON_CAP  # a deterministic "unlearner"
    assert example_epsilon(0.5 + 0.001 * spread, spread) == EPSILON_CAP  # range ratio 0.001 < 0.01
    assert example_epsilon(np.full(4, 2.0), np.full(4, 2.0)) == 0.0
    assert example_epsilon(np.full(4, 2.0), np.full(4, 3.0)) == EPSILON_CAP


def test_rule_epsilon_hand_computed_and_one_sided_zero_rates_discarded():
    eps = rule_epsilon(np.array([0.25, 0.0, 0.5, 0.0, 1.0]), np.array([0.5, 0.3, 0.0, 0.0, 0.2]))
    # FPR .25, FNR .5: max(0, log(.75 - δ) - log .5, log(.5 - δ) - log .25) = log(2 - 4δ)
    assert eps[0] == pytest.approx(math.log(4 * (0.5 - DELTA)), abs=1e-12)
    assert np.isnan(eps[1]) and np.isnan(eps[2])  # exactly one rate 0: discarded
    assert eps[3] == np.inf  # both 0: infinite
    assert eps[4] == 0.0  # FPR 1: log(1 - δ - 1) counts as -inf (not NaN); log(.8 - δ) - log 1 < 0


def test_example_epsilon_hand_computed_case_with_four_models():
    # Single threshold t in (2.5, 3]: FPR = {3}/4, FNR = {2.5}/4 -> log(.75 - δ) - log .25; every rule
    # with a zero rate is discarded and no interval does better: ε = log(3 - 4δ) ≈ ln(N - 1).
    unlearned, retrained = np.array([0.0, 1.0, 2.0, 3.0]), np.array([2.5, 4.0, 5.0, 6.0])
    assert example_epsilon(unlearned, retrained) == pytest.approx(math.log(4 * (0.75 - DELTA)), abs=1e-12)


def test_only_discarded_or_useless_rules_give_zero():
    # U = {0, 10}, R = {5, 15}: every rule has FPR = FNR = .5 or one rate 0 -> ε = 0 although U != R.
    assert example_epsilon(np.array([0.0, 10.0]), np.array([5.0, 15.0])) == 0.0


def test_n_caps_finite_epsilon_at_ln_n_minus_one():
    rng = np.random.default_rng(2)
    for n in (4, 8):
        eps = epsilons(rng.normal(size=(n, 20)), rng.normal(0.8, 1.0, size=(n, 20)))
        finite = eps[eps < EPSILON_CAP]
        assert (finite <= math.log(n - 1) + 1e-9).all()


def test_bucket_scoring():
    eps = np.array([0.0, 0.49, 0.5, 1.0, 4.99, 5.0, 7.0, EPSILON_CAP])
    expected = [1.0, 1.0, 0.5, 0.25, 2.0**-9, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(epsilon_points(eps, 64), expected)  # ceil(ln 63) = 5
    assert max_resolvable_epsilon(512) == 7 and max_resolvable_epsilon(64) == 5 and max_resolvable_epsilon(16) == 3
    assert epsilon_points(np.array([6.9]), 512)[0] == 2.0**-13  # last bucket of the competition's N
    with pytest.raises(InvalidInputError):
        max_resolvable_epsilon(2)


def test_forgetting_score_and_final_score():
    sample = np.random.default_rng(3).normal(size=(6, 5))
    f, eps = forgetting_score(sample, sample.copy())
    assert f == 1.0 and (eps == 0).all()
    f, _ = forgetting_score(sample, sample + 100.0)
    assert f == 0.0
    assert final_score(0.5, [90, 100], [100, 100], [80, 80], [100, 60]) == pytest.approx(0.5 * 0.95 * 1.0)
    with pytest.raises(InvalidInputError):
        epsilons(sample, sample[:, :4])
