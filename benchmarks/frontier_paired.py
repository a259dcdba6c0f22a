"""Paired bootstrap of the difference in per-sample frontier-ratio quantiles between two methods
of one ``adversarial_frontier.py`` results folder (same samples, same frontier).

Each resample draws the attacked samples with replacement (the same draw for both methods) and
takes the q-quantile of each method's ratio (distance / frontier); the difference
quantile(a) - quantile(b) has a percentile 95% interval. An interval below 0 means method a's
quantile is lower beyond resampling noise. Written to ``<folder>/paired_<a>_vs_<b>.json``.

    python benchmarks/frontier_paired.py benchmarks/results/adversarial_search-frontier-runner-up \\
        native_min_norm native_min_norm_before_runner_up
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from amun_plugin.harness import atomic_write_json, ratio_to_best


def paired_quantile_difference(ratio_a: np.ndarray, ratio_b: np.ndarray, q: float, resamples: int = 4000,
                               seed: int = 0) -> dict[str, float]:
    """Quantile q of ``ratio_a`` (n,) minus that of ``ratio_b`` (n,), paired by sample, with a
    percentile 95% bootstrap interval over ``resamples`` resamples of the n samples."""
    if ratio_a.shape != ratio_b.shape or ratio_a.ndim != 1:
        raise ValueError(f"need two (n,) arrays of the same samples, got {ratio_a.shape} and {ratio_b.shape}")
    draws = np.random.default_rng(seed).integers(0, len(ratio_a), (resamples, len(ratio_a)))
    diff = np.quantile(ratio_a[draws], q, axis=1) - np.quantile(ratio_b[draws], q, axis=1)
    point = float(np.quantile(ratio_a, q) - np.quantile(ratio_b, q))
    return {"q": q, "difference": point, "lo": float(np.quantile(diff, 0.025)), "hi": float(np.quantile(diff, 0.975)),
            "resamples": resamples, "n": int(len(ratio_a))}


def compare(folder: Path, a: str, b: str) -> dict[str, Any]:
    """The paired median and p90 differences of methods ``a`` and ``b`` in ``folder/results.json``."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    rows = {r["label"]: r for r in results["results"]}
    missing = [m for m in (a, b) if m not in rows]
    if missing:
        raise SystemExit(f"error: {missing} not in {folder / 'results.json'} (has {list(rows)})")
    dist = np.array([r["distances"] for r in results["results"]], dtype=float)
    attacked = ~np.array(rows[a]["already_misclassified"], dtype=bool)
    ratio = dict(zip([r["label"] for r in results["results"]], ratio_to_best(dist, attacked)))
    return {"a": a, "b": b, "folder": folder.name,
            "median": paired_quantile_difference(ratio[a], ratio[b], 0.5),
            "p90": paired_quantile_difference(ratio[a], ratio[b], 0.9)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("a")
    p.add_argument("b")
    args = p.parse_args(argv)
    out = compare(args.folder, args.a, args.b)
    atomic_write_json(args.folder / f"paired_{args.a}_vs_{args.b}.json", out)
    for key in ("median", "p90"):
        d = out[key]
        print(f"{args.folder.name}: {key} {args.a} - {args.b} = {d['difference']:+.4f} "
              f"[{d['lo']:+.4f}, {d['hi']:+.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
