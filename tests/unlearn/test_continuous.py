"""Continuous unlearning: requests exclude what was forgotten, AMUN reuses D_A from the original
model while AMUN-A recomputes it on the current one, lazy batching, any unlearner in a session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import amun_plugin
from amun_plugin.errors import InvalidInputError
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn import amun as amun_module
from amun_plugin.unlearn.continuous import ContinuousSession

REQUESTS = [[0, 1, 2, 3], [3, 4, 5, 6], [7, 8, 9]]


@pytest.fixture(scope="module")
def host():
    return get_plugin_manager(autoload=False)


@pytest.fixture
def searches(monkeypatch):
    """Every call of Algorithm 1: (a copy of the attacked model's weights, number of samples)."""
    calls = []
    original = amun_module.nearest_adversarial

    def spy(model, data, *args, **kwargs):
        calls.append(({k: v.clone() for k, v in model.state_dict().items()}, len(data)))
        return original(model, data, *args, **kwargs)

    monkeypatch.setattr(amun_module, "nearest_adversarial", spy)
    return calls


def _same(state, model) -> bool:
    return all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_amun_searches_only_the_original_model_and_amun_a_the_current_one(host, tiny_model, tiny_data,
                                                                          searches) -> None:
    amun = ContinuousSession(tiny_model, tiny_data, "amun", options={"epochs": 1}, plugins=host)
    amun.run(REQUESTS)
    assert [n for _, n in searches] == [4, 3, 3]  # each sample searched once, lazily
    assert all(_same(state, tiny_model) for state, _ in searches)
    assert [r.adversarial_source for r in amun.history] == ["original"] * 3
    searches.clear()
    amun_a = ContinuousSession(tiny_model, tiny_data, "amun_a", options={"epochs": 1}, plugins=host)
    models = [amun_a.model]
    for request in REQUESTS:
        amun_a.request(request)
        models.append(amun_a.model)
    assert [n for _, n in searches] == [4, 3, 3]
    assert all(_same(state, model) for (state, _), model in zip(searches, models[:3], strict=True))
    assert not _same(searches[1][0], tiny_model)  # recomputed on the updated model
    assert [r.adversarial_source for r in amun_a.history] == ["current"] * 3


def test_precomputing_searches_all_future_requests_at_once(host, tiny_model, tiny_data, searches) -> None:
    session = ContinuousSession(tiny_model, tiny_data, "amun_salun", options={"epochs": 1}, plugins=host)
    session.precompute_adversarial(np.concatenate([np.asarray(r) for r in REQUESTS]))
    session.run(REQUESTS)
    assert [n for _, n in searches] == [10]
    assert all(r.stats["adversarial_reused"] for r in session.history)


def test_each_request_excludes_everything_forgotten_before(host, tiny_model, tiny_data) -> None:
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    session = ContinuousSession(tiny_model, tiny_data, "rl", options={"epochs": 1}, plugins=host, seed=5)
    records = session.run(REQUESTS + [[0, 1]])
    assert [r.forget_indices.tolist() for r in records] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [r.dropped for r in records] == [0, 1, 0]
    assert [r.retain_size for r in records] == [86, 83, 80]
    assert session.forgotten.tolist() == list(range(10))
    assert _same(before, tiny_model)  # the caller's model is never touched
    assert not _same(before, session.model)


def test_lazy_batching_waits_for_k_samples(host, tiny_model, tiny_data) -> None:
    session = ContinuousSession(tiny_model, tiny_data, "ga", options={"epochs": 1}, use_retain=False,
                                min_batch=6, plugins=host)
    assert session.request([0, 1, 2]) is None and session.pending.tolist() == [0, 1, 2]
    record = session.request([3, 4, 5, 6])
    assert record is not None and record.forget_indices.tolist() == list(range(7)) and record.retain_size is None
    assert session.request([7]) is None
    assert session.flush().forget_indices.tolist() == [7] and session.flush() is None
    assert [r.index for r in session.history] == [0, 1]


def test_a_session_of_one_request_gives_the_same_model_with_amun_and_amun_a(host, tiny_model, tiny_data) -> None:
    models = []
    for method in ("amun", "amun_a"):
        session = ContinuousSession(tiny_model, tiny_data, method, options={"epochs": 1}, plugins=host, seed=3)
        session.request([0, 1, 2, 3])
        models.append(session.model)
    assert _same(models[0].state_dict(), models[1])
    assert not _same(tiny_model.state_dict(), models[0])


def test_amun_a_runs_as_a_single_request_and_bad_input_is_refused(host, tiny_model, tiny_data) -> None:
    result = amun_plugin.unlearn(tiny_model, tiny_data.subset(range(6)), method="amun_a", plugins=host, epochs=1)
    assert result.method == "amun_a" and result.stats["adversarial"]["n"] == 6
    with pytest.raises(InvalidInputError, match="out of range"):
        ContinuousSession(tiny_model, tiny_data, "rl", plugins=host).request([200])
    with pytest.raises(InvalidInputError, match="does not reuse"):
        ContinuousSession(tiny_model, tiny_data, "amun_a", plugins=host).precompute_adversarial([0])


def test_a_session_calibrates_every_amun_request_on_its_holdout(host, tiny_model, tiny_data) -> None:
    from amun_plugin.data.base import LabeledData

    generator = torch.Generator().manual_seed(7)
    holdout = LabeledData(torch.rand(30, 1, 4, 4, generator=generator),
                          torch.randint(0, 3, (30,), generator=generator), 3, "holdout")
    session = ContinuousSession(tiny_model, tiny_data, "amun_a", holdout=holdout, plugins=host)
    records = session.run([[0, 1, 2, 3], [4, 5, 6]])
    assert len(records) == 2
    assert all("calibrated_lr" in record.stats for record in records)
    assert all(record.stats["calibration"]["holdout_size"] == 30 for record in records)


def test_calibrating_against_the_original_keeps_one_baseline_for_the_whole_session(host, tiny_model,
                                                                                   tiny_data) -> None:
    from amun_plugin.data.base import LabeledData
    from amun_plugin.unlearn.calibration import measure_proxy

    generator = torch.Generator().manual_seed(7)
    holdout = LabeledData(torch.rand(30, 1, 4, 4, generator=generator),
                          torch.randint(0, 3, (30,), generator=generator), 3, "holdout")
    requests = [[0, 1, 2, 3], [4, 5, 6]]

    def key(measure):  # what the baseline model's measure says about H, and D_F vs H
        return measure["holdout_accuracy"], round(measure["forget_holdout_auc"], 6)

    baselines = {}
    for against in ("current", "original"):
        session = ContinuousSession(tiny_model, tiny_data, "amun_a", holdout=holdout, plugins=host,
                                    options={"variant": "full"}, calibrate_against=against)  # one union: all of H
        models = [session.model]
        for request in requests:
            session.request(request)
            models.append(session.model)
        baselines[against] = [key(r.stats["calibration"]["original"]["measure"]) for r in session.history]
        givers = models[:2] if against == "current" else [tiny_model, tiny_model]  # each request's baseline model
        expected = [key(measure_proxy(m, tiny_data.subset(r), holdout).as_dict())
                    for m, r in zip(givers, requests, strict=True)]
        assert baselines[against] == expected
    assert baselines["current"][0] == baselines["original"][0]
    assert baselines["current"][1] != baselines["original"][1]  # the first request moved the model
    with pytest.raises(InvalidInputError, match="needs holdout"):
        ContinuousSession(tiny_model, tiny_data, "amun", calibrate_against="original", plugins=host)
    with pytest.raises(InvalidInputError, match="calibrate_against"):
        ContinuousSession(tiny_model, tiny_data, "amun", holdout=holdout, calibrate_against="session", plugins=host)
