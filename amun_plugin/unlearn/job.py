"""One unlearning job: the method with its options, the data, the holdout and the run settings.

The Python API (``amun_plugin.unlearn``), the ART bridge and the CLI (``amun unlearn``) all build an
:class:`UnlearnJob` and call :meth:`UnlearnJob.run`, so a job means the same thing whichever way it
was asked for. Where a caller has a pool of samples the model never trained on (the CLI: the
dataset's test split), :func:`hold_out` decides, in this one place, how much of it becomes the
calibration's holdout and the validation set, and what is left to audit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from amun_plugin.attacks.adversarial_set import AdversarialSet
from amun_plugin.data.base import LabeledData
from amun_plugin.data.splits import stratified_indices
from amun_plugin.errors import InvalidInputError
from amun_plugin.registry import Components
from amun_plugin.unlearn.base import ForgetRequest, Unlearner, UnlearnResult
from amun_plugin.unlearn.estimate import MembershipProbe

__all__ = ["HOLDOUT_FRACTION", "HeldOut", "UnlearnJob", "default_holdout_size", "hold_out"]

HOLDOUT_FRACTION = 0.2
"""The share of a pool of unseen samples held out for a calibrating method when no size is given."""


@dataclass(frozen=True, eq=False)
class UnlearnJob:
    """What to unlearn, how, and with what (see the module docstring).

    method: a registered unlearner name; options: its config fields (unknown ones are errors).
    forget, retain: D_F and D_R (None: the setting without D_R).
    holdout: samples the model never trained on, for a method that calibrates on them.
    validation: held-out non-members for methods that need them (DAU).
    adversarial: a precomputed adversarial set of ``forget`` (reuse, transfer).
    membership: the estimate's membership signal on ``holdout`` (None: the confidence; e.g.
    :class:`~amun_plugin.evaluate.rmia_probe.RmiaProbe` with a reference bank).
    device, seed, progress: where and how it runs.
    """

    method: str
    forget: LabeledData
    retain: LabeledData | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    holdout: LabeledData | None = None
    validation: LabeledData | None = None
    adversarial: AdversarialSet | None = None
    membership: MembershipProbe | None = None
    device: str | torch.device = "cpu"
    seed: int = 0
    progress: bool = False

    def unlearner(self, plugins: Components) -> Unlearner:
        """The configured unlearner (unknown method or options: an error, before any work)."""
        return plugins.unlearners.get(self.method)(dict(self.options))

    def request(self, reference: nn.Module | None = None) -> ForgetRequest:
        """The request the unlearner serves (``reference``: see :class:`ForgetRequest`)."""
        return ForgetRequest(forget=self.forget, retain=self.retain, validation=self.validation,
                             adversarial=self.adversarial, holdout=self.holdout, reference=reference,
                             membership=self.membership)

    def run(self, model: nn.Module, plugins: Components) -> UnlearnResult:
        """Unlearn from a copy of ``model`` (never modified)."""
        return self.unlearner(plugins).run(model, self.request(), plugins=plugins, device=self.device,
                                           seed=self.seed, progress=self.progress)


@dataclass(frozen=True)
class HeldOut:
    """A pool of unseen samples shared between a job and its audit: ``audited`` is what the audit
    scores; ``holdout`` / ``validation`` go to the job (None: none); ``indices`` are their positions
    in the pool (what a checkpoint records, so that a later audit leaves them out too)."""

    audited: LabeledData
    holdout: LabeledData | None
    validation: LabeledData | None
    indices: Mapping[str, list[int]]


def default_holdout_size(unlearner: Unlearner, pool_size: int) -> int:
    """The holdout drawn from a pool of ``pool_size`` unseen samples when none is asked for:
    ``HOLDOUT_FRACTION`` of it for a method that would calibrate on it, else none."""
    return int(pool_size * HOLDOUT_FRACTION) if unlearner.calibrates_with(holdout=True) else 0


def hold_out(pool: LabeledData, unlearner: Unlearner, *, holdout_size: int | None, validation_size: int,
             seed: int) -> HeldOut:
    """Carve the validation set (``validation_size``) and then the holdout (``holdout_size``; None:
    :func:`default_holdout_size`) out of ``pool``, each class-stratified and seeded; the rest is
    audited. A size that leaves nothing to audit, or is negative, is refused."""
    positions = np.arange(len(pool))
    indices: dict[str, list[int]] = {}
    parts: dict[str, LabeledData | None] = {"validation": None, "holdout": None}
    sizes = {"validation": validation_size,
             "holdout": default_holdout_size(unlearner, len(pool) - max(0, validation_size))
             if holdout_size is None else holdout_size}
    for name, size in sizes.items():
        if size < 0:
            raise InvalidInputError(f"the {name} size must be >= 0, got {size}")
        if size == 0:
            continue
        if size >= positions.size:
            raise InvalidInputError(f"a {name} of {size} samples must be smaller than the test samples left "
                                    f"({positions.size})")
        chosen = positions[stratified_indices(pool.y[positions].numpy(), size, seed=seed)]
        indices[name] = sorted(int(i) for i in chosen)
        parts[name] = pool.subset(np.sort(chosen), name=name)
        positions = np.setdiff1d(positions, chosen)
    return HeldOut(pool.subset(positions, name="test"), parts["holdout"], parts["validation"], indices)
