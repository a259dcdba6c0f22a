"""Table statistics: t-intervals, paired differences by seeds, tuning modes, original summary."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from bench_helpers import record_line, tiny_suite

from amun_plugin.bench.stats import format_interval, paired_difference, ratio_to_best, t_interval
from amun_plugin.bench.suite_tables import DELTA_COLUMN, family_rows, original_summary, suite_tables, table_rows
from amun_plugin.errors import InvalidInputError


def _run(method: str, forget: int, gap: float, unlearn: int = 0, **extra: Any) -> dict[str, Any]:
    kind = {"Retrain": "retrain", "Original": "original"}.get(method, "unlearn")
    return record_line(kind, method, forget_seed=forget, unlearn_seed=unlearn, seconds=1.0,
                       metrics={"accuracy.UA": 90.0, "accuracy.RA": 100.0, "accuracy.TA": 90.0,
                                "confidence_mia.FT_AUC": 50.0 + gap}, gaps={"conf": gap}, **extra)


def test_t_interval_is_students_and_needs_finite_values() -> None:
    interval = t_interval([1.0, 2.0, 3.0, 4.0])
    # t_{0.975, 3} = 3.1824, s = 1.2910, n = 4
    assert interval.mean == 2.5 and interval.half_width == pytest.approx(3.1824 * 1.2910 / 2, rel=1e-4)
    assert interval.excludes_zero and not t_interval([-1.0, 2.0, 3.0]).excludes_zero
    assert format_interval(t_interval([-1.0, -1.2, -0.8]), signed=True, mark=True) == "-1.00 ± 0.50 *"
    assert format_interval(t_interval([3.0])) == "3.00 ± n/a" and not t_interval([3.0]).excludes_zero
    assert interval.as_dict() == {"mean": 2.5, "n": 4, "half_width": interval.half_width}
    assert t_interval([3.0]).as_dict() == {"mean": 3.0, "n": 1, "half_width": None}  # JSON has no NaN
    for bad in ([], [float("nan")]):
        with pytest.raises(InvalidInputError):
            t_interval(bad)


def test_paired_difference_pairs_records_by_seeds_not_by_order() -> None:
    amun = [_run("AMUN", f, g) for f, g in ((0, 1.0), (1, 5.0), (2, 9.0))]
    ft = [_run("FT", f, g) for f, g in ((2, 9.4), (0, 1.6), (1, 5.5))]  # shuffled: +0.6, +0.5, +0.4
    diff = paired_difference(ft, amun, lambda r: r["gaps"]["conf"])
    assert diff is not None and diff.mean == pytest.approx(0.5) and diff.n == 3
    assert diff.half_width == pytest.approx(4.3027 * 0.1 / 3 ** 0.5, rel=1e-4) and diff.excludes_zero
    # unpaired, the two means' intervals overlap widely: only pairing tells them apart
    assert t_interval([1.0, 5.0, 9.0]).half_width > 9
    # a record without unlearn seed (Original) pairs with every run of its forget set
    original = [_run("Original", f, 10.0) for f in range(3)]
    several = [_run("AMUN", f, 1.0 + u, unlearn=u) for f in range(3) for u in range(2)]
    assert paired_difference(original, several, lambda r: r["gaps"]["conf"]).n == 6
    assert paired_difference([_run("FT", 7, 1.0)], amun, lambda r: r["gaps"]["conf"]) is None
    with pytest.raises(InvalidInputError, match="share the coordinates"):
        paired_difference(amun + amun[:1], amun, lambda r: r["gaps"]["conf"])


def test_tables_group_by_tuning_mode_a_missing_mode_being_oracle() -> None:
    config = tiny_suite()
    records = [_run("Retrain", f, 0.0) for f in range(2)]
    records += [_run("AMUN", f, 1.0) for f in range(2)]  # no tuning_mode: oracle
    records += [_run("AMUN", f, 3.0 + f, tuning_mode="retrain_free") for f in range(2)]
    records += [_run("FT", f, 2.0, tuning_mode="oracle") for f in range(2)]
    oracle = {r["method"]: r for r in table_rows(config, records, fraction=0.05)}
    free = {r["method"]: r for r in table_rows(config, records, fraction=0.05, tuning_mode="retrain_free")}
    assert set(oracle) == {"Retrain", "FT", "AMUN"} and set(free) == {"Retrain", "AMUN"}
    assert oracle["AMUN"]["Avg Gap"] == "**1.00 ± 0.00**" and free["AMUN"]["Avg Gap"].startswith("3.50 ± ")
    assert oracle["FT"][DELTA_COLUMN] == "+1.00 ± 0.00 *"
    text = suite_tables(config, records)
    assert "tuning: oracle" in text and "tuning: retrain-free" in text
    single = suite_tables(config, [r for r in records if r.get("tuning_mode") != "retrain_free"])
    assert "tuning:" not in single and DELTA_COLUMN in single


def test_original_summary_states_saturation_and_rt_auc() -> None:
    record = _run("Original", 0, 5.0, original={"train_accuracy": 100.0, "test_accuracy": 86.6,
                                                "saturated_fraction": 29.7, "train_seconds": 3.0})
    record["metrics"]["rmia.RT_AUC"] = 63.1
    text = original_summary(tiny_suite(), [record])
    assert "seed 0): train 100.0%, test 86.6%, saturated 29.7%, RMIA RT AUC 63.1%" in text


def test_runs_for_half_width_is_the_first_n_whose_t_interval_fits() -> None:
    from amun_plugin.bench.stats import runs_for_half_width

    values = [1.0, 2.0, 3.0, 4.0, 5.0]  # s = 1.5811
    # n = 11: t_10 = 2.2281 -> 2.2281 * 1.5811 / sqrt(11) = 1.0622; n = 12: 2.2010 * 1.5811 / sqrt(12) = 1.0046;
    # n = 13: 2.1788 * 1.5811 / sqrt(13) = 0.9554
    assert runs_for_half_width(values, 1.0) == 13
    assert runs_for_half_width(values, 1.01) == 12
    assert runs_for_half_width([2.0, 2.0], 0.1) == 2  # no spread: two runs suffice
    with pytest.raises(InvalidInputError):
        runs_for_half_width([1.0], 0.5)


def test_a_by_mode_table_says_when_no_affordable_number_of_runs_would_do() -> None:
    from amun_plugin.bench.suite_tables import _runs_needed

    assert _runs_needed([0.0, 100.0], most=50) == "> 50"
    assert _runs_needed([1.0]) == "—"


def test_ratio_to_best_divides_by_the_per_sample_minimum_over_the_kept_samples() -> None:
    values = np.array([[1.0, 4.0, 3.0, 9.0],
                       [2.0, 2.0, 6.0, 1.0]])
    keep = np.array([True, True, True, False])
    ratios = ratio_to_best(values, keep)
    assert ratios.tolist() == [[1.0, 2.0, 1.0], [2.0, 1.0, 2.0]]
    with pytest.raises(InvalidInputError, match="methods, n"):
        ratio_to_best(values, keep[:3])


def test_each_amun_family_row_is_paired_with_the_best_baseline() -> None:
    methods = [{"name": "ft", "label": "FT"}, {"name": "rl", "label": "RL"}, {"name": "amun", "label": "AMUN"},
               {"name": "amun", "label": "AMUN (adv only)", "options": {"variant": "adv_only"}}]
    config = tiny_suite(methods=methods)
    records = [_run("Retrain", f, 0.0) for f in range(3)] + [_run("Original", f, 9.0) for f in range(3)]
    records += [_run("FT", f, g) for f, g in ((0, 4.0), (1, 5.0), (2, 6.0))]
    records += [_run("RL", f, g) for f, g in ((0, 2.0), (1, 3.0), (2, 4.1))]  # best baseline: mean 3.03
    records += [_run("AMUN", f, g) for f, g in ((0, 3.0), (1, 4.0), (2, 5.0))]  # RL + 1.0, + 1.0, + 0.9
    records += [_run("AMUN (adv only)", f, g) for f, g in ((0, 2.5), (1, 2.0), (2, 5.0))]  # + 0.5, - 1.0, + 0.9
    rows = {r["method"]: r for r in family_rows(config, records, fraction=0.05)}
    assert list(rows) == ["AMUN", "AMUN (adv only)"]
    assert {r["best baseline"] for r in rows.values()} == {"RL"} and rows["AMUN"]["pairs"] == 3
    # differences 1.0, 1.0, 0.9: mean 0.9667, s = 0.0577, t_{0.975, 2} = 4.3027
    assert rows["AMUN"]["Δ method − best baseline"] == "+0.97 ± 0.14 *"
    assert not rows["AMUN (adv only)"]["Δ method − best baseline"].endswith("*")
    assert "AMUN family vs the best baseline" in suite_tables(config, records)
    assert family_rows(config, [r for r in records if r["method"] not in ("FT", "RL")], fraction=0.05) == []
