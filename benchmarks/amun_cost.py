"""Benchmark: what AMUN costs next to retraining, by search mode (issue 6), all from one run.

Setup (REFERENCE.md, "Measured on this kind of machine"): a Fashion-MNIST CNN trained on 10k
samples for 40 epochs without weight decay memorises (train accuracy ~100%); 1,000 of its training
samples are forgotten. The original model, the retrained one (same recipe on D_R) and every
finished phase are kept in the package's artefact cache (``--cache-dir``, kind ``amun_cost``), so a
killed run resumes; the retraining is timed in this run unless ``--reuse-retrain-time``. The models
and their cache keys are in ``amun_cost_models.py``.

For the paper's Algorithm 1 ("algorithm1": PGD-L2, cross-entropy, eps_init 0.04, doubling, no
bisection — the reference of every ratio), "Algorithm 1 + bisection" (the same plus 10 bisection
steps towards x, not in the paper) and every new mode, on the same model and forget set: gradient
evaluations per sample, search seconds, median / p90 / p99 L2, failures.
Then AMUN end to end (search + fine-tuning) in both settings (with / without D_R): seconds and
their ratio to the retraining time, and UA / RA / TA / forget-vs-test AUC next to the retrained
model's. Writes results.json, results.md and env.json under ``--out``.

    python benchmarks/amun_cost.py                 # the full run (background it: ~tens of minutes)
    python benchmarks/amun_cost.py --models-only   # train and cache the original model only
    python benchmarks/amun_cost.py --quick         # a tiny smoke run (results under the cache dir)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

import amun_plugin
from amun_plugin import PluginHost, get_plugin_manager
from amun_plugin.attacks import AdversarialSet, SearchConfig, nearest_adversarial
from amun_plugin.data import FashionMNISTConfig
from amun_plugin.evaluate import AuditData
from amun_plugin.harness import (
    DEFAULT_MIN_TRAIN_ACCURACY,
    ArtifactCache,
    atomic_write_json,
    atomic_write_text,
    check_memorises,
    config_to_dict,
    content_hash,
    default_cache_dir,
    record_invocation,
    run_script,
    saturated_fraction,
)
from amun_plugin.models import accuracy
from amun_plugin.unlearn import AmunConfig

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the sibling module below, also when this script is loaded by path (its tests)
    sys.path.append(str(HERE))
from amun_cost_models import (  # noqa: E402, F401  (all its public names stay this script's, as before)
    KIND,
    KIND_PHASES,
    _load,
    forget_split,
    load_setup,
    model_key,
    recipe,
    train_or_load,
)

LOAD_NOTE = ("2 CPU cores, which may run other jobs beside this one (see loadavg_before / _after); every timed "
             "phase runs with torch.set_num_threads(--threads) and records the 1/5/15-min load averages "
             "before and after it, so ratios are side by side under comparable (not idle) load")

# Search modes: (attack backend, its options, SearchConfig options); "algorithm1" is the paper's
# Algorithm 1 (strict: no bisection), "algorithm1_bisection" adds 10 bisection steps (earlier results
# of this script called that one "reference"), "default" is whatever AmunConfig() uses.
_DEFAULT = AmunConfig()
REFERENCE_MODE = "algorithm1"
SEARCH_MODES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "algorithm1": ("native_pgd_l2", {"loss": "ce"}, {"eps_init": 0.04, "refine_steps": 0}),
    "algorithm1_bisection": ("native_pgd_l2", {"loss": "ce"}, {"eps_init": 0.04, "refine_steps": 10}),
    "pgd_margin": ("native_pgd_l2", {"loss": "margin"}, {"eps_init": 0.04}),
    "min_norm_first_crossing": ("native_min_norm", {"boundary_steps": 0}, {"eps_init": None}),
    "min_norm_eps_ladder": ("native_min_norm", {}, {"eps_init": 0.04}),
    "default": (_DEFAULT.attack, dict(_DEFAULT.attack_options), config_to_dict(_DEFAULT.search)),
}
# Fine-tuning recipes (AmunConfig options); "paper" is the paper's, "default" AmunConfig()'s.
FINETUNE: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 10, "retain_ratio": None},
    "default": {"epochs": _DEFAULT.epochs, "retain_ratio": _DEFAULT.retain_ratio},
    # the default's 2 epochs at 5x the learning rate: the paper tunes lr per model, and at 0.01 this
    # CNN's forget accuracy barely moves; both D_A run with it, so quality is compared where it moves
    "default_lr0.05": {"epochs": _DEFAULT.epochs, "retain_ratio": _DEFAULT.retain_ratio, "lr": 0.05},
}
# AMUN runs per setting: (search mode, fine-tuning recipe); ("algorithm1", "paper") is the paper's
# AMUN, ("default", "default") AmunConfig()'s, run end to end (search inside the timed call).
AMUN_RUNS = [("algorithm1", "paper"), ("algorithm1", "default"), ("default", "default"),
             ("algorithm1", "default_lr0.05"), ("default", "default_lr0.05")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--data-root", default=FashionMNISTConfig().root, help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--cache-dir", default=str(default_cache_dir()), help="the package's artefact cache")
    p.add_argument("--out", default=None, help="results directory (default benchmarks/results/amun_cost)")
    p.add_argument("--train-size", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate of the recipe (cosine schedule)")
    p.add_argument("--forget-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for everything timed")
    p.add_argument("--models-only", action="store_true", help="train / cache the original model and stop")
    p.add_argument("--reuse-retrain-time", action="store_true",
                   help="take the retraining time from the cache instead of retraining in this run")
    p.add_argument("--fresh", action="store_true", help="recompute the phases a killed earlier run finished "
                   "(the trained models are reused)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 2000 train samples, 8 epochs, 100 forget "
                   "(the memorisation check is off, the chance check stays)")
    p.add_argument("--min-train-accuracy", type=float, default=DEFAULT_MIN_TRAIN_ACCURACY,
                   help="refuse an original model under this train accuracy (%%)")
    args = p.parse_args(argv)
    args.started = time.time()
    if args.quick:
        args.train_size, args.epochs, args.forget_size = 2000, 8, 100
    if args.out is None:
        args.out = str(Path(args.cache_dir) / KIND / "quick_results" if args.quick else HERE / "results" / "amun_cost")
    return args


def phase_key(args: argparse.Namespace, setup: dict[str, Any], phase: str, spec: Any = None) -> str:
    """Cache key of one finished phase of this run: the original model, the forget set's size, the
    phase and its configuration (``--fresh`` adds the run's start time, so nothing is reused)."""
    return content_hash({"script": KIND, "original": setup["original_key"], "forget_size": args.forget_size,
                         "phase": phase, "spec": spec, "fresh": args.started if args.fresh else None})


def search_phase(host: PluginHost, setup: dict[str, Any], mode: str, measured: dict[str, Any]) -> AdversarialSet:
    """D_A of search ``mode`` on the original model and forget set; load averages into ``measured``."""
    attack, options, search_options = SEARCH_MODES[mode]
    measured["loadavg_before"] = _load()
    adv = nearest_adversarial(setup["original"], setup["forget"], host.attacks.get(attack)(options),
                              SearchConfig(**search_options), progress=True)
    measured["loadavg_after"] = _load()
    return adv


def search_summary(adv: AdversarialSet, mode: str, measured: dict[str, Any]) -> dict[str, Any]:
    attack, options, search_options = SEARCH_MODES[mode]
    return dict(adv.summary(), mode=mode, attack=attack, attack_options=options, search=search_options, **measured)


def run_searches(host: PluginHost, setup: dict[str, Any], args: argparse.Namespace,
                 cache: ArtifactCache) -> tuple[list[dict[str, Any]], dict[str, AdversarialSet]]:
    """Every search mode on the same model and forget set: its summary row and its D_A."""
    rows, sets = [], {}
    for mode in SEARCH_MODES:
        key, measured = phase_key(args, setup, f"search_{mode}", SEARCH_MODES[mode]), dict[str, Any]()
        adv = cache.adversarial(KIND_PHASES, key, partial(search_phase, host, setup, mode, measured))
        summary = cache.json(KIND_PHASES, key, partial(search_summary, adv, mode, measured))
        rows.append(summary)
        sets[mode] = adv
        print(f"search {mode}: {summary['mean_grad_evals']:.1f} grad evals/sample, {summary['seconds']:.1f} s, "
              f"median L2 {summary['median_l2']:.4f}, failures {summary['failures']}", flush=True)
    ref = next(r for r in rows if r["mode"] == REFERENCE_MODE)
    for row in rows:
        row["x_grad_evals"] = row["mean_grad_evals"] / ref["mean_grad_evals"]
        row["x_seconds"] = row["seconds"] / ref["seconds"]
        row["x_median_l2"] = row["median_l2"] / ref["median_l2"] if row["median_l2"] else None
    return rows, sets


def retrain_phase(args: argparse.Namespace, setup: dict[str, Any],
                  cache: ArtifactCache) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The retrained model, timed in this run (once: a resumed run reuses the phase's timing)."""
    key = phase_key(args, setup, "retrain")
    timed = cache.has(KIND_PHASES, key, ".json")
    model, trained = train_or_load(args, cache, setup["retain"], "retrain",
                                   force=not timed and not args.reuse_retrain_time)
    return model, cache.json(KIND_PHASES, key, lambda: trained)


def quality(host: PluginHost, model: torch.nn.Module, audit: AuditData, seed: int) -> dict[str, float]:
    """UA / RA / TA (accuracy %, on D_F / D_R / D_T) and the membership AUCs of the evaluator."""
    metrics = {"UA": accuracy(model, audit.forget), "RA": accuracy(model, audit.retain),
               "TA": accuracy(model, audit.test)}
    # RMIA ("rmia") needs a bank of reference CNNs each as costly as the original: out of reach on
    # this machine, so the membership signal is the logit-scaled confidence's AUC.
    result = host.evaluators.get("confidence_mia")().evaluate(model, audit, seed=seed)
    metrics.update({k: float(v) for k, v in result.metrics.items() if k.endswith("_AUC")})
    return metrics


def amun_row(host: PluginHost, setup: dict[str, Any], setting: str, mode: str, recipe_name: str,
             sets: dict[str, AdversarialSet], seconds_search: dict[str, float], audit: AuditData,
             args: argparse.Namespace) -> dict[str, Any]:
    """One AMUN run (``setting``, search ``mode``, fine-tuning ``recipe_name``): seconds and quality."""
    retain = setup["retain"] if setting == "with_retain" else None
    end_to_end = (mode, recipe_name) == ("default", "default")
    attack, options, search = SEARCH_MODES[mode]
    # the end-to-end row passes no option at all: AmunConfig()'s defaults, as a user gets them
    config: dict[str, Any] = {} if end_to_end else {**FINETUNE[recipe_name], "attack": attack,
                                                    "attack_options": options, "search": search}
    load_before = _load()
    start = time.perf_counter()
    result = amun_plugin.unlearn(setup["original"], setup["forget"], retain, method="amun", plugins=host,
                                 adversarial=None if end_to_end else sets[mode], seed=args.seed, **config)
    wall = time.perf_counter() - start
    search_s = result.stats["seconds_search"] if end_to_end else seconds_search[mode]
    return {"setting": setting, "search": mode, "finetune": recipe_name, "end_to_end": end_to_end,
            "seconds_search": search_s, "seconds_finetune": result.stats["seconds_finetune"],
            "seconds_total": wall if end_to_end else wall + search_s, "finetune_size": result.stats["finetune_size"],
            "grad_evals_per_sample": result.stats["adversarial"]["mean_grad_evals"],
            "loadavg_before": load_before, "loadavg_after": _load(), **quality(host, result.model, audit, args.seed)}


def run_amun(host: PluginHost, setup: dict[str, Any], search_rows: list[dict[str, Any]],
             sets: dict[str, AdversarialSet], audit: AuditData, args: argparse.Namespace,
             cache: ArtifactCache) -> list[dict[str, Any]]:
    """AMUN in both settings for every (search mode, fine-tuning recipe) of AMUN_RUNS (each a cached phase)."""
    seconds_search = {row["mode"]: row["seconds"] for row in search_rows}
    rows = []
    for setting in ("with_retain", "without_retain"):
        for mode, recipe_name in AMUN_RUNS:
            key = phase_key(args, setup, f"amun_{setting}", [SEARCH_MODES[mode], FINETUNE[recipe_name]])
            row = cache.json(KIND_PHASES, key, partial(amun_row, host, setup, setting, mode, recipe_name, sets,
                                                       seconds_search, audit, args))
            rows.append(row)
            print(f"AMUN {setting} search={mode} finetune={recipe_name}: {row['seconds_total']:.1f} s, "
                  f"UA {row['UA']:.2f} TA {row['TA']:.2f} FT_AUC {row['FT_AUC']:.2f}", flush=True)
    return rows


def _f(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    info, retrain = result["setup"], result["retrain"]
    lines = [
        "# AMUN's cost next to retraining, by search mode (issue 6)\n",
        f"Fashion-MNIST CNN, {info['train_size']} train samples, {info['epochs']} epochs, lr {info['lr']} cosine, "
        f"no weight decay: train acc {info['original']['train_acc']:.2f}%, test acc {info['original']['TA']:.2f}% "
        f"({'memorises' if info['original']['train_acc'] >= 99.0 else 'DOES NOT MEMORISE: numbers not meaningful'}). "
        f"{info['forget_size']} forget samples ({100 * info['saturated_fraction']:.1f}% with "
        f"p_y == 1.0 in float32). Retraining on D_R with the same recipe: {retrain['seconds']:.1f} s. "
        f"torch threads: {info['threads']}. Load: {LOAD_NOTE}.\n",
        "## Search (Algorithm 1), same model and forget set\n",
        "| mode | attack | options | eps_init | grad evals / sample | search s | median L2 | p90 L2 | p99 L2 "
        "| failures | x grad evals | x median L2 |",
        "|" + "---|" * 12,
    ]
    for r in result["search"]:
        lines.append(
            f"| {r['mode']} | {r['attack']} | {json.dumps(r['attack_options'])} | {_f(r['eps_init'], 3)} | "
            f"{r['mean_grad_evals']:.1f} | {r['seconds']:.1f} | {_f(r['median_l2'], 4)} | {_f(r['p90_l2'], 4)} | "
            f"{_f(r['p99_l2'], 4)} | {r['failures']} | {_f(r['x_grad_evals'], 3)} | {_f(r['x_median_l2'], 3)} |")
    lines += [
        "\nx = ratio to algorithm1 (the paper's Algorithm 1, strict: native PGD-L2, cross-entropy, eps_init 0.04, "
        "50 steps per round, doubling). eps_init of an automatic mode is the value its probe chose.\n",
        "## AMUN end to end (search + fine-tuning) vs retraining\n",
        "| setting | search | fine-tuning | total s | x retrain | search s | fine-tune s | UA | RA | TA | FT AUC "
        "| RT AUC | \\|UA-retrain\\| | \\|FT AUC-retrain\\| |",
        "|" + "---|" * 14,
    ]
    ref_q = result["quality_retrain"]
    for name in ("original", "retrain"):
        q = result[f"quality_{name}"]
        lines.append(f"| - | {name} model | - | {'-' if name == 'original' else _f(retrain['seconds'], 1)} | "
                     f"{'-' if name == 'original' else '1.000'} | - | - | {_f(q['UA'])} | {_f(q['RA'])} | "
                     f"{_f(q['TA'])} | {_f(q['FT_AUC'])} | {_f(q['RT_AUC'])} | {_f(abs(q['UA'] - ref_q['UA']))} | "
                     f"{_f(abs(q['FT_AUC'] - ref_q['FT_AUC']))} |")
    for r in result["amun"]:
        tag = " (end to end)" if r["end_to_end"] else ""
        lines.append(
            f"| {r['setting']} | {r['search']}{tag} | {r['finetune']} | {r['seconds_total']:.1f} | "
            f"{r['x_retrain']:.3f} | {r['seconds_search']:.1f} | {r['seconds_finetune']:.1f} | {_f(r['UA'])} | "
            f"{_f(r['RA'])} | {_f(r['TA'])} | {_f(r['FT_AUC'])} | {_f(r['RT_AUC'])} | "
            f"{_f(abs(r['UA'] - ref_q['UA']))} | {_f(abs(r['FT_AUC'] - ref_q['FT_AUC']))} |")
    lines += [
        "\nFine-tuning recipes: " + "; ".join(f"{k} = {json.dumps(v)}" for k, v in FINETUNE.items())
        + " (everything else AmunConfig's: SGD lr 0.01 momentum 0.9 wd 5e-4, batch 128, lr x0.1 every epoch). "
        "Rows other than the end-to-end one reuse the D_A of the search table and add its search time. "
        "AUC = the confidence_mia evaluator (logit-scaled confidence), percent, forget vs test (FT) and "
        "retain vs test (RT).\n",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; an :class:`AmunError` (e.g. a model that does not memorise) is one line, exit 2."""
    return run_script(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    setup = load_setup(args)
    if args.models_only:
        return 0
    host = get_plugin_manager()
    bundle, forget, retain = setup["bundle"], setup["forget"], setup["retain"]
    audit = AuditData(retain=retain, forget=forget, test=bundle.test)
    original = setup["original"]
    info = {
        "train_size": args.train_size, "epochs": args.epochs, "lr": args.lr, "forget_size": len(forget),
        "seed": args.seed, "threads": torch.get_num_threads(), "recipe": config_to_dict(recipe(args)),
        "saturated_fraction": saturated_fraction(original, forget) / 100, "model": setup["original_info"],
        "original": {"train_acc": accuracy(original, bundle.train), **quality(host, original, audit, args.seed)},
        "search_modes": {k: list(v) for k, v in SEARCH_MODES.items()}, "finetune_recipes": FINETUNE,
        "amun_defaults": config_to_dict(_DEFAULT), "quick": args.quick,
    }
    check_memorises(info["original"]["train_acc"], info["original"]["TA"], bundle.num_classes,
                    min_train_accuracy=0.0 if args.quick else args.min_train_accuracy)
    cache = ArtifactCache(args.cache_dir)
    search_rows, sets = run_searches(host, setup, args, cache)
    retrained, retrain_info = retrain_phase(args, setup, cache)
    print(f"retrain: {retrain_info['seconds']} s", flush=True)
    amun_rows = run_amun(host, setup, search_rows, sets, audit, args, cache)
    for row in amun_rows:
        row["x_retrain"] = row["seconds_total"] / retrain_info["seconds"]
    result = {"setup": info, "search": search_rows, "retrain": retrain_info, "amun": amun_rows,
              "quality_original": info["original"], "quality_retrain": quality(host, retrained, audit, args.seed)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", result)
    record_invocation(out, "local", "cpu", ["benchmarks/amun_cost.py", *sys.argv[1:]],
                      notes={"load_note": LOAD_NOTE, "loadavg_end": _load()})
    table = markdown(result)
    atomic_write_text(out / "results.md", table)
    print(table)
    print(f"wrote {out}/results.json, results.md, env.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
