"""The reference bank: balanced membership, reuse, resume, refusal of other populations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audit_fixtures import TinyArchitecture, tiny_audit_data
from tiny_fixtures import TinyNet, make_tiny_data

from amun_plugin.errors import AmunError, InvalidInputError
from amun_plugin.evaluate.reference import (
    PopulationMismatchError,
    ReferenceBank,
    ReferenceBankError,
    balanced_membership,
    build_reference_bank,
    population_fingerprint,
    reference_train_seconds,
    sample_digests,
)
from amun_plugin.executors import LocalExecutor
from amun_plugin.models.checkpoint import load_checkpoint
from amun_plugin.training import TrainConfig

RECIPE = TrainConfig(epochs=2, batch_size=32, lr=0.1)


class CountingExecutor(LocalExecutor):
    """Runs jobs locally and counts them."""

    def __init__(self) -> None:
        self.jobs = 0

    def run(self, jobs, resources=None, on_result=None):  # type: ignore[override]
        self.jobs += len(jobs)
        return super().run(jobs, on_result=on_result)


def build(folder: Path, population, executor=None, num_models: int = 4, seed: int = 0) -> ReferenceBank:
    return build_reference_bank(folder, population, TinyArchitecture(), RECIPE, num_models=num_models, seed=seed,
                                executor=executor, progress=False)


@pytest.mark.parametrize("k,n", [(2, 9), (4, 11), (8, 30)])
def test_each_point_is_in_exactly_half_of_the_models(k, n):
    membership = balanced_membership(k, n, seed=3)
    assert membership.shape == (k, n)
    np.testing.assert_array_equal(membership.sum(axis=0), k // 2)
    assert set(membership.sum(axis=1)) <= {n // 2, (n + 1) // 2}
    np.testing.assert_array_equal(membership, balanced_membership(k, n, seed=3))
    assert not np.array_equal(membership, balanced_membership(k, n, seed=4))


@pytest.mark.parametrize("k", [0, 3, 1, 2.5])
def test_odd_or_bad_model_counts_are_refused(k):
    with pytest.raises(InvalidInputError, match="even"):
        balanced_membership(k, 10, seed=0)


def test_fingerprint_ignores_order_but_not_content():
    data = make_tiny_data(20)
    digests = sample_digests(data)
    shuffled = sample_digests(data.subset(np.random.default_rng(0).permutation(20)))
    assert population_fingerprint(digests) == population_fingerprint(shuffled)
    other = make_tiny_data(20, seed=5)
    assert population_fingerprint(sample_digests(other)) != population_fingerprint(digests)


def test_bank_is_built_once_then_reused_and_resumed(tmp_path):
    _, population = tiny_audit_data()
    executor = CountingExecutor()
    bank = build(tmp_path, population, executor)
    assert executor.jobs == 4 and bank.num_models == 4
    assert bank.logits.shape == (4, len(population), 3)
    np.testing.assert_array_equal(bank.membership.sum(axis=0), 2)
    again = build(tmp_path, population, executor)
    assert executor.jobs == 4  # nothing retrained
    np.testing.assert_array_equal(again.logits, bank.logits)
    (tmp_path / "logits_002.safetensors").unlink()
    with pytest.raises(ReferenceBankError, match="unfinished"):
        ReferenceBank.open(tmp_path)
    resumed = build(tmp_path, population, executor)
    assert executor.jobs == 5  # only the missing model
    np.testing.assert_allclose(resumed.logits, bank.logits, atol=1e-6)
    assert len(reference_train_seconds(tmp_path)) == 4


def test_reference_models_are_safetensors_trained_on_their_half(tmp_path):
    _, population = tiny_audit_data()
    bank = build(tmp_path, population, num_models=2)
    model, meta = load_checkpoint(tmp_path / "model_001.safetensors", lambda m: TinyNet())
    assert meta.extra["reference_index"] == 1 and meta.extra["population_fingerprint"] == bank.fingerprint
    logits = model.eval()(population.x).detach().numpy()
    np.testing.assert_allclose(logits, bank.logits[1], atol=1e-5)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))


def test_bank_of_another_population_is_refused(tmp_path):
    data, population = tiny_audit_data()
    bank = build(tmp_path, population, num_models=2)
    other = make_tiny_data(len(population), seed=9)
    with pytest.raises(PopulationMismatchError, match="another population"):
        build(tmp_path, other, num_models=2)
    with pytest.raises(AmunError, match="another population"):
        bank.check_population(data.test)
    reverse = np.arange(len(population))[::-1].copy()
    np.testing.assert_array_equal(bank.check_population(population.subset(reverse)), reverse)


def test_bank_with_other_settings_is_refused(tmp_path):
    _, population = tiny_audit_data()
    build(tmp_path, population, num_models=2)
    with pytest.raises(ReferenceBankError, match="num_models"):
        build(tmp_path, population, num_models=4)


def test_missing_bank_is_a_clear_error(tmp_path):
    with pytest.raises(ReferenceBankError, match="build one first"):
        ReferenceBank.open(tmp_path / "nothing")
