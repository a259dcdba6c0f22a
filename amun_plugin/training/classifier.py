"""A classifier trained from scratch, and the checkpoint header that lets it be rebuilt."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from amun_plugin.config import config_to_dict
from amun_plugin.data.base import DatasetBundle, LabeledData
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.checkpoint import CheckpointMetadata
from amun_plugin.training.loop import TrainConfig
from amun_plugin.training.robust import train_original

__all__ = ["checkpoint_metadata", "train_classifier"]


def train_classifier(
    architecture: ModelArchitecture,
    data: LabeledData,
    recipe: TrainConfig,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | str = False,
) -> nn.Module:
    """A freshly initialised model (seeded) trained on ``data`` with ``recipe``; eval mode
    (:func:`~amun_plugin.training.robust.train_original` with the standard variant)."""
    model, _ = train_original(architecture, data, recipe, seed=seed, device=device, progress=progress)
    return model


def checkpoint_metadata(
    architecture: ModelArchitecture, bundle: DatasetBundle, dataset_options: Mapping[str, Any],
    recipe: TrainConfig, seed: int, extra: Mapping[str, Any] | None = None,
) -> CheckpointMetadata:
    """Metadata that lets ``PluginHost.load_model`` rebuild the model and the CLI reload its data."""
    return CheckpointMetadata(
        architecture=architecture.name, architecture_config=config_to_dict(architecture.config),
        num_classes=bundle.num_classes, input_shape=bundle.input_shape, classes=bundle.classes,
        dataset=bundle.name, dataset_config=dict(dataset_options),
        recipe={**config_to_dict(recipe), "seed": seed}, extra=dict(extra or {}),
    )
