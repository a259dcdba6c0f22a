"""The interval and two-estimate comparisons of ``benchmarks/estimate_validity.py``, with their README
sections: how often the recorded 95% bootstrap interval of the estimated Avg Gap (``proxy.interval``)
and of each term (``proxy.intervals``) holds the true value, and the confidence estimate (``proxy``)
against the RMIA estimate (``proxy_rmia``) on the records that carry both. Also ``analyse`` (every
table's comparisons), the README's list of what was read and the findings beyond the issue's tables."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np
from estimate_validity_analysis import (
    BOTH,
    TERM_KEYS,
    Table,
    analyse_table,
    by_method,
    correlation,
    mean_interval,
    record_rows,
)
from scipy import stats

from amun_plugin.harness import markdown_table

SIDES = ("inside", "below", "above")  # a true value against [low, high]: low <= v <= high, v < low, v > high
ESTIMATES = {"proxy": "confidence", "proxy_rmia": "RMIA"}  # record key -> the estimate's membership signal
INTERVAL_SINCE = "6829b77"  # the commit from which bench records carry proxy.interval and proxy.intervals
NO_INTERVAL = (f"no record of this table carries an interval: records written before commit {INTERVAL_SINCE} "
               "(`proxy.interval`) do not")


def estimate_of(row: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The estimate ``name`` (``proxy`` or ``proxy_rmia``) of a ``record_rows`` row; None if absent."""
    return row if name == "proxy" else row.get(name)


def side(value: float, interval: Sequence[float]) -> str:
    """Where ``value`` lies against ``interval`` = [low, high]: "inside" (bounds included), "below", "above"."""
    low, high = interval
    return "below" if value < low else "above" if value > high else "inside"


def shares(pairs: Sequence[tuple[float, Sequence[float]]]) -> dict[str, Any]:
    """n (true value, [low, high]) pairs and the share of true values inside, below and above (None if n = 0)."""
    counts = Counter(side(value, interval) for value, interval in pairs)
    return {"n": len(pairs), **{s: counts[s] / len(pairs) if pairs else None for s in SIDES}}


def coverage(rows: Sequence[Mapping[str, Any]], name: str = "proxy") -> dict[str, Any]:
    """Coverage of estimate ``name``'s 95% intervals over ``rows`` (those with one): of the true Avg
    Gap by ``interval``, overall and per method, and of each true term by ``intervals[term]``."""
    gap = [(r, e["interval"]) for r in rows if (e := estimate_of(r, name)) and e["interval"]]
    terms = [(r, e["intervals"]) for r in rows if (e := estimate_of(r, name)) and e["intervals"]]
    return {"n_records": len(rows), "gap": shares([(r["true"], span) for r, span in gap]),
            "terms": {t: shares([(r["true_terms"][t], spans[t]) for r, spans in terms if t in spans])
                      for t in TERM_KEYS},
            "per_method": {m: shares([(r["true"], span) for r, span in gap if r["method"] == m])
                           for m in by_method([r for r, _ in gap])}}


def estimate_errors(rows: Sequence[Mapping[str, Any]], name: str) -> dict[str, Any]:
    """Estimate ``name`` against the true Avg Gap over ``rows`` (all carrying it): Pearson, Spearman,
    mean absolute and mean signed error (estimated - true) of the gap and of the MIA term, and the
    coverage of its interval of the gap."""
    estimates = [estimate_of(r, name) or {} for r in rows]
    est, true = [e["estimated"] for e in estimates], [r["true"] for r in rows]
    gap = np.subtract(est, true)
    mia = np.array([e["estimated_terms"]["MIA"] - r["true_terms"]["MIA"] for e, r in zip(estimates, rows)])
    return {"pearson": correlation(stats.pearsonr, est, true), "spearman": correlation(stats.spearmanr, est, true),
            "mae": float(np.abs(gap).mean()), "bias": float(gap.mean()), "mia_mae": float(np.abs(mia).mean()),
            "mia_bias": float(mia.mean()), "coverage": coverage(rows, name)["gap"]}


def compare_estimates(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The confidence and the RMIA estimate on the rows that carry both: ``estimate_errors`` of each,
    and the paired difference of their absolute errors (RMIA - confidence; mean, 95% t half-width)."""
    both = [r for r in rows if r.get("proxy_rmia")]
    if not both:
        return {"n": 0}
    return {"n": len(both), **{name: estimate_errors(both, name) for name in ESTIMATES},
            "abs_error_difference": mean_interval([abs(r["proxy_rmia"]["estimated"] - r["true"])
                                                   - abs(r["estimated"] - r["true"]) for r in both])}


def analyse(records: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Every table's rows and comparisons, skipping a table without unlearning records: ``rows``,
    ``results`` (``analyse_table``), ``coverage`` (per table and pooled) and ``estimates``
    (confidence vs RMIA estimate)."""
    rows = {name: record_rows(recs) for name, recs in records.items()}
    kept = {name: r for name, r in rows.items() if r}
    return {"rows": rows, "skipped": [name for name in rows if name not in kept],
            "results": {name: analyse_table(r) for name, r in kept.items()},
            "coverage": {"tables": {name: coverage(r) for name, r in kept.items()},
                         "pooled": coverage([row for r in kept.values() for row in r])},
            "estimates": {name: compare_estimates(r) for name, r in kept.items()}}


def fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    """``value`` with ``digits`` decimals (``signed``: "+" on positives); "n/a" for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:{'+' if signed else ''}.{digits}f}"


def interval_text(difference: Mapping[str, Any]) -> str:
    """A mean and its 95% half-width (``{"mean", "half_width"}``) as "+m ± h"."""
    return f"{difference['mean']:+.2f} ± {fmt(difference['half_width'])}"


def _share_cells(s: Mapping[str, Any]) -> dict[str, str]:
    """A ``shares`` entry as table cells: n and the three shares in percent."""
    return {"n": str(s["n"]), **{s_: fmt(100 * s[s_], 0) + "%" if s[s_] is not None else "n/a" for s_ in SIDES}}


def _input_line(name: str, table: Table, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One table's line of what was read (``set`` of a row: original seed, fraction, forget seed,
    variant, unlearn seed)."""
    def count(part: slice) -> int:
        return len({r["set"][part] for r in rows})
    return {"table": name, "folder": f"`{table.folder}`", "setting": table.setting, "fraction": table.fraction,
            "unlearning records": len(rows), "methods": len(by_method(rows)), "forget sets": count(slice(0, 4)),
            "original models": count(slice(0, 1)), "unlearn seeds": count(slice(4, 5)),
            "modes": ", ".join(sorted({r["mode"] for r in rows}))}


def render_inputs(tables: Mapping[str, Table], rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """What was read: per table its folder, setting, fraction, unlearning records with an estimate,
    methods, forget sets, original models, unlearn seeds and modes; and each table skipped for having none."""
    lines = [_input_line(name, t, rows[name]) for name, t in tables.items() if rows[name]]
    skipped = "".join(f"* {name}: skipped, no unlearning record with an estimate at `{t.setting}`, fraction "
                      f"{t.fraction} in `{t.folder}`.\n" for name, t in tables.items() if not rows[name])
    return (markdown_table(lines, list(lines[0])) if lines else "") + ("\n" + skipped if skipped else "")


def render_coverage(by_table: Mapping[str, Mapping[str, Any]], pooled: Mapping[str, Any]) -> str:
    """Section 6: coverage of the interval of the gap per table and pooled, per term, per method."""
    parts = ["\n## 6. Coverage of the 95% interval\n\n", COVERAGE_TEXT]
    parts += [f"* {name}: {NO_INTERVAL}.\n" for name, c in by_table.items() if not c["gap"]["n"]]
    have = {name: c for name, c in by_table.items() if c["gap"]["n"]}
    if not have:
        return "".join(parts + ["\nNo record read here carries an interval, so no coverage is computed.\n"])
    gap = [{"table": name, "records": c["n_records"], **_share_cells(c["gap"])}
           for name, c in {**have, "pooled": pooled}.items()]
    terms = [{"table": name, "term": t, **_share_cells(s)} for name, c in have.items()
             for t, s in c["terms"].items() if s["n"]]
    methods = [{"table": name, "method": m, **_share_cells(s)} for name, c in have.items()
               for m, s in c["per_method"].items()]
    parts += ["\nTrue Avg Gap against the interval of the estimated gap (n = records with an interval):\n\n",
              markdown_table(gap, list(gap[0])), "\nEach true term against the interval of its estimated term:\n\n",
              markdown_table(terms, list(terms[0])) if terms else "No record carries a term interval.\n",
              "\nPer method, the true Avg Gap against the interval of the estimated gap:\n\n",
              markdown_table(methods, list(methods[0]))]
    return "".join(parts)


def render_comparison(by_table: Mapping[str, Mapping[str, Any]]) -> str:
    """Section 7: the confidence against the RMIA estimate, per table, on the same records."""
    parts = ["\n## 7. Confidence estimate vs RMIA estimate\n\n", COMPARISON_TEXT]
    rows = []
    for name, c in by_table.items():
        for key, label in ESTIMATES.items():
            if c["n"]:
                e, cov = c[key], c[key]["coverage"]
                rows.append({"table": name, "n records": c["n"], "estimate": label, "Pearson": fmt(e["pearson"], 3),
                             "Spearman": fmt(e["spearman"], 3), "MAE": fmt(e["mae"]),
                             "bias (est − true)": fmt(e["bias"], signed=True), "MIA-term MAE": fmt(e["mia_mae"]),
                             "MIA-term bias": fmt(e["mia_bias"], signed=True),
                             "interval holds true gap (n)": f"{fmt(100 * cov['inside'], 0)}% ({cov['n']})"
                             if cov["n"] else "no interval"})
    if rows:
        diffs = [{"table": name, "n": c["n"], "abs. error, RMIA − confidence (95% t)":
                  interval_text(c["abs_error_difference"])}
                 for name, c in by_table.items() if c["n"]]
        parts += [markdown_table(rows, list(rows[0])), "\nPaired, per record:\n\n",
                  markdown_table(diffs, list(diffs[0]))]
    missing = [name for name, c in by_table.items() if not c["n"]]
    if missing:
        parts.append(f"\nNo record of {', '.join(missing)} carries `proxy_rmia`.\n")
    return "".join(parts)


def _fit(result: Mapping[str, Any]) -> str:
    """A table's records, Pearson, MAE and bias of the estimate pooled over modes."""
    c, e = result[BOTH]["correlations"], result[BOTH]["errors"]["overall"]
    return (f"{c['n_records']} records, Pearson {fmt(c['pearson'])}, MAE {fmt(e['mae'])}, "
            f"bias {fmt(e['bias'], signed=True)}")


def _versus(c: Mapping[str, Any]) -> str:
    """A table's ``compare_estimates`` in a line, the confidence estimate first."""
    conf, rmia = c["proxy"], c["proxy_rmia"]
    return (f"n = {c['n']}, Pearson {fmt(conf['pearson'])} vs {fmt(rmia['pearson'])}, MAE {fmt(conf['mae'])} vs "
            f"{fmt(rmia['mae'])} (paired difference {interval_text(c['abs_error_difference'])}), "
            f"MIA-term bias {fmt(conf['mia_bias'], 1, True)} vs {fmt(rmia['mia_bias'], 1, True)}")


def findings(results: Mapping[str, Mapping[str, Any]], estimates: Mapping[str, Mapping[str, Any]],
             pooled: Mapping[str, Any], new_tables: Sequence[str]) -> str:
    """The findings bullets on the tables beyond the issue's four, the two estimates and the intervals."""
    fits = [f"  * {t}: {_fit(results[t])}.\n" for t in new_tables if t in results]
    pairs = [f"  * {t}: {_versus(c)}.\n" for t, c in estimates.items() if c["n"]]
    gap = pooled["gap"]
    cover = (f"the interval holds the true Avg Gap in {fmt(100 * gap['inside'], 0)}% of the {gap['n']} records "
             f"that carry one (below it {fmt(100 * gap['below'], 0)}%, above {fmt(100 * gap['above'], 0)}%)"
             if gap["n"] else f"no record read here carries one (commit {INTERVAL_SINCE} began recording them)")
    return "".join(["* **The auto splits** (retrain-free only; §1):\n", *(fits or ["  * none read.\n"]),
                    "* **Confidence vs RMIA estimate** on the same records, confidence first (§7):\n",
                    *(pairs or ["  * no record carries both.\n"]),
                    f"* **Coverage of the 95% interval**: {cover} (§6).\n"])


COVERAGE_TEXT = f"""Records written since commit {INTERVAL_SINCE} carry the 95% percentile bootstrap interval
of the estimated Avg Gap (`proxy.interval`, 200 resamples of D_F, the holdout H and the retain
probe) and of each term (`proxy.intervals`). Per table: the share of records whose true Avg Gap
(`gaps.RMIA`) lies in [low, high], below low, above high; per term the same with the true terms of
§3; per method (row label) the gap's; pooled: over every table read. The interval measures the
estimate's sampling noise only (resampled images), not its bias against the true gap (§3), so it
may hold the true value in far fewer than 95% of records.

"""

COMPARISON_TEXT = """Records that carry both the confidence estimate (`proxy`, whose membership signal is the
model's own confidence) and the RMIA estimate (`proxy_rmia`, whose membership signal is RMIA from
the reference bank; its other terms are the same), compared on the same records per table: Pearson
and Spearman of each estimate against the true Avg Gap, mean absolute and mean signed error
(estimated − true) of the gap and of the MIA term, and the coverage of its interval where recorded.
The paired table: mean over records of |RMIA estimate − true| − |confidence estimate − true|, with
its 95% t half-width (negative: the RMIA estimate is closer).

"""
