"""Paired comparisons of a run folder's rows: each row's RMIA Avg Gap and cost, and the difference of
two rows on the same forget sets (issues 24 and 25: the default AMUN call and ``auto`` against the
best fixed method, per setting and forget fraction).

For every (setting, fraction) of the folder's records (one tuning mode): each row's mean Avg Gap with
its 95% t-interval over the forget sets, its time over a retraining (``seconds / retrain_seconds``,
per forget set), and, for each row named with ``--row``, the paired difference to the best other row
(lowest mean Avg Gap among the ``--baseline`` rows) and to every ``--baseline`` row. Writes
``comparison.md`` and ``comparison.json`` into ``--out``::

    python benchmarks/paired_rows.py benchmarks/results/auto-fmnist-paper --row AMUN --row auto \\
        --baseline l1-Sparse --baseline FT --baseline SalUn --baseline BS --baseline AMUN+SalUn

``--as "auto@4953cd9=auto (revision 1)"`` reads the records of row ``auto`` written at a commit
starting with ``4953cd9`` as a row of their own (a row's earlier revision beside its latest).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from amun_plugin.harness import (
    atomic_write_json,
    atomic_write_text,
    load_records,
    markdown_table,
    run_script,
    t_interval,
)

TITLE = "RMIA"


def by_cell(records: Sequence[Mapping[str, Any]], mode: str) -> dict[tuple[str, float], dict[str, dict[int, Any]]]:
    """(setting, fraction) -> row label -> forget seed -> its record (unlearning records of ``mode``)."""
    out: dict[tuple[str, float], dict[str, dict[int, Any]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        if r["kind"] == "unlearn" and (r.get("extra") or {}).get("tuning_mode", "oracle") == mode \
                and TITLE in (r.get("gaps") or {}):
            out[(r["setting"], float(r["fraction"]))][r["method"]][int(r["forget_seed"])] = r
    return out


def relabelled(records: Sequence[Mapping[str, Any]], renames: Sequence[str]) -> list[Mapping[str, Any]]:
    """``records`` with each ``LABEL@COMMIT=NEW`` of ``renames`` applied: the records of row LABEL
    whose ``git_commit`` starts with COMMIT become row NEW."""
    rules = []
    for rename in renames:
        old, sep, new = rename.partition("=")
        label, at, commit = old.rpartition("@")
        if not (sep and at and label and commit and new):
            raise ValueError(f"--as takes LABEL@COMMIT=NEW, got {rename!r}")
        rules.append((label, commit, new))
    out = []
    for r in records:
        match = next((new for label, commit, new in rules
                      if r.get("method") == label and str(r.get("git_commit", "")).startswith(commit)), None)
        out.append({**r, "method": match} if match else r)
    return out


def summary(rows: Mapping[str, Mapping[int, Any]], label: str) -> dict[str, Any]:
    """A row's mean Avg Gap and time over a retraining, each with its 95% interval."""
    records = list(rows[label].values())
    gap = t_interval([float(r["gaps"][TITLE]) for r in records])
    cost = t_interval([float(r["seconds"]) / float(r["retrain_seconds"]) for r in records])
    return {"n": gap.n, "avg_gap": [gap.mean, gap.half_width], "time_over_retrain": [cost.mean, cost.half_width]}


def paired(rows: Mapping[str, Mapping[int, Any]], a: str, b: str) -> dict[str, Any]:
    """The paired difference of the Avg Gap of ``a`` - ``b`` on the forget sets both ran."""
    seeds = sorted(set(rows[a]) & set(rows[b]))
    if not seeds:
        return {"n": 0, "mean": None, "half_width": None, "excludes_zero": False}
    diff = t_interval([float(rows[a][s]["gaps"][TITLE]) - float(rows[b][s]["gaps"][TITLE]) for s in seeds])
    return {"n": diff.n, "mean": diff.mean, "half_width": diff.half_width, "excludes_zero": diff.excludes_zero}


def compare(records: Sequence[Mapping[str, Any]], ours: Sequence[str], baselines: Sequence[str],
            mode: str) -> list[dict[str, Any]]:
    """Every (setting, fraction): the rows' summaries and each of ``ours`` against the best baseline."""
    out = []
    for (setting, fraction), rows in sorted(by_cell(records, mode).items()):
        present = [b for b in baselines if b in rows]
        summaries = {label: summary(rows, label) for label in rows}
        best = min(present, key=lambda b: summaries[b]["avg_gap"][0]) if present else None
        comparisons = {label: {"vs_best": paired(rows, label, best) if best else None,
                               "vs": {b: paired(rows, label, b) for b in present}}
                       for label in ours if label in rows}
        out.append({"setting": setting, "fraction": fraction, "best_baseline": best, "rows": summaries,
                    "comparisons": comparisons})
    return out


def _pm(pair: Sequence[float]) -> str:
    return f"{pair[0]:.2f} ± {pair[1]:.2f}" if pair[1] == pair[1] else f"{pair[0]:.2f}"


def _diff(d: Mapping[str, Any] | None) -> str:
    if not d or d["mean"] is None:
        return "—"
    return f"{d['mean']:+.2f} ± {d['half_width']:.2f}" + (" *" if d["excludes_zero"] else "")


def render(cells: Sequence[Mapping[str, Any]]) -> str:
    """One table per (setting, fraction): every row, and the paired differences to the best baseline."""
    parts = ["RMIA Avg Gap over forget sets, mean ± 95% t-interval; Δ paired on the same forget sets; "
             "* the interval of the difference excludes 0.\n"]
    for cell in cells:
        best = cell["best_baseline"]
        parts.append(f"\n### {cell['setting']}, forget {cell['fraction']:.0%} (best baseline: {best})\n")
        rows = [{"row": label, "n": s["n"], "Avg Gap": _pm(s["avg_gap"]), "time / retrain": _pm(s["time_over_retrain"]),
                 f"Δ vs {best}": _diff((cell["comparisons"].get(label) or {}).get("vs_best"))}
                for label, s in sorted(cell["rows"].items(), key=lambda kv: kv[1]["avg_gap"][0])]
        parts.append(markdown_table(rows, ["row", "n", "Avg Gap", "time / retrain", f"Δ vs {best}"]))
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--row", action="append", default=[], help="a row compared with the best baseline")
    parser.add_argument("--baseline", action="append", default=[], help="a baseline row")
    parser.add_argument("--as", dest="renames", action="append", default=[],
                        help="LABEL@COMMIT=NEW: read row LABEL's records of that commit as row NEW")
    parser.add_argument("--mode", default="retrain_free", choices=["oracle", "retrain_free"])
    parser.add_argument("--out", type=Path, default=None, help="default: the folder itself")
    args = parser.parse_args(argv)
    records = relabelled(load_records(args.folder / "results.jsonl"), args.renames)
    cells = compare(records, args.row, args.baseline, args.mode)
    out = args.out or args.folder
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "comparison.json", {"mode": args.mode, "cells": cells})
    atomic_write_text(out / "comparison.md", render(cells))
    print(render(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
