"""benchmarks/recipe_sweep.py: one tiny recipe end to end, resumed without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_loader import load_benchmark


def _module():
    return load_benchmark("recipe_sweep.py")


def test_a_tiny_sweep_reports_saturation_and_rmia_and_resumes(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = _module()
    monkeypatch.setenv("AMUN_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sweep, "RECIPES", {"tiny": sweep._recipe("cnn", 4, 2, 0.02, 0.0, 0.1)})
    args = ["--recipes", "tiny", "--rmia", "tiny", "--num-models", "2", "--train-size", "100", "--test-size", "60",
            "--output", str(tmp_path / "out")]
    assert sweep.main(args) == 0
    result = json.loads((tmp_path / "out" / "recipes" / "tiny-100.json").read_text())
    assert result["recipe"]["label_smoothing"] == 0.1 and result["train_size"] == 100
    assert 0 <= result["saturated_fraction"] <= 100 and 0 <= result["confidence_auc"] <= 100
    assert result["rmia"]["num_models"] == 2 and 0 <= result["rmia"]["RT_AUC"] <= 100
    assert "| tiny | cnn w4 |" in (tmp_path / "out" / "results.md").read_text()
    monkeypatch.setattr(sweep, "run_recipe", lambda *a, **k: pytest.fail("a finished recipe was retrained"))
    monkeypatch.setattr(sweep, "run_rmia", lambda *a, **k: pytest.fail("a finished audit was rerun"))
    assert sweep.main(args) == 0
    assert len(json.loads((tmp_path / "out" / "env.json").read_text())["invocations"]) == 2
    assert sweep.main(["--recipes", "nope", "--output", str(tmp_path / "out")]) == 2


def test_a_training_variant_recipe_trains_that_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = _module()
    spec = sweep._recipe("cnn", 4, 1, 0.02, 0.0, 0.1, variant="lipschitz", max_norm=0.5)
    assert spec["variant"] == "lipschitz" and spec["variant_options"] == {"max_norm": 0.5}
    assert "variant" not in sweep._recipe("cnn", 4, 1, 0.02, 0.0, 0.1)
    calls = []
    real = sweep.train_original

    def spy(*args, **kwargs):
        calls.append((kwargs["variant"], kwargs["options"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep, "train_original", spy)
    monkeypatch.setattr(sweep, "RECIPES", {"tinylip": spec})
    assert sweep.main(["--recipes", "tinylip", "--train-size", "60", "--test-size", "30",
                       "--output", str(tmp_path / "out")]) == 0
    assert calls == [("lipschitz", {"max_norm": 0.5})]
    assert "| tinylip | cnn w4 | lipschitz max_norm 0.5 |" in (tmp_path / "out" / "results.md").read_text()
