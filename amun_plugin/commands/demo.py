"""``amun demo``: AMUN on the embedded scikit-learn digits, end to end, in a few CPU minutes.

Trains an original model that memorises its training set (no weight decay, many epochs, half
of digits held out as the test pool) and, once, an RMIA reference bank on train ∪ test; then, for
each of ``forget_sets`` random 10% forget sets, a model retrained without it (the gold standard)
and AMUN with and without D_R with its defaults, calibrated on a held-out part of the test pool
(``holdout_size`` images, left out of the audit). Each is audited with accuracy (UA / RA / TA) and
RMIA (forget-vs-test AUC FT, retain-vs-test AUC RT, TPR at 1% FPR); the table gives the mean over
the forget sets with 95% t intervals, and the Avg Gap's paired difference to the original model
and the FT AUC's paired difference to the retrained model. Writes a report folder (Markdown,
JSON with every forget set's rows, PNG histograms and ROC curves of the first forget set).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from amun_plugin.api import unlearn
from amun_plugin.bench.stats import Interval, format_interval, t_interval
from amun_plugin.config import config_to_dict
from amun_plugin.data.base import LabeledData
from amun_plugin.data.splits import SplitConfig, make_split, split_off
from amun_plugin.evaluate.audit import audit_many
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.labels import label_of, labelled_row
from amun_plugin.evaluate.markdown import markdown_table
from amun_plugin.evaluate.plotting import plot_confidence_histograms
from amun_plugin.evaluate.reference import ReferenceBank, build_reference_bank, concat_population
from amun_plugin.evaluate.signals import confidence_by_set
from amun_plugin.io import atomic_write_json, atomic_write_text
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.training import Schedule, TrainConfig, train_classifier

__all__ = ["DemoConfig", "run_demo"]

METRICS = ("accuracy.UA", "accuracy.RA", "accuracy.TA", "rmia.FT_AUC", "rmia.RT_AUC", "rmia.FT_TPR@1%FPR")
"""The demo table's metrics (columns labelled by ``evaluate.labels``)."""
COLUMNS = ("model", *map(label_of, METRICS), "avg_gap", "seconds")
"""The columns of one forget set's rows (metrics.json ``forget_sets``)."""
GAP_VS_ORIGINAL = "Avg Gap - original"
FT_VS_RETRAIN = "FT_AUC - retrain"
SUMMARY_COLUMNS = ("model", *map(label_of, METRICS), "avg_gap", GAP_VS_ORIGINAL, FT_VS_RETRAIN, "seconds")
MODELS = ("original", "retrain", "amun_with_retain", "amun_without_retain")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """The demo's recipe. No weight decay, 30 epochs and a 50% test pool make the original MLP
    memorise (train accuracy 100%, RMIA RT AUC ~58); ``reference_models`` RMIA reference models
    are trained once on train ∪ test and kept in ``<output>/reference_bank`` for later runs.
    ``forget_sets`` random forget sets of ``forget_fraction`` (seeds ``seed``, ``seed`` + 1, ...),
    each with its own retrained model. ``threads``: torch CPU threads (one is fastest for these
    small models, and robust on a busy machine). ``holdout_size`` test images (class-stratified)
    are AMUN's held-out data for its calibration and leave the audited test set: the calibration
    chooses its union on one half and measures accuracy on the other, so each half must measure
    ~97% to within half its 5-point budget (about 160 images); ``amun_lr`` set (with
    ``holdout_size`` 0) runs AMUN at a fixed lr instead, for ``amun_epochs`` epochs."""

    dataset: str = "digits"
    test_fraction: float = 0.5
    architecture: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    forget_fraction: float = 0.1
    forget_sets: int = 5
    seed: int = 0
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.05
    amun_epochs: int = 10
    amun_lr: float | None = None
    holdout_size: int = 450
    reference_models: int = 8
    output: str = "amun-demo-report"
    device: str = "cpu"
    threads: int = 1

    def recipe(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           weight_decay=0.0, schedule=Schedule.COSINE)


def run_demo(
    config: DemoConfig = DemoConfig(),
    *,
    plugins: PluginHost | None = None,
    progress: bool = True,
    echo: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Run the demo and write its report under ``config.output``. Returns ``{"summary": model ->
    row of 95% intervals (:class:`~amun_plugin.bench.stats.Interval`), "forget_sets": [model ->
    row, one per forget set]}``. What it reports goes to ``echo`` (default: this module's logger,
    at INFO)."""
    if config.forget_sets < 1:
        raise ValueError(f"forget_sets must be >= 1, got {config.forget_sets}")
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, plugins or get_plugin_manager(), progress, echo or _log.info)
    finally:
        torch.set_num_threads(threads)


def _run(config: DemoConfig, host: PluginHost, progress: bool, echo: Callable[[str], Any]) -> dict[str, Any]:
    start_all = time.perf_counter()
    bundle = host.load_dataset(config.dataset, {"seed": config.seed, "test_fraction": config.test_fraction})
    test, holdout = _split_test(bundle.test, config.holdout_size, config.seed)
    architecture = host.make_architecture(config.architecture, {"hidden": list(config.hidden)})
    forget_size = len(make_split(bundle.train, SplitConfig(fraction=config.forget_fraction, seed=config.seed))
                      .forget(bundle.train))
    echo(f"{bundle.name}: {len(bundle.train)} train ({len(bundle.train) - forget_size} retained, {forget_size} to "
         f"forget, {config.forget_sets} forget set(s)), {len(test)} test"
         + (f", {len(holdout)} held out for AMUN's calibration" if holdout is not None else ""))

    start = time.perf_counter()
    original = _train(config, architecture, bundle.train, "original", progress)
    original_seconds = time.perf_counter() - start
    start = time.perf_counter()
    bank = build_reference_bank(Path(config.output) / "reference_bank", concat_population(bundle.train, test),
                                architecture, config.recipe(), num_models=config.reference_models,
                                seed=config.seed + 1000, device=config.device, progress=progress)
    echo(f"RMIA reference bank: {bank.num_models} models ({time.perf_counter() - start:.0f} s)")

    per_set: list[dict[str, dict[str, Any]]] = []
    stats: list[dict[str, Any]] = []
    first: tuple[dict[str, nn.Module], AuditData] | None = None
    for index in range(config.forget_sets):
        split = make_split(bundle.train, SplitConfig(fraction=config.forget_fraction, seed=config.seed + index))
        data = AuditData(split.retain(bundle.train), split.forget(bundle.train), test)
        models, seconds, unlearn_stats = _models_for(config, host, architecture, original, data, holdout, progress)
        seconds["original"] = original_seconds
        audits = audit_many(models, data.retain, data.forget, data.test, ["accuracy", "rmia"],
                            retrained=models["retrain"], original=original,
                            out_dir=Path(config.output) / "models" if index == 0 else None, reference_bank=bank,
                            plugins=host, device=config.device, seed=config.seed, mia_metric="rmia.FT_AUC")
        rows = {name: _row(name, audits[name], seconds[name]) for name in models}
        per_set.append(rows)
        stats.append(unlearn_stats)
        echo(f"forget set {index} (seed {config.seed + index}): Avg Gap " + ", ".join(
            f"{name} {rows[name]['avg_gap']:.2f}" for name in MODELS if rows[name]["avg_gap"] is not None))
        if first is None:
            first = (models, data)

    summary = _summary(per_set)
    table = _summary_table(summary)
    ratio = {label: _mean([rows[label]["seconds"] / rows["retrain"]["seconds"] for rows in per_set])
             for label in MODELS[2:]}
    echo(table)
    echo("AMUN time / retrain time (mean): " + ", ".join(f"{k} {v:.3f}" for k, v in ratio.items()))
    assert first is not None
    _write_report(Path(config.output), config, per_set, summary, table, ratio, first, stats, bank,
                  time.perf_counter() - start_all)
    echo(f"report written to {config.output}/ (report.md, metrics.json, confidence_histograms.png, models/)")
    return {"summary": summary, "forget_sets": per_set}


def _split_test(test: LabeledData, size: int, seed: int) -> tuple[LabeledData, LabeledData | None]:
    """(audited test set, held-out set of ``size`` class-stratified test images or None)."""
    if size <= 0:
        return test, None
    return split_off(test, size, seed, "holdout")


def _train(config: DemoConfig, architecture: ModelArchitecture, data: LabeledData, name: str,
           progress: bool) -> nn.Module:
    return train_classifier(architecture, data, config.recipe(), seed=config.seed, device=config.device,
                            progress=name if progress else False)


def _models_for(config: DemoConfig, host: PluginHost, architecture: ModelArchitecture, original: nn.Module,
                data: AuditData, holdout: LabeledData | None, progress: bool,
                ) -> tuple[dict[str, nn.Module], dict[str, float], dict[str, Any]]:
    """The retrained model and both AMUN models of one forget set, their seconds and AMUN's stats."""
    start = time.perf_counter()
    models: dict[str, nn.Module] = {"original": original,
                                    "retrain": _train(config, architecture, data.retain, "retrain", progress)}
    seconds = {"retrain": time.perf_counter() - start}
    stats = {}
    fixed: dict[str, Any] = {} if config.amun_lr is None else {"epochs": config.amun_epochs, "lr": config.amun_lr}
    for label, retain in (("amun_with_retain", data.retain), ("amun_without_retain", None)):
        result = unlearn(original, data.forget, retain, method="amun", plugins=host, holdout=holdout,
                         device=config.device, seed=config.seed, progress=progress, **fixed)
        models[label], stats[label] = result.model.eval(), result.stats
        seconds[label] = result.stats["seconds_total"]
    return models, seconds, stats


def _row(name: str, audit: dict[str, Any], seconds: float) -> dict[str, Any]:
    return labelled_row(name, audit["metrics"], {"avg_gap": audit.get("avg_gap"), "seconds": seconds}, METRICS)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _summary(per_set: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """model -> {column: Interval over the forget sets}, with the paired differences of the Avg Gap
    to the original model's and of the FT AUC to the retrained model's (same forget set)."""
    ft = label_of("rmia.FT_AUC")
    out: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        row: dict[str, Any] = {"model": name}
        for column in COLUMNS[1:]:
            values = [rows[name][column] for rows in per_set]
            row[column] = None if any(v is None for v in values) else t_interval(values)
        if name not in ("original", "retrain"):
            row[GAP_VS_ORIGINAL] = t_interval([rows[name]["avg_gap"] - rows["original"]["avg_gap"]
                                               for rows in per_set])
        if name != "retrain":
            row[FT_VS_RETRAIN] = t_interval([rows[name][ft] - rows["retrain"][ft] for rows in per_set])
        out[name] = row
    return out


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "—"
    assert isinstance(value, Interval)
    return format_interval(value, 2, signed=column in (GAP_VS_ORIGINAL, FT_VS_RETRAIN))


def _summary_table(summary: dict[str, dict[str, Any]]) -> str:
    rows = [{"model": name, **{c: _cell(row.get(c), c) for c in SUMMARY_COLUMNS[1:]}} for name, row in summary.items()]
    return markdown_table(rows, SUMMARY_COLUMNS)


def _plain(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The summary as JSON: {"mean", "half_width" (None for one forget set), "n"} per cell."""
    return {name: {c: (None if v is None else {"mean": v.mean, "n": v.n,
                                               "half_width": v.half_width if math.isfinite(v.half_width) else None})
                   for c, v in row.items() if c != "model"} for name, row in summary.items()}


def _write_report(out: Path, config: DemoConfig, per_set: list[dict[str, dict[str, Any]]],
                  summary: dict[str, dict[str, Any]], table: str, ratio: dict[str, float],
                  first: tuple[dict[str, nn.Module], AuditData], stats: list[dict[str, Any]], bank: ReferenceBank,
                  seconds: float) -> None:
    models, data = first
    panels = {name: confidence_by_set(model, data, config.device) for name, model in models.items()}
    plot_confidence_histograms(panels, out / "confidence_histograms.png",
                               title="Logit-scaled confidence before and after unlearning (forget set 0)")
    atomic_write_json(out / "metrics.json", {
        "config": config_to_dict(config), "seconds_total": seconds,
        "summary": _plain(summary), "forget_sets": [
            {"seed": config.seed + i, "rows": [rows[name] for name in MODELS], "unlearn_stats": stats[i]}
            for i, rows in enumerate(per_set)],
        "amun_over_retrain_time": ratio})
    n = len(per_set)
    text = (
        "# AMUN demo\n\n"
        f"Dataset `{config.dataset}` ({config.test_fraction:.0%} held out as the test pool, of which "
        f"{config.holdout_size} images are AMUN's held-out data for its calibration, not audited), model "
        f"`{config.architecture}` {list(config.hidden)}; {n} random forget sets of {config.forget_fraction:.0%} "
        f"(seeds {config.seed}-{config.seed + n - 1}), each with its own retrained model; one original model "
        f"and one RMIA bank of {bank.num_models} reference models (population: train ∪ audited test).\n\n"
        f"Each cell: mean ± 95% t interval over the n = {n} forget sets. UA / RA / TA: accuracy (%) on forget / "
        "retain / test. FT_AUC: RMIA AUC (%) separating forget from test (50 = the forget set looks unseen). "
        "RT_AUC: retain vs test, the memorisation signal. avg_gap: mean |metric - retrain| over UA, RA, TA, "
        f"FT_AUC. `{GAP_VS_ORIGINAL}`: the Avg Gap's paired difference to the untouched original on the same "
        f"forget set (negative = closer to retraining than doing nothing). `{FT_VS_RETRAIN}`: FT_AUC's paired "
        "difference to the retrained model (0 = forgets as much as retraining). seconds: training / "
        "unlearning time per forget set.\n\n"
        f"{table}\nAMUN time / retrain time (mean): "
        + ", ".join(f"{k} {v:.3f}" for k, v in ratio.items())
        + f"\n\nTotal: {seconds:.0f} s.\n\n![confidence histograms](confidence_histograms.png)\n\n"
        "Per-set rows and AMUN's statistics: `metrics.json`. Per-model reports of forget set 0 (ROC curves, "
        "every metric): `models/<name>/report.md`.\n"
    )
    atomic_write_text(out / "report.md", text)
