"""The rmia evaluator end to end: members found, non-members not, bank handling, offline mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from audit_fixtures import TinyArchitecture, confident_on, indexed_data, tiny_audit_data
from sklearn.metrics import roc_auc_score

from amun_plugin.errors import UnsupportedSettingError
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.reference import (
    PopulationMismatchError,
    ReferenceBank,
    balanced_membership,
    build_reference_bank,
    population_fingerprint,
    sample_digests,
)
from amun_plugin.evaluate.rmia import likelihood_ratio, offline_reference, rmia_scores
from amun_plugin.evaluate.rmia_evaluator import RMIAConfig, RMIAEvaluator, tune_offline_a
from amun_plugin.training import TrainConfig

TOTAL = 64


def lookup_audit() -> tuple[AuditData, object]:
    """retain = ids 0..31, forget = 32..39, test = 40..63 (all of one 64-point population)."""
    retain = indexed_data(32, name="retain", total=TOTAL)
    forget = indexed_data(8, name="forget", offset=32, total=TOTAL)
    test = indexed_data(24, name="test", offset=40, total=TOTAL)
    return AuditData(retain, forget, test), indexed_data(TOTAL, name="population", total=TOTAL)


def synthetic_bank(population, logits: np.ndarray, num_models: int = 4) -> ReferenceBank:
    """A bank held in memory whose K models all output ``logits`` (N, C)."""
    digests = sample_digests(population)
    manifest = {"population": {"fingerprint": population_fingerprint(digests), "size": len(population)}}
    stacked = np.repeat(logits[None].astype(np.float32), num_models, axis=0)
    return ReferenceBank(Path("memory"), manifest, balanced_membership(num_models, len(population), 0), digests,
                         population.y.numpy(), stacked)


def reference_logits() -> np.ndarray:
    return confident_on(torch.tensor([], dtype=torch.long), total=TOTAL).table.numpy()


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_members_are_separated_and_lookalikes_are_not(mode):
    data, population = lookup_audit()
    bank = synthetic_bank(population, reference_logits())
    evaluator = RMIAEvaluator({"mode": mode}, bank=bank)
    memorising = evaluator.evaluate(confident_on(torch.arange(40), total=TOTAL), data).metrics
    assert memorising["FT_AUC"] == 100.0 and memorising["RT_AUC"] == 100.0
    assert memorising["FR_AUC"] == 50.0
    assert memorising["FT_TPR@1%FPR"] == 100.0
    forgotten = evaluator.evaluate(confident_on(torch.arange(32), total=TOTAL), data).metrics
    assert forgotten["FT_AUC"] == 50.0 and forgotten["FR_AUC"] == 100.0
    assert ("offline_a" in memorising) == (mode == "offline")


def test_scores_cover_every_set_and_lie_in_unit_interval():
    data, population = lookup_audit()
    result = RMIAEvaluator(bank=synthetic_bank(population, reference_logits())).evaluate(
        confident_on(torch.arange(40), total=TOTAL), data)
    assert {k: len(v) for k, v in result.scores.items()} == {"retain": 32, "forget": 8, "test": 24}
    assert all(((v >= 0) & (v <= 1)).all() for v in result.scores.values())


def test_real_bank_from_disk_with_any_forget_split(tmp_path):
    data, population = tiny_audit_data()
    build_reference_bank(tmp_path, population, TinyArchitecture(), TrainConfig(epochs=2, batch_size=32),
                         num_models=4, progress=False)
    evaluator = RMIAEvaluator({"bank_dir": str(tmp_path), "mode": "offline", "tune_a": True})
    model = TinyArchitecture().build(3, (1, 4, 4))
    metrics = evaluator.evaluate(model, data).metrics
    assert metrics["offline_a"] == tune_offline_a(ReferenceBank.open(tmp_path), evaluator.config)
    train = data.forget.concat(data.retain)
    other_split = AuditData(train.subset(range(12, 72)), train.subset(range(12)), data.test)
    assert set(evaluator.evaluate(model, other_split).metrics) == set(metrics)


def test_evaluator_without_bank_or_with_wrong_population_is_refused(tmp_path):
    data, population = lookup_audit()
    with pytest.raises(UnsupportedSettingError, match="reference bank"):
        RMIAEvaluator().evaluate(confident_on(torch.arange(40), total=TOTAL), data)
    evaluator = RMIAEvaluator(bank=synthetic_bank(population.subset(range(TOTAL - 8)), reference_logits()[:-8]))
    with pytest.raises(PopulationMismatchError, match="another population"):  # 8 test points are not in the bank
        evaluator.evaluate(confident_on(torch.arange(40), total=TOTAL), data)
    smaller = AuditData(data.retain, data.forget, data.test.subset(range(10)))  # a bank holding more is fine
    larger = RMIAEvaluator(bank=synthetic_bank(population, reference_logits()))
    assert larger.evaluate(confident_on(torch.arange(40), total=TOTAL), smaller).metrics["FT_AUC"] == 100.0


def test_tuning_a_needs_four_models():
    data, population = lookup_audit()
    bank = synthetic_bank(population, reference_logits(), num_models=2)
    with pytest.raises(UnsupportedSettingError, match=">= 4"):
        RMIAEvaluator({"mode": "offline", "tune_a": True}, bank=bank).evaluate(
            confident_on(torch.arange(40), total=TOTAL), data)


def varied_bank(population, seed: int = 0, num_models: int = 4) -> ReferenceBank:
    """A bank of K models with their own logits (K, N, 3): a per-point difficulty shared by all
    models plus 1.5 on the true class where the point is IN the model (so the offline a matters)."""
    rng = np.random.default_rng(seed)
    membership = balanced_membership(num_models, len(population), seed)
    y = population.y.numpy()
    logits = rng.normal(0, 0.3, (num_models, len(population), 3))
    logits[:, np.arange(len(population)), y] += rng.normal(0, 1.5, len(population)) + 1.5 * membership
    digests = sample_digests(population)
    manifest = {"population": {"fingerprint": population_fingerprint(digests), "size": len(population)}}
    return ReferenceBank(Path("memory"), manifest, membership, digests, y, logits.astype(np.float32))


def test_tuned_offline_a_is_the_best_on_the_grid_and_is_the_one_used():
    """tune_offline_a attacks reference model 0 with the others; its a has the highest AUC of the
    grid (recomputed here with sklearn), and the evaluator reports and uses that a."""
    data, population = lookup_audit()
    bank, config = varied_bank(population), RMIAConfig(mode="offline", tune_a=True)
    signals, members = config.signal(bank.logits, bank.labels), bank.membership[0]

    def auc(a: float) -> float:
        ratio = likelihood_ratio(signals[0], offline_reference(signals[1:], ~bank.membership[1:], a))
        return roc_auc_score(members, rmia_scores(ratio, ratio, config.gamma))

    grid = {float(a): auc(float(a)) for a in np.linspace(0.0, 1.0, 21)}  # the values tune_offline_a tries
    assert max(grid.values()) - min(grid.values()) > 0.1  # the choice matters on this bank
    tuned = tune_offline_a(bank, config)
    assert grid[tuned] == pytest.approx(max(grid.values()), abs=1e-12)
    assert 0.0 < tuned < 1.0  # an interior optimum (0.85 for seed 0), not an end of the grid
    model = confident_on(torch.arange(40), total=TOTAL)
    reported = RMIAEvaluator(config, bank=bank).evaluate(model, data).metrics
    fixed = RMIAEvaluator({"mode": "offline", "offline_a": tuned}, bank=bank).evaluate(model, data).metrics
    assert reported["offline_a"] == tuned and reported == fixed
