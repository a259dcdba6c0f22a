"""The demo runs end to end (with a tiny recipe) and writes its report; its table's numbers are the
audit's: accuracies over the echoed set sizes, Avg Gap the mean distance to the retrained row of the
same forget set, and the summary the mean (with a 95% t interval) over the forget sets."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from amun_plugin.commands.demo import FT_VS_RETRAIN, GAP_VS_ORIGINAL, MODELS, DemoConfig, run_demo

GAP_COLUMNS = ("UA", "RA", "TA", "FT_AUC")  # the demo's Avg Gap terms (report.md says so)


def _sizes(lines: list[str]) -> dict[str, int]:
    """{"UA": |D_F|, "RA": |D_R|, "TA": |D_T|} from the demo's first line."""
    match = re.search(r"(\d+) train \((\d+) retained, (\d+) to forget, \d+ forget set\(s\)\), (\d+) test", lines[0])
    assert match, lines[0]
    train, retain, forget, test = (int(g) for g in match.groups())
    assert retain + forget == train
    return {"UA": forget, "RA": retain, "TA": test}


def test_demo_writes_table_json_and_histograms(tmp_path) -> None:
    config = replace(DemoConfig(), epochs=3, hidden=(32,), reference_models=2, forget_sets=2,
                     output=str(tmp_path / "report"))
    lines: list[str] = []
    result = run_demo(config, progress=False, echo=lines.append)
    per_set, summary = result["forget_sets"], result["summary"]
    assert len(per_set) == 2 and list(summary) == list(MODELS)
    sizes = _sizes(lines)
    for rows in per_set:
        assert list(rows) == list(MODELS)
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
    assert per_set[0]["original"]["UA"] is not None
    for name in MODELS:  # the summary is the mean over the forget sets, paired differences per set
        for column in ("UA", "FT_AUC", "seconds"):
            assert summary[name][column].mean == pytest.approx(sum(r[name][column] for r in per_set) / 2)
            assert summary[name][column].n == 2
    gaps = [r["amun_with_retain"]["avg_gap"] - r["original"]["avg_gap"] for r in per_set]
    assert summary["amun_with_retain"][GAP_VS_ORIGINAL].mean == pytest.approx(sum(gaps) / 2)
    fts = [r["original"]["FT_AUC"] - r["retrain"]["FT_AUC"] for r in per_set]
    assert summary["original"][FT_VS_RETRAIN].mean == pytest.approx(sum(fts) / 2)
    assert summary["retrain"]["avg_gap"] is None
    report = tmp_path / "report"
    for name, row in per_set[0].items():  # the first forget set's rows are the per-model audit's numbers
        audit = json.loads((report / "models" / name / "metrics.json").read_text())["metrics"]
        assert (row["UA"], row["FT_AUC"]) == (audit["accuracy.UA"], audit["rmia.FT_AUC"])
    metrics = json.loads((report / "metrics.json").read_text())
    assert [s["seed"] for s in metrics["forget_sets"]] == [0, 1]
    assert metrics["forget_sets"][0]["rows"][0]["model"] == "original"
    assert metrics["summary"]["amun_with_retain"][GAP_VS_ORIGINAL]["n"] == 2
    stats = metrics["forget_sets"][1]["unlearn_stats"]
    assert all("calibrated_lr" in stats[label] for label in ("amun_with_retain", "amun_without_retain"))
    assert any("450 held out for AMUN's calibration" in line for line in lines)
    assert (report / "confidence_histograms.png").read_bytes()[:4] == b"\x89PNG"
    text = (report / "report.md").read_text()
    assert "| original |" in text and "n = 2 forget sets" in text and " ± " in text
    assert any("| amun_without_retain |" in line for line in lines)
    assert (report / "models" / "amun_with_retain" / "report.md").exists()
    assert (report / "reference_bank" / "bank.json").exists()


def test_demo_refuses_no_forget_set(tmp_path) -> None:
    with pytest.raises(ValueError, match="forget_sets"):
        run_demo(replace(DemoConfig(), forget_sets=0, output=str(tmp_path / "r")), progress=False)
