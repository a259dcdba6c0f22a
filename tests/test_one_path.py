"""One path per job (issue 14): library code logs instead of printing, lower layers get their
registries handed in, and every printed table names metrics through the one label map."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

import amun_plugin
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.audit import make_evaluators
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.forgetting_evaluator import ForgettingQualityEvaluator
from amun_plugin.evaluate.labels import METRIC_LABELS, label_of, labelled_row
from amun_plugin.models.checkpoint import CheckpointMetadata

PACKAGE = Path(amun_plugin.__file__).parent
FQ = {"architecture": "mlp", "runs": 3}


def test_no_library_function_defaults_to_print() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defaults = node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
                if any(isinstance(d, ast.Name) and d.id == "print" for d in defaults):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert offenders == []


def test_ignored_checkpoint_header_options_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    meta = CheckpointMetadata(architecture="mlp", architecture_config={}, num_classes=10, input_shape=(1, 8, 8),
                              dataset="digits", dataset_config={"test_fraction": 0.5, "root": "/elsewhere"})
    with caplog.at_level(logging.WARNING, logger="amun_plugin"):
        amun_plugin.get_plugin_manager(autoload=False).load_checkpoint_dataset(meta)
    assert [r.name for r in caplog.records] == ["amun_plugin.plugins"]
    assert "ignoring the checkpoint's dataset option(s) root" in caplog.records[0].getMessage()


def test_an_evaluator_that_runs_components_gets_the_registries_handed_in(tiny_model, tiny_data) -> None:
    host = amun_plugin.get_plugin_manager(autoload=False)
    evaluator, = make_evaluators(["forgetting_quality"], options={"forgetting_quality": FQ}, plugins=host)
    assert isinstance(evaluator, ForgettingQualityEvaluator) and evaluator.plugins is host
    alone = ForgettingQualityEvaluator(FQ)  # built by hand without registries: refused with the way out
    data = AuditData(tiny_data.subset(range(60, 90)), tiny_data.subset(range(6)), tiny_data.subset(range(6, 60)))
    with pytest.raises(InvalidInputError, match="needs the registries"):
        alone.evaluate(tiny_model, data)


def test_tables_label_metrics_through_the_one_map() -> None:
    assert label_of("accuracy.UA") == "UA" and label_of("rmia.FT_AUC") == "FT_AUC"
    assert label_of("confidence_mia.FT_AUC") != label_of("rmia.FT_AUC")  # one label, one metric
    assert len(set(METRIC_LABELS.values())) == len(METRIC_LABELS)
    assert label_of("my_eval.score") == "my_eval.score"
    row = labelled_row("m", {"accuracy.UA": 1.0, "mis.MIS": 2.0}, {"seconds": 3.0}, keys=["accuracy.UA", "rmia.FT_AUC"])
    assert row == {"model": "m", "UA": 1.0, "FT_AUC": None, "seconds": 3.0}


def test_the_python_api_audits_with_the_host_by_default(tiny_model, tiny_data) -> None:
    retain, forget, test = tiny_data.subset(range(60, 90)), tiny_data.subset(range(6)), tiny_data.subset(range(6, 60))
    report = amun_plugin.audit_many({"a": tiny_model}, retain, forget, test, ["accuracy"], plots=False)
    assert set(report["a"]["metrics"]) == {"accuracy.UA", "accuracy.RA", "accuracy.TA"}
    with pytest.raises(TypeError):  # the lower layer has no host to fall back on
        amun_plugin.evaluate.audit.audit_many({"a": tiny_model}, retain, forget, test, ["accuracy"])
