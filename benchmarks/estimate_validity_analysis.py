"""The comparisons of ``benchmarks/estimate_validity.py``: a table's records (a results folder, its
unlearning records filtered by setting and fraction), its records as rows (estimated and true Avg
Gap, their terms, the estimate's recorded 95% intervals and the RMIA estimate where present; the
true gap checked against the recorded one), and per table and tuning mode the correlations, the
errors overall, per method and per term, the choice by the lowest estimate against the best single
method, and the selection bias of the calibrated methods."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
from scipy import stats

from amun_plugin.harness import load_records, t_interval

TITLE = "RMIA"  # the table whose Avg Gap the estimate stands in for
TERM_KEYS = {"UA": "accuracy.UA", "RA": "accuracy.RA", "TA": "accuracy.TA", "MIA": "rmia.FT_AUC"}
MODES = ("oracle", "retrain_free")
BOTH = "both modes"
BROKEN = 20.0  # points: a true Avg Gap this large is a run that broke the model (diverged, or D_R destroyed)
TOLERANCE = 1e-6  # points: a recomputed true Avg Gap must match the recorded one
WITH_RETAIN = "with_retain"  # table1 (the estimate has an RA term); "without_retain" is table2 (no D_R, no RA)


class Table(NamedTuple):
    """A table of the analysis: the unlearning records of ``folder`` at ``setting`` and ``fraction``."""

    folder: str
    setting: str
    fraction: float


def select_records(records: Iterable[Mapping[str, Any]], table: Table) -> list[Mapping[str, Any]]:
    """``table``'s records: every non-unlearning record (the Retrain records score both settings) and
    the unlearning records at its setting and fraction, the latest of each row, tuning mode and forget
    set (a row's earlier revision is superseded, as ``paired_rows.py`` reads it). An estimate with an
    RA term must come from a record with D_R (``with_retain``) and one without from a record without D_R."""
    kept: dict[Any, Mapping[str, Any]] = {}
    for position, r in enumerate(records):
        if r["kind"] == "unlearn" and (r["setting"] != table.setting or r["fraction"] != table.fraction):
            continue
        if r["kind"] == "unlearn" and "proxy" in r and ("RA" in r["proxy"]["terms"]) != (r["setting"] == WITH_RETAIN):
            raise ValueError(f"record {r['id']}: setting {r['setting']}, estimate terms {sorted(r['proxy']['terms'])}")
        key = (r["method"], tuning_mode(r), forget_set(r)) if r["kind"] == "unlearn" else position
        kept.pop(key, None)
        kept[key] = r
    return list(kept.values())


def tuning_mode(record: Mapping[str, Any]) -> str:
    """``extra.tuning_mode`` of a record; absent means the oracle (tuned against retrained models)."""
    return (record.get("extra") or {}).get("tuning_mode") or "oracle"


def forget_set(record: Mapping[str, Any]) -> tuple:
    """The retrained model a record is scored against: (original seed, fraction, forget seed, variant)."""
    return (record["original_seed"], record["fraction"], record["forget_seed"], record["variant"])


def _span(value: Any) -> tuple[float, float] | None:
    """A recorded [low, high] as floats; None when absent or not two finite numbers."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in value):
        return None
    return float(value[0]), float(value[1])


def estimate(proxy: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded estimate (``proxy`` or ``proxy_rmia``): its gap, terms, and 95% interval of the gap
    (``interval``) and of each term (``intervals``), None where the record predates them."""
    intervals = {t: _span(v) for t, v in (proxy.get("intervals") or {}).items()}
    return {"estimated": float(proxy["estimated_gap"]),
            "estimated_terms": {t: float(v) for t, v in proxy["terms"].items()},
            "interval": _span(proxy.get("interval")),
            "intervals": {t: v for t, v in intervals.items() if v is not None} or None}


def record_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per unlearning record with a proxy: method, mode, forget set, the confidence estimate
    (``estimate`` of ``proxy``: gap, terms, intervals), the RMIA estimate (``proxy_rmia``, None where
    absent), true Avg Gap and true terms |metric - retrained model's metric|. The true Avg Gap (mean
    of the four true terms) is checked against the recorded ``gaps["RMIA"]``."""
    records = list(records)
    retrained = {forget_set(r): r["metrics"] for r in records if r["kind"] == "retrain"}
    rows = []
    for r in records:
        if r["kind"] != "unlearn" or "proxy" not in r:
            continue
        if forget_set(r) not in retrained:
            raise ValueError(f"record {r['id']}: no Retrain record for forget set {forget_set(r)}")
        base = retrained[forget_set(r)]
        true_terms = {t: abs(float(r["metrics"][k]) - float(base[k])) for t, k in TERM_KEYS.items()}
        true = float(np.mean(list(true_terms.values())))
        if abs(true - float(r["gaps"][TITLE])) > TOLERANCE:
            raise ValueError(f"record {r['id']}: recomputed Avg Gap {true} != recorded {r['gaps'][TITLE]}")
        stats_ = r.get("stats") or {}
        rows.append({"method": r["method"], "mode": tuning_mode(r), "set": forget_set(r) + (r["unlearn_seed"],),
                     **estimate(r["proxy"]), "true": true, "true_terms": true_terms,
                     "proxy_rmia": estimate(r["proxy_rmia"]) if r.get("proxy_rmia") else None,
                     "calibrated": "calibration_estimated_gap" in stats_,
                     "calibration_estimated_gap": stats_.get("calibration_estimated_gap")})
    return rows


def by_method(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """``rows`` grouped by method label, labels sorted."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["method"]].append(row)
    return dict(sorted(groups.items()))


def correlation(function: Any, x: Sequence[float], y: Sequence[float]) -> float | None:
    """``function`` (scipy's pearsonr / spearmanr) of x and y; None with under 3 points or a constant side."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(function(x, y)[0])


def correlations(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Record-level Pearson and Spearman of estimated vs true Avg Gap (Pearson also without the runs
    whose true gap is at least ``BROKEN``), and method-level ones of the per-method means (methods by
    row label; pooled over modes when ``rows`` hold both)."""
    est, true = [r["estimated"] for r in rows], [r["true"] for r in rows]
    groups = by_method(rows)
    mean_est = [float(np.mean([r["estimated"] for r in g])) for g in groups.values()]
    mean_true = [float(np.mean([r["true"] for r in g])) for g in groups.values()]
    kept = [r for r in rows if r["true"] < BROKEN]
    return {"n_records": len(rows), "pearson": correlation(stats.pearsonr, est, true),
            "n_below_broken": len(kept), "pearson_below_broken": correlation(
                stats.pearsonr, [r["estimated"] for r in kept], [r["true"] for r in kept]),
            "spearman": correlation(stats.spearmanr, est, true), "n_methods": len(groups),
            "method_spearman": correlation(stats.spearmanr, mean_est, mean_true),
            "method_pearson": correlation(stats.pearsonr, mean_est, mean_true)}


def _error(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """n, MAE, bias and means of estimated - true Avg Gap; ``bias_own_terms`` against the true gap
    over the estimate's own terms only (differs in table2, whose estimate has no RA term)."""
    diff = np.array([r["estimated"] - r["true"] for r in rows])
    own = [r["estimated"] - np.mean([r["true_terms"][t] for t in r["estimated_terms"]]) for r in rows]
    return {"n": len(rows), "mae": float(np.abs(diff).mean()), "bias": float(diff.mean()),
            "bias_own_terms": float(np.mean(own)), "mean_estimated": float(np.mean([r["estimated"] for r in rows])),
            "mean_true": float(np.mean([r["true"] for r in rows]))}


def errors(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean absolute error and bias (mean of estimated - true) of the Avg Gap, overall and per method."""
    return {"overall": _error(rows), "per_method": {m: _error(g) for m, g in by_method(rows).items()}}


def term_comparison(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per method and term (UA, RA, TA, MIA): mean estimated term, mean true term, the mean absolute
    and mean signed error per record, n. A term the estimate does not have (RA without D_R) keeps
    only its true mean (estimated None)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for method, group in by_method(rows).items():
        out[method] = {}
        for term in TERM_KEYS:
            true = np.array([r["true_terms"][term] for r in group])
            entry: dict[str, Any] = {"n": len(group), "true": float(true.mean()), "estimated": None,
                                     "mae": None, "bias": None}
            if all(term in r["estimated_terms"] for r in group):
                est = np.array([r["estimated_terms"][term] for r in group])
                entry.update(estimated=float(est.mean()), mae=float(np.abs(est - true).mean()),
                             bias=float((est - true).mean()))
            out[method][term] = entry
    return out


def term_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per term, pooled over all records: n, mean |estimated - true| and mean signed error (None
    where the estimate lacks the term), and the mean true term."""
    out = {}
    for term in TERM_KEYS:
        have = [r for r in rows if term in r["estimated_terms"]]
        diff = np.array([r["estimated_terms"][term] - r["true_terms"][term] for r in have])
        out[term] = {"n": len(have), "mae": float(np.abs(diff).mean()) if have else None,
                     "bias": float(diff.mean()) if have else None,
                     "true": float(np.mean([r["true_terms"][term] for r in rows]))}
    return out


def largest_term_errors(terms: Mapping[str, Mapping[str, Mapping[str, Any]]], k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` (method, term) pairs with the largest mean absolute error per record."""
    pairs = [{"method": m, "term": t, **v} for m, by_term in terms.items() for t, v in by_term.items()
             if v["mae"] is not None]
    return sorted(pairs, key=lambda p: -p["mae"])[:k]


def mean_interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean, n and 95% t half-width of ``values`` (half-width None with one value)."""
    return t_interval(values).as_dict()


def select_by_estimate(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """On each forget set run by every method, choose the method with the lowest estimated gap and
    score it by its true Avg Gap; compare with the best single method (lowest mean true Avg Gap on
    the same sets, known only in hindsight): paired differences (selected - best), their mean and
    95% t-interval. Also the per-set hindsight best (lowest true gap on each set), a lower bound."""
    methods = sorted({r["method"] for r in rows})
    by_set: dict[tuple, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for r in rows:
        if r["method"] in by_set[r["set"]]:
            raise ValueError(f"two records of {r['method']} on forget set {r['set']}")
        by_set[r["set"]][r["method"]] = r
    sets = sorted(s for s, group in by_set.items() if len(group) == len(methods))
    chosen = [min(by_set[s].values(), key=lambda r: r["estimated"]) for s in sets]
    means = {m: float(np.mean([by_set[s][m]["true"] for s in sets])) for m in methods}
    best = min(means, key=lambda m: means[m])
    diff = mean_interval([c["true"] - by_set[s][best]["true"] for c, s in zip(chosen, sets)])
    return {"n_sets": len(sets), "n_sets_incomplete": len(by_set) - len(sets), "n_methods": len(methods),
            "chosen": [c["method"] for c in chosen], "selected_true": float(np.mean([c["true"] for c in chosen])),
            "best_method": best, "best_true": means[best],
            "difference": diff,
            "per_set_best_true": float(np.mean([min(r["true"] for r in by_set[s].values()) for s in sets]))}


def selection_bias(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Calibrated records (their estimate is the best of their own checks on the held-out images)
    against the others: bias of the Avg Gap estimate and of its MIA term, and how many calibrated
    records' ``stats.calibration_estimated_gap`` equals their recorded estimate."""
    out: dict[str, Any] = {}
    for name, group in (("calibrated", [r for r in rows if r["calibrated"]]),
                        ("not calibrated", [r for r in rows if not r["calibrated"]])):
        if not group:
            continue
        mia = [r["estimated_terms"]["MIA"] - r["true_terms"]["MIA"] for r in group]
        out[name] = {**_error(group), "mia_bias": float(np.mean(mia)),
                     "methods": sorted({r["method"] for r in group})}
    calibrated = [r for r in rows if r["calibrated"]]
    out["calibrated_equal_to_estimate"] = sum(abs(r["calibration_estimated_gap"] - r["estimated"]) < 1e-9
                                              for r in calibrated)
    return out


def read_tables(results_dir: Path, tables: Mapping[str, Table]) -> dict[str, list[Mapping[str, Any]]]:
    """Each table's records: ``select_records`` of its folder's results.jsonl (each folder read once)."""
    folders = {t.folder: load_records(results_dir / t.folder / "results.jsonl") for t in tables.values()}
    return {name: select_records(folders[t.folder], t) for name, t in tables.items()}


def analyse_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every comparison for one table's ``record_rows``, per tuning mode and (correlations, errors)
    pooled over modes."""
    out: dict[str, Any] = {BOTH: {"correlations": correlations(rows), "errors": errors(rows)}}
    for mode in MODES:
        subset = [r for r in rows if r["mode"] == mode]
        if not subset:
            continue
        terms = term_comparison(subset)
        out[mode] = {"correlations": correlations(subset), "errors": errors(subset), "terms": terms,
                     "term_summary": term_summary(subset),
                     "largest_term_errors": largest_term_errors(terms), "selection": select_by_estimate(subset),
                     "selection_bias": selection_bias(subset)}
    return out
