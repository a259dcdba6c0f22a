"""The NeurIPS 2023 forgetting score: ε estimator, buckets, F and the final score (hand-computed cases,
and a fixture computed by an independent implementation of the challenge's definition)."""

from __future__ import annotations

import json
import math
from pathlib import Path

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
    left_thresholds,
    max_resolvable_epsilon,
    rule_epsilon,
)

FIXTURE = Path(__file__).parent / "fixtures" / "forgetting_reference.json"


def _case(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    case = next(c for c in json.loads(FIXTURE.read_text())["cases"] if c["name"] == name)
    return np.array(case["unlearned"]), np.array(case["retrained"]), case


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
    eps = rule_epsilon(np.array([0.25, 0.0, 0.5, 0.0, 1.0, 1.0]), np.array([0.5, 0.3, 0.0, 0.0, 0.2, 1.0]))
    # FPR .25, FNR .5: max(0, log(.75 - δ) - log .5, log(.5 - δ) - log .25) = log(2 - 4δ)
    assert eps[0] == pytest.approx(math.log(4 * (0.5 - DELTA)), abs=1e-12)
    assert np.isnan(eps[1]) and np.isnan(eps[2])  # exactly one rate 0: discarded
    assert eps[3] == np.inf  # both 0: infinite
    assert eps[4] == 0.0  # FPR 1: log(1 - δ - 1) is NaN, skipped; log(.8 - δ) - log 1 < 0 -> 0
    assert np.isnan(eps[5])  # FPR = FNR = 1: both terms NaN -> discarded, as in the challenge


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


@pytest.mark.parametrize("name", [c["name"] for c in json.loads(FIXTURE.read_text())["cases"]])
def test_matches_the_independent_reference_implementation(name):
    """ε and F of every fixture case (ties, unequal spreads, outliers, constant sides, tight pairs)
    as computed by ``fixtures/forgetting_reference.py``, to 1e-6."""
    unlearned, retrained, case = _case(name)
    f, eps = forgetting_score(unlearned, retrained)
    np.testing.assert_allclose(eps, case["epsilon"], rtol=0, atol=1e-6)
    assert f == pytest.approx(case["F"], abs=1e-6)


def test_peaky_side_is_the_strictly_smaller_range_not_the_smaller_std():
    # In each column one side has the smaller std and the other the strictly smaller range; the
    # challenge picks the side of the smaller range and uses that range as the width (old: by std).
    unlearned, retrained, case = _case("std_and_range_disagree")
    for i in range(unlearned.shape[1]):
        u, r = unlearned[:, i], retrained[:, i]
        assert (np.std(u) <= np.std(r)) != (np.ptp(u) < np.ptp(r))  # the two criteria disagree
        assert example_epsilon(u, r) == pytest.approx(case["epsilon"][i], abs=1e-12)


def test_every_rule_discarded_is_an_error_as_in_the_challenge():
    # Two tight samples (pooled range 0.009): the 0.01 grid puts no rule between their scores, every
    # rule has one zero rate; the challenge stops on an assertion, the old code returned ε = 0.
    u = np.array([1.0096600350849445, 1.0096952894768378, 1.0061839067325058, 1.0034296165610577])
    r = np.array([1.0006471684285798, 1.0046004265694262, 1.00490167846504, 1.0005433023268293])
    with pytest.raises(InvalidInputError, match="discarded"):
        example_epsilon(u, r)
    with pytest.raises(InvalidInputError, match="forget example 1"):
        epsilons(np.stack([r + 5, u], axis=1), np.stack([r, r], axis=1))


def test_single_threshold_grid_has_no_minimum_of_two():
    # Pooled range 0.008: ceil(0.8) = 1 threshold (lo, a discarded rule); the old grid's extra t = hi
    # (both samples tie at hi: FPR 1/4, FNR 2/4) gave ε = log(2 - 4δ); no rule of the challenge does.
    unlearned, retrained, case = _case("tight_tie_at_the_maximum")
    assert example_epsilon(unlearned[:, 0], retrained[:, 0]) == 0.0 == case["epsilon"][0]


def test_left_thresholds_are_a_linspace_per_right_threshold():
    rights = np.linspace(0.37 - 2.0, 0.37 + 2.0, 400)
    grid = left_thresholds(rights, 0.37)
    for j in (0, 57, 200, 399):
        assert np.array_equal(grid[j], np.linspace(rights[j] - 0.37 - 2.0, rights[j] - 0.37 + 2.0, 400))
    # a peaky score exactly on such a left threshold (and another score one ulp below it) decides ε:
    unlearned, retrained, case = _case("score_on_a_left_threshold")
    eps = example_epsilon(unlearned[:, 0], retrained[:, 0])
    assert eps == pytest.approx(math.log(8 * (7 / 8 - DELTA)), abs=1e-12) == case["epsilon"][0]


def test_buckets_use_the_number_of_unlearned_models():
    unlearned, retrained, case = _case("unequal_model_counts")  # N_u = 16 (top 3), N_r = 4 (top 2)
    f, eps = forgetting_score(unlearned, retrained)
    assert f == pytest.approx(epsilon_points(eps, 16).mean()) == pytest.approx(case["F"])
    assert f != pytest.approx(epsilon_points(eps, 4).mean())
