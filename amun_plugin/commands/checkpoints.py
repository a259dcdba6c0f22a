"""What ``amun train`` and ``amun unlearn`` do (the CLI only parses and prints): make checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from amun_plugin.api import load_model
from amun_plugin.bench.original_check import CHANCE_MARGIN, DEFAULT_MIN_TRAIN_ACCURACY, NotMemorisingError
from amun_plugin.bench.suite_config import load_preset
from amun_plugin.config import make_config
from amun_plugin.data.base import DatasetBundle, load_npz_pair
from amun_plugin.data.splits import SplitConfig, make_split
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.audit import audit_many
from amun_plugin.evaluate.labels import label_of, labelled_row
from amun_plugin.evaluate.markdown import markdown_table
from amun_plugin.models.checkpoint import CheckpointMetadata, has_metadata, save_checkpoint
from amun_plugin.models.inference import accuracy
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.training import TrainConfig, checkpoint_metadata, train_classifier
from amun_plugin.training.estimate import seconds_per_sample, training_estimate
from amun_plugin.unlearn.base import Unlearner
from amun_plugin.unlearn.job import HeldOut, UnlearnJob, hold_out

__all__ = ["FORGET_SET_OPTIONS", "PlainModel", "TrainSpec", "UNLEARN_EVALUATORS", "UnlearnCommand", "train_command",
           "unlearn_command"]

FORGET_SET_OPTIONS = "--forget-fraction F, --forget-indices I,J,... (or a file of them) or --forget-classes C,..."
"""The options that name a forget set; one of them is required (there is no silent default)."""

UNLEARN_EVALUATORS = ("accuracy", "confidence_mia")
"""The evaluators of the before / after table ``amun unlearn`` prints (cheap ones)."""

Echo = Callable[[str], Any]


@dataclass(frozen=True)
class TrainSpec:
    """What ``amun train`` trains: a dataset, an architecture and a recipe (each name with options;
    None: the preset's, else digits / mlp / the TrainConfig defaults). ``preset`` names a shared
    suite preset (``presets.yaml``, e.g. fmnist-cnn) whose dataset, model, recipe and device are
    the base the other fields override key by key."""

    dataset: str | None = None
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    architecture: str | None = None
    model_options: Mapping[str, Any] = field(default_factory=dict)
    recipe_options: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None
    device: str | None = None

    def resolved(self) -> tuple[str, dict[str, Any], str, dict[str, Any], dict[str, Any], str]:
        """(dataset, its options, architecture, its options, recipe options, device)."""
        base = load_preset(self.preset) if self.preset else {}
        data, model = base.get("dataset") or {}, base.get("model") or {}
        # the preset's options only go with the preset's own dataset / model
        data_options = (data.get("options") or {}) if self.dataset in (None, data.get("name")) else {}
        model_options = (model.get("options") or {}) if self.architecture in (None, model.get("name")) else {}
        return (self.dataset or data.get("name") or "digits", {**data_options, **self.dataset_options},
                self.architecture or model.get("name") or "mlp", {**model_options, **self.model_options},
                {**((base.get("training") or {}).get("recipe") or {}), **self.recipe_options},
                self.device or base.get("device") or "cpu")


def train_command(*, spec: TrainSpec, seed: int, split: SplitConfig | None, out: str, echo: Echo,
                  without_forget: bool = False, host: PluginHost | None = None) -> Path:
    """Train on the dataset's train set (or, ``without_forget``, on the retain part of ``split``)
    and save. Prints the SGD steps and a rough time first; refuses (saves nothing) a model at
    chance on the test set, and warns when it does not memorise its training set."""
    dataset, dataset_options, architecture, model_options, recipe_options, device = spec.resolved()
    if without_forget and split is None:
        raise InvalidInputError(f"--without-forget needs the forget set: give {FORGET_SET_OPTIONS}")
    host = host or get_plugin_manager()
    bundle = host.load_dataset(dataset, dataset_options)
    arch = host.make_architecture(architecture, model_options)
    recipe = make_config(TrainConfig, recipe_options)
    data, extra = bundle.train, {}
    if without_forget and split is not None:
        chosen = make_split(bundle.train, split)
        data = chosen.retain(bundle.train)
        extra = {"trained_without_forget": chosen.to_dict()}
    per_sample = seconds_per_sample(arch, bundle.input_shape, bundle.num_classes, recipe.batch_size, device=device)
    estimate = training_estimate(len(data), recipe.epochs, recipe.batch_size, per_sample)
    echo(f"training {architecture} on {len(data)} {bundle.name} images, {recipe.epochs} epochs: {estimate.describe()}")
    model = train_classifier(arch, data, recipe, seed=seed, device=device, progress="train")
    train_acc, test_acc = accuracy(model, data, device=device), accuracy(model, bundle.test, device=device)
    _check_learnt(train_acc, test_acc, bundle.num_classes, echo)
    metadata = checkpoint_metadata(arch, bundle, dataset_options, recipe, seed, extra)
    path = save_checkpoint(out, model, metadata)
    echo(f"train accuracy {train_acc:.2f}%, test accuracy {test_acc:.2f}%; saved {path}")
    return path


def _check_learnt(train_acc: float, test_acc: float, num_classes: int, echo: Echo) -> None:
    """Refuse a model at chance on the test set; warn about one that does not memorise (%)."""
    chance = 100.0 / num_classes
    if test_acc <= chance + CHANCE_MARGIN:
        raise NotMemorisingError(
            f"the trained model is at chance (train accuracy {train_acc:.1f}%, test accuracy {test_acc:.1f}%, chance "
            f"{chance:.1f}%); nothing was saved. Try a preset's recipe (--preset fmnist-cnn) or a lower learning "
            "rate (--recipe-option lr=0.01)")
    if train_acc < DEFAULT_MIN_TRAIN_ACCURACY:
        echo(f"warning: the model does not memorise its training set (train accuracy {train_acc:.1f}% < "
             f"{DEFAULT_MIN_TRAIN_ACCURACY:g}%): membership-inference audits of unlearning will measure little; "
             "train longer (--recipe-option epochs=N) or use a preset (--preset fmnist-cnn)")


@dataclass(frozen=True)
class UnlearnCommand:
    """What ``amun unlearn`` was asked (click builds it): the checkpoint and its data (``plain``
    for a plain state dict, ``dataset_options``), the forget ``split``, the method with its
    ``options``, the setting (``use_retain``), how much of the test split is held out
    (``validation_size``; ``holdout_size`` None: :func:`~amun_plugin.unlearn.job.default_holdout_size`;
    or ``holdout_file``, a .npz of x, y), where the result goes (``out``, ``force`` to replace a
    file) and how it runs."""

    checkpoint: str
    out: str
    split: SplitConfig | None
    method: str = "amun"
    options: Mapping[str, Any] = field(default_factory=dict)
    use_retain: bool = True
    validation_size: int = 0
    holdout_size: int | None = None
    holdout_file: str | None = None
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    plain: PlainModel | None = None
    seed: int = 0
    device: str = "cpu"
    force: bool = False


def unlearn_command(command: UnlearnCommand, echo: Echo, host: PluginHost | None = None) -> Path:
    """Unlearn a split of the checkpoint's training data; save the new model; print a table.

    The job is an :class:`~amun_plugin.unlearn.job.UnlearnJob`, as the API runs it. A method whose
    config is a training recipe (``retrain``) defaults to the checkpoint's own recipe. The validation
    set and the calibration's holdout are carved from the test split (:func:`hold_out`); the
    checkpoint records their test indices, and the before / after table (like ``amun audit`` later)
    scores only the rest of the test split. A plain state dict (a safetensors file without
    amun_plugin metadata) needs ``plain``: its architecture and dataset.
    """
    c = command
    _check_out(c.checkpoint, c.out, c.force)
    host = host or get_plugin_manager()
    unlearner = host.unlearners.get(c.method)(c.options)  # method and options: before any work
    unlearner.validate(host)  # the attack backend too
    model, metadata, bundle = _load(host, c.checkpoint, c.device, c.dataset_options, c.plain)
    if c.split is None:
        raise InvalidInputError(f"name the forget set: give {FORGET_SET_OPTIONS}")
    chosen = make_split(bundle.train, c.split)
    forget, retain = chosen.forget(bundle.train), chosen.retain(bundle.train)
    held = _held_out(c, unlearner, bundle)
    job = UnlearnJob(method=c.method, forget=forget, retain=retain if c.use_retain else None,
                     options={**_recipe_defaults(host, c.method, metadata), **c.options}, holdout=held.holdout,
                     validation=held.validation, device=c.device, seed=c.seed, progress=True)
    result = job.run(model, host)
    if "auto" in result.stats:  # method="auto": which candidate won, and why
        echo(f"auto chose {result.stats['auto']['chosen']}: {result.stats['auto']['why']}")
    if "calibrated_lr" in result.stats and job.holdout is not None:
        echo(f"calibrated on {len(job.holdout)} held-out samples: lr {result.stats['calibrated_lr']:.4g} at step "
             f"{result.stats['calibrated_step']}, estimated gap {result.stats['calibration_estimated_gap']:.2f}")
    results = audit_many({"before": model, "after": result.model}, retain, forget, held.audited, UNLEARN_EVALUATORS,
                         plugins=host, device=c.device, seed=c.seed)
    shown = ("accuracy.UA", "accuracy.RA", "accuracy.TA", "confidence_mia.FT_AUC")
    rows = [labelled_row(name, r["metrics"], keys=shown) for name, r in results.items()]
    echo(markdown_table(rows, ["model", *map(label_of, shown)]))
    echo(f"audited on {len(held.audited)} test samples" + (
        f" ({', '.join(f'{len(v)} held out as {k}' for k, v in held.indices.items())}; `amun audit` leaves them "
        "out too)" if held.indices else ""))
    extra = {**metadata.extra, "unlearned": {"method": c.method, "config": result.config,
                                             "split": chosen.to_dict(), "with_retain": c.use_retain,
                                             "held_out_test_indices": dict(held.indices),
                                             "seconds": result.stats["seconds_total"]}}
    path = save_checkpoint(c.out, result.model, dataclasses.replace(metadata, extra=extra))
    echo(f"{c.method}: {result.stats['seconds_total']:.1f} s; saved {path}")
    return path


def _check_out(checkpoint: str, out: str, force: bool) -> None:
    """The input checkpoint is never overwritten; another existing file only with ``force``."""
    target = Path(out) if Path(out).suffix else Path(out).with_suffix(".safetensors")
    if target.resolve() == Path(checkpoint).resolve() or Path(out).resolve() == Path(checkpoint).resolve():
        raise InvalidInputError("--out must differ from the input checkpoint: the original is never overwritten")
    if target.exists() and not force:
        raise InvalidInputError(f"{target} exists; pass --force to replace it (its file mode is kept)")


@dataclass(frozen=True)
class PlainModel:
    """What a plain state dict does not record: the registered ``architecture`` (with
    ``architecture_options``) it was made with and the registered ``dataset`` it was trained on
    (its options are the command's ``--dataset-option``)."""

    architecture: str | None = None
    architecture_options: Mapping[str, Any] = field(default_factory=dict)
    dataset: str | None = None


def _load(host: PluginHost, checkpoint: str, device: str, dataset_options: Mapping[str, Any] | None,
          plain: PlainModel | None) -> tuple[nn.Module, CheckpointMetadata, DatasetBundle]:
    """(model, metadata, dataset) of an amun_plugin checkpoint, or of a plain state dict with ``plain``."""
    given = plain is not None and (plain.architecture is not None or plain.dataset is not None)
    if has_metadata(checkpoint):
        if given:
            raise InvalidInputError(f"{checkpoint} records its own architecture and dataset: --model and --dataset "
                                    "are for a plain state dict")
        model, metadata = host.load_model(checkpoint, device=device)
        if metadata.dataset is None:
            raise InvalidInputError(f"{checkpoint} does not record its dataset; train it with `amun train`")
        return model, metadata, host.load_checkpoint_dataset(metadata, dataset_options)
    if plain is None or plain.architecture is None or plain.dataset is None:
        raise InvalidInputError(f"{checkpoint} is a plain state dict (no amun_plugin metadata): name its "
                                "architecture and data with --model NAME [--model-option k=v] --dataset NAME "
                                "[--dataset-option k=v]")
    options = dict(dataset_options or {})
    bundle = host.load_dataset(plain.dataset, options)
    model, _ = load_model(checkpoint, architecture=plain.architecture,
                          architecture_options=plain.architecture_options, num_classes=bundle.num_classes,
                          input_shape=bundle.input_shape, device=device, plugins=host)
    metadata = CheckpointMetadata(architecture=plain.architecture,
                                  architecture_config=dict(plain.architecture_options),
                                  num_classes=bundle.num_classes, input_shape=bundle.input_shape,
                                  classes=bundle.classes, dataset=bundle.name, dataset_config=options)
    return model, metadata, bundle


def _recipe_defaults(host: PluginHost, method: str, metadata: CheckpointMetadata) -> dict[str, Any]:
    """The checkpoint's training recipe, for methods whose config is a TrainConfig (retrain)."""
    config_class = host.unlearners.get(method).config_class
    if not (isinstance(config_class, type) and issubclass(config_class, TrainConfig)):
        return {}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in metadata.recipe.items() if k in names}


def _held_out(command: UnlearnCommand, unlearner: Unlearner, bundle: DatasetBundle) -> HeldOut:
    """The test split shared between the job and the audit (:func:`hold_out`), or, with
    ``holdout_file``, the file's samples as the holdout and the test split less the validation set."""
    c = command
    if c.holdout_file is None:
        return hold_out(bundle.test, unlearner, holdout_size=c.holdout_size, validation_size=c.validation_size,
                        seed=c.seed)
    if c.holdout_size:
        raise InvalidInputError("give either --holdout-file or --holdout-size, not both")
    held = hold_out(bundle.test, unlearner, holdout_size=0, validation_size=c.validation_size, seed=c.seed)
    return dataclasses.replace(held, holdout=load_npz_pair(c.holdout_file, bundle.num_classes, "holdout"))
