"""benchmarks/estimate_validity.py: estimated vs true Avg Gap on a hand-computed 4-record fixture."""

from __future__ import annotations

import json
import math

import pytest
from script_loader import load_benchmark

from amun_plugin.harness import Cell

# (method, forget seed, estimated gap, true gap): estimated [1, 2, 4, 3] vs true [1, 3, 5, 2].
RUNS = [("A", 0, 1.0, 1.0), ("B", 0, 2.0, 3.0), ("A", 1, 4.0, 5.0), ("B", 1, 3.0, 2.0)]
RETRAIN = {"accuracy.UA": 90.0, "accuracy.RA": 100.0, "accuracy.TA": 85.0, "rmia.FT_AUC": 50.0}


@pytest.fixture(scope="module")
def ev():
    return load_benchmark("estimate_validity.py")


def _with_id(record: dict) -> dict:
    record.setdefault("variant", "standard")
    record.update(original_seed=0, fraction=0.1, setting="with_retain", unlearn_seed=0, options={}, resolved="")
    record["id"] = Cell.from_record(record).id
    return record


def fixture_records(mode: str | None = None) -> list[dict]:
    """Two Retrain records and four unlearning runs; the true gap t is all in UA (UA term 4t), the
    estimate e all in MIA (MIA term 4e) for A, spread evenly over the four terms for B."""
    records = [_with_id({"kind": "retrain", "method": "Retrain", "forget_seed": s, "extra": {},
                         "metrics": dict(RETRAIN), "gaps": {"RMIA": 0.0}}) for s in (0, 1)]
    for method, seed, est, true in RUNS:
        terms = {"UA": 0.0, "RA": 0.0, "TA": 0.0, "MIA": 4 * est} if method == "A" else dict.fromkeys(
            ("UA", "RA", "TA", "MIA"), est)
        stats = {"calibration_estimated_gap": est} if method == "A" else {}
        records.append(_with_id({"kind": "unlearn", "method": method, "forget_seed": seed,
                                 "extra": {"tuning_mode": mode} if mode else {},
                                 "metrics": {**RETRAIN, "accuracy.UA": 90.0 - 4 * true}, "gaps": {"RMIA": true},
                                 "proxy": {"estimated_gap": est, "terms": terms}, "stats": stats}))
    return records


def test_hand_computed_correlations_errors_and_terms(ev) -> None:
    rows = ev.record_rows(fixture_records())
    assert [r["mode"] for r in rows] == ["oracle"] * 4 and [r["true"] for r in rows] == [1.0, 3.0, 5.0, 2.0]
    c = ev.correlations(rows)
    # Pearson: sum of products 5.5 / sqrt(5 * 8.75); Spearman: ranks of true (1, 3, 4, 2) vs (1, 2, 4, 3), d² = 2
    assert c["pearson"] == pytest.approx(5.5 / math.sqrt(43.75)) and c["spearman"] == pytest.approx(0.8)
    assert c["n_records"] == 4 and c["n_methods"] == 2 and c["method_spearman"] is None  # two methods: undefined
    e = ev.errors(rows)
    assert e["overall"]["mae"] == pytest.approx(0.75) and e["overall"]["bias"] == pytest.approx(-0.25)
    assert e["per_method"]["A"]["bias"] == pytest.approx(-0.5) and e["per_method"]["B"]["mae"] == pytest.approx(1.0)
    terms = ev.term_comparison(rows)
    # A: estimated MIA 4 * (1 + 4) / 2 = 10 vs true 0; true UA 4 * (1 + 5) / 2 = 12 vs estimated 0
    assert terms["A"]["MIA"]["estimated"] == pytest.approx(10.0) and terms["A"]["MIA"]["true"] == 0.0
    assert terms["A"]["UA"]["true"] == pytest.approx(12.0) and terms["A"]["UA"]["bias"] == pytest.approx(-12.0)
    assert ev.largest_term_errors(terms, k=1)[0] == terms["A"]["UA"] | {"method": "A", "term": "UA"}


def test_selection_by_lowest_estimate_against_the_best_single_method(ev) -> None:
    s = ev.select_by_estimate(ev.record_rows(fixture_records()))
    # set 0 picks A (estimate 1 < 2, true 1), set 1 picks B (3 < 4, true 2); B is the best method (mean 2.5 < 3)
    assert s["chosen"] == ["A", "B"] and s["selected_true"] == pytest.approx(1.5)
    assert s["best_method"] == "B" and s["best_true"] == pytest.approx(2.5) and s["per_set_best_true"] == 1.5
    # paired differences (-2, 0): mean -1, half-width t_{0.975,1} * sqrt(2) / sqrt(2) = 12.706
    assert s["difference"]["mean"] == pytest.approx(-1.0)
    assert s["difference"]["half_width"] == pytest.approx(12.7062, rel=1e-4)
    bias = ev.selection_bias(ev.record_rows(fixture_records()))
    assert bias["calibrated"]["methods"] == ["A"] and bias["calibrated_equal_to_estimate"] == 2


def test_a_wrong_gap_or_an_edited_id_is_refused(ev, tmp_path) -> None:
    records = fixture_records()
    records[2]["gaps"]["RMIA"] = 1.5
    with pytest.raises(ValueError, match="recomputed"):
        ev.record_rows(records)
    records = fixture_records()
    records[3]["forget_seed"] = 7
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    with pytest.raises(ValueError, match="id does not match"):
        ev.load_records(tmp_path / "results.jsonl")  # the bench's own loader (amun_plugin.harness)


def test_main_writes_readme_results_and_env(ev, tmp_path) -> None:
    for folder in ev.TABLES.values():
        (tmp_path / folder).mkdir()
        lines = fixture_records("retrain_free") + fixture_records()
        (tmp_path / folder / "results.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    out = tmp_path / "out"
    assert ev.main(["--results-dir", str(tmp_path), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results["table1 10%"]) == {"both modes", "oracle", "retrain_free"}
    assert results["table2 50%"]["both modes"]["correlations"]["n_records"] == 8
    env = json.loads((out / "env.json").read_text())
    assert set(env) >= {"python", "versions", "git_commit", "command"} and "--out" in env["command"]
    readme = (out / "README.md").read_text()
    assert "Coverage" in readme and "## 2. Choosing by the estimate" in readme
