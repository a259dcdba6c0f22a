"""The retrain-free audit: did forgetting work, measured without a model retrained without D_F?

The unlearned model's estimated Avg Gap (:func:`amun_plugin.unlearn.estimate.estimated_gap`) on
D_F, a held-out set H (samples no model trained on) and a fixed retain probe D_R' (|H| samples of
D_R), against the original model's accuracies on H and D_R'; with a percentile bootstrap interval
and two one-line verdicts (membership, accuracy)::

    check = RetrainFreeAudit(forget, holdout, retain, original, membership=None)
    result = check.of(unlearned)          # RetrainFreeResult
    result.verdict, result.accuracy       # two lines a person reads

The bootstrap resamples D_F, H and D_R' with replacement (the same indices for the unlearned and
the original model: paired) and recomputes the estimate from per-sample correctness and membership
scores measured once per model (:class:`SampleMeasure`): the models run once, never per resample.
A membership probe without a ``scores`` method (per-sample scores) keeps its AUC fixed at the point
value in every resample; the verdict then says there is no interval. Each term is a distance
(|.|), so resampling noise only adds to it: a term near 0 gets an interval above its point value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from amun_plugin.config import make_config
from amun_plugin.data.base import LabeledData, labeled_for_model
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.markdown import format_value, markdown_table
from amun_plugin.io import atomic_write_json, atomic_write_text
from amun_plugin.unlearn.estimate import (
    ConfidenceProbe,
    MembershipProbe,
    ProxyMeasure,
    check_holdout,
    estimated_gap,
    holdout_resolution,
    retain_probe,
    within_budget,
)
from amun_plugin.unlearn.sampled_estimate import (
    SampleMeasure,
    bootstrap_estimates,
    measure_samples,
    percentile_interval,
)

__all__ = ["RetrainFreeAudit", "RetrainFreeConfig", "RetrainFreeResult", "SampleMeasure", "attach_result",
           "bootstrap_estimates", "make_retrain_free", "measure_samples", "percentile_interval", "retrain_free_table"]

PREFIX = "retrain_free."
TERMS = ("UA", "TA", "MIA", "RA")


@dataclass(frozen=True)
class RetrainFreeConfig:
    """resamples: bootstrap resamples B; level: the interval's coverage; budget: the accuracy
    budget in points (held-out and retain accuracy at most this far below the original's); note:
    a line shown with the result (e.g. where the holdout came from)."""

    resamples: int = 200
    level: float = 0.95
    budget: float = 5.0
    note: str = ""

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise InvalidInputError(f"resamples must be >= 1, got {self.resamples}")
        if not 0.0 < self.level < 1.0:
            raise InvalidInputError(f"level must lie in (0, 1), got {self.level}")
        if self.budget < 0:
            raise InvalidInputError(f"budget must be >= 0, got {self.budget}")


@dataclass(frozen=True)
class RetrainFreeResult:
    """The retrain-free audit of one model: the estimated Avg Gap with its interval, each term
    (``terms``, ``intervals``), the D_F-vs-H AUC (``auc``; interval None without per-sample scores),
    the two measures compared, whether accuracy stayed within the budget, and the lines a person reads."""

    estimated_gap: float
    interval: tuple[float, float]
    terms: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    auc: float
    auc_interval: tuple[float, float] | None
    current: ProxyMeasure
    original: ProxyMeasure
    accurate: bool
    verdict: str
    accuracy: str
    probe: str
    sizes: dict[str, int]
    resamples: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def metrics(self) -> dict[str, float]:
        """The numbers as flat ``retrain_free.*`` metrics (interval ends as ``*_lo`` / ``*_hi``)."""
        out = {f"{PREFIX}estimated_gap": self.estimated_gap, f"{PREFIX}estimated_gap_lo": self.interval[0],
               f"{PREFIX}estimated_gap_hi": self.interval[1]}
        for name, value in self.terms.items():
            out.update({f"{PREFIX}{name}_term": value, f"{PREFIX}{name}_term_lo": self.intervals[name][0],
                        f"{PREFIX}{name}_term_hi": self.intervals[name][1]})
        out[f"{PREFIX}AUC"] = self.auc
        if self.auc_interval is not None:
            out.update({f"{PREFIX}AUC_lo": self.auc_interval[0], f"{PREFIX}AUC_hi": self.auc_interval[1]})
        out.update({f"{PREFIX}forget_accuracy": self.current.forget_accuracy,
                    f"{PREFIX}holdout_accuracy": self.current.holdout_accuracy,
                    f"{PREFIX}original_holdout_accuracy": self.original.holdout_accuracy,
                    f"{PREFIX}original_AUC": self.original.forget_holdout_auc})
        if self.current.retain_accuracy is not None and self.original.retain_accuracy is not None:
            out.update({f"{PREFIX}retain_accuracy": self.current.retain_accuracy,
                        f"{PREFIX}original_retain_accuracy": self.original.retain_accuracy})
        return out

    def as_dict(self) -> dict[str, Any]:
        """:meth:`metrics` with the verdicts and settings (``retrain_free.verdict``, ``.accuracy``, ...)."""
        return {**self.metrics(), f"{PREFIX}within_budget": self.accurate, f"{PREFIX}verdict": self.verdict,
                f"{PREFIX}accuracy": self.accuracy, f"{PREFIX}probe": self.probe, f"{PREFIX}resamples": self.resamples,
                **{f"{PREFIX}{k}_size": v for k, v in self.sizes.items()}, f"{PREFIX}notes": list(self.notes)}

    def markdown(self, avg_gap: float | None = None) -> str:
        """The report's section: the estimate beside the true Avg Gap (when known), the terms, the verdicts."""
        level = "95%"
        rows = [{"": "estimated Avg Gap", "value": self.estimated_gap, "interval": _span(self.interval)}]
        rows += [{"": f"{name} term", "value": value, "interval": _span(self.intervals[name])}
                 for name, value in self.terms.items()]
        rows.append({"": "AUC D_F vs H", "value": self.auc, "interval": _span(self.auc_interval)})
        if avg_gap is not None:
            rows.append({"": "Avg Gap (to the retrained model)", "value": avg_gap, "interval": None})
        lines = ["## Retrain-free estimate", "",
                 f"The estimated Avg Gap needs no retrained model: the retrained model's UA and TA are estimated by "
                 f"the original's accuracy on {self.sizes['holdout']} held-out samples H, its RA by the original's "
                 f"on D_R', its membership AUC by 50 ({self.probe} probe, D_F vs H). Intervals: {level} percentile "
                 f"bootstrap over {self.resamples} resamples of D_F, H and D_R' (each term is a distance, so "
                 "resampling noise only adds to it: near 0 the interval lies above the point).", "",
                 markdown_table(rows, ["", "value", "interval"]),
                 f"- **membership**: {self.verdict}", f"- **accuracy**: {self.accuracy}"]
        return "\n".join(lines + [f"- note: {note}" for note in self.notes]) + "\n"


def _span(interval: tuple[float, float] | None) -> str | None:
    return None if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


class RetrainFreeAudit:
    """The retrain-free audit's set-up: D_F, the held-out set H (checked: no D_F / D_R samples),
    the retain probe D_R' (|H| samples of ``retain``, seeded; None: no RA term), the original
    model (measured once) and the membership probe (None: :class:`ConfidenceProbe`); :meth:`of`
    audits a model."""

    def __init__(self, forget: LabeledData, holdout: LabeledData, retain: LabeledData | None, original: nn.Module,
                 membership: MembershipProbe | None = None, config: Mapping[str, Any] | RetrainFreeConfig | None = None,
                 *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        if not isinstance(original, nn.Module):
            raise InvalidInputError("the retrain-free audit needs the original model (before unlearning) as an "
                                    f"nn.Module, got {type(original).__name__}")
        if membership is not None and not isinstance(membership, MembershipProbe):
            raise InvalidInputError(f"membership must be a MembershipProbe (name, auc), "
                                    f"got {type(membership).__name__}")
        self.config = make_config(RetrainFreeConfig, config)
        self.forget, self.holdout = forget, check_holdout(holdout, forget, retain)
        self.retain = retain_probe(retain, len(self.holdout), seed)
        self.membership, self.device, self.seed = membership, device, seed
        self.reference = measure_samples(original, self.forget, self.holdout, self.retain, membership, device=device,
                                         with_scores=False)

    @property
    def probe(self) -> str:
        return self.membership.name if self.membership is not None else ConfidenceProbe.name

    def of(self, model: nn.Module) -> RetrainFreeResult:
        """The retrain-free audit of ``model`` (not modified)."""
        measured = measure_samples(model, self.forget, self.holdout, self.retain, self.membership, device=self.device)
        return summarise(measured, self.reference, self.config, self.probe, self.seed)


def summarise(current: SampleMeasure, original: SampleMeasure, config: RetrainFreeConfig, probe: str = "confidence",
              seed: int = 0) -> RetrainFreeResult:
    """The point estimate, its bootstrap intervals and the verdicts of ``current`` against ``original``."""
    now, before = current.proxy(), original.proxy()
    gap, terms = estimated_gap(now, before)
    draws = bootstrap_estimates(current, original, config.resamples, seed)
    intervals = {name: percentile_interval(draws[name], config.level) for name in terms}
    auc_interval = percentile_interval(draws["AUC"], config.level) if current.has_scores else None
    accurate = within_budget(now, before, config.budget)
    notes = tuple(n for n in (config.note, _resolution_note(before, len(current.holdout_correct), config.budget)) if n)
    return RetrainFreeResult(
        estimated_gap=gap, interval=percentile_interval(draws["estimated_gap"], config.level), terms=terms,
        intervals=intervals, auc=now.forget_holdout_auc, auc_interval=auc_interval, current=now, original=before,
        accurate=accurate, verdict=membership_verdict(now.forget_holdout_auc, auc_interval),
        accuracy=accuracy_verdict(now, before, config.budget, accurate), probe=probe,
        sizes={"forget": len(current.forget_correct), "holdout": len(current.holdout_correct),
               "retain": 0 if current.retain_correct is None else len(current.retain_correct)},
        resamples=config.resamples, notes=notes)


def membership_verdict(auc: float, interval: tuple[float, float] | None) -> str:
    """One line: is D_F told apart from H by the probe (its AUC interval excludes 50) or not?"""
    if interval is None:
        return f"forget set AUC {auc:.1f} against held-out data (no interval: the probe gives no per-sample scores)"
    low, high = interval
    if low <= 50.0 <= high:
        return (f"forget set indistinguishable from held-out data within ±{max(50.0 - low, high - 50.0):.1f} AUC "
                f"points (AUC {auc:.1f} [{low:.1f}, {high:.1f}])")
    if low > 50.0:
        return f"forget set still distinguishable: AUC {auc:.1f} [{low:.1f}, {high:.1f}] (50 = looks unseen)"
    return (f"forget set distinguishable, as less member-like than held-out data: AUC {auc:.1f} [{low:.1f}, "
            f"{high:.1f}] (over-forgetting can itself reveal the deletion)")


def accuracy_verdict(current: ProxyMeasure, original: ProxyMeasure, budget: float, accurate: bool) -> str:
    """One line: held-out (and retain) accuracy against the original's, within ``budget`` points or not."""
    parts = [f"held-out accuracy {current.holdout_accuracy:.1f}% vs the original's {original.holdout_accuracy:.1f}%"]
    if current.retain_accuracy is not None and original.retain_accuracy is not None:
        parts.append(f"retain {current.retain_accuracy:.1f}% vs {original.retain_accuracy:.1f}%")
    where = "within" if accurate else "outside"
    return f"{', '.join(parts)}: {where} the {budget:g}-point budget"


def _resolution_note(original: ProxyMeasure, size: int, budget: float) -> str:
    """A note when |H| measures accuracy more coarsely than half the budget (``holdout_resolution``)."""
    half_width, needed = holdout_resolution(original.holdout_accuracy, size, budget)
    if half_width <= budget / 2.0:
        return ""
    return (f"{size} held-out samples measure accuracy to ±{half_width:.1f} points (95%); about {needed} would "
            f"resolve half the {budget:g}-point budget")


def make_retrain_free(holdout: Any, data: AuditData, original: nn.Module | None,
                      membership: MembershipProbe | None = None,
                      config: Mapping[str, Any] | RetrainFreeConfig | None = None, *,
                      device: str | torch.device = "cpu", seed: int = 0) -> RetrainFreeAudit | None:
    """The audit's :class:`RetrainFreeAudit` on ``data``'s D_F and D_R when ``holdout`` is given
    (LabeledData, an (x, y) pair or a Dataset), else None; refuses it without ``original``, and
    ``membership`` or ``config`` without ``holdout``."""
    if holdout is None:
        if membership is not None or config is not None:
            raise InvalidInputError("membership= and retrain_free= are for the retrain-free audit: give holdout= "
                                    "(samples the models never trained on) too")
        return None
    if original is None:
        raise InvalidInputError("the retrain-free audit (holdout=) needs original=, the model before unlearning: "
                                "its accuracy on the held-out data stands in for the retrained model's")
    held = labeled_for_model(holdout, data.forget.num_classes, "holdout")
    return RetrainFreeAudit(data.forget, held, data.retain, original, membership, config, device=device, seed=seed)


def attach_result(result: dict[str, Any], estimate: RetrainFreeResult) -> dict[str, Any]:
    """Add ``estimate`` to one audit result: ``retrain_free`` (every key, verdicts included), its
    numbers to ``metrics``, and its section to the written report folder (``paths``) if any."""
    result["retrain_free"] = estimate.as_dict()
    result["metrics"] = {**result["metrics"], **estimate.metrics()}
    if "paths" in result:
        write_section(Path(result["paths"]["report"]).parent, estimate, result.get("avg_gap"))
    return result


def write_section(folder: str | Path, result: RetrainFreeResult, avg_gap: float | None) -> None:
    """Add the result to a written report folder: its metrics (and verdicts) to ``metrics.json``,
    its section to ``report.md``."""
    paths = Path(folder) / "metrics.json", Path(folder) / "report.md"
    document = json.loads(paths[0].read_text(encoding="utf-8"))
    document["metrics"] = {**document.get("metrics", {}), **result.metrics()}
    document["retrain_free"] = result.as_dict()
    atomic_write_json(paths[0], document)
    atomic_write_text(paths[1], paths[1].read_text(encoding="utf-8").rstrip("\n") + "\n\n" + result.markdown(avg_gap))


def retrain_free_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The printed table of every audit result with a ``retrain_free`` entry: estimate [interval],
    terms, AUC [interval] and the true Avg Gap when known; then each model's verdict lines."""
    rows, lines = [], []
    for name, result in results.items():
        found = result.get("retrain_free")
        if not found:
            continue
        row = {"model": name, "est. Avg Gap [95% CI]": _cell(found, "estimated_gap"),
               "AUC D_F vs H [95% CI]": _cell(found, "AUC"), "avg_gap": result.get("avg_gap")}
        row.update({f"{t} term": found.get(f"{PREFIX}{t}_term") for t in TERMS})
        rows.append(row)
        lines += [f"{name}: {found[f'{PREFIX}verdict']}", f"{name}: {found[f'{PREFIX}accuracy']}"]
        lines += [f"note: {note}" for note in found.get(f"{PREFIX}notes", []) if f"note: {note}" not in lines]
    if not rows:
        return ""
    columns = ["model", "est. Avg Gap [95% CI]", *(f"{t} term" for t in TERMS if any(r[f"{t} term"] is not None
                                                                                   for r in rows)),
               "AUC D_F vs H [95% CI]", "avg_gap"]
    return markdown_table(rows, columns) + "\n".join(lines)


def _cell(found: Mapping[str, Any], key: str) -> str:
    value, low, high = (found.get(f"{PREFIX}{key}{end}") for end in ("", "_lo", "_hi"))
    return format_value(value) + ("" if low is None else f" [{low:.2f}, {high:.2f}]")
