"""The one map from metric keys (``evaluator.metric``, as :func:`~amun_plugin.evaluate.audit.audit_many`
reports them) to the short column labels every printed table uses (the demo, ``amun unlearn``,
``amun audit``, the benchmark scripts)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["METRIC_LABELS", "label_of", "labelled_row"]

METRIC_LABELS: dict[str, str] = {
    "accuracy.UA": "UA",
    "accuracy.RA": "RA",
    "accuracy.TA": "TA",
    "rmia.FT_AUC": "FT_AUC",
    "rmia.RT_AUC": "RT_AUC",
    "rmia.FR_AUC": "FR_AUC",
    "rmia.FT_TPR@1%FPR": "FT_TPR@1%FPR",
    "rmia.RT_TPR@1%FPR": "RT_TPR@1%FPR",
    "confidence_mia.FT_AUC": "conf_FT_AUC",
    "confidence_mia.RT_AUC": "conf_RT_AUC",
    "mis.MIS": "MIS",
    "art_blackbox.FT_AUC": "ART_BB_FT_AUC",
    "art_rule_based.FT_AUC": "ART_RB_FT_AUC",
}
"""Metric key -> column label: UA / RA / TA are accuracies (%) on forget / retain / test, *_AUC the
membership AUC (%) of forget vs test (FT), retain vs test (RT), forget vs retain (FR); RMIA's are
unprefixed, the confidence attack's ``conf_``, ART's ``ART_BB_`` (black-box) and ``ART_RB_`` (rule-based)."""


def label_of(key: str) -> str:
    """The column label of metric ``key`` (the key itself when it has none)."""
    return METRIC_LABELS.get(key, key)


def labelled_row(model: str, metrics: Mapping[str, Any], extra: Mapping[str, Any] | None = None,
                 keys: Sequence[str] | None = None) -> dict[str, Any]:
    """{"model": model, label: value for each metric (those in ``keys`` when given), **extra}."""
    chosen = metrics if keys is None else {k: metrics.get(k) for k in keys}
    return {"model": model, **{label_of(k): v for k, v in chosen.items()}, **dict(extra or {})}
