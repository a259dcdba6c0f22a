"""MIS: the SVC attack's features (modified entropy by hand) and its verdict on D_F."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from audit_fixtures import confident_on, indexed_data

from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.mis import MISEvaluator, log_one_minus_softmax, modified_entropy, softmax_features


def hand_modified_entropy(z: list[float], y: int) -> float:
    p = np.exp(z) / np.exp(z).sum()
    value = -(1 - p[y]) * math.log(p[y])
    for j, pj in enumerate(p):
        if j != y:
            value -= pj * math.log(1 - pj)
    return float(value)


@pytest.mark.parametrize("z,y", [([2.0, 0.0, -1.0], 0), ([2.0, 0.0, -1.0], 2), ([0.3, 0.3, 0.3, 0.3], 1)])
def test_modified_entropy_matches_hand_computation(z, y):
    got = modified_entropy(torch.tensor([z]), torch.tensor([y]))
    assert got.item() == pytest.approx(hand_modified_entropy(z, y), rel=1e-10)


def test_modified_entropy_of_a_confident_wrong_prediction_is_large_not_infinite():
    # p_1 ~ 1 - 2e-40: the naive log(1 - p_1) is log(0) in float64; the exact value is ~ log(2) - 40
    logits = torch.tensor([[0.0, 40.0, 0.0]])
    log_q = log_one_minus_softmax(logits)
    assert log_q[0, 1].item() == pytest.approx(math.log(2.0) - 40.0 - math.log1p(2 * math.exp(-40)), rel=1e-12)
    assert modified_entropy(logits, torch.tensor([1])).item() == pytest.approx(0.0, abs=1e-15)
    wrong = modified_entropy(logits, torch.tensor([0])).item()
    assert math.isfinite(wrong) and wrong == pytest.approx(40.0 + 40.0 - math.log(2.0), rel=1e-6)


def test_softmax_features():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    f = softmax_features(logits, torch.tensor([0, 0]))
    p = torch.softmax(logits.double(), 1)
    np.testing.assert_array_equal(f["correctness"], [1.0, 0.0])
    np.testing.assert_allclose(f["confidence"], [p[0, 0], p[1, 0]])
    np.testing.assert_allclose(f["entropy"], (-(p * p.log()).sum(1)).numpy())


def audit(forget_ids: torch.Tensor) -> tuple[AuditData, torch.Tensor]:
    retain = indexed_data(24, name="retain")
    forget = indexed_data(16, name="forget", offset=24)
    test = indexed_data(24, name="test", offset=40)
    return AuditData(retain, forget, test), forget_ids


def test_mis_is_low_when_forget_looks_like_retain_and_high_when_like_test():
    data, _ = audit(torch.arange(0))
    remembered = MISEvaluator().evaluate(confident_on(torch.arange(40)), data).metrics
    forgotten = MISEvaluator().evaluate(confident_on(torch.arange(24)), data).metrics
    assert remembered["MIS"] == 0.0 and remembered["MIS_m_entropy"] == 0.0
    assert forgotten["MIS"] == 100.0 and forgotten["MIS_entropy"] == 100.0
    assert set(remembered) == {"MIS", "MIS_correctness", "MIS_entropy", "MIS_m_entropy"}


def test_mis_shadow_cap():
    data, _ = audit(torch.arange(0))
    capped = MISEvaluator({"max_shadow": 8}).evaluate(confident_on(torch.arange(40)), data).metrics
    assert capped["MIS"] == 0.0
