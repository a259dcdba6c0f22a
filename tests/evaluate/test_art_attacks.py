"""ART's membership attacks behind the evaluator hook: they see members, and leave the model as found."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from audit_fixtures import confident_on, indexed_data

from amun_plugin.evaluate.art_attacks import (
    ArtBlackBoxEvaluator,
    ArtLabelOnlyEvaluator,
    ArtRuleBasedEvaluator,
    shadow_split,
)
from amun_plugin.evaluate.base import AuditData

pytest.importorskip("art")


def lookup_audit() -> AuditData:
    """retain ids 0..23, forget 24..31, test 32..63 of 64."""
    return AuditData(indexed_data(24, name="retain"), indexed_data(8, name="forget", offset=24),
                     indexed_data(32, name="test", offset=32))


def test_shadow_split_is_disjoint_and_seeded():
    data = lookup_audit()
    split = shadow_split(data, seed=0)

    def ids(part):
        return set((part.x[:, 0, 0, 0] * 63).round().long().tolist())

    assert ids(split.fit_members).isdisjoint(ids(split.retain))
    assert ids(split.fit_nonmembers).isdisjoint(ids(split.test))
    assert len(split.fit_members) == len(split.fit_nonmembers) == 12
    assert (len(split.retain), len(split.forget), len(split.test)) == (12, 8, 20)
    assert ids(split.forget) == set(range(24, 32))
    assert ids(shadow_split(data, seed=0).test) == ids(split.test)


def test_blackbox_attack_sees_members():
    data = lookup_audit()
    metrics = ArtBlackBoxEvaluator().evaluate(confident_on(torch.arange(32)), data).metrics
    assert metrics["FT_AUC"] > 90 and metrics["RT_AUC"] > 90
    forgotten = ArtBlackBoxEvaluator().evaluate(confident_on(torch.arange(24)), data).metrics
    assert forgotten["FT_AUC"] < 60 and forgotten["FT_member_rate"] < 50


def test_rule_based_attack_counts_correct_predictions_as_members():
    data = lookup_audit()
    table = torch.zeros(64, 3)
    labels = torch.arange(64) % 3
    table[torch.arange(64), labels] = 1.0  # correct on all...
    table[32:, :] = 0.0
    table[torch.arange(32, 64), (labels[32:] + 1) % 3] = 1.0  # ...but wrong on test
    model = confident_on(torch.arange(0))
    model.table.copy_(table)
    metrics = ArtRuleBasedEvaluator().evaluate(model, data).metrics
    assert metrics["FT_AUC"] == 100.0 and metrics["FT_member_rate"] == 100.0


def _right_on(ids: torch.Tensor) -> torch.nn.Module:
    """A lookup model right (with margin) on ``ids`` and wrong on every other id of 64."""
    labels = torch.arange(64) % 3
    model = confident_on(torch.arange(0))
    table = torch.zeros(64, 3)
    table[torch.arange(64), (labels + 1) % 3] = 4.0
    table[ids, labels[ids]] = 8.0
    model.table.copy_(table)
    return model


def test_label_only_attack_separates_correct_members_on_a_small_budget():
    """A misclassified sample is at distance 0 from the boundary (a non-member); a correct one is
    not. So D_F is found while the model is right on it, and looks like D_T once it is wrong."""
    data = lookup_audit()
    evaluator = ArtLabelOnlyEvaluator({"max_samples": 4, "max_iter": 1, "max_eval": 10, "init_eval": 5,
                                       "init_size": 5})
    remembered = evaluator.evaluate(_right_on(torch.arange(32)), data, seed=0)
    assert not remembered.scores["test"].any()  # wrong on D_T: never called a member
    assert remembered.metrics["FT_member_rate"] >= 75 and remembered.metrics["FT_AUC"] >= 85
    assert remembered.metrics["RT_AUC"] == 100.0
    forgotten = evaluator.evaluate(_right_on(torch.arange(24)), data, seed=0).metrics
    assert forgotten["FT_AUC"] == 50.0 and forgotten["FT_member_rate"] == 0.0


@pytest.mark.parametrize("evaluator", [ArtBlackBoxEvaluator(), ArtRuleBasedEvaluator()])
def test_modes_and_random_state_are_restored(evaluator):
    data = lookup_audit()
    model = confident_on(torch.arange(32))
    model.train()
    model.inner.eval()
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    evaluator.evaluate(model, data, seed=3)
    assert model.training and not model.inner.training
    assert next(model.parameters()).device.type == "cpu"
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
