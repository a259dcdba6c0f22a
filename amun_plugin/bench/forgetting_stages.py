"""The stages of a ``forgetting_quality`` suite run (see ``forgetting_suite``): the models and
adversarial sets its cells need, then the cells (the controls, and every method in every setting
of every forget split)."""

from __future__ import annotations

from typing import Any

from amun_plugin.bench.forgetting_suite import retrain_seeds
from amun_plugin.bench.jobs import AdversarialJob, ModelJob
from amun_plugin.bench.records import CONTROLS, Cell, CellKind, SplitRef
from amun_plugin.bench.results import ResultLog
from amun_plugin.bench.suite_config import AdversarialSource, SuiteConfig

__all__ = ["forgetting_cells", "forgetting_stages"]


def _split_refs(config: SuiteConfig) -> list[tuple[str, int, float, int]]:
    grid = config.grid
    return [(v.value, s, f, k) for v in grid.variants for s in grid.original_seeds for f in grid.fractions
            for k in grid.forget_seeds]


def _model_jobs(run: Any) -> list[Any]:
    """Original and retrained models (both seed ranges) not cached yet."""
    config, ws, jobs = run.config, run.ws, []
    for variant, seed, fraction, forget in _split_refs(config):
        if not ws.cache.has("models", ws.model_key("original", seed, variant), ".safetensors"):
            jobs.append(run.job(ModelJob, seed=seed, variant=variant))
        split = ws.split(fraction, forget)
        for s in retrain_seeds(config) + retrain_seeds(config, control=True):
            if not ws.cache.has("models", ws.model_key("retrain", s, variant, split), ".safetensors"):
                jobs.append(run.job(ModelJob, seed=s, variant=variant, split=SplitRef.random(fraction, forget)))
    return list({repr((j.seed, j.variant, j.split)): j for j in jobs}.values())


def _adversarial_jobs(run: Any) -> list[Any]:
    config, ws, jobs = run.config, run.ws, {}
    for spec in (m for m in config.methods if m.adversarial is not AdversarialSource.NONE):
        for variant, seed, fraction, forget in _split_refs(config):
            source = seed if spec.adversarial is AdversarialSource.OWN else seed + config.transfer_seed_offset
            key = ws.adversarial_key(ws.model_key("original", source, variant), ws.split(fraction, forget), spec)
            if key not in jobs and not ws.cache.has("adversarial", key, ".safetensors"):
                jobs[key] = run.job(AdversarialJob, method=spec, variant=variant, original_seed=seed,
                                    split=SplitRef.random(fraction, forget))
    return list(jobs.values())


def forgetting_cells(run: Any) -> list[Cell]:
    """The controls and every (method, setting) of every split."""
    cells = []
    for variant, seed, fraction, forget in _split_refs(run.config):
        cells += [Cell(CellKind.FORGETTING, label, variant, seed, fraction, forget) for label in CONTROLS]
        for method in run.config.methods:
            for setting in run.settings_of[method.label]:
                options = method.options_in(setting)
                cells.append(Cell(CellKind.FORGETTING, method.label, variant, seed, fraction, forget, setting,
                                  options=options, resolved=run.resolve(
                                      method.name, options, method.label in run.config.forgetting.holdout_methods)))
    return cells


def forgetting_stages(run: Any) -> list[dict[str, Any]]:
    """Models, adversarial sets and cells of ``run.config`` (see the module docstring)."""
    run.jobs(_model_jobs(run), "models")
    run.jobs(_adversarial_jobs(run), "adversarial sets")
    return run.cells(forgetting_cells(run), ResultLog(run.folder / "results.jsonl"), "forgetting cells")
