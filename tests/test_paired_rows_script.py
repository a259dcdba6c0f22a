"""benchmarks/paired_rows.py: rows' Avg Gaps and costs, and paired differences to the best baseline."""

from __future__ import annotations

import json

import pytest
from script_loader import load_benchmark

from amun_plugin.bench.records import Cell, CellKind, Setting


@pytest.fixture(scope="module")
def paired_rows():
    return load_benchmark("paired_rows.py")


def _record(method: str, seed: int, gap: float, seconds: float) -> str:
    cell = Cell(CellKind.UNLEARN, method, forget_seed=seed, setting=Setting.WITH_RETAIN,
                extra={"tuning_mode": "retrain_free"})
    return json.dumps({**cell.coords(), "gaps": {"RMIA": gap}, "seconds": seconds, "retrain_seconds": 100.0})


def test_the_difference_is_paired_and_the_best_baseline_is_the_lowest_mean(paired_rows, tmp_path) -> None:
    lines = []
    for seed, (ours, a, b) in enumerate([(2.0, 3.0, 5.0), (4.3, 5.5, 5.0), (2.7, 3.5, 5.0)]):
        lines += [_record("AMUN", seed, ours, 20.0), _record("l1", seed, a, 10.0), _record("FT", seed, b, 30.0)]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    assert paired_rows.main([str(tmp_path), "--row", "AMUN", "--baseline", "l1", "--baseline", "FT"]) == 0
    cell = json.loads((tmp_path / "comparison.json").read_text())["cells"][0]
    assert cell["best_baseline"] == "l1"  # mean 4.0 < 5.0
    vs = cell["comparisons"]["AMUN"]["vs_best"]
    assert vs["n"] == 3 and vs["mean"] == pytest.approx(-1.0) and vs["excludes_zero"]  # -1.0, -1.2, -0.8
    assert cell["rows"]["AMUN"]["time_over_retrain"][0] == pytest.approx(0.2)
    assert "Δ vs l1" in (tmp_path / "comparison.md").read_text()


def test_an_earlier_commit_of_a_row_is_read_as_a_row_of_its_own(paired_rows, tmp_path) -> None:
    lines = []
    for seed, (old, new) in enumerate([(3.0, 2.0), (4.0, 3.5), (5.0, 4.0)]):
        for commit, gap in (("aaa111", old), ("bbb222", new)):
            lines.append(json.dumps({**json.loads(_record("auto", seed, gap, 10.0)), "git_commit": commit}))
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    assert paired_rows.main([str(tmp_path), "--row", "auto", "--baseline", "auto (old)",
                             "--as", "auto@aaa=auto (old)"]) == 0
    cell = json.loads((tmp_path / "comparison.json").read_text())["cells"][0]
    assert cell["rows"]["auto (old)"]["avg_gap"][0] == pytest.approx(4.0)
    assert cell["rows"]["auto"]["avg_gap"][0] == pytest.approx(9.5 / 3)
    assert cell["comparisons"]["auto"]["vs_best"]["mean"] == pytest.approx(-2.5 / 3)
    with pytest.raises(ValueError, match="LABEL@COMMIT=NEW"):
        paired_rows.relabelled([], ["auto=new"])
