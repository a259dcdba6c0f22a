"""``amun audit --original`` without a retrained model: the retrain-free audit end to end on digits
(train, unlearn with AMUN's calibration, audit on fresh or recorded held-out data)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from amun_plugin.cli import main

TRAIN = ["train", "--dataset", "digits", "--model", "mlp", "--model-option", "hidden=[32]",
         "--recipe-option", "epochs=3", "--recipe-option", "lr=0.05"]
AUDIT = ["--evaluator", "accuracy", "--evaluator", "confidence_mia", "--no-plots"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(original, unlearned with AMUN calibrated on a recorded holdout, retrained without D_F)."""
    folder = tmp_path_factory.mktemp("retrain_free")
    original, unlearned, retrained = (folder / f"{n}.safetensors" for n in ("original", "unlearned", "retrained"))
    assert main([*TRAIN, "--out", str(original)]) == 0
    assert main(["unlearn", str(original), "--forget-fraction", "0.05", "--out", str(unlearned)]) == 0
    assert main([*TRAIN, "--without-forget", "--forget-fraction", "0.05", "--out", str(retrained)]) == 0
    return original, unlearned, retrained


def _size(text: str, pattern: str) -> int:
    found = re.search(pattern, text)
    assert found, text
    return int(found.group(1))


def test_audit_on_fresh_held_out_data_reports_the_estimate_beside_the_true_gap(checkpoints, tmp_path, capsys):
    original, unlearned, retrained = checkpoints
    capsys.readouterr()
    out = tmp_path / "fresh"
    assert main(["audit", str(unlearned), "--original", str(original), "--retrained", str(retrained),
                 "--holdout-size", "60", *AUDIT, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "retrain-free audit on 60 fresh test samples" in printed and "optimistic" not in printed
    assert "| est. Avg Gap [95% CI] |" in printed and "| avg_gap |" in printed
    assert re.search(r"unlearned: forget set (indistinguishable|still distinguishable|distinguishable)", printed)
    assert re.search(r"unlearned: held-out accuracy [\d.]+% vs the original's [\d.]+%", printed)
    document = json.loads((out / "unlearned" / "metrics.json").read_text())
    found = document["retrain_free"]
    assert found["retrain_free.holdout_size"] == 60 and found["retrain_free.probe"] == "confidence"
    assert found["retrain_free.estimated_gap_lo"] <= found["retrain_free.estimated_gap"] \
        <= found["retrain_free.estimated_gap_hi"]
    assert document["avg_gap"] is not None and "retrain_free.estimated_gap" in document["metrics"]
    assert "## Retrain-free estimate" in (out / "unlearned" / "report.md").read_text()
    # the original audited as a row against itself: D_F still looks like training data
    original_row = json.loads((out / "original" / "metrics.json").read_text())["retrain_free"]
    assert original_row["retrain_free.AUC"] > 50.0 and original_row["retrain_free.TA_term"] == 0.0


def test_the_recorded_calibration_holdout_is_used_by_default_and_called_optimistic(checkpoints, tmp_path, capsys):
    original, unlearned, _ = checkpoints
    capsys.readouterr()
    assert main(["audit", str(unlearned), "--original", str(original), *AUDIT, "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    recorded = _size(printed, r"retrain-free audit on the (\d+) test samples `amun unlearn` calibrated on")
    assert "optimistic" in printed and "--holdout-size N" in printed
    audited = _size(printed, r"auditing (\d+) test samples")
    capsys.readouterr()
    assert main(["audit", str(unlearned), "--original", str(original), "--holdout-size", "40", *AUDIT,
                 "--out", str(tmp_path / "b")]) == 0
    assert _size(capsys.readouterr().out, r"auditing (\d+) test samples") == audited  # the message counts recorded
    document = json.loads((tmp_path / "a" / "unlearned" / "metrics.json").read_text())
    assert document["retrain_free"]["retrain_free.holdout_size"] == recorded
    assert any("optimistic" in note for note in document["retrain_free"]["retrain_free.notes"])
    fresh = json.loads((tmp_path / "b" / "unlearned" / "metrics.json").read_text())
    assert fresh["settings"]["sizes"]["test"] == document["settings"]["sizes"]["test"] - 40  # left out of the audit


def test_a_holdout_file_and_the_refusals(checkpoints, tmp_path, capsys):
    original, unlearned, _ = checkpoints
    held = tmp_path / "held.npz"
    np.savez(held, x=np.random.default_rng(0).random((30, 1, 8, 8)).astype(np.float32), y=np.arange(30) % 10)
    capsys.readouterr()
    assert main(["audit", str(unlearned), "--original", str(original), "--holdout-file", str(held), *AUDIT,
                 "--out", str(tmp_path / "file")]) == 0
    assert f"retrain-free audit on the samples of {held}" in capsys.readouterr().out
    assert main(["audit", str(unlearned), "--holdout-size", "40", *AUDIT, "--out", str(tmp_path / "x")]) == 2
    assert "needs --original MODEL" in capsys.readouterr().err
    assert main(["audit", str(unlearned), "--original", str(original), "--holdout-size", "40", "--holdout-file",
                 str(held), *AUDIT, "--out", str(tmp_path / "y")]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["audit", str(unlearned), *AUDIT, "--out", str(tmp_path / "z")]) == 0  # no --original: a tip
    assert "tip: give --original MODEL for the retrain-free estimate" in capsys.readouterr().out


def test_with_a_reference_bank_rmia_is_the_membership_probe(checkpoints, tmp_path, capsys):
    original, unlearned, _ = checkpoints
    out = tmp_path / "rmia"
    assert main(["audit", str(unlearned), "--original", str(original), "--holdout-size", "60", *AUDIT,
                 "--bank-dir", str(tmp_path / "bank"), "--reference-models", "2", "--out", str(out)]) == 0
    found = json.loads((out / "unlearned" / "metrics.json").read_text())["retrain_free"]
    assert found["retrain_free.probe"] == "rmia" and found["retrain_free.AUC_lo"] <= found["retrain_free.AUC_hi"]
