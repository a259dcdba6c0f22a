"""The estimate from per-sample measurements: the all-at-once resampled gaps equal the estimate
recomputed draw by draw, and the paired chance of a lower estimate matches hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from amun_plugin.errors import InvalidInputError
from amun_plugin.unlearn.estimate import estimated_gap
from amun_plugin.unlearn.sampled_estimate import (
    SampleMeasure,
    _resampled_gaps,
    bootstrap_estimates,
    chance_lower,
    resample_positions,
)


def _random_measure(rng: np.random.Generator, retain: bool, scores: bool = True) -> SampleMeasure:
    forget_scores = np.round(rng.normal(size=30), 1) if scores else None  # rounded: ties in the AUC
    return SampleMeasure(rng.random(30) < 0.8, rng.random(12) < 0.7, rng.random(12) < 0.9 if retain else None,
                         forget_scores, np.round(rng.normal(size=12), 1) if scores else None,
                         auc=None if scores else 61.0)


@pytest.mark.parametrize("retain", [True, False])
@pytest.mark.parametrize("scores", [True, False])
def test_resampled_gaps_equal_the_estimate_recomputed_draw_by_draw(retain: bool, scores: bool) -> None:
    rng = np.random.default_rng(1)
    current, original = _random_measure(rng, retain, scores), _random_measure(rng, retain)
    draws = resample_positions(current, original, 50, seed=3)
    by_draw = [estimated_gap(current.proxy(f, h, r), original.proxy(f, h, r))[0] for f, h, r in draws]
    np.testing.assert_allclose(_resampled_gaps(current, original, draws), by_draw, rtol=1e-12, atol=1e-12)
    # the bootstrap interval reads the same draws
    np.testing.assert_allclose(bootstrap_estimates(current, original, 50, seed=3)["estimated_gap"], by_draw)


def _measure(forget_correct: list[int], holdout_correct: list[int]) -> SampleMeasure:
    return SampleMeasure(np.asarray(forget_correct, dtype=bool), np.asarray(holdout_correct, dtype=bool),
                         forget_scores=np.zeros(len(forget_correct)), holdout_scores=np.zeros(len(holdout_correct)))


def test_chance_lower_by_hand() -> None:
    original = _measure([1, 1, 1, 1], [1, 1, 1])  # held-out accuracy 100 in every resample
    like_unseen = _measure([1, 1, 1, 1], [1, 1, 1])  # UA term 0 in every resample
    forgot_all = _measure([0, 0, 0, 0], [1, 1, 1])  # UA term 100 in every resample
    # same TA and MIA terms (scores all tied: AUC 50), so the UA term decides every resample
    assert chance_lower(like_unseen, forgot_all, original) == 1.0
    assert chance_lower(forgot_all, like_unseen, original) == 0.0
    assert chance_lower(forgot_all, forgot_all, original) == 0.5  # ties count half: no evidence
    half = _measure([1, 1, 0, 0], [1, 1, 1])  # UA term 0..100 by resample, 100 only if all four drawn wrong
    draws = resample_positions(half, original, 200, seed=0)
    lower = np.mean([half.forget_correct[f].any() for f, _, _ in draws])
    tied = 1.0 - lower
    assert chance_lower(half, forgot_all, original, 200, seed=0) == pytest.approx(lower + 0.5 * tied)


def test_chance_lower_refuses_measures_of_different_samples() -> None:
    with pytest.raises(InvalidInputError, match="same D_F and H"):
        chance_lower(_measure([1, 1], [1]), _measure([1, 1], [1]), _measure([1], [1]))
    with pytest.raises(InvalidInputError, match="resamples"):
        chance_lower(_measure([1], [1]), _measure([1], [1]), _measure([1], [1]), resamples=0)
