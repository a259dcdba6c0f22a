"""Measurement behind ``tests/training/test_robust_train_original.py::test_trades_is_more_robust_than_
standard_training_on_the_same_data_and_seed``: accuracy (percent) under a small L_inf PGD of a model
trained with TRADES and of one trained with the standard recipe, same data and seed, on the tests'
tiny fixture (``amun_plugin.testing.make_tiny_data``: 150 training samples of seed 0, 300 test
samples of seed 1; an MLP with one hidden layer of 32), over training seeds.

PGD: torchattacks L_inf, eps 0.1, 10 steps of eps / 4, no random start (the test's attack).

    python benchmarks/trades_fixture_margin.py [--seeds 12] [--out benchmarks/results/trades_fixture_margin]

Writes results.json, results.md and env.json under ``--out`` (a few seconds on one core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torchattacks

from amun_plugin.harness import atomic_write_json, atomic_write_text, format_interval, record_invocation, t_interval
from amun_plugin.models import MLP
from amun_plugin.testing import make_tiny_data
from amun_plugin.training import TrainConfig, train_original

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {"epochs": 15, "batch_size": 30, "lr": 0.1, "momentum": 0.9}  # the test's recipe
TRADES = {"beta": 6.0, "eps": 0.1, "steps": 5}
PGD_EPS = 0.1


def _robust_accuracy(model: torch.nn.Module, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """Accuracy (%) of ``model`` on PGD examples of (test_x (N, 1, 4, 4), test_y (N,))."""
    x_adv = torchattacks.PGD(model, eps=PGD_EPS, alpha=PGD_EPS / 4, steps=10, random_start=False)(test_x, test_y)
    with torch.no_grad():
        return 100.0 * float((model(x_adv).argmax(dim=1) == test_y).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "trades_fixture_margin"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train, test = make_tiny_data(150, seed=0), make_tiny_data(300, seed=1)
    architecture, recipe = MLP({"hidden": (32,)}), TrainConfig(**RECIPE)
    rows = []
    for seed in range(args.seeds):
        row: dict = {"seed": seed}
        for variant, options in (("standard", None), ("trades", TRADES)):
            model, _ = train_original(architecture, train, recipe, variant=variant, options=options, seed=seed)
            with torch.no_grad():
                row[f"{variant}_clean"] = 100.0 * float((model(test.x).argmax(dim=1) == test.y).float().mean())
            row[f"{variant}_pgd"] = _robust_accuracy(model, test.x, test.y)
        row["gap"] = row["trades_pgd"] - row["standard_pgd"]
        rows.append(row)
    gaps = [row["gap"] for row in rows]
    interval = t_interval(gaps)
    summary = {"n": len(gaps), "mean_gap": interval.mean, "gap_ci95_half_width": interval.half_width,
               "min_gap": min(gaps), "trades_wins": sum(g > 0 for g in gaps)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", {"recipe": RECIPE, "trades": TRADES, "pgd_eps": PGD_EPS,
                                             "rows": rows, "summary": summary})
    lines = [f"# TRADES vs standard training on the tiny test fixture (n = {len(gaps)} training seeds)", "",
             f"Recipe {RECIPE}, TRADES {TRADES}, PGD L_inf eps {PGD_EPS} (10 steps of eps / 4).", "",
             "| seed | standard clean | standard PGD | TRADES clean | TRADES PGD | gap (points) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['standard_clean']:.1f} | {r['standard_pgd']:.1f} | {r['trades_clean']:.1f} "
              f"| {r['trades_pgd']:.1f} | {r['gap']:+.1f} |" for r in rows]
    lines += ["", f"Gap (TRADES PGD accuracy minus standard's): {format_interval(interval, 1, signed=True)} "
              f"(mean ± 95% t), smallest {summary['min_gap']:+.1f}, TRADES ahead in {summary['trades_wins']} "
              f"of {len(gaps)}."]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    record_invocation(out, "local", "cpu", ["benchmarks/trades_fixture_margin.py", *sys.argv[1:]])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
