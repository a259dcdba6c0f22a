"""Continuous unlearning: a sequence of forget requests against one model (AMUN paper, § 6.3
and App. G), and AMUN-A, the variant that recomputes its adversarial set at every request.

A :class:`ContinuousSession` holds the training set D, the current model and the samples
forgotten so far. Each request names train-set indices; samples already forgotten are dropped
from it, the new D_F is the rest, and D_R = D minus everything forgotten (this request included).
The session's unlearner (any registered method) runs on the *current* model, which is then
replaced by the result; every request gets a new optimiser (each run builds its own) and the
seed ``seed + request number``.

Adversarial sets (fast path): a method whose capabilities declare ``reuses_adversarial`` (``amun``,
``amun_salun``, or a plugin implementing ``Unlearner.adversarial_set``) is handed D_A computed on the
ORIGINAL model. The session computes it lazily,
once per sample: at each request, for the samples not yet searched, on the original model, and
caches it by train index; :meth:`ContinuousSession.precompute_adversarial` computes it up front
for all future requests at once. Either way, a sample's D_A entry is computed once on the
original model; the two paths differ only in how the samples are batched for the search.
``amun_a`` (:class:`AmunA`) declares ``reuses_adversarial=False`` and so recomputes D_A on the
current model at every request. A session of one request gives the same model with either
method; in a longer session even the first request differs when AMUN's D_A was precomputed for
all requests at once (the search's random streams depend on how samples are batched).

Lazy batching (App. G, suggested for the setting without D_R): with ``min_batch = k`` requests are queued until at
least k samples are waiting, then unlearned together; :meth:`ContinuousSession.flush` runs
whatever is queued.

Example::

    session = ContinuousSession(model, train, method="amun", options={"epochs": 5},
                                plugins=amun_plugin.get_plugin_manager())
    for indices in requests:
        session.request(indices)
    session.model, [r.stats for r in session.history]
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from amun_plugin.attacks.adversarial_set import AdversarialSet
from amun_plugin.data.base import LabeledData
from amun_plugin.data.splits import validate_index_range
from amun_plugin.device import resolve_device
from amun_plugin.errors import InvalidInputError
from amun_plugin.registry import Components
from amun_plugin.unlearn.amun import Amun
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner

__all__ = ["CALIBRATION_BASELINES", "AmunA", "ContinuousSession", "RequestRecord", "concat_adversarial"]

CALIBRATION_BASELINES = ("current", "original")
"""The values of ``calibrate_against``: whose accuracies a request's calibration is measured against."""


class AmunA(Amun):
    """AMUN-A: AMUN whose adversarial set is recomputed on the current model at every request
    of a continuous session (the same model as AMUN for a session of one request; see the module
    docstring for why the first request of a longer session can differ)."""

    name = "amun_a"
    description = "AMUN-A: AMUN recomputing D_A on the current model at each continuous-unlearning request"
    capabilities = dataclasses.replace(Amun.capabilities, reuses_adversarial=False)


@dataclass
class RequestRecord:
    """One processed request: its number (from 0), the train indices forgotten, how many asked-for
    samples were dropped (already forgotten or repeated), the retain size (None without D_R),
    where D_A came from ("original", "current" or "none") and the unlearner's statistics."""

    index: int
    method: str
    forget_indices: np.ndarray
    dropped: int
    retain_size: int | None
    adversarial_source: str
    stats: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (indices as a list)."""
        return {
            "index": self.index, "method": self.method, "forget_size": int(self.forget_indices.size),
            "forget_indices": self.forget_indices.tolist(), "dropped": self.dropped,
            "retain_size": self.retain_size, "adversarial_source": self.adversarial_source, "stats": self.stats,
        }


def concat_adversarial(parts: list[AdversarialSet]) -> AdversarialSet:
    """Adversarial sets one after the other (tensors concatenated; seconds summed; the other
    scalars from the first part)."""
    if not parts:
        raise InvalidInputError("no adversarial sets to concatenate")
    values: dict[str, Any] = {}
    for f in fields(AdversarialSet):
        first = getattr(parts[0], f.name)
        values[f.name] = torch.cat([getattr(p, f.name) for p in parts]) if isinstance(first, torch.Tensor) else first
    values["seconds"] = float(sum(p.seconds for p in parts))
    return AdversarialSet(**values)


class ContinuousSession:
    """A sequence of forget requests against one model (see the module docstring).

    Args:
        model: the trained model; never modified (the session works on copies).
        train: the training set D the model was trained on; requests are indices into it.
        method: a registered unlearner name. options: its config fields.
        use_retain: the setting with D_R (True) or without it (False).
        validation: held-out non-members for methods that need them (DAU).
        holdout: samples the model never trained on; AMUN / AMUN-A calibrate every request on
            them (``amun_plugin.unlearn.calibration``).
        calibrate_against: whose held-out / retain accuracies the calibration targets and
            budgets against: "current" (the model of that request, so accuracy losses of
            successive requests can add up) or "original" (the session's original model, so the
            accuracy budget holds for the whole session). Needs ``holdout``.
        min_batch: lazy batching, unlearn only once at least this many samples are queued.
        plugins: the registries to find ``method`` and its attack in (the plugin host,
            ``amun_plugin.get_plugin_manager()``).
        device, seed, progress: as for :func:`amun_plugin.unlearn`.
    """

    def __init__(
        self, model: nn.Module, train: LabeledData, method: str = "amun", *,
        options: Mapping[str, Any] | None = None, use_retain: bool = True, validation: LabeledData | None = None,
        holdout: LabeledData | None = None, calibrate_against: str = "current", min_batch: int = 1,
        plugins: Components,
        device: str | torch.device = "cpu",
        seed: int = 0, progress: bool = False,
    ) -> None:
        if not isinstance(train, LabeledData):
            raise InvalidInputError(f"train must be LabeledData, got {type(train).__name__}")
        if min_batch < 1:
            raise InvalidInputError(f"min_batch must be >= 1, got {min_batch}")
        if calibrate_against not in CALIBRATION_BASELINES:
            raise InvalidInputError(f"calibrate_against must be 'current' or 'original', got {calibrate_against!r}")
        if calibrate_against == "original" and holdout is None:
            raise InvalidInputError("calibrate_against='original' needs holdout= (the calibration's held-out samples)")
        self.plugins, self.train, self.method = plugins, train, method
        self.unlearner = plugins.unlearners.get(method)(options)
        if not self.unlearner.capabilities.continuous:
            raise InvalidInputError(f"{method!r} does not declare support for continuous unlearning "
                                    "(Capabilities.continuous is False)")
        self.unlearner.check_schedule(holdout=holdout is not None)  # before any request
        self.use_retain, self.validation, self.min_batch = use_retain, validation, int(min_batch)
        self.holdout = holdout
        self.device, self.seed, self.progress = resolve_device(device), int(seed), progress
        self.model = copy.deepcopy(model)
        self.history: list[RequestRecord] = []
        self._forgotten = np.zeros(0, dtype=np.int64)
        self._pending = np.zeros(0, dtype=np.int64)
        self._dropped = 0
        self._reuse = self.unlearner.capabilities.reuses_adversarial
        self.calibrate_against = calibrate_against
        keep_original = self._reuse or calibrate_against == "original"
        self._original = copy.deepcopy(model).to(self.device) if keep_original else None
        self._adversarial: dict[int, tuple[AdversarialSet, int]] = {}

    @property
    def forgotten(self) -> np.ndarray:
        """Sorted train indices forgotten so far (queued samples not included)."""
        return self._forgotten.copy()

    @property
    def pending(self) -> np.ndarray:
        """Sorted train indices queued for the next request (lazy batching)."""
        return self._pending.copy()

    def request(self, indices: Any) -> RequestRecord | None:
        """Queue ``indices`` (train-set indices) and unlearn the queue if it holds at least
        ``min_batch`` samples. Returns the record of the request run, or None if nothing ran."""
        asked = validate_index_range(indices, len(self.train), "forget indices")
        new = np.setdiff1d(np.unique(asked), np.union1d(self._forgotten, self._pending))
        self._dropped += int(asked.size - new.size)
        self._pending = np.union1d(self._pending, new)
        if self._pending.size >= self.min_batch:
            return self.flush()
        return None

    def run(self, requests: Iterable[Any]) -> list[RequestRecord]:
        """``request`` each index list in turn, then ``flush``; returns the records run."""
        records = [self.request(indices) for indices in requests] + [self.flush()]
        return [r for r in records if r is not None]

    def flush(self) -> RequestRecord | None:
        """Unlearn whatever is queued (None if the queue is empty)."""
        if self._pending.size == 0:
            return None
        forget_idx, dropped = self._pending, self._dropped
        forgotten_after = np.union1d(self._forgotten, forget_idx)
        retain = self._retain(forgotten_after)
        adversarial, source = self._adversarial_for(forget_idx)
        reference = self._original if self.calibrate_against == "original" else None
        request = ForgetRequest(self.train.subset(forget_idx, "forget"), retain, self.validation, adversarial,
                                holdout=self.holdout, reference=reference)
        number = len(self.history)
        result = self.unlearner.run(
            self.model, request, plugins=self.plugins, device=self.device, seed=self.seed + number,
            progress=self.progress,
        )
        self.model, self._forgotten = result.model, forgotten_after
        self._pending, self._dropped = np.zeros(0, dtype=np.int64), 0
        record = RequestRecord(number, self.method, forget_idx.copy(), dropped,
                               None if retain is None else len(retain), source, dict(result.stats))
        self.history.append(record)
        return record

    def precompute_adversarial(self, indices: Any) -> None:
        """Fast path: compute D_A on the original model for every sample of ``indices`` (e.g. the
        union of all future requests) in one search. Only for methods that reuse D_A."""
        if not self._reuse:
            raise InvalidInputError(f"{self.method!r} does not reuse an adversarial set computed on the original model")
        wanted = np.unique(validate_index_range(indices, len(self.train), "indices"))
        self._search_original([int(i) for i in wanted if int(i) not in self._adversarial])

    def _retain(self, forgotten: np.ndarray) -> LabeledData | None:
        if not self.use_retain:
            return None
        keep = np.setdiff1d(np.arange(len(self.train), dtype=np.int64), forgotten)
        if keep.size == 0:
            raise InvalidInputError("this request would forget every training sample, leaving D_R empty")
        return self.train.subset(keep, "retain")

    def _adversarial_for(self, forget_idx: np.ndarray) -> tuple[AdversarialSet | None, str]:
        if not self._reuse:
            builds_own = type(self.unlearner).adversarial_set is not Unlearner.adversarial_set
            return None, "current" if builds_own else "none"
        self._search_original([int(i) for i in forget_idx if int(i) not in self._adversarial])
        groups: dict[int, tuple[AdversarialSet, list[int], list[int]]] = {}
        for position, index in enumerate(forget_idx):
            adversarial, row = self._adversarial[int(index)]
            group = groups.setdefault(id(adversarial), (adversarial, [], []))
            group[1].append(row)
            group[2].append(position)
        combined = concat_adversarial([adv.select(rows) for adv, rows, _ in groups.values()])
        positions = np.concatenate([np.asarray(p) for _, _, p in groups.values()])
        return combined.select(np.argsort(positions)), "original"

    def _search_original(self, missing: list[int]) -> None:
        if not missing:
            return
        assert self._original is not None
        generator = torch.Generator().manual_seed(self.seed)
        ctx = UnlearnContext(self.device, self.seed, generator, self.progress, self.plugins)
        found = self.unlearner.adversarial_set(self._original, self.train.subset(missing, "forget"), ctx)
        for row, index in enumerate(missing):
            self._adversarial[index] = (found, row)
