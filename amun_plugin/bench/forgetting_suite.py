"""The ``forgetting_quality`` suite kind: the NeurIPS 2023 forgetting score F and U-LiRA per method.

For every forget split of the grid (variant x original seed x fraction x forget seed):
  1. models — the original model, N models retrained on D_R (seeds ``forgetting.retrain_seed`` ..,
     the protocol's reference side, shared by every method) and N more for the "Retrain (other
     seed)" control (seeds ``forgetting.control_seed`` ..), all in the bench's model cache;
  2. adversarial sets — D_A of the methods that use one (searched once, shared by their N runs);
  3. cells — one per method and setting, plus the controls "Original" (the unchanged original
     model as all N "unlearned" models: it should score near the bottom) and "Retrain (other
     seed)" (it should score near the top). A cell runs the unlearner with seeds 0 .. N − 1, each
     run's output cached (kind "forgetting_runs"), so a killed run resumes run by run.
The stages that plan those models, sets and cells are in ``forgetting_stages``.
Each record holds the protocol's result (F, final score, per-example ε, U-LiRA with intervals)
and the times: per unlearning run, and per retrained model.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from torch import nn

from amun_plugin.api import unlearn
from amun_plugin.bench.cells import adversarial_for, resolve_split
from amun_plugin.bench.records import ORIGINAL, OTHER_SEED, Cell, SplitRef
from amun_plugin.bench.suite_config import SuiteConfig, method_spec
from amun_plugin.bench.workspace import Workspace, split_key
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.forgetting_evaluator import protocol_metrics
from amun_plugin.evaluate.forgetting_protocol import run_protocol

__all__ = ["forgetting_record", "retrain_seeds"]


def retrain_seeds(config: SuiteConfig, control: bool = False) -> list[int]:
    """The seeds of the protocol's retrained models (``control``: of the "Retrain (other seed)" row)."""
    spec = config.forgetting
    first = spec.control_seed if control else spec.retrain_seed
    return list(range(first, first + spec.runs))


def _unlearn_run(ws: Workspace, cell: Cell, original: nn.Module, data: AuditData) -> tuple[Any, dict, float]:
    """(seed -> (model, seconds), the cache spec of the unlearned side, D_A search seconds) of a method cell."""
    spec = method_spec(ws.config, cell.method)
    split = ws.split(cell.fraction, cell.forget_seed)
    adversarial = adversarial_for(ws, spec, cell.variant, cell.original_seed, split)
    holdout = ws.validation if cell.method in ws.config.forgetting.holdout_methods else None
    retain = data.retain if cell.with_retain else None

    def run(seed: int) -> tuple[nn.Module, float]:
        start = time.perf_counter()
        result = unlearn(original, data.forget, retain, method=spec.name, validation=ws.validation,
                         holdout=holdout, adversarial=adversarial, device=ws.config.device, seed=seed,
                         plugins=ws.plugins, **dict(cell.options))
        return result.model, time.perf_counter() - start

    key = None if adversarial is None else ws.adversarial_key(
        ws.model_key("original", cell.original_seed, cell.variant), split, spec)
    return run, {"role": "unlearn", "method": spec.name, "resolved": cell.resolved, "options": dict(cell.options),
                 "setting": cell.setting, "holdout": holdout is not None, "adversarial": key}, (
        0.0 if adversarial is None else float(adversarial.seconds))


def _retrain_run(ws: Workspace, cell: Cell) -> Any:
    split = ws.split(cell.fraction, cell.forget_seed)

    def run(seed: int) -> tuple[nn.Module, float]:
        model, info = ws.retrained(seed, split, cell.variant)
        return model, float(info["train_seconds"])

    return run


def forgetting_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """One cell: N runs of the cell's method (or control) against the N retrained models."""
    config = ws.config
    split = resolve_split(ws, SplitRef.random(cell.fraction, cell.forget_seed))
    data = AuditData(split.retain(ws.train), split.forget(ws.train), ws.test)
    original, _ = ws.original(cell.original_seed, cell.variant)
    original_key = ws.model_key("original", cell.original_seed, cell.variant)
    base = {"original": original_key, "split": split_key(split), "variant": cell.variant,
            "validation_size": config.validation_size}
    retrain_spec = {**base, "role": "retrain", "init": ws.init_fingerprint(config.forgetting.retrain_seed)}
    seeds: Sequence[int] = range(config.forgetting.runs)
    search = 0.0
    if cell.method == ORIGINAL:
        unlearn_run, unlearn_spec = (lambda _s: (original, 0.0)), {**base, "role": "original"}
    elif cell.method == OTHER_SEED:
        unlearn_run, seeds = _retrain_run(ws, cell), retrain_seeds(config, control=True)
        unlearn_spec = {**retrain_spec, "init": ws.init_fingerprint(seeds[0])}
    else:
        unlearn_run, spec, search = _unlearn_run(ws, cell, original, data)
        unlearn_spec = {**base, **spec}
    result = run_protocol(data, unlearn_run, _retrain_run(ws, cell), unlearn_seeds=seeds,
                          retrain_seeds=retrain_seeds(config), cache=ws.cache, unlearn_spec=unlearn_spec,
                          retrain_spec=retrain_spec, device=config.device, bootstrap=config.forgetting.bootstrap)
    return {**cell.coords(), "metrics": protocol_metrics(result), "forgetting": result,
            "seconds": result["unlearned"]["seconds_mean"], "seconds_search": search,
            "retrain_seconds": result["retrained"]["seconds_mean"]}
