"""Result tables of a suite run: mean ± std over runs, the best Avg Gap in bold (Markdown)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from amun_plugin.bench.config import SuiteConfig, SuiteKind
from amun_plugin.evaluate.gap import mean_std
from amun_plugin.evaluate.tables import markdown_table

__all__ = ["format_mean_std", "original_summary", "suite_tables", "table_rows", "time_rows"]



_SETTING_FREE = ("retrain", "original")  # rows shared by both settings


def format_mean_std(values: Sequence[float], digits: int = 2, bold: bool = False) -> str:
    """``"m ± s"`` over runs (sample std; 0 for one run), optionally in Markdown bold."""
    mean, std = mean_std(values)
    text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"**{text}**" if bold else text


def _column_name(key: str) -> str:
    """``"rmia.FT_AUC"`` -> ``"FT AUC"``, ``"accuracy.UA"`` -> ``"UA"``."""
    return key.rsplit(".", 1)[-1].replace("_", " ")


def _groups(records: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> dict[tuple, list[Mapping[str, Any]]]:
    out: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        out[tuple(record[k] for k in keys)].append(record)
    return out


def table_rows(config: SuiteConfig, records: Sequence[Mapping[str, Any]], table_index: int = 0,
               variant: str = "standard", fraction: float = 0.1, setting: str = "with_retain") -> list[dict]:
    """One row per method (Retrain first) for one (variant, fraction, setting) group of a table."""
    table = config.evaluation.tables[table_index]
    columns = list(table.columns) + [table.mia]
    wanted = [r for r in records if r["variant"] == variant and r["fraction"] == fraction
              and (r["kind"] in _SETTING_FREE or (r["kind"] == "unlearn" and r["setting"] == setting))]
    by_method = _groups(wanted, ("method",))
    order = ["Retrain", "Original"] + [m.label for m in config.methods]
    present = [m for m in order if (m,) in by_method]
    gap_means = {m: mean_std([r["gaps"][table.title] for r in by_method[(m,)]])[0] for m in present
                 if m not in ("Retrain", "Original")}
    best = min(gap_means.values()) if gap_means else None
    rows = []
    for method in present:
        runs = by_method[(method,)]
        row: dict[str, Any] = {"method": method, "runs": len(runs)}
        for key in columns:
            row[_column_name(key)] = format_mean_std([r["metrics"][key] for r in runs])
        bold = method in gap_means and best is not None and np.isclose(gap_means[method], best)
        row["Avg Gap"] = format_mean_std([r["gaps"][table.title] for r in runs], bold=bool(bold))
        row["time (s)"] = format_mean_std([r["seconds"] for r in runs], digits=1)
        rows.append(row)
    return rows


def time_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per method, setting and forget fraction: mean wall time (s) and its ratio to the retrain
    time of the same runs."""
    rows = []
    wanted = [r for r in records if r["kind"] in ("retrain", "unlearn")]  # not "original": it does nothing
    for (method, setting, fraction), runs in _groups(wanted, ("method", "setting", "fraction")).items():
        seconds = [r["seconds"] for r in runs]
        ratios = [r["seconds"] / r["retrain_seconds"] for r in runs if r.get("retrain_seconds")]
        rows.append({"method": method, "setting": "—" if method == "Retrain" else setting.replace("_", " "),
                     "forget": f"{fraction:.0%}", "runs": len(runs), "time (s)": format_mean_std(seconds, 1),
                     "time / retrain": format_mean_std(ratios, 3) if ratios else "—"})
    return rows


def original_summary(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    """One line on the original models: do they memorise (train accuracy, RT AUC)?"""
    originals = [r for r in records if r["kind"] == "original"]
    if not originals:
        return ""
    mia = config.evaluation.tables[0].mia
    rt_key = mia.rsplit(".", 1)[0] + ".RT_AUC"
    text = (f"Original models: train accuracy {format_mean_std([r['original']['train_accuracy'] for r in originals])}"
            f" %, test accuracy {format_mean_std([r['original']['test_accuracy'] for r in originals])} %")
    if all(rt_key in r["metrics"] for r in originals):
        text += f", RT AUC ({rt_key}) {format_mean_std([r['metrics'][rt_key] for r in originals])}"
    return text + " (over all forget splits).\n"


def _table_suite(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    parts = [original_summary(config, records)]
    for index, table in enumerate(config.evaluation.tables):
        columns = ["method"] + [_column_name(k) for k in table.columns] + [_column_name(table.mia), "Avg Gap",
                                                                          "time (s)", "runs"]
        for variant in config.grid.variants:
            for fraction in config.grid.fractions:
                for setting in config.grid.settings:
                    rows = table_rows(config, records, index, variant.value, fraction, setting)
                    if len(rows) <= 1:
                        continue
                    title = f"### {table.title} — forget {fraction:.0%}, {setting.replace('_', ' ')}"
                    title += f", {variant.value} training" if variant.value != "standard" else ""
                    parts.append(f"{title}\n\n{markdown_table(rows, columns)}")
    times = time_rows(records)
    if times:
        parts.append("### Time per unlearning run (incl. D_A search) and its ratio to retraining\n\n"
                     + markdown_table(times, ["method", "setting", "forget", "time (s)", "time / retrain", "runs"]))
    return "\n".join(p for p in parts if p)


def _chain_seconds(run: Mapping[str, Any]) -> float:
    """A chain's wall time; a Retrain chain's is the time of the retrainings it ran."""
    if run["method"] == "Retrain":
        return float(sum(request.get("retrain_seconds", 0.0) for request in run["requests"]))
    return float(run["seconds"])


def _continuous_suite(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    requests = config.continuous.requests
    for setting in config.grid.settings:
        chains = [r for r in records if r["kind"] == "chain" and r["setting"] == setting]
        rows = []
        for (method,), runs in _groups(chains, ("method",)).items():
            row: dict[str, Any] = {"method": method, "runs": len(runs)}
            for r in range(requests):
                values = [run["requests"][r]["fr_minus_ft"] for run in runs if "fr_minus_ft" in run["requests"][r]]
                row[f"#{r + 1}"] = format_mean_std(values) if values else "—"
            gaps = [run["requests"][-1]["gaps"][config.evaluation.tables[0].title] for run in runs
                    if "gaps" in run["requests"][-1]]
            row["final Avg Gap"] = format_mean_std(gaps) if gaps else "—"
            row["time (s)"] = format_mean_std([_chain_seconds(run) for run in runs], 1)
            rows.append(row)
        if rows:
            columns = ["method"] + [f"#{r + 1}" for r in range(requests)] + ["final Avg Gap", "time (s)", "runs"]
            parts.append(f"### FR AUC − FT AUC after each request, {setting.replace('_', ' ')}\n\n"
                         + markdown_table(rows, columns))
    return "\n".join(parts)


def _ablation_suite(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    unions = config.ablation.unions
    for variant in config.ablation.variants:
        row: dict[str, Any] = {"X": variant}
        for union in unions:
            cell = {"variant": variant, "union": union}
            runs = [r for r in records if r["kind"] == "ablation" and r["extra"] == cell]
            row[union] = format_mean_std([r["test_accuracy"][-1] for r in runs]) if runs else "—"
        rows.append(row)
    before = [r["test_accuracy"][0] for r in records if r["kind"] == "ablation"]
    head = f"Test accuracy before fine-tuning: {format_mean_std(before)}\n\n" if before else ""
    return ("### Test accuracy after fine-tuning on each union (all = D ∪ X, forget = D_F ∪ X, "
            f"adversarial = X)\n\n{head}" + markdown_table(rows, ["X", *unions]))


def suite_tables(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown body of ``table.md`` for the suite's kind."""
    if config.kind is SuiteKind.CONTINUOUS:
        return _continuous_suite(config, records)
    if config.kind is SuiteKind.ABLATION:
        return _ablation_suite(config, records)
    if config.kind is SuiteKind.FORGETTING_QUALITY:
        from amun_plugin.bench.forgetting_tables import forgetting_tables

        return forgetting_tables(config, records)
    return _table_suite(config, records)
