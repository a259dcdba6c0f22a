"""Result tables of a suite run (Markdown): every cell is the mean over runs ± the half-width of
its 95% t-interval; each method's Avg Gap is compared with AMUN's on the same forget sets (paired
t-interval, ``*`` where it excludes 0); the lowest Avg Gap is bold only when its paired difference
to every other method excludes 0. Records of both tuning modes (``tuning_mode``: "oracle", the
default, or "retrain_free") give one table per mode."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar, Union

from amun_plugin.bench.forgetting_tables import forgetting_tables
from amun_plugin.bench.original_check import format_original
from amun_plugin.bench.record_types import (
    AblationRecord,
    BenchRecord,
    ChainRecord,
    OriginalRecord,
    RetrainRecord,
    UnlearnRecord,
    parse_records,
)
from amun_plugin.bench.records import CellKind, Setting
from amun_plugin.bench.stats import Interval, format_interval, paired_difference, runs_for_half_width, t_interval
from amun_plugin.bench.suite_config import SuiteConfig, SuiteKind
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.markdown import markdown_table

__all__ = ["DELTA_COLUMN", "REFERENCE_METHOD", "STATISTICS_NOTE", "diverged_note", "family_rows", "format_ci",
           "mode_rows", "original_summary", "reference_method", "suite_tables", "table_rows", "time_rows",
           "tuning_modes"]

REFERENCE_METHOD = "AMUN"
DELTA_COLUMN = f"Δ Avg Gap vs {REFERENCE_METHOD}"
STATISTICS_NOTE = (
    "Each cell: mean ± half-width of the 95% confidence interval over runs (Student t; n/a for one run). "
    f"{DELTA_COLUMN}: the method's Avg Gap minus {REFERENCE_METHOD}'s (in a suite of AMUN variants only: its "
    "first row) on the same forget sets (pairs by original, "
    "forget and unlearn seed), mean ± 95% paired-t half-width, `*` where the interval excludes 0. "
    "An Avg Gap is bold only when its paired difference to every other method excludes 0. "
    "\"AMUN family vs the best baseline\": each AMUN row's paired difference to the baseline with the lowest "
    "mean Avg Gap in the same table.")

DEFAULT_TUNING_MODE = "oracle"
TARGET_HALF_WIDTH = 0.5  # Avg Gap points: the interval the benchmark issue sizes the tables for
Records = Sequence[Union[Mapping[str, Any], BenchRecord]]
"""What the tables read: ``results.jsonl`` lines or their typed records."""
_TableRecord = Union[RetrainRecord, OriginalRecord, UnlearnRecord]
_R = TypeVar("_R")


def format_ci(values: Sequence[float], digits: int = 2, bold: bool = False) -> str:
    """``"m ± h"``: mean over runs ± the half-width of its 95% t-interval, optionally bold."""
    return format_interval(t_interval(values), digits, bold=bold)


def _column_name(key: str) -> str:
    """``"rmia.FT_AUC"`` -> ``"FT AUC"``, ``"accuracy.UA"`` -> ``"UA"``."""
    return key.rsplit(".", 1)[-1].replace("_", " ")


def _groups(records: Iterable[_R], key: Callable[[_R], Any]) -> dict[Any, list[_R]]:
    out: dict[Any, list[_R]] = defaultdict(list)
    for record in records:
        out[key(record)].append(record)
    return out


def _unlearn_runs(records: Records) -> list[UnlearnRecord]:
    """The table cells' unlearning runs (kind ``unlearn``; tuning runs are ``tune``)."""
    return [r for r in parse_records(records) if isinstance(r, UnlearnRecord) and r.kind is CellKind.UNLEARN]


def tuning_modes(records: Records) -> list[str]:
    """The tuning modes of the unlearning records ("oracle" where a record names none)."""
    return sorted({r.mode for r in parse_records(records)
                   if isinstance(r, UnlearnRecord)}) or [DEFAULT_TUNING_MODE]


def _significantly_best(gaps: Mapping[str, list[_TableRecord]], title: str) -> str | None:
    """The method with the lowest mean Avg Gap if its paired difference to every other method's
    excludes 0 (and every pair exists), else None."""
    if len(gaps) < 2:
        return None
    means = {m: t_interval([r.gaps[title] for r in runs]).mean for m, runs in gaps.items()}
    best = min(means, key=means.__getitem__)
    for other in gaps:
        if other != best:
            diff = paired_difference(gaps[best], gaps[other], lambda r: float(r.gaps[title]))
            if diff is None or not diff.excludes_zero:
                return None
    return best


def table_rows(config: SuiteConfig, records: Records, table_index: int = 0,
               variant: str = "standard", fraction: float = 0.1, setting: str = Setting.WITH_RETAIN,
               tuning_mode: str = DEFAULT_TUNING_MODE) -> list[dict]:
    """One row per method (Retrain first) for one (variant, fraction, setting, tuning mode) group
    of a table: metric columns and time as mean ± 95% CI, the Avg Gap's paired difference to
    AMUN (:data:`DELTA_COLUMN`)."""
    table = config.evaluation.tables[table_index]
    columns = list(table.columns) + [table.mia]
    by_method = _group_runs(config, records, variant, fraction, setting, tuning_mode)
    present = list(by_method)
    competitors = {m: by_method[m] for m in present if m != "Retrain"}
    best = _significantly_best(competitors, table.title)
    reference_label = reference_method(present)
    reference = by_method.get(reference_label) if reference_label else None
    rows = []
    for method in present:
        runs = by_method[method]
        row: dict[str, Any] = {"method": method, "runs": len(runs)}
        for key in columns:
            row[_column_name(key)] = format_ci([r.metrics[key] for r in runs])
        row["Avg Gap"] = format_ci([r.gaps[table.title] for r in runs], bold=method == best)
        row[DELTA_COLUMN] = _delta(method, runs, reference, table.title, reference_label)
        row["time (s)"] = format_ci([r.seconds for r in runs], digits=1)
        rows.append(row)
    return rows


def _group_runs(config: SuiteConfig, records: Records, variant: str, fraction: float, setting: str,
                tuning_mode: str) -> dict[str, list[_TableRecord]]:
    """The runs of one (variant, fraction, setting, tuning mode) group by method, in table order
    (Retrain, Original, then the suite's methods)."""
    wanted: list[_TableRecord] = [
        r for r in parse_records(records) if r.variant == variant and r.fraction == fraction
        and (isinstance(r, (RetrainRecord, OriginalRecord))  # shared by both settings and both tuning modes
             or (isinstance(r, UnlearnRecord) and r.kind is CellKind.UNLEARN and r.setting == setting
                 and r.mode == tuning_mode))]
    by_method = _groups(wanted, lambda r: r.method)
    order = ["Retrain", "Original"] + [m.label for m in config.methods]
    return {m: by_method[m] for m in order if m in by_method}


def family_rows(config: SuiteConfig, records: Records, table_index: int = 0, variant: str = "standard",
                fraction: float = 0.1, setting: str = Setting.WITH_RETAIN,
                tuning_mode: str = DEFAULT_TUNING_MODE) -> list[dict]:
    """One row per AMUN-family method (label starting with AMUN) of a group: its Avg Gap, the best
    baseline's (lowest mean Avg Gap among the other methods but Retrain / Original) and the
    paired difference method − best baseline on the same forget sets (``*``: 95% interval
    excludes 0). Empty without both an AMUN-family method and a baseline."""
    title = config.evaluation.tables[table_index].title
    by_method = _group_runs(config, records, variant, fraction, setting, tuning_mode)
    family = [m for m in by_method if m.startswith(REFERENCE_METHOD)]
    baselines = {m: runs for m, runs in by_method.items()
                 if m not in ("Retrain", "Original") and m not in family}
    if not family or not baselines:
        return []
    best = min(baselines, key=lambda m: t_interval([r.gaps[title] for r in baselines[m]]).mean)
    rows = []
    for method in family:
        diff = paired_difference(by_method[method], baselines[best], lambda r: float(r.gaps[title]))
        rows.append({"method": method, "Avg Gap": format_ci([r.gaps[title] for r in by_method[method]]),
                     "best baseline": best, "its Avg Gap": format_ci([r.gaps[title] for r in baselines[best]]),
                     "Δ method − best baseline": format_interval(diff, signed=True, mark=True) if diff else "—",
                     "pairs": diff.n if diff else 0})
    return rows


def reference_method(labels: Sequence[str]) -> str | None:
    """The row every paired difference is taken against: AMUN, or in a suite of AMUN variants
    only (e.g. ``weak_attack``) the first of them; None when no label starts with AMUN."""
    if REFERENCE_METHOD in labels:
        return REFERENCE_METHOD
    return next((label for label in labels if label.startswith(REFERENCE_METHOD)), None)


def _delta(method: str, runs: list[_TableRecord], reference: list[_TableRecord] | None, title: str,
           reference_label: str | None = REFERENCE_METHOD) -> str:
    if method in ("Retrain", reference_label) or reference is None:
        return "—"
    diff: Interval | None = paired_difference(runs, reference, lambda r: float(r.gaps[title]))
    return format_interval(diff, signed=True, mark=True) if diff is not None else "—"


def mode_rows(config: SuiteConfig, records: Records, table_index: int = 0,
              variant: str = "standard", fraction: float = 0.1, setting: str = Setting.WITH_RETAIN) -> list[dict]:
    """One row per method run in both tuning modes: its Avg Gap tuned against retrained models
    ("oracle") and by the retrain-free rule, and the paired difference retrain-free − oracle on
    the same forget sets (``*`` where its 95% interval excludes 0); and how many forget sets
    would give each mode's Avg Gap a 95% interval of ± :data:`TARGET_HALF_WIDTH` at the spread
    measured (:func:`~amun_plugin.bench.stats.runs_for_half_width`)."""
    title = config.evaluation.tables[table_index].title
    wanted = [r for r in _unlearn_runs(records) if r.variant == variant and r.fraction == fraction
              and r.setting == setting]
    by_mode = _groups(wanted, lambda r: (r.method, r.mode))
    rows = []
    for method in [m.label for m in config.methods]:
        oracle, free = by_mode.get((method, "oracle")), by_mode.get((method, "retrain_free"))
        if not (oracle and free):
            continue
        diff = paired_difference(free, oracle, lambda r: float(r.gaps[title]))
        rows.append({"method": method, "oracle": format_ci([r.gaps[title] for r in oracle]),
                     "retrain-free": format_ci([r.gaps[title] for r in free]),
                     "Δ retrain-free − oracle": format_interval(diff, signed=True, mark=True) if diff else "—",
                     "runs": min(len(oracle), len(free)),
                     f"runs for ± {TARGET_HALF_WIDTH:g}": " / ".join(_runs_needed([r.gaps[title] for r in runs])
                                                                    for runs in (oracle, free))})
    return rows


def _runs_needed(values: Sequence[float], most: int = 1000) -> str:
    if len(values) < 2:
        return "—"
    try:
        return str(runs_for_half_width(values, TARGET_HALF_WIDTH, max_runs=most))
    except InvalidInputError:  # a spread that no affordable number of runs narrows enough
        return f"> {most}"


def time_rows(records: Records) -> list[dict[str, Any]]:
    """Per method, setting, forget fraction and tuning mode: mean wall time (s) and its ratio to
    the retrain time of the same runs."""
    rows = []
    wanted: list[RetrainRecord | UnlearnRecord] = [  # not original: it does nothing
        r for r in parse_records(records) if isinstance(r, RetrainRecord) or (isinstance(r, UnlearnRecord)
                                                                             and r.kind is CellKind.UNLEARN)]

    def key(r: RetrainRecord | UnlearnRecord) -> tuple[str, str, float, str]:
        return r.method, r.setting, r.fraction, r.mode if isinstance(r, UnlearnRecord) else "—"

    for (method, setting, fraction, mode), runs in _groups(wanted, key).items():
        seconds = [r.seconds for r in runs]
        ratios = [r.seconds / r.retrain_seconds for r in runs if r.retrain_seconds]
        rows.append({"method": method, "setting": "—" if method == "Retrain" else setting.replace("_", " "),
                     "forget": f"{fraction:.0%}", "tuning": mode.replace("_", "-"), "runs": len(runs),
                     "time (s)": format_ci(seconds, 1), "time / retrain": format_ci(ratios, 3) if ratios else "—"})
    return rows


def original_summary(config: SuiteConfig, records: Records) -> str:
    """Lines on the original models, one per (variant, original seed): train / test accuracy,
    saturated fraction (p_y == 1.0 in float32) and RMIA RT AUC (mean over the forget splits)."""
    originals = [r for r in parse_records(records) if isinstance(r, OriginalRecord)]
    if not originals:
        return ""
    lines = []
    for (variant, seed), runs in sorted(_groups(originals, lambda r: (r.variant, r.cell.original_seed)).items()):
        first = runs[0].original
        assert first is not None
        rt = [r.metrics["rmia.RT_AUC"] for r in runs if "rmia.RT_AUC" in r.metrics]
        summary = {"train_accuracy": first.train_accuracy, "test_accuracy": first.test_accuracy,
                   "saturated_fraction": first.saturated_fraction,  # records before the check: RT AUC from the audit
                   "rt_auc": first.rt_auc if first.has_rt_auc else (sum(rt) / len(rt) if rt else None)}
        label = f"{variant} training, " if variant != "standard" else ""
        lines.append(f"- Original model ({label}seed {seed}): {format_original(summary)}")
    return ("Original models (saturated: % of training samples with p_y == 1.0 in float32; RMIA RT AUC: "
            "training members vs test non-members):\n\n" + "\n".join(lines) + "\n")


def _diverged(record: BenchRecord) -> bool:
    return isinstance(record, UnlearnRecord) and bool(record.diverged)


def diverged_note(records: Records) -> str:
    """A line per method whose unlearning runs diverged (non-finite weights: no metrics), or ""."""
    failed = _groups([r for r in parse_records(records) if isinstance(r, UnlearnRecord) and r.diverged],
                     lambda r: (r.method, r.setting.value, r.fraction))
    lines = [f"- {method} ({setting.replace('_', ' ')}, forget {fraction:.0%}): {len(runs)} run(s) diverged "
             f"(non-finite weights), left out of the tables: {runs[0].diverged}"
             for (method, setting, fraction), runs in sorted(failed.items())]
    return "Diverged runs:\n\n" + "\n".join(lines) + "\n" if lines else ""


def _table_suite(config: SuiteConfig, records: Sequence[BenchRecord]) -> str:
    note = diverged_note(records)
    records = [r for r in records if not _diverged(r)]
    parts = [f"**Note:** {config.note}\n" if config.note else "", original_summary(config, records), note]
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
                        family = family_rows(config, records, index, variant.value, fraction, setting, mode)
                        if family:
                            heading = title.replace(table.title, f"{table.title} AMUN family vs the best baseline", 1)
                            parts.append(f"{heading}\n\n{markdown_table(family, list(family[0]))}")
                    modes_compared = mode_rows(config, records, index, variant.value, fraction, setting)
                    if modes_compared and len(modes) > 1:
                        title = (f"### {table.title} Avg Gap by tuning mode — forget {fraction:.0%}, "
                                 f"{setting.replace('_', ' ')}")
                        title += f", {variant.value} training" if variant.value != "standard" else ""
                        parts.append(f"{title}\n\n{markdown_table(modes_compared, list(modes_compared[0]))}")
    times = time_rows(records)
    if times:
        parts.append("### Time per unlearning run (incl. D_A search) and its ratio to retraining\n\n"
                     + markdown_table(times, ["method", "setting", "forget"] + (["tuning"] if len(modes) > 1 else [])
                                      + ["time (s)", "time / retrain", "runs"]))
    return "\n".join(p for p in parts if p)


def _continuous_suite(config: SuiteConfig, records: Records) -> str:
    parts = []
    requests, title = config.continuous.requests, config.evaluation.tables[0].title
    for setting in config.grid.settings:
        chains = [r for r in parse_records(records) if isinstance(r, ChainRecord) and r.setting == setting]
        by_method = _groups(chains, lambda r: r.method)
        reference = [r for r in by_method.get(REFERENCE_METHOD, []) if r.requests[-1].gaps is not None]
        rows = []
        for method, runs in by_method.items():
            row: dict[str, Any] = {"method": method, "runs": len(runs)}
            for r in range(requests):
                values = [v for run in runs if (v := run.requests[r].fr_minus_ft) is not None]
                row[f"#{r + 1}"] = format_ci(values) if values else "—"
            final = [run for run in runs if run.requests[-1].gaps is not None]
            row["final Avg Gap"] = format_ci([_final_gap(run, title) for run in final]) if final else "—"
            row[f"Δ final Avg Gap vs {REFERENCE_METHOD}"] = _chain_delta(method, final, reference, title)
            row["time (s)"] = format_ci([run.wall_seconds for run in runs], 1)
            rows.append(row)
        if rows:
            columns = (["method"] + [f"#{r + 1}" for r in range(requests)]
                       + ["final Avg Gap", f"Δ final Avg Gap vs {REFERENCE_METHOD}", "time (s)", "runs"])
            parts.append(f"### FR AUC − FT AUC after each request, {setting.replace('_', ' ')}\n\n"
                         + markdown_table(rows, columns))
    return "\n".join(parts)


def _final_gap(chain: ChainRecord, title: str) -> float:
    """The Avg Gap after the chain's last request (which has a retrained model)."""
    gaps = chain.requests[-1].gaps
    assert gaps is not None
    return float(gaps[title])


def _chain_delta(method: str, runs: list[ChainRecord], reference: list[ChainRecord], title: str) -> str:
    """Paired difference of the final Avg Gap to AMUN's chains (same seeds), or an em dash."""
    if method in ("Retrain", REFERENCE_METHOD) or not runs or not reference:
        return "—"
    diff = paired_difference(runs, reference, lambda r: _final_gap(r, title))
    return format_interval(diff, signed=True, mark=True) if diff is not None else "—"


def _ablation_suite(config: SuiteConfig, records: Sequence[BenchRecord]) -> str:
    ablations = [r for r in records if isinstance(r, AblationRecord)]
    rows = []
    unions = config.ablation.unions
    for variant in config.ablation.variants:
        row: dict[str, Any] = {"X": variant}
        for union in unions:
            runs = [r for r in ablations if r.cell.extra == {"variant": variant, "union": union}]
            row[union] = format_ci([r.test_accuracy[-1] for r in runs]) if runs else "—"
        rows.append(row)
    before = [r.test_accuracy[0] for r in ablations]
    head = f"Test accuracy before fine-tuning: {format_ci(before)}\n\n" if before else ""
    return ("### Test accuracy after fine-tuning on each union (all = D ∪ X, forget = D_F ∪ X, "
            f"adversarial = X)\n\n{head}" + markdown_table(rows, ["X", *unions]))


def suite_tables(config: SuiteConfig, records: Records) -> str:
    """The Markdown body of ``table.md`` for the suite's kind."""
    typed = parse_records(records)
    if config.kind is SuiteKind.CONTINUOUS:
        return _continuous_suite(config, typed)
    if config.kind is SuiteKind.ABLATION:
        return _ablation_suite(config, typed)
    if config.kind is SuiteKind.FORGETTING_QUALITY:
        return forgetting_tables(config, typed)
    return _table_suite(config, typed)
