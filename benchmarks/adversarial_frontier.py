"""Benchmark: every backend's nearest-adversarial distances against the minimum-norm frontier.

For each forget sample, the smallest L2 distance any method found is the *frontier*; each method
is scored by the per-sample ratio distance / frontier (1.0 = it found the best point), reported as
median and 90th percentile with distribution-free 95% intervals (order statistics), next to its
cost (gradient evaluations and forward passes per sample, wall time) and success rate. The
methods run side by side in one invocation on the same model and samples:

- every built-in backend inside Algorithm 1 (``nearest_adversarial``, AMUN's default search
  settings: automatic eps_init, 10 bisection steps), ``native_min_norm`` being AMUN's default;
- with adv-lib installed (``pip install 'amun_plugin[advlib]'``), the published minimum-norm L2
  attacks DDN, FMN, ALMA (100 steps) and FAB (20 iterations) through the ``advlib_*`` backends, in
  one round at eps = sqrt(input dimension) (the diameter of [0, 1]^D) plus the same bisection.

The model is the original model of the bench preset (default ``fmnist-cnn``: it memorises and
saturates, 55% of its training samples at p_y == 1.0 in float32), from the bench cache
(``$AMUN_BENCH_CACHE``), refused by the bench guard rail if it does not memorise; the forget
samples are a seeded draw from its training set. Each finished method is kept under
``--out/rows/`` so a killed run resumes; ``results.json``, ``results.md`` and ``env.json`` are
written atomically.

    python benchmarks/adversarial_search.py --frontier --out benchmarks/results/adversarial_search-frontier
    python benchmarks/adversarial_frontier.py --quick            # a smoke run (24 samples)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from scipy import stats

from amun_plugin.attacks import (
    AdvLibALMA,
    AdvLibDDN,
    AdvLibFAB,
    AdvLibFMN,
    ArtPGDL2,
    NativeMinNormL2,
    NativePGDL2,
    SearchConfig,
    TorchattacksFFGSM,
    TorchattacksPGDL2,
    nearest_adversarial,
)
from amun_plugin.bench import load_suite
from amun_plugin.harness import (
    ArtifactCache,
    NotMemorisingError,
    Workspace,
    advlib_available,
    atomic_write_json,
    atomic_write_text,
    check_memorises,
    default_cache_dir,
    ratio_to_best,
    record_invocation,
    saturated_fraction,
)
from amun_plugin.models import accuracy

HERE = Path(__file__).resolve().parent
AUTO = {"eps_init": None}  # AMUN's default search: automatic eps_init, 10 bisection steps
# label -> (backend factory, search settings; "diameter" = one round at eps = sqrt(D))
BUILTIN: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
    "native_min_norm": (lambda: NativeMinNormL2(), AUTO),
    "native_pgd_l2": (lambda: NativePGDL2({"loss": "ce"}), AUTO),
    "native_pgd_l2_margin": (lambda: NativePGDL2({"loss": "margin"}), AUTO),
    "torchattacks_pgd_l2": (lambda: TorchattacksPGDL2(), AUTO),
    "art_pgd_l2": (lambda: ArtPGDL2(), AUTO),
    "torchattacks_ffgsm": (lambda: TorchattacksFFGSM(), AUTO),
}
# Not run by default: the default search's earlier settings (same code path, those options).
_BEFORE_12 = {"boundary_steps": 4, "origin_pull": 0.2, "pull_up": 1.0, "pull_down": 1.0, "patience": 2,
              "min_progress": 0.05, "approach_smoothing": 0.0, "far_factor": math.inf, "boundary_tol": 0.0,
              "approach_overshoot": None, "runner_up_steps": 0}
_FIRST_12 = {"boundary_steps": 9, "origin_pull": 0.4, "pull_down": 0.5, "boundary_tol": 0.0, "approach_overshoot": None,
             "runner_up_steps": 0}
_BEFORE_RUNNER_UP = {"runner_up_steps": 0, "boundary_tol": 0.01}  # the default of issue 12's third pass
EXTRA: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
    "native_min_norm_before_issue12": (lambda: NativeMinNormL2(_BEFORE_12), AUTO),
    "native_min_norm_issue12_first": (lambda: NativeMinNormL2(_FIRST_12), AUTO),  # the default of its first pass
    "native_min_norm_before_runner_up": (lambda: NativeMinNormL2(_BEFORE_RUNNER_UP), AUTO),  # ... and third pass
    # ablations of the default: one change each
    "native_min_norm_hard_approach": (lambda: NativeMinNormL2({"approach_smoothing": 0.0}), AUTO),
    "native_min_norm_fixed_pull": (lambda: NativeMinNormL2({"origin_pull": 0.2, "pull_up": 1.0, "pull_down": 1.0}),
                                   AUTO),
    "native_min_norm_30_boundary_steps": (lambda: NativeMinNormL2({"boundary_steps": 30}), AUTO),
    "native_min_norm_no_early_stop": (lambda: NativeMinNormL2({"boundary_tol": 0.0}), AUTO),
    "native_min_norm_small_approach_overshoot": (lambda: NativeMinNormL2({"approach_overshoot": None}), AUTO),
    "native_min_norm_first_pull_schedule": (lambda: NativeMinNormL2({"origin_pull": 0.4, "pull_down": 0.5}), AUTO),
    # the p90 tail (issue 12's last gap): a wider soft maximum leads other samples to other classes' boundaries
    "native_min_norm_smoothing_1": (lambda: NativeMinNormL2({"approach_smoothing": 1.0}), AUTO),
    "native_min_norm_smoothing_06_overshoot_01": (
        lambda: NativeMinNormL2({"approach_smoothing": 0.6, "approach_overshoot": 0.1}), AUTO),
    # the runner-up walk (issue 12's fourth pass), each half of the change from the third pass's default alone
    "native_min_norm_no_runner_up": (lambda: NativeMinNormL2({"runner_up_steps": 0}), AUTO),
    "native_min_norm_runner_up_tol_001": (lambda: NativeMinNormL2({"boundary_tol": 0.01}), AUTO),
}
PUBLISHED: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
    "advlib_ddn_100": (lambda: AdvLibDDN({"steps": 100}), {"eps_init": "diameter"}),
    "advlib_fmn_100": (lambda: AdvLibFMN({"steps": 100}), {"eps_init": "diameter"}),
    "advlib_alma_100": (lambda: AdvLibALMA({"steps": 100}), {"eps_init": "diameter"}),
    "advlib_fab_20": (lambda: AdvLibFAB({"steps": 20}), {"eps_init": "diameter"}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--suite", default="table1", help="bench suite whose preset gives the original model")
    p.add_argument("--preset", default="fmnist-cnn", help="bench preset (fmnist-cnn saturates; fmnist-paper not)")
    p.add_argument("--forget-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0, help="original-model seed")
    p.add_argument("--forget-seed", type=int, default=None, help="seed of the forget draw (default: seed + 1)")
    p.add_argument("--methods", nargs="+", default=None, help="labels to run (default: all built-in, and the "
                   f"adv-lib ones when adv-lib is installed): {', '.join([*BUILTIN, *PUBLISHED, *EXTRA])}")
    p.add_argument("--out", default=str(HERE / "results" / "adversarial_search-frontier"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="24 forget samples, output under the bench cache")
    args = p.parse_args(argv)
    if args.quick:
        args.forget_size = 24
        args.out = str(default_cache_dir() / "quick_frontier")
    known = {**BUILTIN, **PUBLISHED, **EXTRA}
    args.methods = args.methods or [*BUILTIN, *(PUBLISHED if advlib_available() else {})]
    unknown = [m for m in args.methods if m not in known]
    if unknown:
        p.error(f"unknown method(s) {unknown}; known: {list(known)}")
    return args


def run_method(label: str, model: torch.nn.Module, forget: Any, device: str) -> dict[str, Any]:
    """One method's search on ``forget``: per-sample L2 distances (inf = not found) and its cost."""
    factory, settings = {**BUILTIN, **PUBLISHED, **EXTRA}[label]
    backend = factory()
    eps_init = settings["eps_init"]
    if eps_init == "diameter":
        eps_init = math.sqrt(float(np.prod(forget.input_shape)))
    config = SearchConfig(eps_init=eps_init)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        adv = nearest_adversarial(model, forget, backend, config, device=device)
        wall = time.perf_counter() - start
    distance = torch.where(adv.found, adv.distance_l2, torch.full_like(adv.distance_l2, math.inf))
    return {"label": label, "backend": backend.name, "norm": backend.norm, "search": {"eps_init": eps_init},
            "distances": distance.tolist(), "already_misclassified": adv.already_misclassified.tolist(),
            "grad_evals_per_sample": float(adv.grad_evals.float().mean()),
            "forward_evals_per_sample": float(adv.forward_evals.float().mean()),
            "wall_seconds": round(wall, 2), "success": float(adv.found.float().mean()),
            "warnings": [str(w.message) for w in caught]}


def quantile_interval(values: np.ndarray, q: float) -> tuple[float, float, float]:
    """The q-quantile of ``values`` (n,) and a distribution-free 95% interval from order statistics
    (binomial ranks); infinite entries (failures) sort last."""
    ordered, n = np.sort(values), len(values)
    lo = int(stats.binom.ppf(0.025, n, q))
    hi = int(stats.binom.ppf(0.975, n, q))
    return float(np.quantile(ordered, q, method="inverted_cdf")), float(ordered[max(lo - 1, 0)]), \
        float(ordered[min(hi, n - 1)])


def add_frontier_ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-sample ratio to the smallest L2 distance any method found; adds to each row the median
    and p90 ratio with 95% intervals over the samples the model classified correctly."""
    dist = np.array([r["distances"] for r in rows], dtype=float)  # (methods, n)
    attacked = ~np.array(rows[0]["already_misclassified"], dtype=bool)
    best = dist.min(axis=0)
    for row, ratio in zip(rows, ratio_to_best(dist, attacked)):
        row["ratio_median"], row["ratio_median_lo"], row["ratio_median_hi"] = quantile_interval(ratio, 0.5)
        row["ratio_p90"], row["ratio_p90_lo"], row["ratio_p90_hi"] = quantile_interval(ratio, 0.9)
        row["best_share"] = float(np.mean(ratio <= 1.0 + 1e-6))
    return {"n_attacked": int(attacked.sum()), "frontier_median_l2": float(np.median(best[attacked]))}


def finished_or_run(out: Path, label: str, setup: dict[str, Any], run: Callable[[], dict[str, Any]]) -> dict:
    """``out/rows/<label>.json`` when a run with the same setup finished it, else ``run()``, saved."""
    path = out / "rows" / f"{label}.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("setup") == json.loads(json.dumps(setup, default=str)):
            return dict(saved["row"])
    row = run()
    atomic_write_json(path, {"setup": setup, "row": row})
    return row


def _fmt(value: float) -> str:
    return "fails" if not math.isfinite(value) else f"{value:.3f}"


def markdown(rows: list[dict[str, Any]], setup: dict[str, Any], summary: dict[str, Any]) -> str:
    head = (f"# Nearest adversarial examples against the minimum-norm frontier\n\n"
            f"Original model of bench preset `{setup['preset']}` (seed {setup['seed']}): train acc "
            f"{setup['train_accuracy']:.2f}%, test acc {setup['test_accuracy']:.2f}%. {setup['forget_size']} forget "
            f"samples drawn from its training set (draw seed {setup.get('forget_seed', setup['seed'] + 1)}), "
            f"{setup['saturated_percent']:.1f}% of them with p_y == 1.0 in "
            f"float32; n = {summary['n_attacked']} attacked (the others were misclassified already). Ratio = a "
            f"sample's L2 distance / the smallest any method below found for it (frontier median L2 "
            f"{summary['frontier_median_l2']:.3f}); [95% interval from order statistics]. Built-in backends run "
            f"inside Algorithm 1 with AMUN's default search (automatic eps_init, 10 bisection steps); adv-lib "
            f"attacks in one round at eps = sqrt(D), plus the same bisection.\n\n")
    cols = ("| method | grad evals / sample | forward passes / sample | wall s | success | ratio median | "
            "ratio p90 | best on |\n|" + "---|" * 8 + "\n")
    lines = [f"| {r['label']} | {r['grad_evals_per_sample']:.1f} | {r['forward_evals_per_sample']:.1f} | "
             f"{r['wall_seconds']:.1f} | {100 * r['success']:.1f}% | {_fmt(r['ratio_median'])} "
             f"[{_fmt(r['ratio_median_lo'])}, {_fmt(r['ratio_median_hi'])}] | {_fmt(r['ratio_p90'])} "
             f"[{_fmt(r['ratio_p90_lo'])}, {_fmt(r['ratio_p90_hi'])}] | {100 * r['best_share']:.0f}% |"
             for r in rows]
    return head + cols + "\n".join(lines) + ("\n\n'best on': the share of samples where the method found the "
                                             "frontier point. FAB's grad evals count forward passes; each also "
                                             "takes one backward pass per class (its Jacobian).\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_suite(args.suite, args.preset)
    ws = Workspace(config, ArtifactCache(default_cache_dir()))
    model, _ = ws.original(args.seed)
    device = config.device
    train_acc, test_acc = accuracy(model, ws.train, device=device), accuracy(model, ws.test, device=device)
    try:
        check_memorises(train_acc, test_acc, ws.train.num_classes)
    except NotMemorisingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    forget_seed = args.seed + 1 if args.forget_seed is None else args.forget_seed
    order = torch.randperm(len(ws.train), generator=torch.Generator().manual_seed(forget_seed))
    forget = ws.train.subset(order[:args.forget_size].sort().values, name="forget")
    setup = {"suite": args.suite, "preset": args.preset, "seed": args.seed, "forget_size": len(forget),
             **({"forget_seed": forget_seed} if args.forget_seed is not None else {}),
             "train_accuracy": train_acc, "test_accuracy": test_acc,
             "saturated_percent": saturated_fraction(model, forget, device=device)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label in args.methods:
        row_setup = {**setup, "method": label, "code": _method_code(label)}
        rows.append(finished_or_run(out, label, row_setup, lambda m=label: run_method(m, model, forget, device)))
        print(f"{label}: {rows[-1]['grad_evals_per_sample']:.1f} grad evals/sample, {rows[-1]['wall_seconds']} s",
              flush=True)
    summary = add_frontier_ratios(rows)
    record_invocation(out, "local", device, notes={"adv_lib": _advlib_version()})
    atomic_write_json(out / "results.json", {"setup": setup, "summary": summary, "results": rows})
    table = markdown(rows, setup, summary)
    atomic_write_text(out / "results.md", table)
    print(table)
    return 0


def _method_code(label: str) -> str:
    """A fingerprint of the code a row depends on (the default search's config), so a changed
    ``native_min_norm`` is rerun instead of resumed."""
    factory, settings = {**BUILTIN, **PUBLISHED, **EXTRA}[label]
    return json.dumps({"config": repr(factory().config), "search": settings}, sort_keys=True)


def _advlib_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("adv-lib")
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
