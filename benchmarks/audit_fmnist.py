"""Benchmark: the audit (RMIA with reference models, MIS, ART) of AMUN on a memorising Fashion-MNIST CNN.

Trains (or loads from ``--cache-dir``) the CNN of REFERENCE.md (10k train samples, 40 epochs, SGD, no
weight decay: train accuracy ~100%), a model retrained without a random 10% forget set, AMUN with and
without D_R, and a bank of ``--reference-models`` reference models on the population train ∪ test.
Then audits the four models with ``amun_plugin.audit_many`` (accuracy, RMIA online,
MIS, ART black-box and rule-based) plus RMIA offline with a tuned ``a``, and writes under ``--out``:

    results.json, results.md, env.json, and one report folder per model (metrics.json, report.md,
    confidence_histograms.png, roc_curves.png).

    python benchmarks/audit_fmnist.py            # the full run (an hour or more on 2 shared CPU cores)
    python benchmarks/audit_fmnist.py --quick    # a tiny smoke run (results under the cache dir)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from amun_plugin import audit_many, unlearn
from amun_plugin.data import FashionMNISTConfig, FashionMNISTSource, LabeledData, SplitConfig, make_split
from amun_plugin.evaluate import AuditData, RMIAEvaluator
from amun_plugin.harness import (
    DEFAULT_MIN_TRAIN_ACCURACY,
    ArtifactCache,
    atomic_write_json,
    atomic_write_text,
    build_reference_bank,
    check_memorises,
    concat_population,
    config_to_dict,
    content_hash,
    default_cache_dir,
    label_of,
    labelled_row,
    record_invocation,
    reference_train_seconds,
    run_script,
    weights_fingerprint,
)
from amun_plugin.models import CNN, CheckpointMetadata, accuracy, build_model, load_checkpoint
from amun_plugin.training import TrainConfig, train_model
from amun_plugin.unlearn import AmunConfig

HERE = Path(__file__).resolve().parent
EVALUATORS = ("accuracy", "rmia", "mis", "art_blackbox", "art_rule_based")
METRICS = ("accuracy.UA", "accuracy.RA", "accuracy.TA", "rmia.RT_AUC", "rmia.FT_AUC", "rmia.FR_AUC",
           "rmia.FT_TPR@1%FPR", "rmia.RT_TPR@1%FPR", "rmia_offline.FT_AUC", "mis.MIS", "art_blackbox.FT_AUC",
           "art_rule_based.FT_AUC")
COLUMNS = ("model", *map(label_of, METRICS), "Avg Gap", "seconds")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=FashionMNISTConfig().root)
    p.add_argument("--cache-dir", default=str(default_cache_dir()),
                   help="the package's artefact cache (models under audit_fmnist/, the RMIA bank under banks/)")
    p.add_argument("--out", default=None, help="default benchmarks/results/audit_fmnist (quick: under the cache)")
    p.add_argument("--train-size", type=int, default=10_000)
    p.add_argument("--test-size", type=int, default=None, help="test samples (default: all 10000)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--forget-fraction", type=float, default=0.1)
    p.add_argument("--reference-models", type=int, default=8)
    p.add_argument("--amun-epochs", type=int, default=10)
    p.add_argument("--amun-lr", type=float, default=AmunConfig.lr, help="AMUN's fine-tuning learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="600 train / 300 test samples, 3 epochs, 2 reference models "
                   "(a smoke run: the memorisation check is off, the chance check stays)")
    p.add_argument("--min-train-accuracy", type=float, default=DEFAULT_MIN_TRAIN_ACCURACY,
                   help="refuse an original model under this train accuracy (%%)")
    args = p.parse_args(argv)
    if args.quick:
        args.train_size, args.test_size, args.epochs, args.reference_models, args.amun_epochs = 600, 300, 3, 2, 1
    if args.out is None:
        args.out = str(Path(args.cache_dir) / "audit_fmnist" / "quick_results" if args.quick
                       else HERE / "results" / "audit_fmnist")
    return args


def cached_model(cache: ArtifactCache, spec: dict[str, Any], make: Callable[[], tuple[nn.Module, dict[str, Any]]],
                 meta: CheckpointMetadata, device: str) -> tuple[nn.Module, dict[str, Any]]:
    """The model of ``spec`` from the package's artefact cache (kind ``audit_fmnist``), else
    ``make()`` saved there with its info in the checkpoint's ``extra``."""
    key, created = content_hash({"script": "audit_fmnist", **spec}), cache.created["audit_fmnist"]

    def create() -> tuple[nn.Module, CheckpointMetadata]:
        model, info = make()
        return model, dataclasses.replace(meta, extra=info)

    model, info = cache.model("audit_fmnist", key, create,
                              lambda path: load_checkpoint(path, lambda m: CNN().build(m.num_classes, m.input_shape),
                                                           device=device)[0])
    return model.eval(), dict(info, cached=cache.created["audit_fmnist"] == created)


def train_fn(data: LabeledData, recipe: TrainConfig, seed: int, device: str, label: str) -> Callable[..., Any]:
    def make() -> tuple[nn.Module, dict[str, Any]]:
        model = build_model(CNN(), data.num_classes, data.input_shape, seed)
        stats = train_model(model, data, recipe, device=device, seed=seed, progress=label)
        return model, {"seconds": round(stats.seconds, 2), "final_loss": stats.final_loss}
    return make


def unlearn_fn(original: nn.Module, forget: LabeledData, retain: LabeledData | None, args: argparse.Namespace,
               ) -> Callable[..., Any]:
    def make() -> tuple[nn.Module, dict[str, Any]]:
        result = unlearn(original, forget, retain, method="amun", seed=args.seed, device=args.device,
                         progress=True, epochs=args.amun_epochs, lr=args.amun_lr)
        stats = {k: v for k, v in result.stats.items() if isinstance(v, (int, float, str, bool))}
        return result.model, {"seconds": round(float(result.stats["seconds_total"]), 2), "stats": stats}
    return make


def train_all(args: argparse.Namespace, bundle: Any, split: Any) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """Original, retrained, AMUN with / without D_R (all cached)."""
    cache = ArtifactCache(args.cache_dir)
    recipe = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, weight_decay=0.0)
    forget, retain = split.forget(bundle.train), split.retain(bundle.train)
    meta = CheckpointMetadata(architecture="cnn", architecture_config=config_to_dict(CNN().config),
                              num_classes=bundle.num_classes, input_shape=bundle.input_shape, dataset="fashion_mnist",
                              dataset_config={"train_size": args.train_size, "seed": args.seed},
                              recipe=config_to_dict(recipe))
    tag = (f"n{args.train_size}_t{args.test_size}_e{args.epochs}_lr{args.lr:g}_b{args.batch_size}_s{args.seed}"
           f"_f{args.forget_fraction:g}")
    models, info = {}, {}
    spec = {"tag": tag, "init": weights_fingerprint(build_model(CNN(), bundle.num_classes, bundle.input_shape,
                                                                args.seed))}
    models["original"], info["original"] = cached_model(
        cache, {**spec, "role": "original"}, train_fn(bundle.train, recipe, args.seed, args.device, "original"),
        meta, args.device)
    check_memorises(accuracy(models["original"], bundle.train, device=args.device),
                    accuracy(models["original"], bundle.test, device=args.device), bundle.num_classes,
                    min_train_accuracy=0.0 if args.quick else args.min_train_accuracy)
    models["retrain"], info["retrain"] = cached_model(
        cache, {**spec, "role": "retrain"}, train_fn(retain, recipe, args.seed, args.device, "retrain"),
        meta, args.device)
    for label, retain_set in (("amun_with_dr", retain), ("amun_without_dr", None)):
        models[label], info[label] = cached_model(
            cache, {**spec, "role": label, "amun_epochs": args.amun_epochs, "amun_lr": args.amun_lr},
            unlearn_fn(models["original"], forget, retain_set, args), meta, args.device)
    for label, model in models.items():
        info[label]["train_accuracy"] = accuracy(model, bundle.train, device=args.device)
    return models, {"recipe": config_to_dict(recipe), "tag": tag, "models": info}


def run_audit(args: argparse.Namespace, bundle: Any, split: Any, models: dict[str, nn.Module],
              bank: Any) -> dict[str, dict[str, Any]]:
    forget, retain = split.forget(bundle.train), split.retain(bundle.train)
    results = audit_many(models, retain, forget, bundle.test, EVALUATORS, retrained=models["retrain"],
                         original=models["original"], out_dir=args.out, reference_bank=bank,
                         mia_metric="rmia.FT_AUC", device=args.device, seed=args.seed)
    offline = RMIAEvaluator({"mode": "offline", "tune_a": args.reference_models >= 4}, bank=bank)
    data = AuditData(retain, forget, bundle.test)
    for label, model in models.items():
        start = time.perf_counter()
        metrics = offline.evaluate(model, data, device=args.device, seed=args.seed).metrics
        results[label]["metrics"].update({f"rmia_offline.{k}": v for k, v in metrics.items()})
        results[label]["seconds"]["rmia_offline"] = time.perf_counter() - start
    return results


def timing_summary(results: dict[str, dict[str, Any]], ref_seconds: list[float], bank_wall: float) -> dict[str, Any]:
    """Reference-model training time (from the bank) and each evaluator's time per model."""
    def mean(key: str) -> float:
        return sum(r["seconds"][key] for r in results.values()) / len(results)

    return {"reference_models_train_seconds": sum(ref_seconds), "reference_model_seconds": ref_seconds,
            "reference_model_mean_seconds": sum(ref_seconds) / len(ref_seconds), "bank_wall_seconds": bank_wall,
            "rmia_seconds": {k: r["seconds"]["rmia"] for k, r in results.items()},
            "rmia_seconds_mean": mean("rmia"), "rmia_offline_seconds_mean": mean("rmia_offline"),
            "evaluator_seconds": {k: r["seconds"] for k, r in results.items()}}


def markdown(rows: list[dict[str, Any]], setup: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in COLUMNS) + " |")
    t = setup["timing"]
    return (
        "# Audit of AMUN on a memorising Fashion-MNIST CNN\n\n"
        f"{setup['train_size']} train samples ({setup['forget_size']} forgotten at random), {setup['test_size']} test; "
        f"CNN, {setup['recipe']['epochs']} epochs, lr {setup['recipe']['lr']}, batch {setup['recipe']['batch_size']}, "
        f"no weight decay. AMUN: {setup['amun']['epochs']} epochs, lr {setup['amun']['lr']:g} (otherwise "
        "AmunConfig's defaults). RMIA online with "
        f"{setup['reference_models']} reference models on train ∪ test (T=2, m=0.6, order 4, gamma=2); offline with "
        f"a tuned on reference model 0. AUCs in %, equal-size subsamples, 3 seeds. TPR@1% = TPR (%) at 1% FPR. "
        "MIS = % of D_F the SVC calls non-member. Avg Gap over UA, RA, TA, RMIA FT AUC. seconds = the model's "
        "training / unlearning time.\n\n" + "\n".join(lines) + "\n\n"
        f"Reference models: {t['reference_models_train_seconds']:.0f} s of training in total "
        f"({t['reference_model_mean_seconds']:.0f} s each; bank wall time this run {t['bank_wall_seconds']:.0f} s). "
        f"RMIA run (online, one model, incl. population hashing and target predictions): "
        f"{t['rmia_seconds_mean']:.2f} s on average; offline with tuning: {t['rmia_offline_seconds_mean']:.2f} s.\n"
    )


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; an :class:`AmunError` (e.g. a model that does not memorise) is one line, exit 2."""
    return run_script(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    bundle = FashionMNISTSource({"root": args.data_root, "train_size": args.train_size, "test_size": args.test_size,
                                 "seed": args.seed}).load()
    split = make_split(bundle.train, SplitConfig(fraction=args.forget_fraction, seed=args.seed))
    models, setup = train_all(args, bundle, split)
    start = time.perf_counter()
    bank = build_reference_bank(Path(args.cache_dir) / "audit_fmnist" / f"bank_{setup['tag']}_k{args.reference_models}",
                                concat_population(bundle.train, bundle.test), CNN(),
                                TrainConfig(**setup["recipe"]), num_models=args.reference_models, seed=args.seed,
                                device=args.device)
    bank_wall = time.perf_counter() - start
    results = run_audit(args, bundle, split, models, bank)
    rows = [labelled_row(label, r["metrics"], {"Avg Gap": r.get("avg_gap"),
                                                "seconds": setup["models"][label]["seconds"]}, METRICS)
            for label, r in results.items()]
    setup.update(train_size=len(bundle.train), test_size=len(bundle.test), forget_size=len(split.forget_indices),
                 reference_models=args.reference_models, evaluators=list(EVALUATORS),
                 amun={"epochs": args.amun_epochs, "lr": args.amun_lr},
                 timing=timing_summary(results, reference_train_seconds(bank.directory), bank_wall))
    out = Path(args.out)
    atomic_write_json(out / "results.json", {"setup": setup, "rows": rows,
                                             "metrics": {k: r["metrics"] for k, r in results.items()}})
    record_invocation(out, "local", args.device, ["benchmarks/audit_fmnist.py", *sys.argv[1:]])
    table = markdown(rows, setup)
    atomic_write_text(out / "results.md", table)
    print(table)
    print(f"wrote {out}/results.json, results.md, env.json and one report folder per model")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
