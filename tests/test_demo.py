"""The demo runs end to end (with a tiny recipe) and writes its report; its table's numbers are the
audit's: accuracies over the echoed set sizes, Avg Gap the mean distance to the retrained row."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from amun_plugin.commands.demo import DemoConfig, run_demo

GAP_COLUMNS = ("UA", "RA", "TA", "FT_AUC")  # the demo's Avg Gap terms (report.md says so)


def _sizes(lines: list[str]) -> dict[str, int]:
    """{"UA": |D_F|, "RA": |D_R|, "TA": |D_T|} from the demo's first line."""
    match = re.search(r"(\d+) train \((\d+) to forget\), (\d+) test", lines[0])
    assert match, lines[0]
    train, forget, test = (int(g) for g in match.groups())
    return {"UA": forget, "RA": train - forget, "TA": test}


def test_demo_writes_table_json_and_histograms(tmp_path) -> None:
    config = replace(DemoConfig(), epochs=3, hidden=(32,), reference_models=2, output=str(tmp_path / "report"))
    lines: list[str] = []
    rows = run_demo(config, progress=False, echo=lines.append)
    assert list(rows) == ["original", "retrain", "amun_with_retain", "amun_without_retain"]
    sizes = _sizes(lines)
    for row in rows.values():
        for column, n in sizes.items():  # each accuracy is a count of correct samples over its own set
            correct = row[column] * n / 100
            assert correct == pytest.approx(round(correct), abs=1e-6), (row["model"], column, row[column], n)
        assert row["seconds"] > 0
    assert rows["original"]["TA"] > 80  # digits, 10 classes: the original learned the task
    retrain = rows["retrain"]
    assert retrain["avg_gap"] is None
    for name in ("original", "amun_with_retain", "amun_without_retain"):
        expected = sum(abs(rows[name][c] - retrain[c]) for c in GAP_COLUMNS) / len(GAP_COLUMNS)
        assert rows[name]["avg_gap"] == pytest.approx(expected, abs=1e-9), name
    report = tmp_path / "report"
    for name, row in rows.items():  # the table shows the per-model audit's numbers
        audit = json.loads((report / "models" / name / "metrics.json").read_text())["metrics"]
        assert (row["UA"], row["FT_AUC"]) == (audit["accuracy.UA"], audit["rmia.FT_AUC"])
    stats = json.loads((report / "metrics.json").read_text())["unlearn_stats"]
    assert all("calibrated_lr" in stats[label] for label in ("amun_with_retain", "amun_without_retain"))
    assert any("200 held out for AMUN's calibration" in line for line in lines)
    assert (report / "confidence_histograms.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((report / "metrics.json").read_text())["rows"][0]["model"] == "original"
    assert "| original |" in (report / "report.md").read_text()
    assert any("| amun_without_retain |" in line for line in lines)
    assert (report / "models" / "amun_with_retain" / "report.md").exists()
    assert (report / "reference_bank" / "bank.json").exists()
