"""What a suite run would do, without doing it (``amun bench --dry-run``): the jobs of each stage
and a rough time.

Counts are the suite's full grid (a resumed run or a warm cache skips some of them); a
forgetting_quality suite lists its 2N retrained models per split and its N unlearning runs per
cell. The time charges each job its SGD passes over its data (training: recipe epochs over the
train set; reference models: over half the population; unlearning: the method's ``epochs``, its
config's default when unset, over the train set, times DAU's game per step (its sensitivity draws
over forget and validation pairs); an adversarial set: 20 passes over the forget set) at a cost
per training sample, taken from (1) the original models of committed runs of the same dataset,
model, recipe and device on this kind of machine (benchmarks/results/*/ in a checkout: their
measured ``original.train_seconds``, stable whatever the machine is doing now), else (2) timed
here (:func:`~amun_plugin.training.estimate.seconds_per_sample`: the fastest of several repeats
with the suite's threads). The last line says which. Audits and data loading are not in it;
benchmarks/results/time_estimates compares the estimate with measured stage times.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from amun_plugin.bench.records import CONTROLS
from amun_plugin.bench.results import environment
from amun_plugin.bench.runner import check_components, original_seeds, suite_splits
from amun_plugin.bench.suite_config import AdversarialSource, SuiteConfig, SuiteKind
from amun_plugin.bench.tuning import grid_points, supported_settings
from amun_plugin.config import load_yaml, make_config
from amun_plugin.data.base import DatasetShape
from amun_plugin.device import resolve_device
from amun_plugin.errors import AmunError, DatasetNotFoundError
from amun_plugin.plugins import PluginHost
from amun_plugin.training.estimate import format_seconds, seconds_per_sample

__all__ = ["Stage", "PerSample", "plan_suite", "describe_plan", "recorded_per_sample", "per_sample_cost"]

ATTACK_PASSES = 20
"""SGD-equivalent passes over the forget set charged to one adversarial set."""
DEFAULT_UNLEARN_EPOCHS = 10
RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
"""Committed run folders of a checkout (absent in an installed wheel)."""


@dataclass(frozen=True)
class Stage:
    """One stage of a run: its name, its number of jobs and the training samples they process
    (epochs x samples, summed over the jobs); ``note`` details the jobs (e.g. the runs per cell)."""

    name: str
    jobs: int
    sample_passes: float
    note: str = ""


@dataclass(frozen=True)
class PerSample:
    """Seconds per training sample and where the figure comes from (one phrase)."""

    seconds: float
    source: str


def _method_passes(host: PluginHost, name: str, options: Mapping[str, Any], n_train: int) -> float:
    """Sample passes of one run of method ``name``: its epochs over the train set, times DAU's game."""
    config: Any
    try:
        config = make_config(host.unlearners.get(name).config_class, dict(options))
    except AmunError:
        config = None
    epochs = int(getattr(config, "epochs", options.get("epochs", DEFAULT_UNLEARN_EPOCHS)))
    pairs, draws, batch = (getattr(config, k, None) for k in ("pair_batch_size", "sensitivity_draws", "batch_size"))
    game = 2.0 * pairs * (1 + draws) / batch if pairs and draws is not None and batch else 0.0
    return epochs * n_train * (1.0 + game)


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
                tune_passes += count * _method_passes(host, method.name, {**method.options, **point}, n_train)
        method_modes = len(method.modes) if method.modes and config.kind is SuiteKind.TABLE else modes
        count = splits * method_modes * settings * len(grid.unlearn_seeds)
        cell_jobs += count
        cell_passes += count * _method_passes(host, method.name, method.options, n_train)
    if config.kind is SuiteKind.TABLE:
        cell_jobs += 2 * splits  # the retrained and original models' audits
    return tune_jobs, tune_passes, cell_jobs, cell_passes


def _forgetting_stages(config: SuiteConfig, host: PluginHost, n_train: int) -> list[Stage]:
    """A forgetting_quality suite's stages after the originals: per forget split 2N retrained models
    (N for the protocol, N for the "other seed" control), the adversarial sets, and the cells (the
    controls and every method in every setting), each method cell N unlearning runs."""
    grid, runs, epochs = config.grid, config.forgetting.runs, config.training.recipe.epochs
    fractions = [f for _v in grid.variants for _s in grid.original_seeds for f in grid.fractions
                 for _k in grid.forget_seeds]
    retrain_passes = sum(2 * runs * epochs * n_train * (1.0 - f) for f in fractions)
    adversarial = sum(1 for m in config.methods if m.adversarial is not AdversarialSource.NONE)
    cells = len(CONTROLS) * len(fractions)
    unlearn_runs, unlearn_passes = 0, 0.0
    for method in config.methods:
        requires_retain = host.unlearners.get(method.name).capabilities.requires_retain
        count = len(supported_settings(config, method, requires_retain)) * len(fractions)
        cells += count
        unlearn_runs += count * runs
        unlearn_passes += count * runs * _method_passes(host, method.name, method.options, n_train)
    return [Stage("retrained models", 2 * runs * len(fractions), retrain_passes, f"2 x {runs} per forget split"),
            Stage("adversarial sets", adversarial * len(fractions), adversarial * sum(f * n_train for f in fractions)
                  * ATTACK_PASSES),
            Stage("cells", cells, unlearn_passes, f"{unlearn_runs} unlearning runs, {runs} per method cell")]


def plan_suite(config: SuiteConfig, host: PluginHost, n_train: int, n_test: int) -> list[Stage]:
    """The stages of ``config`` on a dataset of ``n_train`` train and ``n_test`` test samples."""
    epochs = config.training.recipe.epochs
    originals = len(original_seeds(config))
    stages = [Stage("original models", originals, originals * epochs * n_train)]
    if any(e.name == "rmia" for e in config.evaluation.evaluators) and config.kind is not SuiteKind.ABLATION:
        k = int(config.evaluation.reference.get("num_models", 0))
        stages.append(Stage("RMIA reference models", k, k * epochs * (n_train + n_test) / 2))
    if config.kind is SuiteKind.FORGETTING_QUALITY:
        return stages + _forgetting_stages(config, host, n_train)
    if config.kind is SuiteKind.ABLATION:
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


def _same_setup(saved: Mapping[str, Any], config: SuiteConfig) -> bool:
    """Whether a committed run's config trained the same model on the same data and device."""
    mine = config.to_dict()
    keys = ("dataset", "model", "device")
    recipe = (saved.get("training") or {}).get("recipe")
    return all(saved.get(k) == mine.get(k) for k in keys) and recipe == mine["training"]["recipe"]


def _original_seconds(folder: Path) -> list[float]:
    """The measured training seconds of each standard original model a run folder records."""
    seconds: dict[tuple[Any, ...], float] = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        train = (record.get("original") or {}).get("train_seconds")
        if train and record.get("variant", "standard") == "standard":
            seconds[(record.get("original_seed"), train)] = float(train)
    return list(seconds.values())


def recorded_per_sample(config: SuiteConfig, n_train: int, results_dir: Path = RESULTS_DIR) -> PerSample | None:
    """The median cost per training sample of the original models that committed runs of the same
    setup trained on this kind of machine (same CPU model and core count), or None."""
    here = environment("local", config.device)
    found: dict[str, list[float]] = {}
    for folder in sorted(results_dir.glob("*/")) if results_dir.is_dir() else []:
        paths = [folder / name for name in ("config.yaml", "env.json", "results.jsonl")]
        if not all(p.is_file() for p in paths):
            continue
        env = json.loads(paths[1].read_text())
        if (env.get("cpu"), env.get("cpu_count"), env.get("gpu")) != (here["cpu"], here["cpu_count"], here["gpu"]):
            continue
        if _same_setup(load_yaml(paths[0]), config):
            found[folder.name] = _original_seconds(folder)
    seconds = [s for values in found.values() for s in values]
    if not seconds:
        return None
    per_sample = statistics.median(seconds) / (config.training.recipe.epochs * n_train)
    names = sorted(found)
    where = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return PerSample(per_sample, f"the median of {len(seconds)} original model(s) trained by committed runs of this "
                                 f"setup on this kind of machine: benchmarks/results/ {where}")


def per_sample_cost(config: SuiteConfig, host: PluginHost, shape: DatasetShape) -> PerSample:
    """The cost per training sample: from committed runs (:func:`recorded_per_sample`), else timed here
    (``AMUN_PLAN_MEASURE=1`` always times it)."""
    recorded = None if os.environ.get("AMUN_PLAN_MEASURE") else recorded_per_sample(config, shape.train)
    if recorded is not None:
        return recorded
    architecture = host.make_architecture(config.model.name, dict(config.model.options))
    seconds = seconds_per_sample(architecture, tuple(shape.input_shape), shape.num_classes,
                                 config.training.recipe.batch_size, device=config.device, threads=config.threads)
    return PerSample(seconds, f"timed here now, the fastest of several repeats with {config.threads} thread(s)")


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
    recipe = config.training.recipe
    cost = per_sample_cost(config, host, shape)
    stages = plan_suite(config, host, shape.train, shape.test)
    lines = [f"{config.name} ({config.preset}): {spec.name} {shape.train} train / {shape.test} test, "
             f"model {config.model.name}, {recipe.epochs} epochs, device {config.device}, {config.threads} thread(s)"]
    if missing is not None:
        lines.append(f"  data missing (a run would stop here): {missing}")
    for stage in stages:
        note = f" ({stage.note})" if stage.note else ""
        seconds = stage.sample_passes * cost.seconds
        lines.append(f"  {stage.name}: {stage.jobs} job(s){note}, ~{format_seconds(seconds)}")
    total = sum(s.sample_passes for s in stages) * cost.seconds
    jobs = sum(s.jobs for s in stages)
    lines.append(f"total: {jobs} job(s), roughly {format_seconds(total)} one after the other "
                 f"({cost.seconds * 1e3:.3f} ms per training sample, {cost.source}; cached or finished jobs are "
                 "skipped; audits and data loading come on top, and a busy machine slows the run)")
    return lines
