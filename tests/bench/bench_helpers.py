"""A tiny benchmark suite (digits, small MLP) that runs in seconds on one CPU thread."""

from __future__ import annotations

from typing import Any

from amun_plugin.bench.suite_config import SuiteConfig, deep_merge
from amun_plugin.config import make_config

TINY: dict[str, Any] = {
    "name": "tiny",
    "kind": "table",
    "preset": "test",
    "dataset": {"name": "digits", "options": {"test_fraction": 0.5}},
    "model": {"name": "mlp", "options": {"hidden": [32]}},
    "training": {"recipe": {"epochs": 3, "batch_size": 64, "lr": 0.1, "weight_decay": 0.0}},
    "evaluation": {"evaluators": [{"name": "accuracy"}, {"name": "confidence_mia"}],
                   "tables": [{"title": "conf", "mia": "confidence_mia.FT_AUC"}]},
    "grid": {"fractions": [0.05], "forget_seeds": [0, 1], "settings": ["with_retain"]},
    "tuning": {"enabled": False},
    "min_train_accuracy": 0.0,  # 3 epochs of a small MLP do not memorise; the tests need speed, not a benchmark
    "methods": [
        {"name": "ft", "label": "FT", "options": {"epochs": 1, "batch_size": 64}},
        {"name": "amun", "label": "AMUN", "adversarial": "own",
         "options": {"epochs": 1, "batch_size": 64, "search": {"max_doublings": 6, "refine_steps": 2}}},
    ],
}


def tiny_suite(**overrides: Any) -> SuiteConfig:
    """The tiny suite with ``overrides`` merged in (nested mappings key by key)."""
    return make_config(SuiteConfig, deep_merge(TINY, overrides))




def metric_view(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Records by id without wall-clock fields: what must be identical across runs."""
    return {r["id"]: (r["metrics"], r["gaps"]) for r in records}


def record_line(kind: str, method: str = "Retrain", *, forget_seed: int = 0, fraction: float = 0.05,
                setting: str = "with_retain", unlearn_seed: int = 0, options: dict | None = None,
                extra: dict | None = None, **fields: Any) -> dict[str, Any]:
    """A complete ``results.jsonl`` line of ``kind`` (as the writers make it: id, coordinates and
    the kind's fields, defaults filled in), ``fields`` overriding the defaults."""
    from amun_plugin.bench.records import Cell

    cell = Cell(kind, method, "standard", 0, fraction, forget_seed, setting, unlearn_seed, options or {}, extra or {})
    original = {"train_accuracy": 100.0, "test_accuracy": 90.0, "train_seconds": 1.0}
    defaults: dict[str, dict[str, Any]] = {
        "retrain": {"metrics": {}, "gaps": {}, "seconds": 1.0, "retrain_seconds": 1.0, "original": original},
        "original": {"metrics": {}, "gaps": {}, "seconds": 0.0, "original": original},
        "unlearn": {"unlearner": method.lower(), "metrics": {}, "gaps": {}, "seconds": 1.0, "seconds_search": 0.0,
                    "retrain_seconds": 2.0, "stats": {}},
        "chain": {"requests": [], "seconds": 0.0},
    }
    defaults["tune"] = defaults["unlearn"]
    return {**cell.coords(), **defaults[kind], **fields}
