"""The report of a ``forgetting_quality`` suite: Markdown table, JSON rows, per-example ε histograms.

One row per record (method or control x setting x forget split): F with a 95% bootstrap interval
over forget examples (the points of the n examples resampled, 2,000 draws), the final score,
the RA / TA ratios to the retrained models, U-LiRA's TPR at 1% and 0.1% FPR and AUC with their
95% bootstrap intervals over models, and the time per run. The cost section gives the time
spent retraining the N reference models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from amun_plugin.bench.record_types import BenchRecord, ForgettingRecord, parse_records
from amun_plugin.bench.records import CONTROLS
from amun_plugin.bench.suite_config import SuiteConfig
from amun_plugin.evaluate.forgetting_quality import EPSILON_CAP, epsilon_points, max_resolvable_epsilon
from amun_plugin.evaluate.markdown import markdown_table
from amun_plugin.evaluate.plotting import pyplot, save_figure
from amun_plugin.io import atomic_write_text

__all__ = ["COLUMNS", "epsilon_histograms", "f_interval", "forgetting_report_files", "forgetting_rows",
           "forgetting_tables"]

COLUMNS = ("method", "setting", "F [95% CI]", "final score", "RA ratio", "TA ratio", "U-LiRA TPR@1%FPR [CI]",
           "U-LiRA TPR@0.1%FPR [CI]", "U-LiRA AUC [CI]", "s / run", "N", "n")


def f_interval(epsilon: Sequence[float], runs: int, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of F = mean points over the n forget examples."""
    points = epsilon_points(np.asarray(epsilon, dtype=np.float64), runs)
    rng = np.random.default_rng(seed)
    means = points[rng.integers(0, points.size, (draws, points.size))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


Records = Sequence[Union[Mapping[str, Any], BenchRecord]]


def _ordered(config: SuiteConfig, records: Records) -> list[ForgettingRecord]:
    order = {label: i for i, label in enumerate(list(CONTROLS) + [m.label for m in config.methods])}
    wanted = [r for r in parse_records(records) if isinstance(r, ForgettingRecord)]
    return sorted(wanted, key=lambda r: (r.variant, r.fraction, r.cell.forget_seed, order.get(r.method, 99),
                                         r.setting.value))


def _with_ci(result: Mapping[str, Any], key: str) -> str:
    lo, hi = result[f"{key}_ci"] if f"{key}_ci" in result else (float("nan"), float("nan"))
    return f"{result[key]:.1f} [{lo:.1f}, {hi:.1f}]"


def forgetting_rows(config: SuiteConfig, records: Records) -> list[dict[str, Any]]:
    """The table's rows (plain values beside the formatted ones, for the JSON)."""
    rows = []
    for record in _ordered(config, records):
        result = record.result
        lo, hi = f_interval(result.epsilon, result.runs)
        ulira = result.ulira
        rows.append({
            "method": record.method, "setting": "—" if record.method in CONTROLS else record.setting.replace("_", " "),
            "fraction": record.fraction, "forget_seed": record.cell.forget_seed,
            "F [95% CI]": f"{result.F:.3f} [{lo:.3f}, {hi:.3f}]", "F": result.F, "F_ci": [lo, hi],
            "final score": f"{result.final_score:.3f}", "final_score": result.final_score,
            "RA ratio": f"{result.RA_ratio:.3f}", "TA ratio": f"{result.TA_ratio:.3f}",
            "U-LiRA TPR@1%FPR [CI]": _with_ci(ulira, "TPR@1%FPR"),
            "U-LiRA TPR@0.1%FPR [CI]": _with_ci(ulira, "TPR@0.1%FPR"), "U-LiRA AUC [CI]": _with_ci(ulira, "AUC"),
            "ulira": ulira, "mean_epsilon": float(np.mean(result.epsilon)),
            "s / run": f"{record.seconds:.2f}", "seconds_per_run": record.seconds,
            "seconds_search": record.seconds_search, "N": result.runs, "n": len(result.epsilon),
        })
    return rows


def _cost(records: Records) -> str:
    cells = [r for r in parse_records(records) if isinstance(r, ForgettingRecord)]
    if not cells:
        return ""
    side = cells[0].result.retrained
    lines = [f"- Retraining the N = {side['models']} reference models on D_R: {side['seconds_total']:.1f} s in "
             f"total ({side['seconds_mean']:.2f} s per model), once per forget split, shared by every row."]
    for record in cells:
        if record.seconds_search:
            lines.append(f"- {record.method} ({record.setting.replace('_', ' ')}): D_A search "
                         f"{record.seconds_search:.1f} s once, shared by its N runs (not in s / run).")
    return "\n".join(lines)


def _confidence_note(records: Records) -> str:
    """Where the per-model confidences are, when the records hold them (runs since issue 27)."""
    cells = [r for r in parse_records(records) if isinstance(r, ForgettingRecord)]
    if not cells or not all("confidence" in r.result.rest for r in cells):
        return ""
    return (" The per-model confidences every ε is computed from (model x forget example, both sides): "
            "`results.jsonl`, key `forgetting.confidence`.")


def forgetting_tables(config: SuiteConfig, records: Records) -> str:
    """The Markdown body of ``table.md``."""
    rows = forgetting_rows(config, records)
    if not rows:
        return ""
    n_runs = rows[0]["N"]

    head = (f"NeurIPS 2023 forgetting score F (1 = indistinguishable from retraining, 0 = fully "
            f"distinguishable) over N = {n_runs} unlearning runs vs N retrained models; with this N the "
            f"points end at ε = ceil(ln(N − 1)) = {max_resolvable_epsilon(n_runs)}. Final score = F × RA ratio × "
            "TA ratio. U-LiRA: per-example Gaussian likelihood-ratio test (leave-one-out), TPR in %, ideal "
            "TPR@x%FPR ≈ x and AUC ≈ 50; intervals are 95% bootstrap (F over the n forget examples, U-LiRA "
            "over models). s / run: mean wall time of one unlearning run." + _confidence_note(records) + "\n")
    return "\n".join([head, markdown_table(rows, list(COLUMNS)), "\n### Cost\n", _cost(records)])


def forgetting_report_files(config: SuiteConfig, records: Records,
                            folder: str | Path) -> list[Path]:
    """Write ``forgetting_quality.json`` (rows and per-example ε) and ``epsilon_histograms.png``;
    returns the PNGs."""
    folder = Path(folder)
    rows = forgetting_rows(config, records)
    if not rows:
        return []
    many = len({(r["fraction"], r["forget_seed"]) for r in rows}) > 1
    eps = {_name(row, many): list(record.result.epsilon) for row, record in zip(rows, _ordered(config, records))}
    payload = {"rows": [{k: v for k, v in row.items() if "[" not in k} for row in rows], "epsilon": eps}
    atomic_write_text(folder / "forgetting_quality.json", json.dumps(payload, indent=1))
    return [epsilon_histograms(eps, rows[0]["N"], folder / "epsilon_histograms.png")]


def _name(row: Mapping[str, Any], many: bool) -> str:
    name = row["method"] if row["setting"] == "—" else f"{row['method']} ({row['setting']})"
    return name + (f", forget {row['fraction']:.0%} seed {row['forget_seed']}" if many else "")


def epsilon_histograms(eps: Mapping[str, Sequence[float]], runs: int, path: Path) -> Path:
    plt = pyplot()
    cols = 3
    nrows = (len(eps) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.6 * nrows), squeeze=False, sharex=True)
    top = max_resolvable_epsilon(runs)
    bins = np.concatenate([np.arange(0.0, top + 0.5, 0.5), [EPSILON_CAP + 1]])
    for ax, (name, values) in zip(axes.ravel(), eps.items()):
        clipped = np.minimum(np.asarray(values), top + 0.25)  # everything >= the last bucket in one bar
        ax.hist(clipped, bins=bins[:-1].tolist() + [top + 0.5], color="tab:blue", alpha=0.8)
        ax.set_title(name, fontsize=9)
        ax.axvline(top, color="red", lw=0.8, ls="--")
    for ax in axes.ravel()[len(eps):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(f"per-example ε (last bar: ≥ {top}, scores 0)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
