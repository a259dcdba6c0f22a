"""``amun_plugin.audit``: the report folder, Avg Gap, and clear errors for bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from audit_fixtures import confident_on, indexed_data
from test_rmia_evaluator import reference_logits, synthetic_bank

import amun_plugin
from amun_plugin.errors import AmunError, InvalidInputError
from amun_plugin.evaluate.gap import avg_gap, choose_mia_key, gap_keys, mean_std
from amun_plugin.evaluate.plotting import plot_roc_curves

PNG = b"\x89PNG\r\n\x1a\n"


def sets():
    return (indexed_data(32, name="retain"), indexed_data(8, name="forget", offset=32),
            indexed_data(24, name="test", offset=40))


def test_avg_gap_per_run_and_over_runs():
    method = {"UA": 90.0, "RA": 99.0, "TA": 88.0, "MIA": 55.0}
    retrain = {"UA": 88.0, "RA": 100.0, "TA": 89.0, "MIA": 50.0}
    assert avg_gap(method, retrain, ("UA", "RA", "TA", "MIA")) == pytest.approx((2 + 1 + 1 + 5) / 4)
    assert mean_std([1.0, 3.0]) == pytest.approx((2.0, np.sqrt(2.0)))
    assert mean_std([4.0]) == (4.0, 0.0)
    with pytest.raises(InvalidInputError, match="missing"):
        avg_gap(method, {"UA": 1.0}, ("UA", "RA"))
    metrics = {"accuracy.UA": 1.0, "accuracy.RA": 1.0, "accuracy.TA": 1.0, "mis.MIS": 3.0, "rmia.FT_AUC": 2.0}
    assert choose_mia_key(metrics) == "rmia.FT_AUC"
    assert gap_keys(metrics, "mis.MIS") == ("accuracy.UA", "accuracy.RA", "accuracy.TA", "mis.MIS")
    with pytest.raises(InvalidInputError, match="not computed"):
        choose_mia_key(metrics, "art_blackbox.FT_AUC")


def test_audit_writes_a_report_folder(tmp_path):
    retain, forget, test = sets()
    population = indexed_data(64, name="population")
    bank = synthetic_bank(population, reference_logits())
    unlearned, retrained, original = (confident_on(torch.arange(n)) for n in (34, 32, 40))
    out = tmp_path / "amun"
    result = amun_plugin.audit(unlearned, retain, forget, test, ("accuracy", "rmia", "confidence_mia", "mis"),
                               retrained=retrained, original=original, out_dir=out, reference_bank=bank)
    for name in ("metrics.json", "report.md", "confidence_histograms.png", "roc_curves.png"):
        assert (out / name).exists(), name
    assert (out / "roc_curves.png").read_bytes().startswith(PNG)
    document = json.loads((out / "metrics.json").read_text())
    keys = ("accuracy.UA", "accuracy.RA", "accuracy.TA", "rmia.FT_AUC")
    assert document["avg_gap_metrics"] == list(keys)
    assert document["avg_gap"] == pytest.approx(avg_gap(document["metrics"], document["retrained"]["metrics"], keys))
    assert result["avg_gap"] == document["avg_gap"] and document["metrics"]["rmia.FT_AUC"] > 50
    report = (out / "report.md").read_text()
    assert "| metric | model | retrained | original | |gap| |" in report
    assert "rmia.FT_AUC" in report and "Avg Gap" in report and "roc_curves.png" in report
    assert not list(out.glob(".*.tmp"))


def test_audit_many_evaluates_each_model_once(tmp_path, monkeypatch):
    from amun_plugin.evaluate import accuracy

    calls = []
    original_evaluate = accuracy.AccuracyEvaluator._evaluate
    monkeypatch.setattr(accuracy.AccuracyEvaluator, "_evaluate",
                        lambda self, *a: calls.append(1) or original_evaluate(self, *a))
    retain, forget, test = sets()
    models = {name: confident_on(torch.arange(n)) for name, n in (("a", 34), ("b", 36), ("retrain", 32))}
    results = amun_plugin.audit_many(models, retain, forget, test, ("accuracy",),
                                    retrained=models["retrain"], out_dir=tmp_path, plots=False)
    assert len(calls) == 3 and set(results) == {"a", "b", "retrain"}
    assert results["retrain"]["avg_gap"] is None and (tmp_path / "b" / "report.md").exists()
    assert not list(tmp_path.glob("*/*.png"))


@pytest.mark.parametrize("case, message", [
    ("lengths", "inputs but"), ("labels", "labels must lie in"), ("empty", "empty"),
    ("population", "another population"), ("options", "not run"),
])
def test_bad_inputs_get_clear_errors(case, message):
    retain, forget, test = sets()
    model = confident_on(torch.arange(40))
    kwargs = {}
    if case == "lengths":
        forget = (forget.x, forget.y[:3])
    elif case == "labels":
        forget = (forget.x.numpy(), forget.y.numpy() + 3)
        kwargs["num_classes"] = 3
    elif case == "empty":
        forget = (forget.x[:0], forget.y[:0])
        kwargs["num_classes"] = 3
    elif case == "population":  # a bank that lacks some audited points (one holding more is fine)
        population = indexed_data(64, name="population")
        partial = synthetic_bank(population.subset(range(56)), reference_logits()[:56])
        kwargs.update(evaluators=("rmia",), reference_bank=partial)
    else:
        kwargs.update(evaluators=("accuracy",), evaluator_options={"mis": {"max_shadow": 10}})
    with pytest.raises(AmunError, match=message):
        amun_plugin.audit(model, retain, forget, test, **kwargs)


def test_roc_plot_is_written_atomically(tmp_path):
    rng = np.random.default_rng(0)
    panels = {"attack": {"model: FT": (rng.normal(1, 1, 300), rng.normal(0, 1, 300)),
                         "model: RT": (rng.normal(2, 1, 300), rng.normal(0, 1, 300))}}
    path = plot_roc_curves(panels, tmp_path / "roc.png", title="t")
    assert path.read_bytes().startswith(PNG) and path.stat().st_size > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["roc.png"]
