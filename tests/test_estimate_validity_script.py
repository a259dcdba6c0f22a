"""benchmarks/estimate_validity.py: estimated vs true Avg Gap on a hand-computed 4-record fixture; the
coverage of the recorded intervals and the confidence vs RMIA estimate on hand-made variants of it."""

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


def _with_id(record: dict, setting: str = "with_retain", fraction: float = 0.1) -> dict:
    record.setdefault("variant", "standard")
    record.update(original_seed=0, fraction=fraction, setting=setting, unlearn_seed=0, options={}, resolved="")
    record["id"] = Cell.from_record(record).id
    return record


def fixture_records(mode: str | None = None, setting: str = "with_retain", fraction: float = 0.1) -> list[dict]:
    """Two Retrain records and four unlearning runs; the true gap t is all in UA (UA term 4t), the
    estimate e all in MIA (MIA term 4e) for A, spread evenly over the four terms for B (no RA term
    without D_R)."""
    records = [_with_id({"kind": "retrain", "method": "Retrain", "forget_seed": s, "extra": {},
                         "metrics": dict(RETRAIN), "gaps": {"RMIA": 0.0}}, fraction=fraction) for s in (0, 1)]
    for method, seed, est, true in RUNS:
        terms = {"UA": 0.0, "RA": 0.0, "TA": 0.0, "MIA": 4 * est} if method == "A" else dict.fromkeys(
            ("UA", "RA", "TA", "MIA"), est)
        if setting != "with_retain":
            del terms["RA"]
        stats = {"calibration_estimated_gap": est} if method == "A" else {}
        records.append(_with_id({"kind": "unlearn", "method": method, "forget_seed": seed,
                                 "extra": {"tuning_mode": mode} if mode else {},
                                 "metrics": {**RETRAIN, "accuracy.UA": 90.0 - 4 * true}, "gaps": {"RMIA": true},
                                 "proxy": {"estimated_gap": est, "terms": terms}, "stats": stats},
                                setting, fraction))
    return records


def unlearning(records: list[dict]) -> list[dict]:
    """The four unlearning records of ``fixture_records``, in RUNS order (true gaps 1, 3, 5, 2)."""
    return [r for r in records if r["kind"] == "unlearn"]


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


def test_coverage_of_the_gap_and_per_method_inside_below_above(ev) -> None:
    records = fixture_records()
    # true gaps 1 (bound included: inside), 3 (below 3.5), 5 (above 4); the fourth's interval is not finite
    for r, span in zip(unlearning(records), ([1.0, 1.5], [3.5, 4.0], [1.0, 4.0], [float("nan"), 2.0])):
        r["proxy"]["interval"] = span
    c = ev.coverage(ev.record_rows(records))
    assert c["n_records"] == 4 and c["gap"]["n"] == 3
    assert [c["gap"][s] for s in ("inside", "below", "above")] == pytest.approx([1 / 3] * 3)
    assert c["per_method"]["A"] == {"n": 2, "inside": 0.5, "below": 0.0, "above": 0.5}
    assert c["per_method"]["B"] == {"n": 1, "inside": 0.0, "below": 1.0, "above": 0.0}
    assert all(t["n"] == 0 for t in c["terms"].values())  # no term intervals recorded


def test_coverage_of_each_term(ev) -> None:
    records = fixture_records()
    a0, b0 = unlearning(records)[:2]
    # true terms: A on set 0: UA 4, MIA 0; B on set 0: UA 12
    a0["proxy"]["intervals"] = {"UA": [3.0, 5.0], "MIA": [1.0, 2.0]}  # UA inside, MIA below
    b0["proxy"]["intervals"] = {"UA": [0.0, 10.0]}  # UA above
    terms = ev.coverage(ev.record_rows(records))["terms"]
    assert terms["UA"] == {"n": 2, "inside": 0.5, "below": 0.0, "above": 0.5}
    assert terms["MIA"] == {"n": 1, "inside": 0.0, "below": 1.0, "above": 0.0}
    assert terms["RA"] == {"n": 0, "inside": None, "below": None, "above": None}


def test_a_table_without_intervals_says_so_instead_of_a_share(ev) -> None:
    c = ev.coverage(ev.record_rows(fixture_records()))
    assert c["gap"] == {"n": 0, "inside": None, "below": None, "above": None}
    text = ev.render_coverage({"old table": c}, c)
    assert f"old table: {ev.NO_INTERVAL}" in text and "no record of this table carries an interval" in text
    assert "0%" not in text and "| old table" not in text  # no share, no table row


def test_confidence_against_rmia_estimate_on_the_same_records(ev) -> None:
    records = fixture_records()
    # RMIA estimates 1, 3.5, 4.5, 2 (errors 0, +0.5, -0.5, 0) against true 1, 3, 5, 2; MIA terms 0, 2, 0, 2
    for r, est, mia in zip(unlearning(records), (1.0, 3.5, 4.5, 2.0), (0.0, 2.0, 0.0, 2.0)):
        r["proxy_rmia"] = {"estimated_gap": est, "terms": {"UA": 0.0, "RA": 0.0, "TA": 0.0, "MIA": mia}}
    unlearning(records)[0]["proxy_rmia"]["interval"] = [0.0, 0.5]  # true 1: above
    c = ev.compare_estimates(ev.record_rows(records))
    conf, rmia = c["proxy"], c["proxy_rmia"]
    assert c["n"] == 4
    assert conf["pearson"] == pytest.approx(5.5 / math.sqrt(43.75)) and conf["spearman"] == pytest.approx(0.8)
    assert conf["mae"] == pytest.approx(0.75) and conf["bias"] == pytest.approx(-0.25)
    # confidence MIA terms 4, 2, 16, 3 against true 0: mean |error| = mean error = 25 / 4
    assert conf["mia_mae"] == pytest.approx(6.25) and conf["mia_bias"] == pytest.approx(6.25)
    assert conf["coverage"]["n"] == 0
    # deviations from the mean 2.75: estimate (-1.75, .75, 1.75, -.75), true (-1.75, .25, 2.25, -.75)
    assert rmia["pearson"] == pytest.approx(7.75 / math.sqrt(7.25 * 8.75)) and rmia["spearman"] == pytest.approx(1.0)
    assert rmia["mae"] == pytest.approx(0.25) and rmia["bias"] == pytest.approx(0.0)
    assert rmia["mia_mae"] == pytest.approx(1.0) and rmia["mia_bias"] == pytest.approx(1.0)
    assert rmia["coverage"] == {"n": 1, "inside": 0.0, "below": 0.0, "above": 1.0}
    # |RMIA error| - |confidence error|: 0 - 0, 0.5 - 1, 0.5 - 1, 0 - 1
    assert c["abs_error_difference"]["mean"] == pytest.approx(-0.5)
    assert ev.compare_estimates(ev.record_rows(fixture_records())) == {"n": 0}


def test_a_table_keeps_its_setting_and_fraction_and_checks_the_ra_term(ev) -> None:
    records = fixture_records(fraction=0.5) + fixture_records(setting="without_retain", fraction=0.5)
    kept = ev.select_records(records, ev.Table("f", "without_retain", 0.5))
    assert [r["setting"] for r in unlearning(kept)] == ["without_retain"] * 4 and len(kept) == 8  # Retrain kept
    assert unlearning(ev.select_records(records, ev.Table("f", "with_retain", 0.1))) == []
    unlearning(records)[0]["setting"] = "without_retain"  # an RA term without D_R
    with pytest.raises(ValueError, match="estimate terms"):
        ev.select_records(records, ev.Table("f", "without_retain", 0.5))


def test_main_writes_readme_results_and_env(ev, tmp_path) -> None:
    auto = {t.folder for t in ev.TABLES.values()} - {t.folder for t in ev.issue_tables(ev.TABLES).values()}
    for table in ev.TABLES.values():
        if table.folder in auto:
            continue
        (tmp_path / table.folder).mkdir()
        lines = (fixture_records("retrain_free", table.setting, table.fraction)
                 + fixture_records(None, table.setting, table.fraction))
        (tmp_path / table.folder / "results.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    lines = fixture_records("retrain_free")  # the auto folder: with D_R at 10% only, with intervals
    for r in unlearning(lines):
        r["proxy"]["interval"] = [0.0, 10.0]
    for folder in auto:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    out = tmp_path / "out"
    assert ev.main(["--results-dir", str(tmp_path), "--out", str(out)]) == 0
    written = json.loads((out / "results.json").read_text())
    results = written["results"]
    assert set(results["table1 10%"]) == {"both modes", "oracle", "retrain_free"}
    assert results["table2 50%"]["both modes"]["correlations"]["n_records"] == 8
    assert written["skipped"] == ["auto table2 10%", "auto table1 50%", "auto table2 50%"]
    assert written["coverage"]["tables"]["auto table1 10%"]["gap"]["inside"] == 1.0
    assert written["coverage"]["pooled"]["gap"]["n"] == 4
    env = json.loads((out / "env.json").read_text())
    assert set(env) >= {"python", "versions", "git_commit", "command"} and "--out" in env["command"]
    readme = (out / "README.md").read_text()
    assert "Coverage" in readme and "## 2. Choosing by the estimate" in readme
    assert f"table2 50%: {ev.NO_INTERVAL}" in readme and "auto table2 10%: skipped" in readme
    assert "| auto table1 10% | 4 | 4 | 100% | 0% | 0% |" in readme


def test_a_rows_latest_record_of_a_forget_set_supersedes_its_earlier_ones(ev) -> None:
    records = fixture_records()
    later = dict(unlearning(records)[0], gaps={"RMIA": 9.0})  # row A, forget set 0, again (a new revision)
    kept = unlearning(ev.select_records(records + [later], ev.Table("f", "with_retain", 0.1)))
    assert len(kept) == 4 and [r["gaps"]["RMIA"] for r in kept if r["method"] == "A"] == [5.0, 9.0]
