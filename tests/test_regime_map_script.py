"""benchmarks/regime_map.py: the retrained model's RA - UA and AMUN - l1-Sparse, paired over forget sets."""

from __future__ import annotations

import json

import pytest
from script_loader import load_benchmark

from amun_plugin.bench.records import Cell, CellKind, Setting


@pytest.fixture(scope="module")
def regime_map():
    return load_benchmark("regime_map.py")


def _record(kind: CellKind, method: str, seed: int, mode: str | None = None, **fields) -> str:
    cell = Cell(kind, method, forget_seed=seed, setting=Setting.WITH_RETAIN,
                extra={"tuning_mode": mode} if mode else {})
    return json.dumps({**cell.coords(), **fields})


def test_the_map_pairs_amun_and_l1_sparse_on_the_same_forget_sets(regime_map, tmp_path) -> None:
    lines = []
    for seed, (ua, amun, l1) in enumerate([(88.0, 3.0, 2.0), (86.0, 3.5, 2.0), (87.0, 2.5, 2.0)]):
        lines.append(_record(CellKind.RETRAIN, "Retrain", seed, metrics={"accuracy.RA": 100.0, "accuracy.UA": ua}))
        lines.append(_record(CellKind.UNLEARN, "AMUN", seed, None, gaps={"RMIA": amun}))
        lines.append(_record(CellKind.UNLEARN, "AMUN", seed, "retrain_free", gaps={"RMIA": amun - 1.0}))
        lines.append(_record(CellKind.UNLEARN, "l1-Sparse", seed, "retrain_free", gaps={"RMIA": l1}))
    lines.append(_record(CellKind.UNLEARN, "l1-Sparse", 7, "retrain_free", gaps={"RMIA": 9.0}))  # no AMUN pair
    without = Cell(CellKind.UNLEARN, "AMUN", forget_seed=0, setting=Setting.WITHOUT_RETAIN,
                   extra={"tuning_mode": "retrain_free"})  # the same label without D_R: not on the map
    lines.append(json.dumps({**without.coords(), "gaps": {"RMIA": 50.0}}))
    folder = tmp_path / "regime"
    folder.mkdir()
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    point = regime_map.regime_point(folder)
    assert point["retrained_ra_minus_ua"]["mean"] == pytest.approx(13.0)
    oracle = point["rows"]["AMUN (paper, oracle options)"]
    assert oracle["n"] == 3 and oracle["seeds"] == [0, 1, 2]
    assert oracle["difference"]["mean"] == pytest.approx(1.0)
    assert point["rows"]["AMUN (default, calibrated)"]["difference"]["mean"] == pytest.approx(0.0)
    methods = point["methods"]  # every method's own mean, over all of its forget sets (l1-Sparse: 4)
    assert methods["l1-Sparse"]["n"] == 4 and methods["l1-Sparse"]["mean"] == pytest.approx(15.0 / 4)
    assert methods["AMUN (default, calibrated)"]["mean"] == pytest.approx(2.0)
    assert methods["SalUn"]["n"] == 0 and methods["FT"]["mean"] is None
    assert regime_map.main([str(folder), "--out", str(tmp_path / "out")]) == 0
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| regime |" in table and (tmp_path / "out" / "map.png").stat().st_size > 0
    assert "3.75 ± " in table and "(4)" in table and "| — |" in table
