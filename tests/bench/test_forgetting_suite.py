"""The forgetting_quality suite kind: config, a tiny run end to end, resume, the report files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bench_helpers import tiny_suite

from amun_plugin.bench.runner import run_suite
from amun_plugin.bench.suite_config import SuiteKind, load_suite
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.forgetting_quality import forgetting_score


def _tiny(**overrides):
    base = {"kind": "forgetting_quality", "grid": {"forget_seeds": [0]},
            "forgetting": {"runs": 3, "retrain_seed": 10, "control_seed": 20, "bootstrap": 10},
            "methods": [{"name": "ft", "label": "FT", "options": {"epochs": 1, "batch_size": 64}}]}
    return tiny_suite(**{**base, **overrides})


def test_suite_file_presets_and_runs_override():
    config = load_suite("forgetting_quality", "digits-mlp")
    assert config.kind is SuiteKind.FORGETTING_QUALITY and config.forgetting.runs >= 64
    assert config.with_runs(8).forgetting.runs == 8 and config.with_runs(8).grid == config.grid
    assert load_suite("forgetting_quality", "fmnist-cnn").dataset.name == "fashion_mnist"
    with pytest.raises(InvalidInputError):
        _tiny(forgetting={"runs": 3, "retrain_seed": 10, "control_seed": 11})


def test_tiny_suite_runs_resumes_and_reports(tmp_path):
    config = _tiny()
    folder = run_suite(config, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False, echo=lambda _m: None)
    records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    by_method = {r["method"]: r for r in records}
    assert set(by_method) == {"Original", "Retrain (other seed)", "FT"}
    assert by_method["Original"]["metrics"]["F"] == 0.0
    assert by_method["Retrain (other seed)"]["metrics"]["F"] > by_method["Original"]["metrics"]["F"]
    assert len(list((tmp_path / "cache" / "models").glob("*.safetensors"))) == 1 + 3 + 3
    table = (folder / "table.md").read_text()
    assert "U-LiRA TPR@1%FPR" in table and "Retraining the N = 3 reference models" in table
    assert "`forgetting.confidence`" in table
    assert (folder / "epsilon_histograms.png").stat().st_size > 0
    saved = json.loads((folder / "forgetting_quality.json").read_text())
    assert len(saved["rows"]) == 3 and all(len(v) == len(by_method["FT"]["forgetting"]["epsilon"])
                                            for v in saved["epsilon"].values())
    confidence = by_method["FT"]["forgetting"]["confidence"]  # the per-model scores, to recompute F
    f, _ = forgetting_score(np.array(confidence["unlearned"]), np.array(confidence["retrained"]))
    assert np.shape(confidence["unlearned"]) == (3, len(by_method["FT"]["forgetting"]["epsilon"]))
    assert f == by_method["FT"]["metrics"]["F"]
    (folder / "results.jsonl").unlink()  # resume: every run's output comes from the cache
    runs_before = sorted((tmp_path / "cache" / "forgetting_runs").iterdir())
    run_suite(config, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False, echo=lambda _m: None)
    assert sorted((tmp_path / "cache" / "forgetting_runs").iterdir()) == runs_before
    lines = (folder / "results.jsonl").read_text().splitlines()
    again = {json.loads(line)["method"]: json.loads(line) for line in lines}
    assert again["FT"]["metrics"] == by_method["FT"]["metrics"]


def test_holdout_methods_get_the_validation_holdout(tmp_path, monkeypatch):
    import amun_plugin.bench.forgetting_suite as suite
    from amun_plugin.artifacts import ArtifactCache
    from amun_plugin.bench.records import Cell
    from amun_plugin.bench.workspace import Workspace
    from amun_plugin.evaluate.base import AuditData

    config = _tiny(validation_size=50, forgetting={"runs": 3, "retrain_seed": 10, "control_seed": 20,
                                                   "holdout_methods": ["FT"]})
    ws = Workspace(config, ArtifactCache(tmp_path))
    split = ws.split(0.05, 0)
    data = AuditData(split.retain(ws.train), split.forget(ws.train), ws.test)
    seen = []
    monkeypatch.setattr(suite, "unlearn", lambda model, *a, **kw: seen.append(kw) or type("R", (), {"model": model}))
    cell = Cell("forgetting", "FT", fraction=0.05, options={"epochs": 1})
    run, spec, _ = suite._unlearn_run(ws, cell, ws.original(0)[0], data)
    run(2)
    assert seen[0]["holdout"] is ws.validation and len(ws.validation) == 50 and seen[0]["seed"] == 2
    assert spec["holdout"] is True
