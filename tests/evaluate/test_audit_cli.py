"""``amun audit`` from the command line: train two checkpoints, build a bank, write the reports."""

from __future__ import annotations

import json

import pytest

from amun_plugin.cli import main
from amun_plugin.evaluate.labels import label_of

RECIPE = ["--recipe-option", "epochs=2", "--recipe-option", "batch_size=64"]


def test_audit_command_writes_reports_and_builds_the_bank(tmp_path, capsys):
    original, retrained = str(tmp_path / "original.safetensors"), str(tmp_path / "retrained.safetensors")
    assert main(["train", "--dataset", "digits", "--model", "mlp", *RECIPE, "--out", original]) == 0
    assert main(["train", "--dataset", "digits", "--model", "mlp", *RECIPE, "--without-forget",
                 "--forget-fraction", "0.1", "--out", retrained]) == 0
    out, bank = tmp_path / "audit", tmp_path / "bank"
    code = main(["audit", original, "--retrained", retrained, "--forget-fraction", "0.1",
                 "--evaluator", "accuracy", "--evaluator", "rmia", "--evaluator", "mis",
                 "--evaluator-option", "mis.max_shadow=50", "--bank-dir", str(bank), "--reference-models", "2",
                 "--no-plots", "--out", str(out)])
    assert code == 0
    document = json.loads((out / "original" / "metrics.json").read_text())
    assert {"accuracy.UA", "rmia.FT_AUC", "mis.MIS"} <= set(document["metrics"])
    assert document["retrained"]["name"] == "retrained"
    keys, retrained_metrics = document["avg_gap_metrics"], document["retrained"]["metrics"]
    assert keys == ["accuracy.UA", "accuracy.RA", "accuracy.TA", "rmia.FT_AUC"]  # RMIA is the MIA term when run
    gaps = [abs(document["metrics"][k] - retrained_metrics[k]) for k in keys]
    assert document["avg_gap"] == pytest.approx(sum(gaps) / len(gaps), abs=1e-9) and document["avg_gap"] > 0
    assert (out / "original" / "report.md").exists() and (bank / "logits_001.safetensors").exists()
    assert f"| {label_of('rmia.FT_AUC')} |" in capsys.readouterr().out  # the summary's columns: the one label map


def test_audit_command_errors_are_one_clear_line(tmp_path, capsys):
    original = str(tmp_path / "original.safetensors")
    assert main(["train", "--dataset", "digits", "--model", "mlp", *RECIPE, "--out", original]) == 0
    capsys.readouterr()
    assert main(["audit", original, "--out", str(tmp_path / "a")]) == 2
    assert "records no forget split" in capsys.readouterr().err
    assert main(["audit", original, "--forget-fraction", "0.1", "--bank-dir", str(tmp_path / "none"),
                 "--out", str(tmp_path / "b")]) == 2
    assert "build one first" in capsys.readouterr().err
