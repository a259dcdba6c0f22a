"""Steps shared by the demo, the CLI and the benchmark runner: load data and architectures by
name, train a classifier, load a checkpoint through the model registry, audit several models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from amun_plugin.config import config_to_dict
from amun_plugin.data.base import DatasetBundle, LabeledData
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.checkpoint import CheckpointMetadata, load_checkpoint
from amun_plugin.models.inference import build_model
from amun_plugin.plugins import PluginHost
from amun_plugin.training import TrainConfig, train_model

__all__ = [
    "audit_models",
    "load_checkpoint_dataset",
    "load_dataset",
    "load_model",
    "make_architecture",
    "train_classifier",
    "DEFAULT_EVALUATORS",
]

DEFAULT_EVALUATORS: tuple[str, ...] = ("accuracy", "confidence_mia")


def load_dataset(plugins: PluginHost, name: str, options: Mapping[str, Any] | None = None) -> DatasetBundle:
    """The registered dataset ``name`` loaded with ``options`` (its config fields)."""
    return plugins.datasets.get(name)(dict(options or {})).load()


def load_checkpoint_dataset(
    plugins: PluginHost, metadata: CheckpointMetadata, options: Mapping[str, Any] | None = None,
    echo: Callable[[str], Any] | None = None,
) -> DatasetBundle:
    """The dataset a checkpoint was trained on. The header is untrusted: it names the dataset, and
    of its options only the dataset's ``header_options`` (sizes, seeds: which samples) are used;
    everything else — a ``root`` folder, ``download`` — comes from ``options`` (the user's command
    line) or the dataset's defaults. Ignored header options are named through ``echo``."""
    if metadata.dataset is None:
        raise InvalidInputError("the checkpoint does not record its dataset; train it with `amun train`")
    source = plugins.datasets.get(metadata.dataset)
    header = dict(metadata.dataset_config)
    allowed = set(getattr(source, "header_options", ()))
    ignored = sorted(k for k in header if k not in allowed and k not in (options or {}))
    if ignored and echo is not None:
        echo(f"note: ignoring the checkpoint's dataset option(s) {', '.join(ignored)} (a header never sets paths "
             "or downloads); pass --dataset-option key=value to set them")
    chosen = {k: v for k, v in header.items() if k in allowed}
    return source({**chosen, **dict(options or {})}).load()


def make_architecture(plugins: PluginHost, name: str, options: Mapping[str, Any] | None = None) -> ModelArchitecture:
    """The registered architecture ``name`` configured with ``options``."""
    return plugins.models.get(name)(dict(options or {}))


def train_classifier(
    architecture: ModelArchitecture,
    data: LabeledData,
    recipe: TrainConfig,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | str = False,
) -> nn.Module:
    """A freshly initialised model (seeded) trained on ``data`` with ``recipe``; eval mode."""
    model = build_model(architecture, data.num_classes, data.input_shape, seed)
    train_model(model, data, recipe, device=device, seed=seed, progress=progress)
    return model.eval()


def checkpoint_metadata(
    architecture: ModelArchitecture, bundle: DatasetBundle, dataset_options: Mapping[str, Any],
    recipe: TrainConfig, seed: int, extra: Mapping[str, Any] | None = None,
) -> CheckpointMetadata:
    """Metadata that lets ``load_model`` rebuild the model and the CLI reload its data."""
    return CheckpointMetadata(
        architecture=architecture.name, architecture_config=config_to_dict(architecture.config),
        num_classes=bundle.num_classes, input_shape=bundle.input_shape, classes=bundle.classes,
        dataset=bundle.name, dataset_config=dict(dataset_options),
        recipe={**config_to_dict(recipe), "seed": seed}, extra=dict(extra or {}),
    )


def load_model(
    path: str | Path, plugins: PluginHost, device: str | torch.device = "cpu"
) -> tuple[nn.Module, CheckpointMetadata]:
    """Load a safetensors checkpoint, rebuilding its architecture through the model registry."""

    def build(metadata: CheckpointMetadata) -> nn.Module:
        architecture = make_architecture(plugins, metadata.architecture, metadata.architecture_config)
        return architecture.build(metadata.num_classes, metadata.input_shape)

    model, metadata = load_checkpoint(path, build, device=device)
    return model.eval(), metadata


def audit_models(
    models: Mapping[str, nn.Module],
    data: AuditData,
    *,
    plugins: PluginHost,
    evaluators: Sequence[str | Evaluator] = DEFAULT_EVALUATORS,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, EvaluationResult]:
    """Run every evaluator (a registered name or an instance) on every model; the metrics of all
    evaluators are merged per model (two evaluators reporting the same metric name is an error;
    ``amun_plugin.audit`` namespaces them instead). Scores are kept from the first evaluator
    that reports a set."""
    instances = [plugins.evaluators.get(e)() if isinstance(e, str) else e for e in evaluators]
    results: dict[str, EvaluationResult] = {}
    for model_name, model in models.items():
        merged = EvaluationResult({}, {})
        for evaluator in instances:
            result = evaluator.evaluate(model, data, device=device, seed=seed)
            clash = sorted(set(result.metrics) & set(merged.metrics))
            if clash:
                raise InvalidInputError(f"evaluator {evaluator.name!r} reports {clash} again; use amun_plugin.audit")
            merged.metrics.update(result.metrics)
            for set_name, scores in result.scores.items():
                merged.scores.setdefault(set_name, scores)
        results[model_name] = merged
    return results
