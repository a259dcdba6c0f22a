"""``run_suite``: a suite's grid, resumable, on any :class:`~amun_plugin.executors.Executor`.

Stages (each a batch of executor jobs, each skipping what is already done), after the RMIA
reference bank (its models are jobs too), for one forget fraction after the other:
  1. models — original models (per training variant and seed) and retrained models (per forget
     split), cached by content hash;
  2. adversarial sets — D_A of every split for the methods that use one, shared by all of them;
  3. tuning — every grid point on the tuning split (``tuning.jsonl``), choice per tuning mode
     (``tuning.json``: by Avg Gap to the retrained model, and/or retrain-free, ``bench/tuning.py``);
  4. cells — every result of the grid (``results.jsonl``: one JSON line per finished cell);
  5. report — ``table.md`` and PNG plots from every record so far (``bench/run_report.py``).
A run killed at any point resumes from its folder: finished cells are read back, cached
artefacts reused, and every cell depends only on its coordinates and the cache (seeded), so the
numbers are identical to an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from amun_plugin.artifacts import CACHE_VERSION, ArtifactCache, default_cache_dir
from amun_plugin.bench.ablation import ablation_method
from amun_plugin.bench.cells import resolve_split, resolved_hash
from amun_plugin.bench.chains import retrained_requests
from amun_plugin.bench.forgetting_stages import forgetting_stages
from amun_plugin.bench.jobs import AdversarialJob, CellJob, Job, ModelJob
from amun_plugin.bench.original_check import check_memorises
from amun_plugin.bench.records import Cell, CellKind, Setting, SplitRef
from amun_plugin.bench.results import (
    Invocation,
    ResultLog,
    check_run_folder,
    record_invocation,
    run_lock,
    write_config,
)
from amun_plugin.bench.run_report import _folder_view, render_folder, write_report
from amun_plugin.bench.suite_config import AdversarialSource, MethodSpec, SuiteConfig, SuiteKind
from amun_plugin.bench.suite_specs import SETTINGS
from amun_plugin.bench.tuning import choose, grid_points, resolved_options, supported_settings, tuning_cells
from amun_plugin.bench.workspace import Workspace
from amun_plugin.device import resolve_device
from amun_plugin.errors import AmunError, InvalidInputError
from amun_plugin.executors import Executor, LocalExecutor, ProcessExecutor, Resources
from amun_plugin.io import atomic_write_json
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.progress import progress_bar
from amun_plugin.registry import Components

__all__ = ["check_components", "default_output", "original_seeds", "render_folder", "run_suite", "suite_splits",
           "write_report"]

Echo = Callable[[str], Any]
_log = logging.getLogger(__name__)


def default_output(config: SuiteConfig) -> Path:
    """``amun-bench/<suite>-<preset>`` under the current directory: never the committed results
    (``benchmarks/results`` is written only when named with ``--output``)."""
    return Path("amun-bench") / f"{config.name}-{config.preset or 'custom'}"


class _Run:
    """The state of one ``run_suite`` call."""

    def __init__(self, config: SuiteConfig, folder: Path, executor: Executor, cache_dir: Path, progress: bool,
                 echo: Echo, invocation: Invocation) -> None:
        self.invocation = invocation
        self.config, self.folder, self.executor, self.echo, self.progress = config, folder, executor, echo, progress
        self.cache_dir = str(cache_dir.resolve())
        torch.set_num_threads(max(1, int(config.threads)))  # also for jobs run in this process
        inner = progress and isinstance(executor, LocalExecutor)
        self.ws = Workspace(config, ArtifactCache(self.cache_dir), progress=inner)
        self.inner = inner
        self.choices: dict[tuple[str, Any], dict[str, Any]] = {}  # (mode, Choice) -> choice
        gpus = 1.0 if config.device.startswith("cuda") else 0.0
        self.resources = Resources(cpus=float(max(1, config.threads)), gpus=gpus)
        self.settings_of = {m.label: supported_settings(config, m, self.ws.plugins.unlearners.get(m.name)
                                                        .capabilities.requires_retain) for m in config.methods}

    def jobs(self, jobs: Sequence[Job], desc: str, on_result: Callable[[int, Any], None] | None = None) -> list:
        """Run ``jobs`` on the executor with a progress bar (a terminal) or a line when the stage
        starts and one when it ends (a log)."""
        if not jobs:
            self.echo(f"{desc}: nothing to run (finished or cached)")
            return []
        self.echo(f"{desc}: {len(jobs)} job(s) to run")
        bar = progress_bar(self.progress, len(jobs), desc, unit="job")

        def done(index: int, result: Any) -> None:
            if on_result is not None:
                on_result(index, result)
            if bar is not None:
                bar.update(1)

        try:
            return self.executor.run(list(jobs), self.resources, on_result=done)
        finally:
            if bar is not None:
                bar.close()

    def cells(self, cells: Sequence[Cell], log: ResultLog, desc: str) -> list[dict[str, Any]]:
        """Compute the cells not yet in ``log``, appending each record as it finishes; returns
        the records of ``cells`` (not those of cells the suite no longer has)."""
        unique = list({c.id: c for c in cells}.values())
        todo = [c for c in unique if c.id not in log]
        if len(todo) < len(unique):
            self.echo(f"{desc}: {len(unique) - len(todo)} finished cell(s) reused, {len(todo)} to compute")
        jobs = [CellJob(self.config, self.cache_dir, self.inner, cell) for cell in todo]
        self.jobs(jobs, desc, on_result=lambda _i, record: log.append(self.invocation.stamp(record)))
        return [log.records[c.id] for c in unique]

    def resolve(self, name: str, options: Any, calibrated: bool = False, membership: str = "confidence") -> str:
        return resolved_hash(self.ws, name, options, calibrated, membership)

    def calibrates(self, method: MethodSpec, setting: str) -> bool:
        """Whether ``method`` calibrates itself on held-out data in ``setting`` (its declared
        capability, unless its options switch the calibration off, e.g. AMUN's ``calibration: null``,
        which makes it grid-selected by the retrain-free rule like every baseline)."""
        return self.ws.plugins.unlearners.get(method.name)(method.options_in(setting)).calibrates_with(holdout=True)

    def job(self, kind: type[Job], **fields: Any) -> Job:
        return kind(self.config, self.cache_dir, self.inner, **fields)


def suite_splits(config: SuiteConfig, tuned: bool) -> list[tuple[str, int, SplitRef]]:
    """(variant, original seed, random split) of every retrained model / D_A a table suite needs."""
    grid, out = config.grid, []
    for variant in grid.variants:
        for seed in grid.original_seeds:
            for fraction in grid.fractions:
                out += [(variant.value, seed, SplitRef.random(fraction, f)) for f in grid.forget_seeds]
        if tuned:
            out += [(variant.value, grid.original_seeds[0], SplitRef.random(fr, config.tuning.forget_seed))
                    for fr in grid.fractions]
    return out


def original_seeds(config: SuiteConfig) -> list[tuple[str, int]]:
    """(variant, seed) of every original model the suite uses (transfer sources included)."""
    transfer = any(m.adversarial is AdversarialSource.TRANSFER for m in config.methods)
    offsets = [0, config.transfer_seed_offset] if transfer else [0]
    return [(v.value, s + o) for v in config.grid.variants for s in config.grid.original_seeds for o in offsets]


def _original_jobs(run: _Run) -> list[Job]:
    return _missing(run.ws, [run.job(ModelJob, seed=s, variant=v) for v, s in original_seeds(run.config)])


def check_components(config: SuiteConfig, plugins: Components) -> None:
    """Build every component ``config`` names with every option set it will pass (each method in
    each setting and grid point, its attack backend, the ablation's method, the evaluators, the
    dataset and model configs), so a misspelt option is one error before any job or folder."""
    def build(registry: Any, name: str, options: Any, what: str) -> Any:
        try:
            return registry.get(name)(dict(options))
        except AmunError as exc:
            raise InvalidInputError(f"suite {config.name!r}, {what}: {exc}") from None

    specs = [*config.methods, *([ablation_method(config)] if config.kind is SuiteKind.ABLATION else [])]
    for method, options in [(m, {**m.options_in(s), **p}) for m in specs for s in SETTINGS for p in grid_points(m)]:
        unlearner = build(plugins.unlearners, method.name, options, f"method {method.label!r}")
        attack = getattr(unlearner.config, "attack", None)
        if isinstance(attack, str):
            build(plugins.attacks, attack, getattr(unlearner.config, "attack_options", {}),
                  f"method {method.label!r}, attack {attack!r}")
    for evaluator in config.evaluation.evaluators:
        build(plugins.evaluators, evaluator.name, evaluator.options, f"evaluator {evaluator.name!r}")
    build(plugins.datasets, config.dataset.name, config.dataset.options, f"dataset {config.dataset.name!r}")
    build(plugins.models, config.model.name, config.model.options, f"model {config.model.name!r}")


def check_originals(ws: Workspace) -> None:
    """Refuse (:class:`~amun_plugin.bench.original_check.NotMemorisingError`) when an original
    model of the suite does not memorise or sits at chance; the models are trained (or cached)."""
    for variant, seed in original_seeds(ws.config):
        _, info = ws.original(seed, variant)
        check_memorises(float(info["train_accuracy"]), float(info["test_accuracy"]), ws.bundle.num_classes,
                        min_train_accuracy=ws.config.min_train_accuracy,
                        what=f"the original model (seed {seed}, {variant} training)")


def _model_jobs(run: _Run, tuned: bool) -> list[Job]:
    config, ws = run.config, run.ws
    grid = config.grid
    jobs = [run.job(ModelJob, seed=s, variant=v) for v, s in original_seeds(config)]
    if config.kind is SuiteKind.ABLATION:
        return _missing(ws, jobs)
    splits = suite_splits(config, tuned)
    if config.kind is SuiteKind.CONTINUOUS:
        splits = [(v.value, s, SplitRef.continuous(f, r)) for v in grid.variants for s in grid.original_seeds
                  for f in grid.forget_seeds for r in retrained_requests(ws)]
    jobs += [run.job(ModelJob, seed=s, variant=v, split=ref) for v, s, ref in splits]
    return _missing(ws, jobs)


def _missing(ws: Workspace, jobs: list[Job]) -> list[Job]:
    """The model jobs whose model is not cached yet (each once)."""
    out = []
    for job in jobs:
        assert isinstance(job, ModelJob)
        split = None if job.split is None else resolve_split(ws, job.split)
        key = ws.model_key("original" if split is None else "retrain", job.seed, job.variant, split)
        if not ws.cache.has("models", key, ".safetensors"):
            out.append(job)
    return list({repr((j.seed, j.variant, j.split)): j for j in out}.values())  # type: ignore[attr-defined]


def _adversarial_jobs(run: _Run, tuned: bool) -> list[Job]:
    """One job per distinct D_A (split x attack settings) the suite's methods use."""
    config = run.config
    if config.kind is SuiteKind.CONTINUOUS:
        return []  # the continuous session computes its own, on the original or the current model
    if config.kind is SuiteKind.ABLATION:
        specs = [ablation_method(config)]
    else:
        specs = [m for m in config.methods if m.adversarial is not AdversarialSource.NONE]
    jobs: dict[str, Job] = {}
    for spec in specs:
        for variant, seed, ref in suite_splits(config, tuned):
            source = seed if spec.adversarial is AdversarialSource.OWN else seed + config.transfer_seed_offset
            split = resolve_split(run.ws, ref)
            key = run.ws.adversarial_key(run.ws.model_key("original", source, variant), split, spec)
            if key not in jobs and not run.ws.cache.has("adversarial", key, ".safetensors"):
                jobs[key] = run.job(AdversarialJob, method=spec, variant=variant, original_seed=seed, split=ref)
    return list(jobs.values())


def _main_cells(run: _Run, choices: dict[str, dict]) -> list[Cell]:
    grid, cells = run.config.grid, []
    for variant in (v.value for v in grid.variants):
        for seed in grid.original_seeds:
            for fraction in grid.fractions:
                for forget in grid.forget_seeds:
                    cells += _cells_of_split(run, choices, variant, seed, fraction, forget)
    return cells


def _cells_of_split(run: _Run, choices: dict[str, dict], variant: str, seed: int, fraction: float,
                    forget: int) -> list[Cell]:
    config, cells = run.config, []
    if config.kind is SuiteKind.ABLATION:
        spec = config.ablation
        resolved = run.resolve(spec.method, spec.options)
        return [Cell(CellKind.ABLATION, spec.method, variant, seed, fraction, forget, Setting.WITH_RETAIN, u,
                     dict(spec.options), {"variant": x, "union": union}, resolved)
                for u in config.grid.unlearn_seeds for x in spec.variants for union in spec.unions]
    kind = CellKind.CHAIN if config.kind is SuiteKind.CONTINUOUS else CellKind.UNLEARN
    if kind is CellKind.UNLEARN:
        cells += [Cell(CellKind.RETRAIN, "Retrain", variant, seed, fraction, forget),
                  Cell(CellKind.ORIGINAL, "Original", variant, seed, fraction, forget)]
    elif retrained_requests(run.ws):
        cells.append(Cell(CellKind.CHAIN, "Retrain", variant, seed, fraction, forget))
    modes = config.tuning.modes if kind is CellKind.UNLEARN else ("oracle",)
    for mode in modes:
        extra = {} if mode == "oracle" else {"tuning_mode": mode}
        for method in config.methods:
            if method.modes and kind is CellKind.UNLEARN and mode not in method.modes:
                continue
            for setting in run.settings_of[method.label]:
                calibrated = mode == "retrain_free" and run.calibrates(method, setting)
                options = (method.options_in(setting) if calibrated
                           else resolved_options(config, method, choices.get(mode, {}), variant, fraction, setting))
                calibrated = calibrated or (kind is CellKind.CHAIN and method.holdout)
                resolved = run.resolve(method.name, options, calibrated, method.membership)
                cells += [Cell(kind, method.label, variant, seed, fraction, forget, Setting(setting), u, options,
                               extra, resolved) for u in config.grid.unlearn_seeds]
    return cells


def run_suite(config: SuiteConfig, output: str | Path | None = None, *, executor: Executor | None = None,
              cache_dir: str | Path | None = None, progress: bool = True, echo: Echo | None = None,
              plugins: PluginHost | None = None) -> Path:
    """Run (or resume) ``config`` into ``output`` (default :func:`default_output`)
    with ``executor`` (default local); artefacts are cached in ``cache_dir`` (default
    :func:`~amun_plugin.artifacts.default_cache_dir`). What it reports goes to ``echo`` (default:
    this module's logger, at INFO). ``plugins``: the plugin host of the caller (default: a new one);
    jobs in other processes build their own. Returns the run folder."""
    echo = echo or _log.info
    folder = Path(output) if output is not None else default_output(config)
    executor = executor or LocalExecutor()
    if isinstance(executor, (LocalExecutor, ProcessExecutor)):  # this machine (Ray workers check their own)
        resolve_device(config.device)  # e.g. a cuda suite without a GPU: one error before any folder or job
    check_components(config, plugins or get_plugin_manager())
    check_run_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with run_lock(folder):
        return _run_in(folder, config, executor, Path(cache_dir) if cache_dir else default_cache_dir(), progress, echo)


def _run_in(folder: Path, config: SuiteConfig, executor: Executor, cache_dir: Path, progress: bool, echo: Echo) -> Path:
    """:func:`run_suite` in a checked, locked ``folder``."""
    write_config(folder, config.to_dict())
    invocation = record_invocation(folder, executor.name, config.device)
    run = _Run(config, folder, executor, cache_dir, progress, echo, invocation)
    _check_artefacts(folder, {"cache_version": CACHE_VERSION,
                              "init_fingerprint": run.ws.init_fingerprint(config.grid.original_seeds[0])})
    run.jobs(_original_jobs(run), "original models")
    check_originals(run.ws)
    if config.kind is not SuiteKind.ABLATION:  # ablation cells report accuracies only
        run.ws.bank(executor, run.resources)
    records: list[dict[str, Any]] = []
    for fraction in config.grid.fractions:  # one fraction at a time: its tables are complete early
        run.config = dataclasses.replace(config, grid=dataclasses.replace(config.grid, fractions=(fraction,)))
        records += _stages(run)
        write_report(*_folder_view(folder, config, records), folder)
    run.config = config
    echo(f"results in {folder}: table.md, results.jsonl, config.yaml, env.json")
    return folder


def _stages(run: _Run) -> list[dict[str, Any]]:
    """Models, adversarial sets, tuning and cells of ``run.config``; returns their records."""
    config, folder = run.config, run.folder
    if config.kind is SuiteKind.FORGETTING_QUALITY:
        return forgetting_stages(run)
    tuned = config.tuning.enabled and any(m.grid for m in config.methods) and config.kind is SuiteKind.TABLE
    run.jobs(_model_jobs(run, tuned), "models")
    run.jobs(_adversarial_jobs(run, tuned), "adversarial sets")
    choices: dict[str, dict] = {}
    if tuned:
        tuning_log = ResultLog(folder / "tuning.jsonl")
        tuning = run.cells(tuning_cells(config, run.settings_of, run.resolve), tuning_log, "tuning")
        for mode in config.tuning.modes:
            choices[mode] = choose(config, tuning, mode)
            run.choices.update({(mode, k): v for k, v in choices[mode].items()})
        _write_choices(folder / "tuning.json", run.choices)
    return run.cells(_main_cells(run, choices), ResultLog(folder / "results.jsonl"), "cells")


def _write_choices(path: Path, choices: dict[tuple[str, Any], dict[str, Any]]) -> None:
    """Write ``tuning.json``: this invocation's choices, plus those earlier invocations made for
    methods, fractions or settings it did not run (a ``--methods`` subset keeps the others')."""
    def place(entry: dict[str, Any]) -> tuple:
        return entry["mode"], entry["variant"], entry["fraction"], entry["setting"], entry["method"]

    current = [{"mode": m, "variant": k[0], "fraction": k[1], "setting": k[2], "method": k[3], **v}
               for (m, k), v in choices.items()]
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    merged = {place(e): e for e in [*earlier, *current]}
    atomic_write_json(path, [merged[k] for k in sorted(merged)])


def _check_artefacts(folder: Path, identity: dict[str, Any]) -> None:
    """Refuse to resume results computed with other model code (``artefacts.json``)."""
    path = folder / "artefacts.json"
    if path.exists() and json.loads(path.read_text(encoding="utf-8")) != identity:
        raise InvalidInputError(
            f"the results in {folder} were computed with other model code or cache version "
            f"({path} differs: {identity}); use another --output folder, or delete this one to start afresh")
    atomic_write_json(path, identity)
