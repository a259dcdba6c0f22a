"""The demo runs end to end (with a tiny recipe) and writes its report."""

from __future__ import annotations

import json
from dataclasses import replace

from amun_plugin.commands.demo import DemoConfig, run_demo


def test_demo_writes_table_json_and_histograms(tmp_path) -> None:
    config = replace(DemoConfig(), epochs=3, hidden=(32,), reference_models=2, output=str(tmp_path / "report"))
    lines: list[str] = []
    rows = run_demo(config, progress=False, echo=lines.append)
    assert list(rows) == ["original", "retrain", "amun_with_retain", "amun_without_retain"]
    for row in rows.values():
        assert 0 <= row["UA"] <= 100 and 0 <= row["FT_AUC"] <= 100 and row["seconds"] > 0
    assert rows["retrain"]["avg_gap"] is None and rows["amun_with_retain"]["avg_gap"] >= 0
    stats = json.loads((tmp_path / "report" / "metrics.json").read_text())["unlearn_stats"]
    assert all("calibrated_lr" in stats[label] for label in ("amun_with_retain", "amun_without_retain"))
    assert any("200 held out for AMUN's calibration" in line for line in lines)
    report = tmp_path / "report"
    assert (report / "confidence_histograms.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((report / "metrics.json").read_text())["rows"][0]["model"] == "original"
    assert "| original |" in (report / "report.md").read_text()
    assert any("| amun_without_retain |" in line for line in lines)
    assert (report / "models" / "amun_with_retain" / "report.md").exists()
    assert (report / "reference_bank" / "bank.json").exists()
