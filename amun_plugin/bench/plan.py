"""What a suite run would do, without doing it (``amun bench --dry-run``): the jobs of each stage
and a rough time, from a few SGD steps of the suite's model timed on this machine.

Counts are the suite's full grid (a resumed run or a warm cache skips some of them). The time is
an order of magnitude (:mod:`amun_plugin.training.estimate`): each job is charged its SGD passes
over its data at the measured seconds per sample (training: recipe epochs over the train set; reference models:
over half the population; unlearning: the method's ``epochs`` option, 10 when unset, over the
train set; an adversarial set: 20 passes over the forget set); audits and data loading are not in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from amun_plugin.bench.runner import check_components, original_seeds, suite_splits
from amun_plugin.bench.suite_config import AdversarialSource, SuiteConfig, SuiteKind
from amun_plugin.bench.tuning import grid_points, supported_settings
from amun_plugin.data.base import DatasetShape
from amun_plugin.device import resolve_device
from amun_plugin.errors import DatasetNotFoundError
from amun_plugin.plugins import PluginHost
from amun_plugin.training.estimate import format_seconds, seconds_per_sample

__all__ = ["Stage", "plan_suite", "describe_plan"]

ATTACK_PASSES = 20
"""SGD-equivalent passes over the forget set charged to one adversarial set."""
DEFAULT_UNLEARN_EPOCHS = 10


@dataclass(frozen=True)
class Stage:
    """One stage of a run: its name, its number of jobs and the training samples they process
    (epochs x samples, summed over the jobs)."""

    name: str
    jobs: int
    sample_passes: float


def _epochs(options: Mapping[str, Any]) -> int:
    return int(options.get("epochs", DEFAULT_UNLEARN_EPOCHS))


def _unlearn_passes(config: SuiteConfig, host: PluginHost, n_train: int) -> tuple[int, float, int, float]:
    """(tuning cells, their sample passes, unlearning cells, their passes) of a table / continuous suite."""
    grid = config.grid
    splits = len(grid.variants) * len(grid.original_seeds) * len(grid.fractions) * len(grid.forget_seeds)
    tuned = config.tuning.enabled and config.kind is SuiteKind.TABLE
    modes = len(config.tuning.modes) if config.kind is SuiteKind.TABLE else 1
    tune_jobs = cell_jobs = 0
    tune_passes = cell_passes = 0.0
    for method in config.methods:
        requires_retain = host.unlearners.get(method.name).capabilities.requires_retain
        settings = len(supported_settings(config, method, requires_retain))
        if tuned and method.grid:
            for point in grid_points(method):
                count = settings * len(grid.fractions) * len(grid.variants)
                tune_jobs += count
                tune_passes += count * _epochs({**method.options, **point}) * n_train
        method_modes = len(method.modes) if method.modes and config.kind is SuiteKind.TABLE else modes
        count = splits * method_modes * settings * len(grid.unlearn_seeds)
        cell_jobs += count
        cell_passes += count * _epochs(method.options) * n_train
    if config.kind is SuiteKind.TABLE:
        cell_jobs += 2 * splits  # the retrained and original models' audits
    return tune_jobs, tune_passes, cell_jobs, cell_passes


def plan_suite(config: SuiteConfig, host: PluginHost, n_train: int, n_test: int) -> list[Stage]:
    """The stages of ``config`` on a dataset of ``n_train`` train and ``n_test`` test samples."""
    epochs = config.training.recipe.epochs
    originals = len(original_seeds(config))
    stages = [Stage("original models", originals, originals * epochs * n_train)]
    if any(e.name == "rmia" for e in config.evaluation.evaluators) and config.kind is not SuiteKind.ABLATION:
        k = int(config.evaluation.reference.get("num_models", 0))
        stages.append(Stage("RMIA reference models", k, k * epochs * (n_train + n_test) / 2))
    if config.kind in (SuiteKind.ABLATION, SuiteKind.FORGETTING_QUALITY):
        return stages
    tuned = config.tuning.enabled and any(m.grid for m in config.methods) and config.kind is SuiteKind.TABLE
    splits = suite_splits(config, tuned)
    stages.append(Stage("retrained models", len(splits),
                        sum(epochs * n_train * (1.0 - float(ref.fraction or 0.0)) for _, _, ref in splits)))
    adversarial = sum(1 for m in config.methods if m.adversarial is not AdversarialSource.NONE)
    forget = sum(float(ref.fraction or 0.0) * n_train for _, _, ref in splits)
    stages.append(Stage("adversarial sets", adversarial * len(splits), adversarial * forget * ATTACK_PASSES))
    tune_jobs, tune_passes, cell_jobs, cell_passes = _unlearn_passes(config, host, n_train)
    if tune_jobs:
        stages.append(Stage("tuning cells", tune_jobs, tune_passes))
    stages.append(Stage("cells", cell_jobs, cell_passes))
    return stages


def _dataset_shape(config: SuiteConfig, host: PluginHost) -> tuple[DatasetShape, str | None]:
    """The suite's dataset shape, and why its files are missing (None: loaded). A source that knows
    its shape without its files (``expected_shape()``, e.g. CIFAR) plans without them."""
    spec = config.dataset
    try:
        return host.load_dataset(spec.name, dict(spec.options)).shape, None
    except DatasetNotFoundError as exc:
        source = host.datasets.get(spec.name)(dict(spec.options))
        if not hasattr(source, "expected_shape"):
            raise
        return source.expected_shape(), str(exc)


def describe_plan(config: SuiteConfig, host: PluginHost) -> list[str]:
    """The lines ``amun bench --dry-run`` prints: one per stage, the total and how it was estimated.
    Checks the device and every component option first; loads the suite's dataset (missing data
    is one line of the plan where the dataset knows its shape, else the error)."""
    resolve_device(config.device)
    check_components(config, host)
    spec = config.dataset
    shape, missing = _dataset_shape(config, host)
    architecture = host.make_architecture(config.model.name, dict(config.model.options))
    recipe = config.training.recipe
    per_sample = seconds_per_sample(architecture, tuple(shape.input_shape), shape.num_classes,
                                    recipe.batch_size, device=config.device)
    stages = plan_suite(config, host, shape.train, shape.test)
    lines = [f"{config.name} ({config.preset}): {spec.name} {shape.train} train / {shape.test} test, "
             f"model {config.model.name}, {recipe.epochs} epochs, device {config.device}, {config.threads} thread(s)"]
    if missing is not None:
        lines.append(f"  data missing (a run would stop here): {missing}")
    for stage in stages:
        lines.append(f"  {stage.name}: {stage.jobs} job(s), ~{format_seconds(stage.sample_passes * per_sample)}")
    total = sum(s.sample_passes for s in stages) * per_sample
    jobs = sum(s.jobs for s in stages)
    lines.append(f"total: {jobs} job(s), roughly {format_seconds(total)} one after the other "
                 f"({per_sample * 1e3:.3f} ms per training sample measured here; cached or finished jobs are "
                 "skipped; an order of magnitude: audits, data loading and a busy machine come on top)")
    return lines
