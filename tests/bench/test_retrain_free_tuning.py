"""The suites' retrain-free tuning mode: every method selected by the estimated gap on the
validation hold-out (never by a retrained model), the AMUN family calibrated on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_helpers import record_line, tiny_suite

from amun_plugin.bench.tuning import choose
from amun_plugin.errors import InvalidInputError


def _record(lr: float, gap: float, estimate: float) -> dict:
    return record_line("tune", "FT", fraction=0.1, options={"lr": lr}, gaps={"RMIA": gap},
                       proxy={"estimated_gap": estimate, "terms": {}, "measure": {}})


def test_each_mode_selects_by_its_own_score_and_retrain_free_never_reads_the_gap() -> None:
    config = tiny_suite(evaluation={"tables": [{"title": "RMIA", "mia": "accuracy.UA"}]})
    records = [_record(0.01, gap=1.0, estimate=5.0), _record(0.1, gap=3.0, estimate=2.0)]
    key = ("standard", 0.1, "with_retain", "FT")
    assert choose(config, records, "oracle")[key]["options"] == {"lr": 0.01}
    assert choose(config, records, "retrain_free")[key]["options"] == {"lr": 0.1}
    poisoned = [{**r, "gaps": None} for r in records]  # a retrain-free choice cannot depend on retrained models
    assert choose(config, poisoned, "retrain_free")[key]["options"] == {"lr": 0.1}
    with pytest.raises(InvalidInputError, match="no estimated gap"):
        choose(config, [{k: v for k, v in records[0].items() if k != "proxy"}], "retrain_free")


def test_unknown_tuning_modes_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="tuning.modes"):
        tiny_suite(tuning={"modes": ["oracle", "guess"]})


def test_a_suite_runs_both_modes_and_calibrates_amun_only_in_the_retrain_free_one(tmp_path: Path) -> None:
    from amun_plugin.bench.runner import run_suite

    config = tiny_suite(validation_size=30, tuning={"enabled": True, "modes": ["oracle", "retrain_free"]}, methods=[
        {"name": "ft", "label": "FT", "options": {"epochs": 1}, "grid": {"lr": [0.01, 0.05]}},
        {"name": "amun", "label": "AMUN", "adversarial": "own", "options": {"epochs": 1},
         "grid": {"lr": [0.01, 0.05]}},
        {"name": "amun", "label": "AMUN (grid)", "adversarial": "own", "options": {"epochs": 1, "calibration": None},
         "grid": {"lr": [0.01, 0.05]}}])
    folder = run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    amun = {r["tuning_mode"]: r for r in records if r["method"] == "AMUN"}
    assert "calibrated_lr" in amun["retrain_free"]["stats"] and "calibrated_lr" not in amun["oracle"]["stats"]
    assert all("proxy" in r for r in records if r["kind"] == "unlearn")
    for proxy in (r["proxy"] for r in records if r["kind"] == "unlearn"):  # the estimate's bootstrap interval
        assert proxy["interval"][0] <= proxy["interval"][1]
        assert set(proxy["intervals"]) == set(proxy["terms"])
    tuning = json.loads((folder / "tuning.json").read_text())
    assert {t["mode"] for t in tuning} == {"oracle", "retrain_free"}
    # with its calibration switched off, AMUN is grid-selected by the retrain-free rule, like FT
    grid = {r["tuning_mode"]: r for r in records if r["method"] == "AMUN (grid)"}
    choice = next(t for t in tuning if t["mode"] == "retrain_free" and t["method"] == "AMUN (grid)")
    assert "calibrated_lr" not in grid["retrain_free"]["stats"]
    assert grid["retrain_free"]["options"]["lr"] == choice["options"]["lr"]
    assert "lr" not in amun["retrain_free"]["options"]  # the calibrated one runs its fixed options, no grid point


def test_with_methods_keeps_the_named_methods_and_refuses_unknown_labels() -> None:
    config = tiny_suite()
    assert [m.label for m in config.with_methods(["AMUN"]).methods] == ["AMUN"]
    with pytest.raises(InvalidInputError, match="unknown method label"):
        config.with_methods(["DAU"])


def test_the_recorded_estimate_is_the_proxy_measure_s_and_carries_its_bootstrap_interval() -> None:
    import torch
    from torch import nn

    from amun_plugin.bench.cells import retrain_free_estimate
    from amun_plugin.data.base import LabeledData
    from amun_plugin.unlearn.calibration import estimated_gap, measure_proxy, retain_probe

    torch.manual_seed(0)
    def part(n: int, name: str) -> LabeledData:
        return LabeledData(torch.rand(n, 1, 4, 4), torch.randint(0, 3, (n,)), 3, name=name)
    forget, retain, holdout = part(40, "forget"), part(120, "retain"), part(30, "holdout")
    original = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    unlearned = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    record = retrain_free_estimate(holdout, original, unlearned, forget, retain, "cpu")
    probe = retain_probe(retain, len(holdout), 0)
    gap, terms = estimated_gap(measure_proxy(unlearned, forget, holdout, probe),
                               measure_proxy(original, forget, holdout, probe))
    assert record["estimated_gap"] == pytest.approx(gap) and record["terms"] == pytest.approx(terms)
    low, high = record["interval"]
    assert low <= high and set(record["intervals"]) == set(terms) == {"UA", "TA", "MIA", "RA"}
    assert all(lo <= hi for lo, hi in record["intervals"].values())
    assert high > low  # 40 / 30 / 30 samples: the resamples vary
