"""Result tables of a suite run (Markdown): every cell is the mean over runs ± the half-width of
its 95% t-interval; each method's Avg Gap is compared with AMUN's on the same forget sets (paired
t-interval, ``*`` where it excludes 0); the lowest Avg Gap is bold only when its paired difference
to every other method excludes 0. Records of both tuning modes (``tuning_mode``: "oracle", the
default, or "retrain_free") give one table per mode."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

from amun_plugin.bench.forgetting_tables import forgetting_tables
from amun_plugin.bench.original_check import format_original
from amun_plugin.bench.records import CellKind, Setting
from amun_plugin.bench.stats import Interval, format_interval, paired_difference, t_interval
from amun_plugin.bench.suite_config import SuiteConfig, SuiteKind
from amun_plugin.evaluate.markdown import markdown_table

__all__ = ["DELTA_COLUMN", "REFERENCE_METHOD", "STATISTICS_NOTE", "diverged_note", "format_ci", "mode_rows",
           "original_summary", "suite_tables", "table_rows", "time_rows", "tuning_modes"]

REFERENCE_METHOD = "AMUN"
DELTA_COLUMN = f"Δ Avg Gap vs {REFERENCE_METHOD}"
STATISTICS_NOTE = (
    "Each cell: mean ± half-width of the 95% confidence interval over runs (Student t; n/a for one run). "
    f"{DELTA_COLUMN}: the method's Avg Gap minus {REFERENCE_METHOD}'s on the same forget sets (pairs by original, "
    "forget and unlearn seed), mean ± 95% paired-t half-width, `*` where the interval excludes 0. "
    "An Avg Gap is bold only when its paired difference to every other method excludes 0.")

_SETTING_FREE = (CellKind.RETRAIN, CellKind.ORIGINAL)  # rows shared by both settings (and both tuning modes)
DEFAULT_TUNING_MODE = "oracle"


def format_ci(values: Sequence[float], digits: int = 2, bold: bool = False) -> str:
    """``"m ± h"``: mean over runs ± the half-width of its 95% t-interval, optionally bold."""
    return format_interval(t_interval(values), digits, bold=bold)


def _column_name(key: str) -> str:
    """``"rmia.FT_AUC"`` -> ``"FT AUC"``, ``"accuracy.UA"`` -> ``"UA"``."""
    return key.rsplit(".", 1)[-1].replace("_", " ")


def _groups(records: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> dict[tuple, list[Mapping[str, Any]]]:
    out: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        out[tuple(record[k] for k in keys)].append(record)
    return out


def _mode(record: Mapping[str, Any]) -> str:
    return str(record.get("tuning_mode") or DEFAULT_TUNING_MODE)


def tuning_modes(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The tuning modes of the unlearning records ("oracle" where a record names none)."""
    return sorted({_mode(r) for r in records if r["kind"] not in _SETTING_FREE}) or [DEFAULT_TUNING_MODE]


def _significantly_best(gaps: Mapping[str, list[Mapping[str, Any]]], title: str) -> str | None:
    """The method with the lowest mean Avg Gap if its paired difference to every other method's
    excludes 0 (and every pair exists), else None."""
    if len(gaps) < 2:
        return None
    means = {m: t_interval([r["gaps"][title] for r in runs]).mean for m, runs in gaps.items()}
    best = min(means, key=means.__getitem__)
    for other in gaps:
        if other != best:
            diff = paired_difference(gaps[best], gaps[other], lambda r: float(r["gaps"][title]))
            if diff is None or not diff.excludes_zero:
                return None
    return best


def table_rows(config: SuiteConfig, records: Sequence[Mapping[str, Any]], table_index: int = 0,
               variant: str = "standard", fraction: float = 0.1, setting: str = Setting.WITH_RETAIN,
               tuning_mode: str = DEFAULT_TUNING_MODE) -> list[dict]:
    """One row per method (Retrain first) for one (variant, fraction, setting, tuning mode) group
    of a table: metric columns and time as mean ± 95% CI, the Avg Gap's paired difference to
    AMUN (:data:`DELTA_COLUMN`)."""
    table = config.evaluation.tables[table_index]
    columns = list(table.columns) + [table.mia]
    wanted = [r for r in records if r["variant"] == variant and r["fraction"] == fraction
              and (r["kind"] in _SETTING_FREE or (r["kind"] == CellKind.UNLEARN and r["setting"] == setting
                                                  and _mode(r) == tuning_mode))]
    by_method = _groups(wanted, ("method",))
    order = ["Retrain", "Original"] + [m.label for m in config.methods]
    present = [m for m in order if (m,) in by_method]
    competitors = {m: by_method[(m,)] for m in present if m != "Retrain"}
    best = _significantly_best(competitors, table.title)
    reference = by_method.get((REFERENCE_METHOD,))
    rows = []
    for method in present:
        runs = by_method[(method,)]
        row: dict[str, Any] = {"method": method, "runs": len(runs)}
        for key in columns:
            row[_column_name(key)] = format_ci([r["metrics"][key] for r in runs])
        row["Avg Gap"] = format_ci([r["gaps"][table.title] for r in runs], bold=method == best)
        row[DELTA_COLUMN] = _delta(method, runs, reference, table.title)
        row["time (s)"] = format_ci([r["seconds"] for r in runs], digits=1)
        rows.append(row)
    return rows


def _delta(method: str, runs: list[Mapping[str, Any]], reference: list[Mapping[str, Any]] | None, title: str) -> str:
    if method in ("Retrain", REFERENCE_METHOD) or reference is None:
        return "—"
    diff: Interval | None = paired_difference(runs, reference, lambda r: float(r["gaps"][title]))
    return format_interval(diff, signed=True, mark=True) if diff is not None else "—"


def mode_rows(config: SuiteConfig, records: Sequence[Mapping[str, Any]], table_index: int = 0,
              variant: str = "standard", fraction: float = 0.1, setting: str = Setting.WITH_RETAIN) -> list[dict]:
    """One row per method run in both tuning modes: its Avg Gap tuned against retrained models
    ("oracle") and by the retrain-free rule, and the paired difference retrain-free − oracle on
    the same forget sets (``*`` where its 95% interval excludes 0)."""
    title = config.evaluation.tables[table_index].title
    wanted = [r for r in records if r["kind"] == CellKind.UNLEARN and r["variant"] == variant
              and r["fraction"] == fraction and r["setting"] == setting]
    by_mode: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in wanted:
        by_mode[(record["method"], _mode(record))].append(record)
    rows = []
    for method in [m.label for m in config.methods]:
        oracle, free = by_mode.get((method, "oracle")), by_mode.get((method, "retrain_free"))
        if not (oracle and free):
            continue
        diff = paired_difference(free, oracle, lambda r: float(r["gaps"][title]))
        rows.append({"method": method, "oracle": format_ci([r["gaps"][title] for r in oracle]),
                     "retrain-free": format_ci([r["gaps"][title] for r in free]),
                     "Δ retrain-free − oracle": format_interval(diff, signed=True, mark=True) if diff else "—",
                     "runs": min(len(oracle), len(free))})
    return rows


def time_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per method, setting and forget fraction: mean wall time (s) and its ratio to the retrain
    time of the same runs."""
    rows = []
    wanted = [r for r in records if r["kind"] in (CellKind.RETRAIN, CellKind.UNLEARN)]  # not original: it does nothing
    for (method, setting, fraction), runs in _groups(wanted, ("method", "setting", "fraction")).items():
        seconds = [r["seconds"] for r in runs]
        ratios = [r["seconds"] / r["retrain_seconds"] for r in runs if r.get("retrain_seconds")]
        rows.append({"method": method, "setting": "—" if method == "Retrain" else setting.replace("_", " "),
                     "forget": f"{fraction:.0%}", "runs": len(runs), "time (s)": format_ci(seconds, 1),
                     "time / retrain": format_ci(ratios, 3) if ratios else "—"})
    return rows


def original_summary(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    """Lines on the original models, one per (variant, original seed): train / test accuracy,
    saturated fraction (p_y == 1.0 in float32) and RMIA RT AUC (mean over the forget splits)."""
    originals = [r for r in records if r["kind"] == CellKind.ORIGINAL]
    if not originals:
        return ""
    lines = []
    for (variant, seed), runs in sorted(_groups(originals, ("variant", "original_seed")).items()):
        summary = dict(runs[0]["original"])
        rt = [r["metrics"]["rmia.RT_AUC"] for r in runs if "rmia.RT_AUC" in r["metrics"]]
        summary.setdefault("rt_auc", sum(rt) / len(rt) if rt else None)
        label = f"{variant} training, " if variant != "standard" else ""
        lines.append(f"- Original model ({label}seed {seed}): {format_original(summary)}")
    return ("Original models (saturated: % of training samples with p_y == 1.0 in float32; RMIA RT AUC: "
            "training members vs test non-members):\n\n" + "\n".join(lines) + "\n")


def diverged_note(records: Sequence[Mapping[str, Any]]) -> str:
    """A line per method whose unlearning runs diverged (non-finite weights: no metrics), or ""."""
    failed = _groups([r for r in records if r.get("diverged")], ("method", "setting", "fraction"))
    lines = [f"- {method} ({setting.replace('_', ' ')}, forget {fraction:.0%}): {len(runs)} run(s) diverged "
             f"(non-finite weights), left out of the tables: {runs[0]['diverged']}"
             for (method, setting, fraction), runs in sorted(failed.items())]
    return "Diverged runs:\n\n" + "\n".join(lines) + "\n" if lines else ""


def _table_suite(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    note = diverged_note(records)
    records = [r for r in records if not r.get("diverged")]
    parts = [original_summary(config, records), note]
    modes = tuning_modes(records)
    for index, table in enumerate(config.evaluation.tables):
        columns = ["method"] + [_column_name(k) for k in table.columns] + [_column_name(table.mia), "Avg Gap",
                                                                          DELTA_COLUMN, "time (s)", "runs"]
        for variant in config.grid.variants:
            for fraction in config.grid.fractions:
                for setting in config.grid.settings:
                    for mode in modes:
                        rows = table_rows(config, records, index, variant.value, fraction, setting, mode)
                        if len(rows) <= 1:
                            continue
                        title = f"### {table.title} — forget {fraction:.0%}, {setting.replace('_', ' ')}"
                        title += f", {variant.value} training" if variant.value != "standard" else ""
                        title += f", tuning: {mode.replace('_', '-')}" if len(modes) > 1 else ""
                        parts.append(f"{title}\n\n{markdown_table(rows, columns)}")
                    modes_compared = mode_rows(config, records, index, variant.value, fraction, setting)
                    if modes_compared and len(modes) > 1:
                        title = (f"### {table.title} Avg Gap by tuning mode — forget {fraction:.0%}, "
                                 f"{setting.replace('_', ' ')}")
                        title += f", {variant.value} training" if variant.value != "standard" else ""
                        parts.append(f"{title}\n\n{markdown_table(modes_compared, list(modes_compared[0]))}")
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
    requests, title = config.continuous.requests, config.evaluation.tables[0].title
    for setting in config.grid.settings:
        chains = [r for r in records if r["kind"] == CellKind.CHAIN and r["setting"] == setting]
        by_method = _groups(chains, ("method",))
        reference = [r for r in by_method.get((REFERENCE_METHOD,), []) if "gaps" in r["requests"][-1]]
        rows = []
        for (method,), runs in by_method.items():
            row: dict[str, Any] = {"method": method, "runs": len(runs)}
            for r in range(requests):
                values = [run["requests"][r]["fr_minus_ft"] for run in runs if "fr_minus_ft" in run["requests"][r]]
                row[f"#{r + 1}"] = format_ci(values) if values else "—"
            final = [run for run in runs if "gaps" in run["requests"][-1]]
            row["final Avg Gap"] = format_ci([run["requests"][-1]["gaps"][title] for run in final]) if final else "—"
            row[f"Δ final Avg Gap vs {REFERENCE_METHOD}"] = _chain_delta(method, final, reference, title)
            row["time (s)"] = format_ci([_chain_seconds(run) for run in runs], 1)
            rows.append(row)
        if rows:
            columns = (["method"] + [f"#{r + 1}" for r in range(requests)]
                       + ["final Avg Gap", f"Δ final Avg Gap vs {REFERENCE_METHOD}", "time (s)", "runs"])
            parts.append(f"### FR AUC − FT AUC after each request, {setting.replace('_', ' ')}\n\n"
                         + markdown_table(rows, columns))
    return "\n".join(parts)


def _chain_delta(method: str, runs: list, reference: list, title: str) -> str:
    """Paired difference of the final Avg Gap to AMUN's chains (same seeds), or an em dash."""
    if method in ("Retrain", REFERENCE_METHOD) or not runs or not reference:
        return "—"
    diff = paired_difference(runs, reference, lambda r: float(r["requests"][-1]["gaps"][title]))
    return format_interval(diff, signed=True, mark=True) if diff is not None else "—"


def _ablation_suite(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    unions = config.ablation.unions
    for variant in config.ablation.variants:
        row: dict[str, Any] = {"X": variant}
        for union in unions:
            cell = {"variant": variant, "union": union}
            runs = [r for r in records if r["kind"] == CellKind.ABLATION and r["extra"] == cell]
            row[union] = format_ci([r["test_accuracy"][-1] for r in runs]) if runs else "—"
        rows.append(row)
    before = [r["test_accuracy"][0] for r in records if r["kind"] == CellKind.ABLATION]
    head = f"Test accuracy before fine-tuning: {format_ci(before)}\n\n" if before else ""
    return ("### Test accuracy after fine-tuning on each union (all = D ∪ X, forget = D_F ∪ X, "
            f"adversarial = X)\n\n{head}" + markdown_table(rows, ["X", *unions]))


def suite_tables(config: SuiteConfig, records: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown body of ``table.md`` for the suite's kind."""
    if config.kind is SuiteKind.CONTINUOUS:
        return _continuous_suite(config, records)
    if config.kind is SuiteKind.ABLATION:
        return _ablation_suite(config, records)
    if config.kind is SuiteKind.FORGETTING_QUALITY:
        return forgetting_tables(config, records)
    return _table_suite(config, records)
