"""PNG plots of a suite run: Avg Gap bars (tables), FR AUC − FT AUC per request (continuous,
paper Figure 2) and test accuracy per epoch (ablation, paper Figure 1). Mean ± std over runs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from amun_plugin.bench.forgetting_tables import forgetting_report_files
from amun_plugin.bench.record_types import AblationRecord, BenchRecord, ChainRecord, UnlearnRecord, parse_records
from amun_plugin.bench.records import CellKind
from amun_plugin.bench.stats import t_interval
from amun_plugin.bench.suite_config import SuiteConfig, SuiteKind
from amun_plugin.evaluate.plotting import pyplot, save_figure

__all__ = ["suite_plots"]


def _gap_bars(config: SuiteConfig, records: Sequence[BenchRecord], folder: Path) -> list[Path]:
    table = config.evaluation.tables[0]
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if isinstance(r, UnlearnRecord) and r.kind is CellKind.UNLEARN:
            key = (r.variant, r.fraction, r.setting.value, r.mode)
            groups[key][r.method].append(r.gaps[table.title])
    if not groups:
        return []
    plt = pyplot()
    keys = sorted(groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        methods = [m.label for m in config.methods if m.label in groups[key]]
        values = [groups[key][m] for m in methods]
        intervals = [t_interval(v) for v in values]  # error bars: 95% t-interval half-widths
        ax.bar(range(len(methods)), [i.mean for i in intervals],
               yerr=[i.half_width if np.isfinite(i.half_width) else 0.0 for i in intervals], capsize=3)
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize=8)
        modes = {k[3] for k in keys}
        ax.set_title(f"forget {key[1]:.0%}, {key[2].replace('_', ' ')}" + ("" if key[0] == "standard"
                                                                         else f", {key[0]}")
                     + (f", tuning: {key[3]}" if len(modes) > 1 else ""), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"Avg Gap ({table.title}) ± 95% CI, lower is better")
    fig.tight_layout()
    return [save_figure(fig, folder / "avg_gap.png")]


def _continuous(config: SuiteConfig, records: Sequence[BenchRecord], folder: Path) -> list[Path]:
    """One panel per setting: each method's mean ± std FR AUC − FT AUC per request (one colour per
    method in every panel); the retrained model's value (known where it was retrained) as a
    dashed black line and marks — the target a method should reach, neither above nor below."""
    plt = pyplot()
    settings = list(config.grid.settings)
    fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 3.8), squeeze=False)
    steps = np.arange(1, config.continuous.requests + 1)
    colours = {m.label: f"C{i}" for i, m in enumerate(config.methods)}
    chains = [r for r in records if isinstance(r, ChainRecord)]
    retrain: dict[int, list[float]] = defaultdict(list)
    for r in chains:
        if r.method == "Retrain":
            for step, q in zip(steps, r.requests):
                if q.fr_minus_ft is not None:
                    retrain[int(step)].append(q.fr_minus_ft)
    for ax, setting in zip(axes[0], settings):
        by_method: dict[str, list[list[float | None]]] = defaultdict(list)
        for r in chains:
            if r.setting == setting and r.method != "Retrain" and all(q.fr_minus_ft is not None for q in r.requests):
                by_method[r.method].append([q.fr_minus_ft for q in r.requests])
        for method, runs in by_method.items():
            curves = np.asarray(runs)
            ax.errorbar(steps, curves.mean(0), yerr=curves.std(0, ddof=1) if len(runs) > 1 else None,
                        marker="o", capsize=3, label=method, color=colours.get(method))
        if retrain:
            known = sorted(retrain)
            means = [float(np.mean(retrain[k])) for k in known]
            ax.plot(known, means, "k*", markersize=11, label="Retrain (target)")
            ax.axhline(means[-1], color="k", linestyle="--", linewidth=1)
        ax.set_xticks(steps)
        ax.set_xlabel("unlearning request")
        ax.set_title(setting.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("FR AUC − FT AUC (target: Retrain)")
    fig.tight_layout()
    return [save_figure(fig, folder / "continuous_fr_minus_ft.png")]


def _ablation(config: SuiteConfig, records: Sequence[BenchRecord], folder: Path) -> list[Path]:
    plt = pyplot()
    unions = list(config.ablation.unions)
    titles = {"all": "D ∪ X", "forget": "D_F ∪ X", "adversarial": "X alone"}
    fig, axes = plt.subplots(1, len(unions), figsize=(4.6 * len(unions), 3.6), squeeze=False, sharey=True)
    for ax, union in zip(axes[0], unions):
        for variant in config.ablation.variants:
            runs = [r.test_accuracy for r in records
                    if isinstance(r, AblationRecord) and r.cell.extra == {"variant": variant, "union": union}]
            if runs:
                curves = np.asarray(runs)
                ax.plot(np.arange(curves.shape[1]), curves.mean(0), marker=".", label=variant)
        ax.set_title(f"fine-tuning on {titles.get(union, union)}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return [save_figure(fig, folder / "ablation_test_accuracy.png")]


def suite_plots(config: SuiteConfig, records: Sequence[Mapping[str, Any] | BenchRecord],
                folder: str | Path) -> list[Path]:
    """Draw the suite's plots into ``folder`` from the records (JSON lines or typed); returns the files written."""
    folder = Path(folder)
    typed = parse_records(records)
    if not records:
        return []
    if config.kind is SuiteKind.CONTINUOUS:
        return _continuous(config, typed, folder)
    if config.kind is SuiteKind.ABLATION:
        return _ablation(config, typed, folder)
    if config.kind is SuiteKind.FORGETTING_QUALITY:
        return forgetting_report_files(config, typed, folder)
    return _gap_bars(config, [r for r in typed if not (isinstance(r, UnlearnRecord) and r.diverged)], folder)
