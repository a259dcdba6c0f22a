"""The per-example likelihood-ratio test (U-LiRA style) and the TPR intervals."""

from __future__ import annotations

import numpy as np
import pytest

from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.roc import clopper_pearson, membership_tpr_metrics, tpr_at_fpr_ci
from amun_plugin.evaluate.ulira import loo_gaussian, ulira_scores, ulira_test


def test_leave_one_out_fit_matches_refitting_without_the_row():
    samples = np.random.default_rng(0).normal(size=(6, 3))
    mean, var = loo_gaussian(samples, 1e-12)
    for m in range(6):
        rest = np.delete(samples, m, axis=0)
        np.testing.assert_allclose(mean[m], rest.mean(0))
        np.testing.assert_allclose(var[m], rest.var(0, ddof=1))


def test_same_distribution_is_near_chance_and_separated_is_detected():
    rng = np.random.default_rng(1)
    same = ulira_test(rng.normal(size=(32, 50)), rng.normal(size=(32, 50)), bootstrap=50)
    assert 40 < same["AUC"] < 60 and same["TPR@1%FPR"] < 10
    assert same["AUC_ci"][0] <= same["AUC"] <= same["AUC_ci"][1]
    shifted = rng.normal(size=(32, 50)) + rng.normal(size=50) * 3  # per-example shift only
    far = ulira_test(shifted, rng.normal(size=(32, 50)), bootstrap=0)
    assert far["AUC"] > 80 and far["TPR@1%FPR"] > 20 and "AUC_ci" not in far
    assert far["trials"] == {"positive": 32 * 50, "negative": 32 * 50}


def test_a_deterministic_unlearner_is_perfectly_detected():
    rng = np.random.default_rng(2)
    constant = np.repeat(rng.normal(size=(1, 10)), 8, axis=0)
    result = ulira_test(constant, rng.normal(size=(8, 10)), bootstrap=0)
    assert result["TPR@0.1%FPR"] == 100.0


def test_bad_shapes_are_clear_errors():
    with pytest.raises(InvalidInputError):
        ulira_scores(np.zeros((2, 4)), np.zeros((5, 4)))
    with pytest.raises(InvalidInputError):
        ulira_scores(np.zeros((5, 4)), np.zeros((5, 3)))


def test_clopper_pearson_known_values_and_tpr_interval():
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))
    lo, hi = clopper_pearson(5, 10)
    assert lo == pytest.approx(0.187086, abs=1e-5) and hi == pytest.approx(0.812914, abs=1e-5)
    tpr, lo, hi = tpr_at_fpr_ci(np.arange(100.0) + 50, np.arange(100.0), 0.01)
    assert lo <= tpr <= hi and 0 < hi - lo < 30


def test_membership_metrics_carry_intervals():
    rng = np.random.default_rng(3)
    parts = {"retain": rng.normal(1, 1, 300), "forget": rng.normal(1, 1, 100), "test": rng.normal(0, 1, 300)}
    metrics = membership_tpr_metrics(parts)
    for name in ("FT_TPR@1%FPR", "FT_TPR@0.1%FPR", "RT_TPR@1%FPR"):
        assert metrics[f"{name}_lo"] <= metrics[name] <= metrics[f"{name}_hi"]
