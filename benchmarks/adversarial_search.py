"""Benchmark: AMUN's nearest-adversarial search (Algorithm 1) with every attack backend, side by side.

Trains (or loads from a cache) a Fashion-MNIST CNN that memorises (REFERENCE.md recipe: 10k
training samples, 40 epochs, SGD, no weight decay -> train accuracy 100%), draws the same forget
samples from its training set for every backend, runs ``nearest_adversarial`` with each, and writes
``results.json``, ``results.md`` and ``env.json`` under ``--out``:

    mean gradient evaluations per sample (and in PGD-50 runs), wall time, median / p90 L2 distance,
    failures, doublings, and the ratios of each to the native CE search (the reference procedure).

    python benchmarks/adversarial_search.py                # the full run (~minutes on 2 CPU cores)
    python benchmarks/adversarial_search.py --forget-from saturated   # only samples with p_y == 1.0
    python benchmarks/adversarial_search.py --quick        # a tiny smoke run
    python benchmarks/adversarial_search.py --frontier     # every backend, and adv-lib's DDN / FMN / ALMA / FAB
                                                           # when installed, scored per sample against the best
                                                           # distance any of them found (adversarial_frontier.py)

The comparison is about memorised samples, so a model that does not memorise (train accuracy under
``--min-train-accuracy``, or test accuracy within 5 points of chance) is refused with one line on
stderr and exit status 2, before any attack runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from amun_plugin.attacks import (
    ArtPGDL2,
    AttackBackend,
    NativeMinNormL2,
    NativePGDL2,
    SearchConfig,
    TorchattacksFFGSM,
    TorchattacksPGDL2,
    nearest_adversarial,
)
from amun_plugin.data import FashionMNISTConfig, FashionMNISTSource, LabeledData
from amun_plugin.harness import atomic_write_json, atomic_write_text, bars_allowed, config_to_dict
from amun_plugin.harness import environment as bench_environment
from amun_plugin.models import CNN, CheckpointMetadata, accuracy, build_model, load_checkpoint, save_checkpoint
from amun_plugin.training import TrainConfig, train_model

HERE = Path(__file__).resolve().parent
# (label, backend factory). "*_raw": the library's attack on the raw model (max_logit_spread None),
# as published; without the suffix: on the tempered view (the default of these backends).
RAW = {"max_logit_spread": None}
BACKENDS: dict[str, Any] = {
    "native_pgd_l2": lambda: NativePGDL2({"loss": "ce"}),
    "native_pgd_l2_margin": lambda: NativePGDL2({"loss": "margin"}),
    "torchattacks_pgd_l2": lambda: TorchattacksPGDL2(),
    "torchattacks_pgd_l2_raw": lambda: TorchattacksPGDL2(RAW),
    "art_pgd_l2": lambda: ArtPGDL2(),
    "art_pgd_l2_raw": lambda: ArtPGDL2(RAW),
    "torchattacks_ffgsm": lambda: TorchattacksFFGSM(),
    "torchattacks_ffgsm_raw": lambda: TorchattacksFFGSM(RAW),
    "native_min_norm": lambda: NativeMinNormL2(),
}
REFERENCE = "native_pgd_l2"  # the default reference of the ratios: the paper's Algorithm 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=FashionMNISTConfig().root, help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--cache-dir", default=str(HERE / "cache" / "adversarial_search"), help="trained-model cache")
    p.add_argument("--out", default=None, help="results directory (default benchmarks/results/adversarial_search; "
                   "with --quick, <cache-dir>/quick_results, which git ignores)")
    p.add_argument("--train-size", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=TrainConfig.lr, help="SGD learning rate of the recipe")
    p.add_argument("--forget-size", type=int, default=1000)
    p.add_argument("--forget-from", choices=("all", "saturated", "most_confident"), default="all",
                   help="draw forget samples from the whole training set, only from its saturated samples "
                   "(p_y == 1.0 in float32: where a cross-entropy gradient vanishes), or take the training "
                   "samples with the largest logit margins (the deepest saturation)")
    p.add_argument("--min-train-accuracy", type=float, default=99.0,
                   help="refuse a model whose train accuracy (%%) is below this: it does not memorise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps-init", type=float, default=0.04, help="first radius; <= 0 means automatic (App. E.1)")
    p.add_argument("--max-doublings", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    p.add_argument("--reference", default=REFERENCE, choices=list(BACKENDS),
                   help="the backend the ratios are taken against (always run, first)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 1000 train samples, 5 epochs, 24 forget")
    args = p.parse_args(argv)
    if args.quick:
        args.train_size, args.epochs, args.forget_size = 1000, 5, 24
    if args.out is None:
        quick_out = Path(args.cache_dir) / "quick_results"
        args.out = str(quick_out if args.quick else HERE / "results" / "adversarial_search")
    if args.reference not in args.backends:
        args.backends.insert(0, args.reference)
    return args


def train_or_load(args: argparse.Namespace, train: LabeledData) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The memorising CNN of the recipe, from the cache when an identical recipe was trained."""
    recipe = TrainConfig(epochs=args.epochs, lr=args.lr, weight_decay=0.0)
    architecture = CNN()
    path = Path(args.cache_dir) / f"cnn_fmnist_n{args.train_size}_e{args.epochs}_lr{args.lr:g}_s{args.seed}.safetensors"
    if path.exists():
        model, meta = load_checkpoint(path, lambda m: build_model(architecture, m.num_classes, m.input_shape, 0),
                                      device=args.device)
        return model, dict(meta.extra, cached=True, checkpoint=str(path))
    model = build_model(architecture, train.num_classes, train.input_shape, seed=args.seed)
    stats = train_model(model, train, recipe, device=args.device, seed=args.seed, progress="train CNN")
    info = {"train_seconds": round(stats.seconds, 2), "final_loss": stats.final_loss, "cached": False}
    meta = CheckpointMetadata(
        architecture=architecture.name, architecture_config=config_to_dict(architecture.config),
        num_classes=train.num_classes, input_shape=train.input_shape, dataset="fashion_mnist",
        dataset_config={"train_size": args.train_size, "seed": args.seed}, recipe=config_to_dict(recipe), extra=info,
    )
    save_checkpoint(path, model, meta)
    return model, dict(info, checkpoint=str(path))


def forget_subset(train: LabeledData, size: int, seed: int, pool: torch.Tensor | None = None) -> LabeledData:
    """``size`` training samples drawn with a seeded permutation (the same for every backend),
    from the indices ``pool`` (1-D int64) when given, else from the whole training set."""
    candidates = torch.arange(len(train)) if pool is None else pool
    order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(seed + 1))
    return train.subset(candidates[order[:size]].sort().values, name="forget")


def saturated_mask(model: torch.nn.Module, data: LabeledData, device: str) -> torch.Tensor:
    """(N,) bool: the softmax probability of the true class is exactly 1.0 in float32."""
    model.eval()
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(x.to(device)).float(), dim=1).cpu() for x in data.x.split(1024)])
    return probs.gather(1, data.y.view(-1, 1)).squeeze(1) == 1.0


def logit_margins(model: torch.nn.Module, data: LabeledData, device: str) -> torch.Tensor:
    """(N,) float: z_y - max_{j != y} z_j, the logit margin of each sample's true class."""
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x.to(device)).float().cpu() for x in data.x.split(1024)])
    true = logits.gather(1, data.y.view(-1, 1)).squeeze(1)
    return true - logits.scatter(1, data.y.view(-1, 1), float("-inf")).max(dim=1).values


def saturated_fraction(model: torch.nn.Module, data: LabeledData, device: str) -> float:
    """Fraction of samples whose softmax probability of the true class is exactly 1.0 in float32."""
    return float(saturated_mask(model, data, device).float().mean())


def memorisation_problem(train_accuracy: float, test_accuracy: float, num_classes: int,
                         min_train_accuracy: float) -> str | None:
    """One line saying why a model (accuracies in %) does not memorise, or None when it does:
    train accuracy under ``min_train_accuracy``, or test accuracy within 5 points of chance."""
    chance = 100.0 / num_classes
    if train_accuracy < min_train_accuracy:
        return (f"refusing: the original model does not memorise (train accuracy {train_accuracy:.2f}% < "
                f"{min_train_accuracy:g}%); train longer or on fewer samples")
    if test_accuracy <= chance + 5.0:
        return (f"refusing: the original model is at chance on the test set ({test_accuracy:.2f}%, chance "
                f"{chance:.1f}%); it learned nothing, so there is nothing to compare")
    return None


def run_backend(name: str, model: torch.nn.Module, forget: LabeledData, config: SearchConfig,
                device: str) -> dict[str, Any]:
    backend: AttackBackend = BACKENDS[name]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        adv = nearest_adversarial(model, forget, backend, config, device=device, progress=bool(bars_allowed(True)))
        wall = time.perf_counter() - start
    summary = adv.summary()
    summary.update(
        label=name, backend_config=config_to_dict(backend.config), norm=backend.norm, wall_seconds=round(wall, 2),
        pgd50_runs=summary["mean_grad_evals"] / 50.0, warnings=[str(w.message) for w in caught],
    )
    return summary


def add_ratios(rows: list[dict[str, Any]], reference: str) -> None:
    """Each row's cost and distances relative to the ``reference`` row."""
    ref = next(r for r in rows if r["label"] == reference)
    for row in rows:
        row["ratios_vs_native"] = {
            key: (row[key] / ref[key] if ref[key] and row[key] is not None else None)
            for key in ("mean_grad_evals", "wall_seconds", "median_l2", "p90_l2")
        }


def finished_or_run(out: Path, name: str, info: dict[str, Any], run: Any) -> dict[str, Any]:
    """The row of backend ``name``: from ``out/rows/<name>.json`` when a run with the same setup
    finished it (a killed run restarted with the same command resumes), else ``run()``, saved."""
    path = out / "rows" / f"{name}.json"
    setup = {k: v for k, v in info.items() if k not in ("model",)}
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("setup") == json.loads(json.dumps(setup, default=str)):
            return dict(saved["row"])
    row = run()
    atomic_write_json(path, {"setup": setup, "row": row})
    return row


def environment(args: argparse.Namespace) -> dict[str, Any]:
    """Versions, CPU / GPU, threads and git commit of this run."""
    return bench_environment("local", args.device)


def markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    head = (f"# Nearest-adversarial search (Algorithm 1) by backend\n\n"
            f"Fashion-MNIST CNN, {info['train_size']} train samples, {info['epochs']} epochs: train acc "
            f"{info['train_accuracy']:.2f}%, test acc {info['test_accuracy']:.2f}%. {info['forget_size']} forget "
            f"samples drawn from {info['forget_from']} training samples ({100 * info['saturated_fraction']:.1f}% "
            f"with p_y == 1.0 in float32, median logit margin "
            f"{info.get('median_logit_margin', float('nan')):.1f}). eps_init "
            f"{info['eps_init']}, max {info['max_doublings']} doublings, 10 bisection steps.\n\n")
    cols = "| backend | norm | grad evals / sample | PGD-50 runs | wall s | median L2 | p90 L2 | failures | " \
           "max doublings | x grad evals | x wall | x median L2 |\n|" + "---|" * 12 + "\n"
    lines = []
    for r in rows:
        q = r["ratios_vs_native"]
        lines.append(
            f"| {r['label']} | {r['norm']} | {r['mean_grad_evals']:.1f} | {r['pgd50_runs']:.2f} | "
            f"{r['wall_seconds']:.1f} | {_fmt(r['median_l2'])} | {_fmt(r['p90_l2'])} | {r['failures']} | "
            f"{r['max_doublings_used']} | {_fmt(q['mean_grad_evals'])} | {_fmt(q['wall_seconds'])} | "
            f"{_fmt(q['median_l2'])} |"
        )
    return head + cols + "\n".join(lines) + (f"\n\nRatios (x) are against {info['reference']}. '_raw': the library's "
                                             "attack on the raw model (max_logit_spread None), as published.\n")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def describe(args: argparse.Namespace, model: torch.nn.Module, bundle: Any, forget: LabeledData,
             config: SearchConfig, train_info: dict[str, Any]) -> dict[str, Any]:
    """The setup of this run: recipe, the model's accuracies and saturation, the search's config."""
    info = {
        "train_size": args.train_size, "epochs": args.epochs, "lr": args.lr, "forget_size": len(forget),
        "seed": args.seed, "eps_init": config.eps_init if config.eps_init is not None else "auto",
        "max_doublings": args.max_doublings, "train_accuracy": accuracy(model, bundle.train, device=args.device),
        "test_accuracy": accuracy(model, bundle.test, device=args.device),
        "saturated_fraction": saturated_fraction(model, forget, args.device), "model": train_info,
        "median_logit_margin": float(logit_margins(model, forget, args.device).median()),
        "search_config": config_to_dict(config), "quick": args.quick, "forget_from": args.forget_from,
        "reference": args.reference,
    }
    return info


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--frontier" in argv:  # the side-by-side frontier comparison lives in its own script
        return _frontier_script().main([arg for arg in argv if arg != "--frontier"])
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = FashionMNISTSource({"root": args.data_root, "train_size": args.train_size, "seed": args.seed}).load()
    model, train_info = train_or_load(args, bundle.train)
    problem = memorisation_problem(accuracy(model, bundle.train, device=args.device),
                                   accuracy(model, bundle.test, device=args.device),
                                   bundle.train.num_classes, args.min_train_accuracy)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    pool = None
    if args.forget_from == "saturated":
        pool = saturated_mask(model, bundle.train, args.device).nonzero(as_tuple=True)[0]
    elif args.forget_from == "most_confident":
        pool = logit_margins(model, bundle.train, args.device).argsort(descending=True)[:args.forget_size]
    forget = forget_subset(bundle.train, args.forget_size, args.seed, pool)
    config = SearchConfig(eps_init=args.eps_init if args.eps_init > 0 else None, max_doublings=args.max_doublings,
                          batch_size=args.batch_size)
    info = describe(args, model, bundle, forget, config, train_info)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [finished_or_run(out, name, info, lambda n=name: run_backend(n, model, forget, config, args.device))
            for name in args.backends]
    add_ratios(rows, args.reference)
    atomic_write_json(out / "results.json", {"setup": info, "results": rows})
    atomic_write_json(out / "env.json", environment(args))
    table = markdown(rows, info)
    atomic_write_text(out / "results.md", table)
    print(table)
    print(f"wrote {out}/results.json, results.md, env.json")
    return 0


def _frontier_script() -> Any:
    """``benchmarks/adversarial_frontier.py``, loaded from beside this file."""
    spec = importlib.util.spec_from_file_location("adversarial_frontier", HERE / "adversarial_frontier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    raise SystemExit(main())
