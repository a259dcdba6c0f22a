"""The picklable jobs executors run: train (or find cached) a model, search a D_A, compute one
cell's record. Jobs carry the suite config and the cache folder and rebuild everything they need
in the process that runs them (this one, or a Ray worker), fetching shared artefacts from the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from amun_plugin.artifacts import ArtifactCache
from amun_plugin.bench.ablation import ablation_record
from amun_plugin.bench.cells import adversarial_for, original_record, resolve_split, retrain_record, unlearn_record
from amun_plugin.bench.chains import chain_record
from amun_plugin.bench.forgetting_suite import forgetting_record
from amun_plugin.bench.records import Cell, CellKind, SplitRef
from amun_plugin.bench.suite_config import AdversarialSource, MethodSpec, SuiteConfig
from amun_plugin.bench.workspace import Workspace

__all__ = ["AdversarialJob", "CellJob", "Job", "ModelJob", "RECORDS"]

RECORDS: dict[CellKind, Callable[[Workspace, Cell], dict[str, Any]]] = {
    CellKind.RETRAIN: retrain_record,
    CellKind.ORIGINAL: original_record,
    CellKind.UNLEARN: unlearn_record,
    CellKind.TUNE: unlearn_record,
    CellKind.CHAIN: chain_record,
    CellKind.ABLATION: ablation_record,
    CellKind.FORGETTING: forgetting_record,
}
"""The function that computes a cell's record, by the cell's kind."""


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
    split: SplitRef = SplitRef.random(0.1, 0)

    def __call__(self) -> dict[str, Any]:
        ws = self.workspace()
        split = resolve_split(ws, self.split)
        return adversarial_for(ws, self.method, self.variant, self.original_seed, split).summary()


@dataclass
class CellJob(Job):
    """Compute one cell's record (a JSON-ready mapping)."""

    cell: Cell = field(default_factory=lambda: Cell(CellKind.RETRAIN))

    def __call__(self) -> dict[str, Any]:
        return RECORDS[self.cell.kind](self.workspace(), self.cell)
