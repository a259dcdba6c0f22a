"""Cells — the unit of resumable work — and the picklable jobs executors run.

A :class:`Cell` names one result: a retrained model's audit, one unlearning run (for a table
or a tuning grid point), one continuous-unlearning chain, or one ablation fine-tuning. Its id is
the content hash of its coordinates and options, so a finished cell is recognised on resume.
Jobs carry the suite config and the cache folder and rebuild everything they need in the process
that runs them (this one, or a Ray worker), fetching shared artefacts from the cache.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from amun_plugin.api import unlearn
from amun_plugin.bench.cache import ArtifactCache, content_hash
from amun_plugin.bench.config import AdversarialSource, MethodSpec, SuiteConfig
from amun_plugin.bench.original_check import saturated_fraction
from amun_plugin.bench.workspace import Workspace, split_key
from amun_plugin.config import config_to_dict
from amun_plugin.data.base import LabeledData
from amun_plugin.data.splits import UnlearningSplit
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.gap import DEFAULT_GAP_KEYS, avg_gap
from amun_plugin.unlearn.calibration import estimated_gap, measure_proxy, retain_probe

__all__ = ["AdversarialJob", "Cell", "CellJob", "Job", "ModelJob", "SplitRef", "gaps_by_table", "method_spec",
           "resolved_hash"]

SplitRef = tuple[Any, ...]
"""("random", fraction, seed) | ("continuous", seed, number of requests forgotten)."""


@dataclass(frozen=True)
class Cell:
    """Coordinates of one result; ``options`` are the method's options, ``extra`` any other
    coordinate (ablation variant and union), ``resolved`` the hash of the method's full config
    (its defaults included), so a changed default yields new cells instead of stale reuse."""

    kind: str
    method: str = "Retrain"
    variant: str = "standard"
    original_seed: int = 0
    fraction: float = 0.1
    forget_seed: int = 0
    setting: str = "with_retain"
    unlearn_seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    resolved: str = ""

    @property
    def id(self) -> str:
        return content_hash(dataclasses.asdict(self))

    def coords(self) -> dict[str, Any]:
        return {"id": self.id, **dataclasses.asdict(self)}


def resolved_hash(ws: Workspace, name: str, options: Mapping[str, Any]) -> str:
    """Content hash of unlearner ``name``'s full config for ``options`` (defaults included)."""
    return content_hash(config_to_dict(ws.plugins.unlearners.get(name)(dict(options)).config))


def method_spec(config: SuiteConfig, label: str) -> MethodSpec:
    """The suite's method with display label ``label``."""
    for method in config.methods:
        if method.label == label:
            return method
    raise InvalidInputError(f"suite {config.name!r} has no method labelled {label!r}")


def gaps_by_table(config: SuiteConfig, metrics: Mapping[str, float], retrain: Mapping[str, float]) -> dict:
    """Avg Gap against the retrained model, once per table (each table's MIA term)."""
    return {t.title: avg_gap(metrics, retrain, DEFAULT_GAP_KEYS + (t.mia,)) for t in config.evaluation.tables}


@dataclass
class Job:
    """Base of the jobs: the suite, the cache folder, whether to draw inner progress bars."""

    config: SuiteConfig
    cache_dir: str
    progress: bool = False

    def __call__(self) -> Any:
        raise NotImplementedError

    def workspace(self) -> Workspace:
        torch.set_num_threads(max(1, int(self.config.threads)))
        return Workspace(self.config, ArtifactCache(self.cache_dir), progress=self.progress)


def resolve_split(ws: Workspace, ref: SplitRef) -> UnlearningSplit:
    """The forget split a :data:`SplitRef` names."""
    if ref[0] == "random":
        return ws.split(float(ref[1]), int(ref[2]))
    if ref[0] == "continuous":
        from amun_plugin.bench.continuous import cumulative_split

        return cumulative_split(ws, int(ref[1]), int(ref[2]))
    raise InvalidInputError(f"unknown split reference {ref!r}")


@dataclass
class ModelJob(Job):
    """Train (or find cached) an original model (``split`` None) or a retrained one."""

    seed: int = 0
    variant: str = "standard"
    split: SplitRef | None = None

    def __call__(self) -> dict[str, Any]:
        ws = self.workspace()
        if self.split is None:
            _, info = ws.original(self.seed, self.variant)
        else:
            _, info = ws.retrained(self.seed, resolve_split(ws, self.split), self.variant)
        return info


@dataclass
class AdversarialJob(Job):
    """Search (or find cached) the D_A that ``method`` uses for one forget split."""

    method: MethodSpec = field(default_factory=lambda: MethodSpec("amun", adversarial=AdversarialSource.OWN))
    variant: str = "standard"
    original_seed: int = 0
    split: SplitRef = ("random", 0.1, 0)

    def __call__(self) -> dict[str, Any]:
        ws = self.workspace()
        split = resolve_split(ws, self.split)
        return adversarial_for(ws, self.method, self.variant, self.original_seed, split).summary()


def adversarial_for(ws: Workspace, spec: MethodSpec, variant: str, seed: int, split: UnlearningSplit) -> Any:
    """D_A of ``spec`` for ``split``: searched on the original model of ``seed`` (``own``) or of
    ``seed + transfer_seed_offset`` (``transfer``); None when the method uses none."""
    if spec.adversarial is AdversarialSource.NONE:
        return None
    source = seed if spec.adversarial is AdversarialSource.OWN else seed + ws.config.transfer_seed_offset
    model, _ = ws.original(source, variant)
    return ws.adversarial(model, ws.model_key("original", source, variant), split, spec)


@dataclass
class CellJob(Job):
    """Compute one cell's record (a JSON-ready mapping)."""

    cell: Cell = field(default_factory=lambda: Cell("retrain"))

    def __call__(self) -> dict[str, Any]:
        ws = self.workspace()
        kind = self.cell.kind
        if kind == "retrain":
            return retrain_record(ws, self.cell)
        if kind == "original":
            return original_record(ws, self.cell)
        if kind in ("unlearn", "tune"):
            return unlearn_record(ws, self.cell)
        if kind == "chain":
            from amun_plugin.bench.continuous import chain_record

            return chain_record(ws, self.cell)
        if kind == "ablation":
            from amun_plugin.bench.ablation import ablation_record

            return ablation_record(ws, self.cell)
        if kind == "forgetting":
            from amun_plugin.bench.forgetting_suite import forgetting_record

            return forgetting_record(ws, self.cell)
        raise InvalidInputError(f"unknown cell kind {kind!r}")


def retrained_metrics(ws: Workspace, cell: Cell, split: UnlearningSplit) -> tuple[dict[str, float], dict]:
    """Audit metrics of the retrained model of ``cell``'s split (cached) and its training info."""
    model, info = ws.retrained(cell.original_seed, split, cell.variant)
    key = ws.model_key("retrain", cell.original_seed, cell.variant, split)
    metrics = ws.audit(model, split.retain(ws.train), split.forget(ws.train),
                       cache_spec={"model": key, "forget": split_key(split)})
    return metrics, info


def retrain_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """The Retrain row: the gold standard's metrics (Avg Gap 0 by definition) and training time."""
    split = ws.split(cell.fraction, cell.forget_seed)
    metrics, info = retrained_metrics(ws, cell, split)
    _, original = ws.original(cell.original_seed, cell.variant)
    return {**cell.coords(), "metrics": metrics, "gaps": {t.title: 0.0 for t in ws.config.evaluation.tables},
            "seconds": info["train_seconds"], "retrain_seconds": info["train_seconds"],
            "original": {k: original[k] for k in ("train_accuracy", "test_accuracy", "train_seconds")}}


def original_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """The Original row: the model before unlearning, audited on the cell's split (what doing
    nothing scores), with its train / test accuracy (%), saturated fraction (% of training samples
    with p_y == 1.0 in float32) and RMIA RT AUC (%, None without RMIA)."""
    split = ws.split(cell.fraction, cell.forget_seed)
    model, info = ws.original(cell.original_seed, cell.variant)
    key = ws.model_key("original", cell.original_seed, cell.variant)
    metrics = ws.audit(model, split.retain(ws.train), split.forget(ws.train),
                       cache_spec={"model": key, "forget": split_key(split)})
    retrain, _ = retrained_metrics(ws, cell, split)
    summary = {k: info[k] for k in ("train_accuracy", "test_accuracy", "train_seconds")}
    summary["saturated_fraction"] = saturated_fraction(model, ws.train, device=ws.config.device)
    summary["rt_auc"] = metrics.get("rmia.RT_AUC")
    return {**cell.coords(), "metrics": metrics, "gaps": gaps_by_table(ws.config, metrics, retrain), "seconds": 0.0,
            "original": summary}


def unlearn_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """One unlearning run of the cell's method with its options, audited against its retrain."""
    spec = method_spec(ws.config, cell.method)
    split = ws.split(cell.fraction, cell.forget_seed)
    model, _ = ws.original(cell.original_seed, cell.variant)
    adversarial = adversarial_for(ws, spec, cell.variant, cell.original_seed, split)
    forget, retain = split.forget(ws.train), split.retain(ws.train)
    mode = cell.extra.get("tuning_mode", "oracle")
    holdout = ws.validation if mode == "retrain_free" else None
    with_retain = cell.setting == "with_retain"
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no holdout given.*")  # oracle mode runs fixed options on purpose
        result = unlearn(model, forget, retain if with_retain else None, method=spec.name,
                         validation=ws.validation, holdout=holdout, adversarial=adversarial, device=ws.config.device,
                         seed=cell.unlearn_seed, plugins=ws.plugins, progress=ws.progress, **dict(cell.options))
    wall = time.perf_counter() - start
    metrics = ws.audit(result.model, retain, forget)
    retrain, info = retrained_metrics(ws, cell, split)
    search = float(adversarial.seconds) if adversarial is not None else 0.0
    record = {**cell.coords(), "unlearner": spec.name, "tuning_mode": mode, "metrics": metrics,
              "gaps": gaps_by_table(ws.config, metrics, retrain), "seconds": wall + search,
              "seconds_search": search, "retrain_seconds": info["train_seconds"], "stats": _scalars(result.stats)}
    if ws.validation is not None:
        record["proxy"] = retrain_free_estimate(ws.validation, model, result.model, forget,
                                                retain if with_retain else None, ws.config.device)
    return record


def retrain_free_estimate(holdout: LabeledData, original: Any, unlearned: Any, forget: LabeledData,
                          retain: LabeledData | None, device: str) -> dict[str, Any]:
    """The estimated Avg Gap of ``unlearned`` on ``holdout`` (what the retrain-free tuning mode
    minimises; no retrained model is read)."""
    probe = retain_probe(retain, len(holdout), 0)
    before = measure_proxy(original, forget, holdout, probe, device=device)
    after = measure_proxy(unlearned, forget, holdout, probe, device=device)
    gap, terms = estimated_gap(after, before)
    return {"estimated_gap": gap, "terms": terms, "measure": after.as_dict()}


def _scalars(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-friendly scalar statistics of an unlearning run."""
    return {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool)) or v is None}
