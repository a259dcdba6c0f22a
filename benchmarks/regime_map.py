"""Where the paper's AMUN wins (issue 24, item 3): AMUN - l1-Sparse against the retrained model's RA - UA.

AMUN fine-tunes on D_F with its true labels, so its accuracy on D_F stays near its accuracy on D_R,
while a retrained model's drops to the level of unseen data: the retrained model's RA - UA is a floor
under AMUN's Avg Gap. This script reads one run folder per original-model regime (the ``regime_map``
suite at fmnist-paper / fmnist-10k / fmnist-20k, or any table1-like folder), and for each: the
retrained models' mean RA - UA (and its 95% t-interval over the forget sets), and for each AMUN row
(the oracle-tuned paper AMUN and the calibrated default) the paired difference of the RMIA Avg Gap to
l1-Sparse (retrain-free choice) over the same forget sets. It writes ``table.md``, ``map.json`` and
``map.png`` (x: RA - UA, y: AMUN - l1-Sparse with its interval; below 0 AMUN wins)::

    python benchmarks/regime_map.py FOLDER [FOLDER ...] --out benchmarks/results/regime_map
"""

from __future__ import annotations

import argparse
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
SETTING = "with_retain"
ROWS = {"AMUN (paper, oracle options)": ("AMUN", "oracle"), "AMUN (default, calibrated)": ("AMUN", "retrain_free")}
BASELINE = ("l1-Sparse", "retrain_free")
METHODS = {**ROWS, "l1-Sparse": BASELINE, "SalUn": ("SalUn", "retrain_free"), "FT": ("FT", "retrain_free")}
"""Every method of the map's second table: the AMUN rows and the baselines at their retrain-free choices."""


def _mode(record: Mapping[str, Any]) -> str:
    return (record.get("extra") or {}).get("tuning_mode", "oracle")


def gaps_by_seed(records: Sequence[Mapping[str, Any]], label: str, mode: str, fraction: float) -> dict[int, float]:
    """forget seed -> the RMIA Avg Gap of ``label`` in ``mode``, with D_R (the map's setting; a folder may
    also hold the same label without D_R); records that diverged are left out."""
    return {int(r["forget_seed"]): float(r["gaps"][TITLE]) for r in records
            if r["kind"] == "unlearn" and r["method"] == label and _mode(r) == mode and r["fraction"] == fraction
            and r.get("setting", SETTING) == SETTING and TITLE in (r.get("gaps") or {})}


def retrained_gap(records: Sequence[Mapping[str, Any]], fraction: float) -> dict[int, float]:
    """forget seed -> the retrained model's RA - UA (points)."""
    return {int(r["forget_seed"]): float(r["metrics"]["accuracy.RA"]) - float(r["metrics"]["accuracy.UA"])
            for r in records if r["kind"] == "retrain" and r["fraction"] == fraction}


def regime_point(folder: Path, fraction: float = 0.1) -> dict[str, Any]:
    """One regime: its name, n, the retrained RA - UA and each AMUN row's paired difference to l1-Sparse."""
    records = load_records(folder / "results.jsonl")
    gap = retrained_gap(records, fraction)
    baseline = gaps_by_seed(records, *BASELINE, fraction)
    point: dict[str, Any] = {"folder": folder.name, "fraction": fraction,
                             "retrained_ra_minus_ua": _interval(list(gap.values())), "rows": {}}
    for name, (label, mode) in ROWS.items():
        ours = gaps_by_seed(records, label, mode, fraction)
        seeds = sorted(set(ours) & set(baseline))
        point["rows"][name] = {"n": len(seeds), "seeds": seeds,
                               "difference": _interval([ours[s] - baseline[s] for s in seeds]),
                               "amun": _interval([ours[s] for s in seeds]),
                               "l1_sparse": _interval([baseline[s] for s in seeds])}
    point["methods"] = {name: _interval(list(gaps_by_seed(records, label, mode, fraction).values()))
                        for name, (label, mode) in METHODS.items()}
    return point


def _interval(values: Sequence[float]) -> dict[str, Any]:
    return t_interval(values).as_dict() if values else {"n": 0, "mean": None, "half_width": None}


def _cell(value: Mapping[str, Any]) -> str:
    if value["mean"] is None:
        return "—"
    if value["half_width"] is None:
        return f"{value['mean']:+.2f} (n = 1)"
    star = " *" if abs(value["mean"]) > value["half_width"] else ""
    return f"{value['mean']:+.2f} ± {value['half_width']:.2f}{star}"


def render(points: Sequence[Mapping[str, Any]]) -> str:
    """The map as a markdown table: one line per regime and AMUN row."""
    rows = []
    for point in points:
        for name, row in point["rows"].items():
            spread = _cell(point["retrained_ra_minus_ua"]).lstrip("+")
            rows.append({"regime": point["folder"], "retrained RA − UA": spread,
                         "AMUN row": name, "n": row["n"], "AMUN − l1-Sparse": _cell(row["difference"]),
                         "winner": _winner(row["difference"])})
    header = ["regime", "retrained RA − UA", "AMUN row", "n", "AMUN − l1-Sparse", "winner"]
    methods = [{"regime": point["folder"], **{name: _level(point["methods"][name]) for name in METHODS}}
               for point in points]
    return ("RMIA Avg Gap, paired over the same forget sets, mean ± 95% t-interval; * the interval excludes 0.\n\n"
            + markdown_table(rows, header) + "\n\nEvery method's RMIA Avg Gap per regime (mean ± 95% t-interval "
            "over its forget sets, (n); the baselines at their retrain-free choices; — not run):\n\n"
            + markdown_table(methods, ["regime", *METHODS]) + "\n")


def _level(value: Mapping[str, Any]) -> str:
    if value["mean"] is None:
        return "—"
    spread = f" ± {value['half_width']:.2f}" if value["n"] > 1 else ""
    return f"{value['mean']:.2f}{spread} ({value['n']})"


def _winner(difference: Mapping[str, Any]) -> str:
    if difference["mean"] is None or difference["n"] < 2:
        return "—"
    if difference["mean"] + difference["half_width"] < 0:
        return "AMUN"
    if difference["mean"] - difference["half_width"] > 0:
        return "l1-Sparse"
    return "tie (interval includes 0)"


def plot(points: Sequence[Mapping[str, Any]], path: Path) -> None:
    """x: the retrained model's RA - UA; y: AMUN - l1-Sparse with its interval, one series per AMUN row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name in ROWS:
        usable = [p for p in points if p["rows"][name]["difference"]["mean"] is not None]
        axes.errorbar([p["retrained_ra_minus_ua"]["mean"] for p in usable],
                      [p["rows"][name]["difference"]["mean"] for p in usable],
                      yerr=[p["rows"][name]["difference"]["half_width"] or 0.0 for p in usable], marker="o", capsize=3,
                      label=name)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_xlabel("retrained model's RA − UA (points)")
    axes.set_ylabel("AMUN − l1-Sparse, RMIA Avg Gap")
    axes.set_title("Below 0: AMUN forgets closer to a retrained model")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="run folders, one per regime")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/regime_map"))
    args = parser.parse_args(argv)
    points = sorted((regime_point(folder, args.fraction) for folder in args.folders),
                    key=lambda p: p["retrained_ra_minus_ua"]["mean"] or 0.0, reverse=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "map.json", {"points": points})
    atomic_write_text(args.out / "table.md", render(points))
    plot(points, args.out / "map.png")
    print(render(points))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
