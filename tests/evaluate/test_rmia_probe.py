"""The RMIA membership probe of the retrain-free estimate: members separated from held-out data,
forgotten samples not, and the same scores as the rmia evaluator when z is the same population."""

from __future__ import annotations

import pytest
import torch
from audit_fixtures import confident_on, indexed_data
from test_rmia_evaluator import TOTAL, lookup_audit, reference_logits, synthetic_bank

from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.reference import PopulationMismatchError
from amun_plugin.evaluate.rmia_evaluator import RMIAEvaluator
from amun_plugin.evaluate.rmia_probe import RmiaProbe
from amun_plugin.unlearn.estimate import MembershipProbe, measure_proxy


def test_the_probe_separates_members_and_not_forgotten_samples() -> None:
    data, population = lookup_audit()
    probe = RmiaProbe(synthetic_bank(population, reference_logits()), population, reference_size=TOTAL)
    assert isinstance(probe, MembershipProbe)
    assert probe.auc(confident_on(torch.arange(40), total=TOTAL), data.forget, data.test) == 100.0
    assert probe.auc(confident_on(torch.arange(32), total=TOTAL), data.forget, data.test) == 50.0


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_the_probe_scores_like_the_evaluator_on_the_whole_population(mode) -> None:
    data, population = lookup_audit()
    bank = synthetic_bank(population, reference_logits())
    table = torch.linspace(0.2, 3.0, TOTAL)[:, None] * torch.tensor([[1.0, -0.5, 0.3]])  # graded confidences
    from audit_fixtures import LookupModel

    model = LookupModel(table)
    evaluated = RMIAEvaluator({"mode": mode}, bank=bank).evaluate(model, data)
    # z = the audited population (retain ∪ forget ∪ test) in both: the FT AUC is the probe's AUC
    probe = RmiaProbe(bank, data.retain, {"mode": mode}, reference_size=len(data.retain))
    from amun_plugin.evaluate.roc import roc_auc

    expected = roc_auc(evaluated.scores["forget"], evaluated.scores["test"])
    assert probe.auc(model, data.forget, data.test) == pytest.approx(expected)
    assert measure_proxy(model, data.forget, data.test, membership=probe).forget_holdout_auc == pytest.approx(expected)


def test_samples_outside_the_bank_are_refused() -> None:
    data, population = lookup_audit()
    probe = RmiaProbe(synthetic_bank(population, reference_logits()), population)
    stranger = indexed_data(3, name="stranger", offset=0, total=TOTAL + 7)
    with pytest.raises(PopulationMismatchError, match="not in the reference bank"):
        probe.auc(confident_on(torch.arange(3), total=TOTAL), stranger, data.test)
    with pytest.raises(InvalidInputError, match="reference_size"):
        RmiaProbe(synthetic_bank(population, reference_logits()), population, reference_size=0)
