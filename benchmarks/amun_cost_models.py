"""The models of ``benchmarks/amun_cost.py``: the training recipe, the forget / retain split, and the
original and retrained models, trained once (timed) and kept in the package's artefact cache (kind
``amun_cost``), with the data and the original model of a run (``load_setup``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch

from amun_plugin.data import FashionMNISTSource, LabeledData
from amun_plugin.harness import ArtifactCache, config_to_dict, content_hash, weights_fingerprint
from amun_plugin.models import CNN, CheckpointMetadata, build_model, load_checkpoint
from amun_plugin.training import Schedule, TrainConfig, train_model

KIND, KIND_PHASES = "amun_cost", "amun_cost-phases"  # artefact-cache kinds: models, finished phases


def recipe(args: argparse.Namespace) -> TrainConfig:
    """The original model's recipe: SGD momentum 0.9, batch 128, cosine lr, no weight decay."""
    return TrainConfig(epochs=args.epochs, batch_size=128, lr=args.lr, weight_decay=0.0, schedule=Schedule.COSINE)


def forget_split(train: LabeledData, size: int, seed: int) -> tuple[LabeledData, LabeledData]:
    """(forget, retain): ``size`` training samples drawn with a seeded permutation, and the rest."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 1))
    return (train.subset(order[:size].sort().values, name="forget"),
            train.subset(order[size:].sort().values, name="retain"))


def model_key(args: argparse.Namespace, data: LabeledData, role: str) -> str:
    """Cache key of ``role``'s model: the recipe, the data, the seeded initial weights and, for
    the retrained model, the forget set's size."""
    init = weights_fingerprint(build_model(CNN(), data.num_classes, data.input_shape, seed=args.seed))
    spec = {"script": KIND, "role": role, "train_size": args.train_size, "seed": args.seed, "init": init,
            "recipe": config_to_dict(recipe(args)), "forget_size": None if role == "original" else args.forget_size}
    return content_hash(spec)


def train_or_load(
    args: argparse.Namespace, cache: ArtifactCache, data: LabeledData, role: str, *, force: bool = False
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train ``role`` ("original" on D, "retrain" on D_R) with the recipe (timed), or load it from
    the cache. ``force`` trains even when cached (to time it in this run) and then checks that the
    new model is bit-identical to the cached one (the training is deterministic)."""
    architecture, config, key = CNN(), recipe(args), model_key(args, data, role)

    def load(path: Path) -> torch.nn.Module:
        return load_checkpoint(path, lambda m: build_model(architecture, m.num_classes, m.input_shape, 0))[0]

    def train() -> tuple[torch.nn.Module, dict[str, Any]]:
        model = build_model(architecture, data.num_classes, data.input_shape, seed=args.seed)
        load_before = _load()
        stats = train_model(model, data, config, seed=args.seed, progress=f"train {role}")
        return model, {
            "seconds": round(stats.seconds, 2), "final_loss": stats.final_loss, "samples": len(data),
            "train_accuracy_last_epoch": stats.train_accuracy_per_epoch[-1], "threads": torch.get_num_threads(),
            "loadavg_before": load_before, "loadavg_after": _load()}

    path = cache.path(KIND, key, ".safetensors")
    if cache.has(KIND, key, ".safetensors"):
        cached = load(path)
        if not force:
            return cached, dict(cache.model_info(KIND, key), cached=True, checkpoint=str(path))
        model, info = train()
        same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), cached.state_dict().values()))
        return model, dict(info, cached=False, identical_to_cache=same, checkpoint=str(path))

    def create() -> tuple[torch.nn.Module, CheckpointMetadata]:
        model, info = train()
        return model, CheckpointMetadata(
            architecture=architecture.name, architecture_config=config_to_dict(architecture.config),
            num_classes=data.num_classes, input_shape=data.input_shape, dataset="fashion_mnist",
            dataset_config={"train_size": args.train_size, "seed": args.seed, "role": role},
            recipe=config_to_dict(config), extra=info)

    model, info = cache.model(KIND, key, create, load)
    return model, dict(info, cached=False, checkpoint=str(path))


def load_setup(args: argparse.Namespace) -> dict[str, Any]:
    """Data, the forget / retain split and the original (memorising) model."""
    bundle = FashionMNISTSource({"root": args.data_root, "train_size": args.train_size, "seed": args.seed}).load()
    forget, retain = forget_split(bundle.train, args.forget_size, args.seed)
    original, original_info = train_or_load(args, ArtifactCache(args.cache_dir), bundle.train, "original")
    original_key = model_key(args, bundle.train, "original")
    return {"bundle": bundle, "forget": forget, "retain": retain, "original": original,
            "original_info": original_info, "original_key": original_key}


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]
