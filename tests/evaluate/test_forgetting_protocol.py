"""The forgetting-quality protocol on digits with a small N: controls, the evaluator's cache, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amun_plugin.cli import main
from amun_plugin.data.splits import SplitConfig, make_split
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.forgetting_evaluator import ForgettingQualityEvaluator
from amun_plugin.evaluate.forgetting_protocol import measure, run_protocol, timed
from amun_plugin.evaluate.forgetting_quality import epsilon_points, forgetting_score
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.training import TrainConfig, train_classifier

RECIPE = TrainConfig(epochs=8, batch_size=32, lr=0.05, weight_decay=0.0)


@pytest.fixture(scope="module")
def digits():
    host = get_plugin_manager()
    bundle = host.load_dataset("digits", {"test_fraction": 0.5})
    split = make_split(bundle.train, SplitConfig(fraction=0.05, seed=0))
    data = AuditData(split.retain(bundle.train), split.forget(bundle.train), bundle.test)
    architecture = host.make_architecture("mlp", {"hidden": [64]})
    original = train_classifier(architecture, bundle.train, RECIPE, seed=0)
    return host, bundle, data, architecture, original


def test_retraining_with_another_seed_scores_near_the_top_and_the_original_at_the_bottom(digits):
    _, _, data, architecture, original = digits

    def retrain(seed: int):
        return timed(lambda: train_classifier(architecture, data.retain, RECIPE, seed=seed))

    kwargs = {"retrain_seeds": range(100, 105), "bootstrap": 20}
    other_seed = run_protocol(data, retrain, retrain, unlearn_seeds=range(200, 205), **kwargs)
    unchanged = run_protocol(data, lambda _s: (original, 0.0), retrain, unlearn_seeds=range(5), **kwargs)
    assert unchanged["F"] == 0.0 and unchanged["final_score"] == 0.0  # N identical models: degenerate
    assert other_seed["F"] > 0.2  # N = 5: ε is resolved only below ceil(ln 4) = 2
    assert 0.95 < other_seed["RA_ratio"] < 1.05 and 0.95 < other_seed["TA_ratio"] < 1.05
    assert unchanged["ulira"]["TPR@1%FPR"] > other_seed["ulira"]["TPR@1%FPR"]
    assert len(other_seed["epsilon"]) == len(data.forget) and other_seed["max_resolvable_epsilon"] == 2


def test_measure_uses_the_logit_scaled_confidence(digits):
    _, _, data, _, original = digits
    import torch

    out = measure(original, data, 1.5)
    with torch.no_grad():
        p = torch.softmax(original(data.forget.x).double(), 1).gather(1, data.forget.y.view(-1, 1)).squeeze(1).numpy()
    usable = (p > 1e-6) & (p < 1 - 1e-6)  # where the naive formula is still accurate
    assert usable.sum() > 5 and out.confidence.shape == (len(data.forget),) and np.isfinite(out.confidence).all()
    np.testing.assert_allclose(out.confidence[usable], np.log(p[usable]) - np.log1p(-p[usable]), rtol=1e-4, atol=1e-4)
    assert out.seconds == 1.5
    with torch.no_grad():
        for part, got in ((data.retain, out.retain_accuracy), (data.test, out.test_accuracy)):
            assert got == pytest.approx(100.0 * (original(part.x).argmax(1) == part.y).double().mean().item())


def test_evaluator_caches_retrained_models_and_runs(digits, tmp_path):
    _, _, data, _, original = digits
    options = {"architecture": "mlp", "architecture_options": {"hidden": [64]}, "recipe": {
        "epochs": 8, "batch_size": 32, "lr": 0.05, "weight_decay": 0.0}, "method": "ft",
        "method_options": {"epochs": 1}, "runs": 3, "cache_dir": str(tmp_path), "bootstrap": 10}
    first = ForgettingQualityEvaluator(options, plugins=get_plugin_manager(autoload=False)).evaluate(original, data)
    models = sorted((tmp_path / "models").glob("*.safetensors"))
    runs = sorted((tmp_path / "forgetting_runs").glob("*.json"))
    assert len(models) == 3 and len(runs) == 6
    again = ForgettingQualityEvaluator(options, plugins=get_plugin_manager(autoload=False)).evaluate(original, data)
    assert again.metrics == first.metrics  # read back, not recomputed
    assert sorted((tmp_path / "models").glob("*.safetensors")) == models
    assert first.scores["forget"].shape == (len(data.forget),)  # the per-example epsilon
    points = epsilon_points(first.scores["forget"], 3)  # F: the mean of each example's points (N = 3 runs)
    assert first.metrics["F"] == pytest.approx(float(points.mean()))
    unlearned, retrained = first.scores["confidence_unlearned"], first.scores["confidence_retrained"]
    assert unlearned.shape == retrained.shape == (3, len(data.forget))  # the per-model scores, public
    assert forgetting_score(unlearned, retrained)[0] == first.metrics["F"]
    with pytest.raises(InvalidInputError):
        ForgettingQualityEvaluator({"runs": 3})


def test_cli_audit_protocol_forgetting_quality(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AMUN_BENCH_CACHE", str(tmp_path / "cache"))
    original = str(tmp_path / "orig.safetensors")
    recipe = ["--recipe-option", "epochs=4", "--recipe-option", "batch_size=64", "--model-option", "hidden=[32]"]
    assert main(["train", "--dataset", "digits", "--model", "mlp", *recipe, "--out", original]) == 0
    code = main(["audit", original, "--protocol", "forgetting-quality", "--runs", "3", "--method", "ga",
                 "--method-option", "epochs=1", "--forget-fraction", "0.05", "--no-plots", "--out",
                 str(tmp_path / "report")])
    assert code == 0
    saved = json.loads((tmp_path / "report" / "orig" / "forgetting_quality.json").read_text())
    assert saved["method"] == "ga" and saved["metrics"]["runs"] == 3.0
    f, _ = forgetting_score(np.array(saved["confidence"]["unlearned"]), np.array(saved["confidence"]["retrained"]))
    assert f == saved["metrics"]["F"]  # recomputable from the saved per-model confidences
    assert "ULiRA_TPR@1%FPR" in capsys.readouterr().out
    assert main(["audit", original, "--runs", "3", "--forget-fraction", "0.05", "--out", str(tmp_path / "x")]) == 2
