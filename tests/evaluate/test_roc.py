import numpy as np
import pytest
import torch

from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.roc import roc_auc, roc_curve, tpr_at_fpr
from amun_plugin.evaluate.signals import logit_scaled_confidence, true_class_probability


def _brute_force_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return 100.0 * wins / (len(pos) * len(neg))


def test_auc_matches_pairwise_counting_with_ties() -> None:
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 30).astype(float)
    assert roc_auc(pos, neg) == pytest.approx(_brute_force_auc(pos, neg))


def test_auc_extremes() -> None:
    assert roc_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 100.0
    assert roc_auc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 0.0
    same = np.random.default_rng(1).normal(size=20000)
    assert roc_auc(same[:10000], same[10000:]) == pytest.approx(50.0, abs=1.5)


def test_tpr_at_fpr_and_curve() -> None:
    pos = np.array([10.0, 9.0, 8.0, 1.0])
    neg = np.array([7.0, 0.5, 0.4, 0.3])
    fpr, tpr = roc_curve(pos, neg)
    assert fpr[0] == 0 and tpr[-1] == 1 and fpr[-1] == 1
    assert tpr_at_fpr(pos, neg, 0.0) == 75.0  # three members above every non-member
    assert tpr_at_fpr(pos, neg, 0.25) == 100.0  # threshold 1.0 admits only the non-member 7.0
    assert tpr_at_fpr(pos, neg, 0.5) == 100.0


def test_bad_scores_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        roc_auc(np.array([]), np.array([1.0]))
    with pytest.raises(InvalidInputError):
        roc_auc(np.array([np.nan]), np.array([1.0]))


def test_logit_scaled_confidence_matches_the_definition_and_does_not_saturate() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 50.0, 0.0]])
    y = torch.tensor([0, 1])
    p = true_class_probability(logits, y)
    expected0 = float(torch.log(p[0] / (1 - p[0])))
    got = logit_scaled_confidence(logits, y)
    assert float(got[0]) == pytest.approx(expected0, rel=1e-9)
    assert float(got[1]) == pytest.approx(50.0 - np.log(2.0), rel=1e-9)  # finite although p_y == 1.0 in float32
