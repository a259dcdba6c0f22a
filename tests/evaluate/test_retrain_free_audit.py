"""The retrain-free audit (ISSUE 25, item 2): the estimated Avg Gap of an unlearned model with a
bootstrap interval and verdicts, from D_F, held-out data and the original model only."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from audit_fixtures import LookupModel, confident_on, indexed_data
from test_rmia_evaluator import TOTAL, lookup_audit, reference_logits, synthetic_bank
from tiny_fixtures import make_memorising

import amun_plugin
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.retrain_free import (
    RetrainFreeAudit,
    RetrainFreeConfig,
    SampleMeasure,
    bootstrap_estimates,
    percentile_interval,
    retrain_free_table,
    summarise,
)
from amun_plugin.evaluate.rmia_probe import RmiaProbe
from amun_plugin.evaluate.roc import roc_auc
from amun_plugin.unlearn.estimate import ConfidenceProbe, estimated_gap, measure_proxy, retain_probe

ALL_RIGHT = np.ones(4, dtype=bool)


def _measure(forget_correct, holdout_correct, forget_scores=(0.9, 0.8, 0.7, 0.6), holdout_scores=(0.1, 0.2, 0.3, 0.4),
             retain_correct=None) -> SampleMeasure:
    as_array = (lambda v: None if v is None else np.asarray(v, dtype=np.float64))  # noqa: E731
    return SampleMeasure(np.asarray(forget_correct, dtype=bool), np.asarray(holdout_correct, dtype=bool),
                         None if retain_correct is None else np.asarray(retain_correct, dtype=bool),
                         as_array(forget_scores), as_array(holdout_scores))


# --- the bootstrap on fixed per-sample values (hand-checkable) -------------------------------------------------


def test_only_ua_varies_so_the_interval_is_its_hand_computed_range() -> None:
    # D_F = 2 samples, one right: a resample's forget accuracy is 0, 50 or 100 (p = 1/4, 1/2, 1/4), the
    # original's held-out accuracy is 100, every other term is 0 (scores tie: AUC 50). UA term in {100, 50, 0}
    # -> the gap (UA / 3) in {33.3, 16.7, 0}: with 200 resamples the 2.5th / 97.5th percentiles are 0 and 33.3.
    current = _measure([True, False], ALL_RIGHT, [0.5, 0.5], [0.5] * 4)
    original = _measure([True, True], ALL_RIGHT, [0.5, 0.5], [0.5] * 4)
    draws = bootstrap_estimates(current, original, resamples=200, seed=0)
    assert set(np.round(draws["UA"], 9)) == {0.0, 50.0, 100.0}
    assert np.allclose(draws["TA"], 0) and np.allclose(draws["MIA"], 0) and np.allclose(draws["AUC"], 50)
    assert percentile_interval(draws["estimated_gap"]) == pytest.approx((0.0, 100.0 / 3))
    result = summarise(current, original, RetrainFreeConfig())
    assert result.estimated_gap == pytest.approx(50.0 / 3)  # point: UA 50, TA 0, MIA 0
    assert result.interval[0] <= result.estimated_gap <= result.interval[1]


def test_the_interval_brackets_the_point_and_is_deterministic_for_a_seed() -> None:
    current = _measure([1, 1, 0, 1], [1, 0, 1, 1], retain_correct=[1, 1, 1, 0])
    original = _measure(ALL_RIGHT, ALL_RIGHT, retain_correct=ALL_RIGHT)
    config = RetrainFreeConfig(resamples=200)
    first, again = summarise(current, original, config, seed=3), summarise(current, original, config, seed=3)
    other = summarise(current, original, config, seed=4)
    gap, terms = estimated_gap(current.proxy(), original.proxy())
    assert first.estimated_gap == pytest.approx(gap) and first.terms == pytest.approx(terms)
    assert terms == pytest.approx({"UA": 25.0, "TA": 25.0, "MIA": 50.0, "RA": 25.0})
    assert first.interval[0] <= first.estimated_gap <= first.interval[1]
    assert first.interval == again.interval and first.intervals == again.intervals
    assert other.interval != first.interval  # the seed is what makes it repeatable
    assert first.auc_interval == (100.0, 100.0)  # every forget score beats every held-out one in any resample


def test_zero_variance_gives_a_zero_width_interval() -> None:
    same = _measure(ALL_RIGHT, ALL_RIGHT, [0.5] * 4, [0.5] * 4, retain_correct=ALL_RIGHT)
    result = summarise(same, same, RetrainFreeConfig(resamples=50))
    assert result.estimated_gap == 0.0 and result.interval == (0.0, 0.0)
    assert all(low == high for low, high in result.intervals.values())
    assert result.auc_interval == (50.0, 50.0)
    assert "indistinguishable from held-out data within ±0.0 AUC points" in result.verdict


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="resamples"):
        bootstrap_estimates(_measure(ALL_RIGHT, ALL_RIGHT), _measure(ALL_RIGHT, ALL_RIGHT), resamples=0)
    with pytest.raises(InvalidInputError, match="same D_F and H"):
        bootstrap_estimates(_measure(ALL_RIGHT, ALL_RIGHT), _measure([1, 1], ALL_RIGHT, [1, 2], [0.0] * 4))
    with pytest.raises(InvalidInputError, match="level"):
        summarise(_measure(ALL_RIGHT, ALL_RIGHT), _measure(ALL_RIGHT, ALL_RIGHT), RetrainFreeConfig(level=1.5))


# --- the verdict both ways, on models -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def memorised():
    """A model that memorised 80 random images (members) and 40 it never saw (non-members)."""
    model, members, non_members = make_memorising()
    return model, members, non_members


def test_a_memorising_model_audited_against_itself_is_not_forgotten(memorised) -> None:
    model, members, non_members = memorised
    forget, retain = members.subset(range(20), name="forget"), members.subset(range(20, 80), name="retain")
    holdout = non_members.subset(range(20), name="holdout")
    result = RetrainFreeAudit(forget, holdout, retain, model).of(model)
    assert result.auc_interval is not None and result.auc_interval[0] > 50.0
    assert result.verdict.startswith("forget set still distinguishable: AUC")
    assert "within the 5-point budget" in result.accuracy and result.accurate  # the original keeps its accuracy
    assert result.terms["TA"] == 0.0 and result.terms["RA"] == 0.0  # paired: the same model on the same samples
    # the point estimate is the estimate AMUN calibrates with (measure_proxy + estimated_gap)
    probe = retain_probe(retain, len(holdout), 0)
    gap, _ = estimated_gap(measure_proxy(model, forget, holdout, probe), measure_proxy(model, forget, holdout, probe))
    assert result.estimated_gap == pytest.approx(gap) and result.interval[0] <= gap <= result.interval[1]


def test_a_forget_set_that_looks_unseen_is_indistinguishable(memorised) -> None:
    model, members, non_members = memorised
    forget = non_members.subset(range(20), name="forget")  # never trained on: what perfect forgetting looks like
    holdout = non_members.subset(range(20, 40), name="holdout")
    result = RetrainFreeAudit(forget, holdout, members, model).of(model)
    assert result.auc_interval is not None and result.auc_interval[0] <= 50.0 <= result.auc_interval[1]
    assert result.verdict.startswith("forget set indistinguishable from held-out data within ±")


def test_a_lookup_model_forgetting_exactly_is_indistinguishable_and_one_still_remembering_is_not() -> None:
    forget, retain = indexed_data(12, name="forget"), indexed_data(28, name="retain", offset=12)
    holdout = indexed_data(24, name="holdout", offset=40)
    original = confident_on(torch.arange(40))  # sure on D_F and D_R (members), unsure on held-out data
    check = RetrainFreeAudit(forget, holdout, retain, original)
    forgotten = check.of(confident_on(torch.arange(12, 40)))  # D_F now treated like held-out data
    assert forgotten.auc == 50.0 and forgotten.auc_interval == (50.0, 50.0) and forgotten.terms["MIA"] == 0.0
    assert "indistinguishable" in forgotten.verdict
    remembered = check.of(original)
    assert remembered.auc == 100.0 and "still distinguishable" in remembered.verdict


def test_an_accuracy_drop_beyond_the_budget_is_called_out() -> None:
    forget, retain, holdout = indexed_data(12, name="forget"), indexed_data(28, name="retain", offset=12), \
        indexed_data(24, name="holdout", offset=40)
    table = torch.zeros(64, 3)
    table[torch.arange(64), (torch.arange(64) + 1) % 3] = 1.0  # every prediction wrong
    result = RetrainFreeAudit(forget, holdout, retain, confident_on(torch.arange(40))).of(LookupModel(table))
    assert not result.accurate and "outside the 5-point budget" in result.accuracy


# --- the probes' per-sample scores --------------------------------------------------------------------------------


def test_the_probes_auc_is_the_auc_of_their_scores() -> None:
    data, population = lookup_audit()
    model = LookupModel(torch.linspace(0.2, 3.0, TOTAL)[:, None] * torch.tensor([[1.0, -0.5, 0.3]]))
    for probe in (ConfidenceProbe(), RmiaProbe(synthetic_bank(population, reference_logits()), population)):
        forget_scores, holdout_scores = probe.scores(model, data.forget, data.test)
        assert forget_scores.shape == (len(data.forget),) and holdout_scores.shape == (len(data.test),)
        assert probe.auc(model, data.forget, data.test) == pytest.approx(roc_auc(forget_scores, holdout_scores))


def test_an_rmia_probe_drives_the_membership_term() -> None:
    data, population = lookup_audit()
    probe = RmiaProbe(synthetic_bank(population, reference_logits()), population, reference_size=TOTAL)
    original = confident_on(torch.arange(40), total=TOTAL)
    result = RetrainFreeAudit(data.forget, data.test, data.retain, original, probe).of(original)
    assert result.probe == "rmia" and result.auc == pytest.approx(probe.auc(original, data.forget, data.test))
    assert result.auc_interval is not None


class _AucOnly:
    """A membership probe without per-sample scores."""

    name = "auc_only"

    def auc(self, model, forget, holdout, device="cpu") -> float:
        return 61.0


def test_a_probe_without_scores_keeps_its_auc_and_says_there_is_no_interval(memorised) -> None:
    model, members, non_members = memorised
    result = RetrainFreeAudit(members.subset(range(20), name="forget"), non_members, None, model, _AucOnly()).of(model)
    assert result.auc == 61.0 and result.auc_interval is None and result.terms["MIA"] == 11.0
    assert result.intervals["MIA"] == (11.0, 11.0) and "no interval" in result.verdict and "RA" not in result.terms


# --- through amun_plugin.audit ---------------------------------------------------------------------------------------


def test_audit_reports_the_estimate_and_writes_it_to_the_report(memorised, tmp_path) -> None:
    model, members, non_members = memorised
    forget, retain = members.subset(range(20), name="forget"), members.subset(range(20, 80), name="retain")
    holdout, test = non_members.subset(range(20), name="holdout"), non_members.subset(range(20, 40), name="test")
    report = amun_plugin.audit(model, retain, forget, test, ["accuracy", "confidence_mia"], original=model,
                               retrained=copy.deepcopy(model), holdout=holdout, out_dir=tmp_path, plots=False,
                               retrain_free={"resamples": 50})
    found = report["retrain_free"]
    assert found["retrain_free.resamples"] == 50 and "still distinguishable" in found["retrain_free.verdict"]
    assert found["retrain_free.estimated_gap_lo"] <= found["retrain_free.estimated_gap"] \
        <= found["retrain_free.estimated_gap_hi"]
    assert report["metrics"]["retrain_free.UA_term"] == found["retrain_free.UA_term"]
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert document["retrain_free"]["retrain_free.verdict"] == found["retrain_free.verdict"]
    assert document["metrics"]["retrain_free.estimated_gap"] == found["retrain_free.estimated_gap"]
    text = (tmp_path / "report.md").read_text()
    assert "## Retrain-free estimate" in text and "| Avg Gap (to the retrained model) | 0.00 |" in text
    assert report["avg_gap"] == 0.0  # the true Avg Gap beside the estimate
    printed = retrain_free_table({"model": report})
    assert "est. Avg Gap [95% CI]" in printed and "model: forget set still distinguishable" in printed


def test_without_the_original_model_the_retrain_free_audit_is_refused(memorised) -> None:
    model, members, non_members = memorised
    forget, retain = members.subset(range(20), name="forget"), members.subset(range(20, 80), name="retain")
    with pytest.raises(InvalidInputError, match="needs original="):
        amun_plugin.audit(model, retain, forget, non_members, ["accuracy"], holdout=non_members, plots=False)
    with pytest.raises(InvalidInputError, match="give holdout="):
        amun_plugin.audit(model, retain, forget, non_members, ["accuracy"], original=model,
                          membership=ConfidenceProbe(), plots=False)
    with pytest.raises(InvalidInputError, match="holdout shares"):  # a holdout of training samples
        amun_plugin.audit(model, retain, forget, non_members, ["accuracy"], original=model, holdout=retain,
                          plots=False)
