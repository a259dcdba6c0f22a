"""The audit report of one model: ``metrics.json``, ``report.md`` and PNG plots, written atomically.

Inputs are :class:`ModelAudit` records (what the evaluators returned for one model); this module
only formats and writes. Metric names are ``"<evaluator>.<metric>"`` (e.g. ``rmia.FT_AUC``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from amun_plugin.evaluate.gap import avg_gap, gap_keys
from amun_plugin.evaluate.markdown import format_value
from amun_plugin.evaluate.plotting import plot_confidence_histograms, plot_roc_curves
from amun_plugin.io import atomic_write_json, atomic_write_text

__all__ = ["ModelAudit", "report_markdown", "roc_panels", "write_report"]

_SETS = ("retain", "forget", "test")
_EXPLAIN = (
    "UA / RA / TA: accuracy (%) on D_F / D_R / D_T (UA is accuracy, not 100 - accuracy). *_AUC: AUC (%) of "
    "a membership score separating FT = D_F (member) vs D_T, FR = D_R vs D_F, RT = D_R vs D_T, on equal-size "
    "subsamples (50 = indistinguishable; the retrained model is the target). TPR@x%FPR: true-positive rate (%) "
    "at that false-positive rate. MIS: % of D_F the SVC attack calls non-member (confidence feature). Avg Gap: "
    "mean over {UA, RA, TA, MIA} of |model - retrained|."
)


@dataclass
class ModelAudit:
    """One model's audit: flat ``metrics`` ("evaluator.metric" -> value), per-evaluator ``scores``
    (evaluator -> set name -> (N,) membership scores), the logit-scaled ``confidence`` of
    D_R / D_F / D_T, and the seconds each evaluator took."""

    name: str
    metrics: dict[str, float]
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    confidence: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def write_report(out_dir: str | Path, audited: ModelAudit, *, retrained: ModelAudit | None = None,
                 original: ModelAudit | None = None, mia_metric: str | None = None,
                 settings: Mapping[str, Any] | None = None, plots: bool = True) -> dict[str, Any]:
    """Write the folder of ``audited`` (PNGs unless ``plots`` is False) and return what was
    written (paths) and Avg Gap."""
    folder = Path(out_dir)
    keys = gap_keys(audited.metrics, mia_metric) if retrained is not None else None
    gap = avg_gap(audited.metrics, retrained.metrics, keys) if retrained is not None and keys else None
    paths = {"metrics": folder / "metrics.json", "report": folder / "report.md"}
    panels = {_column(m.name, role) if role else m.name: m.confidence
              for m, role in ((original, "before"), (audited, "after" if original else ""), (retrained, "retrained"))
              if m is not None and m.confidence}
    if panels and plots:
        paths["confidence_histograms"] = plot_confidence_histograms(
            panels, folder / "confidence_histograms.png", title="Logit-scaled confidence log(p_y / (1 - p_y))")
    rocs = roc_panels([m for m in (audited, retrained, original) if m is not None]) if plots else {}
    if rocs:
        paths["roc_curves"] = plot_roc_curves(
            rocs, folder / "roc_curves.png", title="Membership ROC (log-log); FT = forget vs test, RT = retain vs test")
    document = {
        "model": audited.name, "metrics": audited.metrics, "seconds": audited.seconds,
        "retrained": None if retrained is None else {"name": retrained.name, "metrics": retrained.metrics},
        "original": None if original is None else {"name": original.name, "metrics": original.metrics},
        "avg_gap": gap, "avg_gap_metrics": list(keys) if keys else None, "settings": dict(settings or {}),
    }
    atomic_write_json(paths["metrics"], document)
    atomic_write_text(paths["report"], report_markdown(audited, retrained, original, gap, keys, sorted(paths)))
    return {"paths": {k: str(v) for k, v in paths.items()}, "avg_gap": gap}


def report_markdown(audited: ModelAudit, retrained: ModelAudit | None, original: ModelAudit | None,
                    gap: float | None, keys: tuple[str, ...] | None, files: list[str]) -> str:
    """The report: one row per metric, columns for the audited model, the retrained and original
    models when given, and |model - retrained|; then Avg Gap, timings and the plots."""
    others = [m for m in (retrained, original) if m is not None]
    columns = ["metric", audited.name] + [_column(m.name, "retrained" if m is retrained else "original")
                                          for m in others]
    if retrained is not None:
        columns.append("|gap|")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for key in audited.metrics:
        row = [key, format_value(audited.metrics[key])] + [format_value(m.metrics.get(key)) for m in others]
        if retrained is not None:
            ref = retrained.metrics.get(key)
            row.append(format_value(None if ref is None else abs(audited.metrics[key] - ref)))
        lines.append("| " + " | ".join(row) + " |")
    text = [f"# Audit of `{audited.name}`", "", _EXPLAIN, "", "\n".join(lines), ""]
    if gap is not None and keys:
        text += [f"**Avg Gap** to `{retrained.name if retrained else ''}`: **{gap:.2f}** "
                 f"(mean |gap| over {', '.join(keys)})", ""]
    if audited.seconds:
        text += ["Evaluator time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in audited.seconds.items()), ""]
    if "confidence_histograms" in files:
        text += ["![confidence histograms](confidence_histograms.png)", ""]
    if "roc_curves" in files:
        text += ["![ROC curves](roc_curves.png)", ""]
    return "\n".join(text)


def _column(name: str, role: str) -> str:
    return name if name == role else f"{name} ({role})"


RocCurve = tuple[np.ndarray, np.ndarray, "float | None"]
"""(member scores (P,), non-member scores (Q,), the AUC % the tables report or None)."""


def roc_panels(audits: list[ModelAudit]) -> dict[str, dict[str, RocCurve]]:
    """ROC panels for every evaluator whose scores cover D_R, D_F and D_T (with >= 2 distinct
    values): FT and RT curves of the first model, FT curves of the others. Each curve carries the
    AUC of the model's metrics (``<evaluator>.FT_AUC`` / ``RT_AUC``, what the tables print), so
    the plot's legend and the tables never disagree."""
    panels: dict[str, dict[str, RocCurve]] = {}
    for evaluator, sets in audits[0].scores.items():
        if not all(s in sets for s in _SETS) or np.unique(np.concatenate([sets[s] for s in _SETS])).size < 2:
            continue
        curves = {}
        for position, audit in enumerate(audits):
            parts = audit.scores.get(evaluator, {})
            if all(s in parts for s in _SETS):
                curves[f"{audit.name}: FT"] = (parts["forget"], parts["test"], audit.metrics.get(f"{evaluator}.FT_AUC"))
                if position == 0:
                    curves[f"{audit.name}: RT"] = (parts["retain"], parts["test"],
                                                   audit.metrics.get(f"{evaluator}.RT_AUC"))
        panels[evaluator] = curves
    return panels
