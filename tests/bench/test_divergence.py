"""An unlearning run that leaves non-finite weights is refused (library) and recorded (bench)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from bench_helpers import record_line, tiny_suite

import amun_plugin
from amun_plugin.bench.suite_tables import suite_tables, table_rows
from amun_plugin.bench.tuning import choose, selection_score
from amun_plugin.errors import AmunError, UnlearningDivergedError
from tests.tiny_fixtures import make_memorising


def test_a_diverged_run_raises_and_leaves_the_input_model_alone() -> None:
    model, members, _ = make_memorising()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    forget = members.subset(range(16), name="forget")
    host = amun_plugin.get_plugin_manager(autoload=False)
    with pytest.raises(UnlearningDivergedError, match=r"ga diverged at lr 1e\+06: .* NaN or inf") as info:
        amun_plugin.unlearn(model, forget, None, method="ga", lr=1e6, epochs=5, plugins=host)
    assert isinstance(info.value, AmunError)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    result = amun_plugin.unlearn(model, forget, None, method="ga", lr=1e-3, epochs=1, plugins=host)
    assert all(bool(torch.isfinite(p).all()) for p in result.model.parameters())


def _record(method: str, seed: int, gap: float | None, options: dict) -> dict:
    kind = "retrain" if method == "Retrain" else "unlearn"
    base = record_line(kind, method, fraction=0.1, forget_seed=seed, options=options, seconds=1.0)
    if gap is None:  # what cells.unlearn_record writes for a diverged run: no retraining time, statistics or proxy
        kept = {k: v for k, v in base.items() if k not in ("retrain_seconds", "stats")}
        return {**kept, "diverged": "ga diverged at lr 0.1", "metrics": {}, "gaps": {}}
    return {**base, "metrics": {"accuracy.UA": 90.0, "accuracy.RA": 100.0, "accuracy.TA": 90.0,
                                "confidence_mia.FT_AUC": 50.0}, "gaps": {"conf": gap}}


def test_the_bench_never_chooses_a_diverged_point_and_tables_name_it() -> None:
    config = tiny_suite(grid={"fractions": [0.1]})
    assert math.isinf(selection_score(config, _record("GA", 0, None, {"lr": 0.1})))
    tuning = [_record("GA", 1000, None, {"lr": 0.1}), _record("GA", 1000, 7.0, {"lr": 0.001})]
    assert choose(config, tuning)[("standard", 0.1, "with_retain", "GA")]["options"] == {"lr": 0.001}
    records = [_record("Retrain", s, 0.0, {}) for s in (0, 1)] + [_record("FT", 0, 3.0, {}), _record("FT", 1, None, {})]
    text = suite_tables(config, records)  # would raise on the diverged record's missing gap if it were tabled
    assert "FT (with retain, forget 10%): 1 run(s) diverged" in text
    rows = {r["method"]: r for r in table_rows(config, [r for r in records if not r.get("diverged")])}
    assert rows["FT"]["runs"] == 1


def test_a_suite_records_a_diverged_cell_and_finishes(tmp_path) -> None:
    from amun_plugin.bench.runner import run_suite

    config = tiny_suite(grid={"forget_seeds": [0]}, methods=[{"name": "ga", "label": "GA", "options": {"lr": 1e6}}])
    folder = run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    diverged = [r for r in records if r.get("diverged")]
    assert len(diverged) == 1 and diverged[0]["method"] == "GA" and "NaN or inf" in diverged[0]["diverged"]
    assert "GA (with retain, forget 5%): 1 run(s) diverged" in (folder / "table.md").read_text()
