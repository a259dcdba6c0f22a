"""What the CLI commands do, as plain functions (the CLI only parses and prints)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from amun_plugin.api import unlearn
from amun_plugin.config import make_config
from amun_plugin.data.base import LabeledData, as_labeled_data
from amun_plugin.data.splits import SplitConfig, make_split, split_off
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.tables import markdown_table
from amun_plugin.models.checkpoint import CheckpointMetadata, save_checkpoint
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.training import TrainConfig
from amun_plugin.unlearn.amun import Amun
from amun_plugin.workflow import (
    audit_models,
    checkpoint_metadata,
    load_checkpoint_dataset,
    load_dataset,
    load_model,
    make_architecture,
    train_classifier,
)

__all__ = ["plugins_listing", "train_command", "unlearn_command"]

Echo = Callable[[str], Any]


def train_command(*, dataset: str, dataset_options: Mapping[str, Any], architecture: str,
                  model_options: Mapping[str, Any], recipe_options: Mapping[str, Any], seed: int,
                  device: str, split: SplitConfig | None, out: str, echo: Echo) -> Path:
    """Train on the dataset's train set (or on its retain part when ``split`` is given) and save."""
    host = get_plugin_manager()
    bundle = load_dataset(host, dataset, dataset_options)
    arch = make_architecture(host, architecture, model_options)
    recipe = make_config(TrainConfig, recipe_options)
    data, extra = bundle.train, {}
    if split is not None:
        chosen = make_split(bundle.train, split)
        data = chosen.retain(bundle.train)
        extra = {"trained_without_forget": chosen.to_dict()}
    model = train_classifier(arch, data, recipe, seed=seed, device=device, progress="train")
    metadata = checkpoint_metadata(arch, bundle, dataset_options, recipe, seed, extra)
    path = save_checkpoint(out, model, metadata)
    from amun_plugin.models.inference import accuracy

    echo(f"train accuracy {accuracy(model, data, device=device):.2f}%, "
         f"test accuracy {accuracy(model, bundle.test, device=device):.2f}%; saved {path}")
    return path


def unlearn_command(*, checkpoint: str, method: str, options: Mapping[str, Any], split: SplitConfig,
                    use_retain: bool, seed: int, device: str, out: str, echo: Echo,
                    validation_size: int = 0, holdout_size: int | None = None,
                    holdout_file: str | None = None, dataset_options: Mapping[str, Any] | None = None) -> Path:
    """Unlearn a split of the checkpoint's training data; save the new model; print a table.

    A method whose config is a training recipe (``retrain``) defaults to the checkpoint's own
    recipe. ``validation_size`` > 0 holds out that many class-stratified test samples as the
    validation set (non-members) for methods that need one (DAU); they leave the audited test set.
    Held-out data for AMUN's calibration comes from ``holdout_file`` (.npz: x, y) or is
    ``holdout_size`` class-stratified test samples (default: 20% of the test split for the AMUN
    family, none otherwise); held-out test samples leave the audited test set too.
    """
    if Path(out).resolve() == Path(checkpoint).resolve():
        raise InvalidInputError("--out must differ from the input checkpoint: the original is never overwritten")
    host = get_plugin_manager()
    host.unlearners.get(method)(options).validate(host)  # method, options, attack backend: before any work
    model, metadata = load_model(checkpoint, host, device=device)
    if metadata.dataset is None:
        raise InvalidInputError(f"{checkpoint} does not record its dataset; train it with `amun train`")
    bundle = load_checkpoint_dataset(host, metadata, dataset_options, echo=echo)
    chosen = make_split(bundle.train, split)
    forget, retain = chosen.forget(bundle.train), chosen.retain(bundle.train)
    test, validation = _hold_out_validation(bundle.test, validation_size, seed)
    test, holdout = _held_out_for_calibration(host, method, test, holdout_size, holdout_file, bundle.num_classes, seed)
    result = unlearn(model, forget, retain if use_retain else None, method=method, plugins=host,
                     validation=validation, holdout=holdout, device=device, seed=seed, progress=True,
                     **_recipe_defaults(host, method, metadata), **options)
    if "calibrated_lr" in result.stats:
        echo(f"calibrated on {len(holdout)} held-out samples: lr {result.stats['calibrated_lr']:.4g} at step "
             f"{result.stats['calibrated_step']}, estimated gap {result.stats['calibration_estimated_gap']:.2f}")
    results = audit_models({"before": model, "after": result.model},
                           AuditData(retain, forget, test), plugins=host, device=device, seed=seed)
    rows = [{"model": name, **r.metrics} for name, r in results.items()]
    echo(markdown_table(rows, ("model", "UA", "RA", "TA", "FT_AUC")))
    extra = {**metadata.extra, "unlearned": {"method": method, "config": result.config,
                                             "split": chosen.to_dict(), "with_retain": use_retain,
                                             "seconds": result.stats["seconds_total"]}}
    path = save_checkpoint(out, result.model, dataclasses.replace(metadata, extra=extra))
    echo(f"{method}: {result.stats['seconds_total']:.1f} s; saved {path}")
    return path


def _recipe_defaults(host: Any, method: str, metadata: CheckpointMetadata) -> dict[str, Any]:
    """The checkpoint's training recipe, for methods whose config is a TrainConfig (retrain)."""
    config_class = host.unlearners.get(method).config_class
    if not (isinstance(config_class, type) and issubclass(config_class, TrainConfig)):
        return {}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in metadata.recipe.items() if k in names}


def _hold_out_validation(test: LabeledData, size: int, seed: int) -> tuple[LabeledData, LabeledData | None]:
    if size <= 0:
        return test, None
    if size >= len(test):
        raise InvalidInputError(f"--validation-size {size} must be smaller than the test set ({len(test)})")
    return split_off(test, size, seed, "validation")


def _held_out_for_calibration(host: Any, method: str, test: LabeledData, size: int | None, path: str | None,
                              num_classes: int, seed: int) -> tuple[LabeledData, LabeledData | None]:
    """(audited test set, held-out data for AMUN's calibration or None); see unlearn_command."""
    if path is not None:
        if size:
            raise InvalidInputError("give either --holdout-file or --holdout-size, not both")
        try:
            with np.load(path, allow_pickle=False) as arrays:
                x, y = arrays["x"], arrays["y"]
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"--holdout-file {path}: expected a .npz with arrays x and y ({exc})") from exc
        return test, as_labeled_data((x, y), num_classes, name="holdout")
    if size is None:
        size = len(test) // 5 if issubclass(host.unlearners.get(method), Amun) else 0
    if size < 0:
        raise InvalidInputError(f"--holdout-size must be >= 0, got {size}")
    if size == 0:
        return test, None
    if size >= len(test):
        raise InvalidInputError(f"--holdout-size {size} must be smaller than the test set left ({len(test)})")
    return split_off(test, size, seed, "holdout")


def plugins_listing(host: Any = None) -> dict[str, Any]:
    """Every registered component by kind (name, package, plugin, description) and load errors,
    of ``host`` (a PluginHost; default: a fresh one from :func:`get_plugin_manager`)."""
    host = host if host is not None else get_plugin_manager()
    components = {
        kind: [{"name": r.name, "package": r.package, "plugin": r.plugin,
                "description": getattr(r.component, "description", "")} for r in entries]
        for kind, entries in host.all_registrations().items()
    }
    errors = [{"plugin": e.plugin, "error": e.error} for e in host.load_errors]
    return {"components": components, "errors": errors}


