"""Benchmark: what AMUN costs next to retraining, by search mode (issue 6), all from one run.

Setup (REFERENCE.md, "Measured on this kind of machine"): a Fashion-MNIST CNN trained on 10k
samples for 40 epochs without weight decay memorises (train accuracy ~100%); 1,000 of its training
samples are forgotten. The original model and the retrained one (same recipe on D_R) are cached
under ``--cache-dir``; the retraining is timed in this run unless ``--reuse-retrain-time``.

For the reference search (the paper's Algorithm 1 exactly) and every new mode, on the same model
and forget set: gradient evaluations per sample, search seconds, median / p90 / p99 L2, failures.
Then AMUN end to end (search + fine-tuning) in both settings (with / without D_R): seconds and
their ratio to the retraining time, and UA / RA / TA / forget-vs-test AUC next to the retrained
model's. Writes results.json, results.md and env.json under ``--out``.

    python benchmarks/amun_cost.py                 # the full run (background it: ~tens of minutes)
    python benchmarks/amun_cost.py --models-only   # train and cache the original / retrained models
    python benchmarks/amun_cost.py --quick         # a tiny smoke run (results under the cache dir)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from amun_plugin.config import config_to_dict
from amun_plugin.data.base import LabeledData
from amun_plugin.data.fashion_mnist import DEFAULT_ROOT, FashionMNISTSource
from amun_plugin.models import CNN, CheckpointMetadata, accuracy, build_model, load_checkpoint, save_checkpoint
from amun_plugin.training import Schedule, TrainConfig, train_model

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--data-root", default=DEFAULT_ROOT, help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--cache-dir", default=str(HERE / "cache" / "amun_cost"), help="trained-model cache")
    p.add_argument("--out", default=None, help="results directory (default benchmarks/results/amun_cost)")
    p.add_argument("--train-size", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate of the recipe (cosine schedule)")
    p.add_argument("--forget-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for everything timed")
    p.add_argument("--models-only", action="store_true", help="train / cache the two models and stop")
    p.add_argument("--reuse-retrain-time", action="store_true",
                   help="take the retraining time from the cache instead of retraining in this run")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 2000 train samples, 8 epochs, 100 forget")
    args = p.parse_args(argv)
    if args.quick:
        args.train_size, args.epochs, args.forget_size = 2000, 8, 100
    if args.out is None:
        args.out = str(Path(args.cache_dir) / "quick_results" if args.quick else HERE / "results" / "amun_cost")
    return args


def recipe(args: argparse.Namespace) -> TrainConfig:
    """The original model's recipe: SGD momentum 0.9, batch 128, cosine lr, no weight decay."""
    return TrainConfig(epochs=args.epochs, batch_size=128, lr=args.lr, weight_decay=0.0, schedule=Schedule.COSINE)


def forget_split(train: LabeledData, size: int, seed: int) -> tuple[LabeledData, LabeledData]:
    """(forget, retain): ``size`` training samples drawn with a seeded permutation, and the rest."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 1))
    return (train.subset(order[:size].sort().values, name="forget"),
            train.subset(order[size:].sort().values, name="retain"))


def train_or_load(args: argparse.Namespace, data: LabeledData, role: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train ``role`` ("original" on D, "retrain" on D_R) with the recipe, or load it from the cache."""
    architecture, config = CNN(), recipe(args)
    stem = f"cnn_fmnist_n{args.train_size}_e{args.epochs}_lr{args.lr:g}_s{args.seed}"
    if role != "original":
        stem += f"_{role}_f{args.forget_size}"
    path = Path(args.cache_dir) / f"{stem}.safetensors"
    if path.exists():
        model, meta = load_checkpoint(path, lambda m: build_model(architecture, m.num_classes, m.input_shape, 0))
        return model, dict(meta.extra, cached=True, checkpoint=str(path))
    model = build_model(architecture, data.num_classes, data.input_shape, seed=args.seed)
    load_before = os.getloadavg()
    stats = train_model(model, data, config, seed=args.seed, progress=f"train {role}")
    info = {"seconds": round(stats.seconds, 2), "final_loss": stats.final_loss, "samples": len(data),
            "threads": torch.get_num_threads(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    meta = CheckpointMetadata(
        architecture=architecture.name, architecture_config=config_to_dict(architecture.config),
        num_classes=data.num_classes, input_shape=data.input_shape, dataset="fashion_mnist",
        dataset_config={"train_size": args.train_size, "seed": args.seed, "role": role},
        recipe=config_to_dict(config), extra=info,
    )
    Path(args.cache_dir).mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model, meta)
    return model, dict(info, cached=False, checkpoint=str(path))


def load_everything(args: argparse.Namespace) -> dict[str, Any]:
    bundle = FashionMNISTSource({"root": args.data_root, "train_size": args.train_size, "seed": args.seed}).load()
    forget, retain = forget_split(bundle.train, args.forget_size, args.seed)
    original, original_info = train_or_load(args, bundle.train, "original")
    retrained, retrain_info = train_or_load(args, retain, "retrain")
    for name, model in (("original", original), ("retrain", retrained)):
        print(f"{name}: train acc {accuracy(model, bundle.train):.2f}%, forget {accuracy(model, forget):.2f}%, "
              f"test {accuracy(model, bundle.test):.2f}%", flush=True)
    return {"bundle": bundle, "forget": forget, "retain": retain, "original": original,
            "original_info": original_info, "retrained": retrained, "retrain_info": retrain_info}


def environment(notes: dict[str, Any]) -> dict[str, Any]:
    def run(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=HERE).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    cpu = next((line.split(":", 1)[1].strip() for line in run(["lscpu"]).splitlines()
                if line.startswith("Model name")), platform.processor() or "unknown")
    commit = run(["git", "rev-parse", "HEAD"])
    return {
        "python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
        "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": "cpu",
        "git_commit": commit, "git_dirty": bool(run(["git", "status", "--porcelain"])) if commit != "unknown" else None,
        **notes,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    setup = load_everything(args)
    if args.models_only:
        return 0
    raise SystemExit("not finished")


if __name__ == "__main__":
    raise SystemExit(main())
