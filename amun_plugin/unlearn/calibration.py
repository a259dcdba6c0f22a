"""Retrain-free calibration of AMUN's fine-tuning: stop where D_F looks like held-out data, and
choose what to fine-tune on.

A party that could afford a retrained model would not need unlearning, so the calibration never
reads one: every decision is taken on the **estimated Avg Gap** on held-out data H
(:mod:`amun_plugin.unlearn.estimate`). The same rule selects every method's hyper-parameters in
the suites' retrain-free tuning mode (``bench/tuning.py``), so that comparison is fair.

Mechanism, two phases with the same checks: (1) the *ramp*, a fine-tuning run whose learning
rate rises geometrically from ``lr_min`` (the paper's 0.01) to ``lr_max`` over two epochs and
then holds; (2) the *hold*, a restart from the ramp's best state at that state's learning rate,
constant for ``hold_epochs``. The estimated gap is checked every quarter epoch, the best state of
both phases is kept, and each phase stops after ``patience`` consecutive checks that are clearly
worse than the best (``overshoot``) or outside the accuracy budget. A state
whose held-out or retain accuracy fell more than ``accuracy_budget`` points below the original
model's is chosen only when no checked state is within the budget (and a warning says so).
Why: on the memorising Fashion-MNIST CNN a fixed lr of 0.01 barely moves D_F, 0.2 destroys the
model within a few steps, and the best state is reached at a step and an lr that differ per
forget set, so a fixed schedule cannot hit it and a checked one can. A ladder of constant-lr
runs restarted per rung, tried first on one forget set, cost several times one rising run, over
the cost budget (AMUN well under a third of a retraining). The hold: with D_R, on the paper-regime
preset, the ramp alone stops early, while the learning rate still rises (its states are never
annealed at one lr), and the estimated gap keeps falling when that lr is held (the results
folders ``*-fmnist-paper*`` and ``benchmarks/results/table1-fmnist-paper/README.md`` compare ramp only
with ramp + hold). Measured in ``benchmarks/results/calibration`` and the suites' retrain-free mode
(``docs/calibration.md``).

**Which union** (several ``candidates``, e.g. AMUN's ``full`` D_R ∪ D_F ∪ D_A, ``adv_only``
D_R ∪ D_A and ``partial``): each candidate runs its own ramp from the same starting model; the
ramps choose their states on one part of H (``1 - selection_share``) and the candidates are
compared on the other part, which no ramp was selected on (an unbiased comparison); the winner
(within the accuracy budget first, then lowest estimated gap) gets the hold. One candidate: no
split, exactly the single-union calibration. The shared work: one D_A, one measurement of the
original model, one retain sample.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.data.splits import stratified_indices
from amun_plugin.errors import InvalidInputError
from amun_plugin.training import Schedule, TrainConfig, make_optimizer, train_model
from amun_plugin.unlearn.estimate import (
    MembershipProbe,
    ProxyMeasure,
    check_holdout,
    estimated_gap,
    holdout_resolution,
    measure_proxy,
    retain_probe,
    within_budget,
)

__all__ = [
    "CALIBRATION_REVISION",
    "CalibrationConfig",
    "Probes",
    "ProxyMeasure",
    "calibrated_finetune",
    "check_holdout",
    "estimated_gap",
    "holdout_resolution",
    "measure_proxy",
    "rank_unions",
    "retain_probe",
    "split_holdout",
    "within_budget",
]


CALIBRATION_REVISION = 2
"""The calibrated schedule's behaviour at unchanged options: 1 = one union (AMUN's variant), 2 = the
choice between ``unions`` on selection data. A benchmark cell that calibrates hashes it, so a
change moves the calibrated cells (recomputed on resume) and no other."""


@dataclass(frozen=True)
class CalibrationConfig:
    """How AMUN calibrates its fine-tuning when held-out data is given.

    Attributes:
        lr_min, lr_max: the learning rate rises geometrically from ``lr_min`` to ``lr_max``
            over the ramp, then stays at ``lr_max``. (Default: 0.01 (the paper's), 0.1)
        ramp_epochs: length of the ramp in epochs over the fine-tuning union, at least
            ``ramp_min_steps`` optimiser steps. (Default: 2, 48)
        max_epochs: epochs at most, at least ``min_steps`` steps. (Default: 4, 96)
        checks_per_epoch: checks of the estimated gap per epoch (every step when an epoch has
            fewer batches). (Default: 4)
        patience, overshoot: stop after ``patience`` consecutive checks whose estimated gap
            exceeds the best one by more than ``overshoot`` points, or that are outside the
            accuracy budget. (Default: 4, 2.0)
        accuracy_budget: points of held-out (and retain) accuracy below the original model's
            that a chosen state may lose. (Default: 5.0)
        hold_epochs: after the ramp, fine-tuning restarts from its best state at that state's
            learning rate, held constant for this many epochs (at least ``hold_min_steps``
            steps), with the same checks; the best state of both phases is kept. 0 disables.
            (Default: 2, 48)
        unions: the fine-tuning sets the calibration chooses between (AMUN's variants: "full",
            "adv_only", "partial"; see :class:`~amun_plugin.unlearn.amun.AmunVariant`); an explicit
            ``variant`` option pins one. (Default: all three)
        selection_share: with several unions, the share of the held-out data kept out of the
            ramps' state selection and used to compare the unions. (Default: 0.5)
    """


    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("unions", "selection_share")  # see CALIBRATION_REVISION

    lr_min: float = 0.01
    lr_max: float = 0.1
    ramp_epochs: int = 2
    ramp_min_steps: int = 48
    max_epochs: int = 4
    min_steps: int = 96
    checks_per_epoch: int = 4
    patience: int = 4
    overshoot: float = 2.0
    accuracy_budget: float = 5.0
    hold_epochs: int = 2
    hold_min_steps: int = 48
    unions: tuple[str, ...] = ("full", "adv_only", "partial")
    selection_share: float = 0.5

    def __post_init__(self) -> None:
        if not (0 < self.lr_min <= self.lr_max):
            raise InvalidInputError(f"calibration needs 0 < lr_min <= lr_max, got {self.lr_min!r}, {self.lr_max!r}")
        for name in ("ramp_epochs", "ramp_min_steps", "max_epochs", "min_steps", "checks_per_epoch", "patience"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"calibration {name} must be >= 1, got {getattr(self, name)!r}")
        if int(self.hold_epochs) < 0 or int(self.hold_min_steps) < 1:
            raise InvalidInputError(f"calibration hold_epochs must be >= 0 and hold_min_steps >= 1, got "
                                    f"{self.hold_epochs!r}, {self.hold_min_steps!r}")
        if not (self.accuracy_budget >= 0 and self.overshoot >= 0):
            raise InvalidInputError("calibration accuracy_budget and overshoot must be >= 0")
        if not self.unions or len(set(self.unions)) != len(self.unions):
            raise InvalidInputError(f"calibration unions must be distinct and not empty, got {self.unions!r}")
        if not 0 < self.selection_share < 1:
            raise InvalidInputError(f"calibration selection_share must be in (0, 1), got {self.selection_share!r}")

    def lr_at(self, step: int, ramp_steps: int) -> float:
        """The learning rate of optimiser step ``step`` (from 1) on a ramp of ``ramp_steps``."""
        progress = min(1.0, (step - 1) / max(1, ramp_steps - 1))
        return float(self.lr_min * (self.lr_max / self.lr_min) ** progress)


@dataclass(frozen=True)
class Probes:
    """What every check measures: D_F, the held-out data H, a retain sample (None without D_R) and
    the membership probe (None: :class:`~amun_plugin.unlearn.estimate.ConfidenceProbe`)."""

    forget: LabeledData
    holdout: LabeledData
    retain: LabeledData | None = None
    membership: MembershipProbe | None = None

    def measure(self, model: nn.Module, device: str | torch.device) -> ProxyMeasure:
        return measure_proxy(model, self.forget, self.holdout, self.retain, device=device, membership=self.membership)

    def on(self, holdout: LabeledData) -> Probes:
        return Probes(self.forget, holdout, self.retain, self.membership)


def split_holdout(holdout: LabeledData, share: float, seed: int) -> tuple[LabeledData, LabeledData]:
    """(calibration part, selection part) of ``holdout``: ``share`` of it, class-stratified and
    seeded, is the selection part (at least one sample each)."""
    size = min(len(holdout) - 1, max(1, round(share * len(holdout))))
    chosen = stratified_indices(holdout.y.numpy(), size, seed=seed)
    rest = torch.ones(len(holdout), dtype=torch.bool)
    rest[torch.as_tensor(chosen)] = False
    return (holdout.subset(torch.nonzero(rest).squeeze(1), name=holdout.name),
            holdout.subset(torch.as_tensor(chosen), name=f"{holdout.name} (selection)"))


@dataclass
class _Search:
    """The best state seen so far, the stopping rule's counter and the trace of checks."""

    original: ProxyMeasure
    config: CalibrationConfig
    best_key: tuple[int, float] | None = None
    best_state: dict[str, Tensor] | None = None
    best: dict[str, Any] = field(default_factory=dict)
    trace: list[tuple[int, float, float]] = field(default_factory=list)
    bad_checks: int = 0

    def offer(self, model: nn.Module, measure: ProxyMeasure, lr: float, step: int) -> bool:
        """Record a checked state, keep it when it is the best (within budget first); True when
        the stopping rule says stop."""
        gap, terms = estimated_gap(measure, self.original)
        ok = within_budget(measure, self.original, self.config.accuracy_budget)
        key = (0 if ok else 1, gap)
        self.trace.append((step, lr, gap))
        if self.best_key is None or key < self.best_key:
            self.best_key = key
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.best = {"lr": lr, "step": step, "estimated_gap": gap, "terms": terms,
                         "within_budget": ok, "measure": measure.as_dict()}
        worse = not ok or gap > self.best["estimated_gap"] + self.config.overshoot
        self.bad_checks = self.bad_checks + 1 if worse else 0
        return self.bad_checks >= self.config.patience


@dataclass(frozen=True)
class _Run:
    """What every phase shares: the probes, the optimiser recipe, check spacing and run settings."""

    probes: Probes
    recipe: TrainConfig
    every: int
    device: torch.device
    seed: int
    before_step: Callable[[nn.Module], None] | None
    progress: bool | str
    seconds: list[float]


def _phase(model: nn.Module, union: LabeledData, augment_mask: Tensor, run: _Run, search: _Search,
           lr_of: Callable[[int], float], max_steps: int, first_step: int) -> int:
    """Fine-tune ``model`` for at most ``max_steps`` steps at ``lr_of(step)`` (steps numbered from
    ``first_step`` + 1), offering every ``run.every``-th state to ``search``; returns the last step."""
    recipe = run.recipe
    steps_per_epoch = max(1, math.ceil(len(union) / recipe.batch_size))
    config = TrainConfig(epochs=math.ceil(max_steps / steps_per_epoch), batch_size=recipe.batch_size,
                         lr=lr_of(first_step + 1), momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                         schedule=Schedule.CONSTANT, augment=recipe.augment, nesterov=recipe.nesterov)
    optimizer = make_optimizer(model, config)
    steps = [first_step]

    def set_lr(current: nn.Module) -> None:  # before every optimizer step
        steps[0] += 1
        for group in optimizer.param_groups:
            group["lr"] = lr_of(steps[0])
        if run.before_step is not None:
            run.before_step(current)

    def step_end(step: int, current: nn.Module) -> bool:
        if step >= max_steps:
            return True
        if step % run.every:
            return False
        check_start = time.perf_counter()
        measure = run.probes.measure(current, run.device)
        stop = search.offer(current, measure, lr_of(first_step + step), first_step + step)
        run.seconds[0] += time.perf_counter() - check_start
        return stop

    train_model(model, union, config, device=run.device, seed=run.seed + first_step, augment_mask=augment_mask,
                before_step=set_lr, step_end=step_end, optimizer=optimizer, progress=run.progress)
    return steps[0]


def _ramp(model: nn.Module, union: LabeledData, augment_mask: Tensor, run: _Run, search: _Search,
          calibration: CalibrationConfig, ramp_steps: int, max_steps: int) -> int:
    """The ramp of one union from ``model``'s current state; returns its last step."""
    last = _phase(model, union, augment_mask, run, search, lambda step: calibration.lr_at(step, ramp_steps),
                  max_steps, 0)
    if search.best_state is None:  # stopped before the first check: check the final state
        search.offer(model, run.probes.measure(model, run.device), calibration.lr_at(last, ramp_steps), last)
    return last


def calibrated_finetune(
    model: nn.Module,
    candidates: Mapping[str, tuple[LabeledData, Tensor]],
    probes: Probes,
    recipe: TrainConfig,
    calibration: CalibrationConfig,
    *,
    device: torch.device,
    seed: int,
    before_step: Callable[[nn.Module], None] | None = None,
    progress: bool | str = False,
    reference: nn.Module | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place on the best of ``candidates`` (name -> (union, augment mask);
    x (N, ...) in [0, 1]) in two phases, checking the estimated gap with ``probes``: the rising
    learning rate (ramp) of every candidate, then, for the winner (see the module docstring), a
    hold at its best state's learning rate; leave ``model`` in the winner's best checked state.
    ``recipe`` gives the optimiser (momentum, weight decay, batch size, augmentation); lr, epochs
    and schedule are the calibration's. Returns ``{"calibration": statistics}``: the chosen state
    (lr, step, estimated gap and its terms, measures), ``union`` (the winner), ``unions`` (each
    candidate's size, best ramp state and its estimate on the selection data) and ``why``, every
    check as (step, lr, estimated gap) in ``trace``, where the hold began (``hold_from_step``), the
    original model's estimated gap, the held-out accuracy's 95% half-width
    (``holdout_accuracy_half_width``, points; a warning when it exceeds half the accuracy budget,
    see :func:`holdout_resolution`) and the seconds spent (``seconds_checks`` of them on the
    checks). ``reference``: the model whose held-out / retain accuracies are the targets and the
    budget's baseline ("original" in the statistics; default: ``model`` as given, e.g. a
    continuous session passes its original model so that losses cannot add up)."""
    if not candidates:
        raise InvalidInputError("calibration needs at least one fine-tuning union")
    baseline = model if reference is None else reference
    several = len(candidates) > 1
    tuning, selection = (split_holdout(probes.holdout, calibration.selection_share, seed) if several
                         else (probes.holdout, probes.holdout))
    tune_probes = probes.on(tuning)
    original = tune_probes.measure(baseline, device)
    _warn_resolution(len(tuning), original.holdout_accuracy, calibration.accuracy_budget)
    first_union = next(iter(candidates.values()))[0]
    steps_per_epoch = max(1, math.ceil(len(first_union) / recipe.batch_size))
    ramp_steps = max(calibration.ramp_min_steps, calibration.ramp_epochs * steps_per_epoch)
    max_steps = max(calibration.min_steps, calibration.max_epochs * steps_per_epoch, ramp_steps)
    run = _Run(tune_probes, recipe, max(1, steps_per_epoch // calibration.checks_per_epoch), device, seed,
               before_step, progress, [0.0])
    start, initial = time.perf_counter(), {k: v.detach().clone() for k, v in model.state_dict().items()}
    ramps: dict[str, tuple[_Search, int]] = {}
    for name, (union, augment_mask) in candidates.items():
        model.load_state_dict(initial)
        search = _Search(original, calibration)
        ramps[name] = (search, _ramp(model, union, augment_mask, run, search, calibration, ramp_steps, max_steps))
    winner, unions, why = _choose_union(model, candidates, ramps, probes.on(selection), baseline, calibration,
                                        device) if several else (next(iter(candidates)), {}, "the only candidate")
    search, last = ramps[winner]
    assert search.best_state is not None
    hold_from = None
    if calibration.hold_epochs > 0:
        hold_from, hold_lr = int(search.best["step"]), float(search.best["lr"])
        model.load_state_dict(search.best_state)
        search.bad_checks = 0
        hold_steps = max(calibration.hold_min_steps, calibration.hold_epochs * steps_per_epoch)
        union, augment_mask = candidates[winner]
        last = _phase(model, union, augment_mask, run, search, lambda step: hold_lr, hold_steps, last)
    model.load_state_dict(search.best_state)
    if not search.best["within_budget"]:
        warnings.warn(
            f"AMUN calibration: no checked state kept held-out/retain accuracy within {calibration.accuracy_budget} "
            "points of the original model's; using the one of lowest estimated gap", stacklevel=2)
    gap0, terms0 = estimated_gap(original, original)
    half_width, _ = holdout_resolution(original.holdout_accuracy, len(tuning), calibration.accuracy_budget)
    return {"calibration": {"chosen": search.best, "union": winner, "unions": unions, "why": why,
                            "checks": sum(len(s.trace) for s, _ in ramps.values()), "steps": last,
                            "seconds": time.perf_counter() - start, "seconds_checks": run.seconds[0],
                            "ramp_steps": ramp_steps, "max_steps": max_steps, "hold_from_step": hold_from,
                            "trace": search.trace,
                            "original": {"estimated_gap": gap0, "terms": terms0, "measure": original.as_dict()},
                            "holdout_size": len(probes.holdout), "tuning_size": len(tuning),
                            "selection_size": len(selection) if several else 0,
                            "membership": probes.membership.name if probes.membership is not None else "confidence",
                            "holdout_accuracy_half_width": half_width}}


def _choose_union(model: nn.Module, candidates: Mapping[str, tuple[LabeledData, Tensor]],
                  ramps: Mapping[str, tuple[_Search, int]], selection: Probes, baseline: nn.Module,
                  calibration: CalibrationConfig, device: torch.device) -> tuple[str, dict[str, Any], str]:
    """Every ramp's best state measured on the selection data, then :func:`rank_unions`."""
    measures = {}
    for name, (search, _) in ramps.items():
        assert search.best_state is not None
        model.load_state_dict(search.best_state)
        measures[name] = selection.measure(model, device)
    winner, unions, why = rank_unions(measures, selection.measure(baseline, device), calibration.accuracy_budget)
    for name, (search, _) in ramps.items():
        unions[name].update(size=len(candidates[name][0]), ramp_best=dict(search.best), checks=len(search.trace))
    return winner, unions, f"{why} on {len(selection.holdout)} held-out samples no ramp was selected on"


def rank_unions(measures: Mapping[str, ProxyMeasure], original: ProxyMeasure,
                budget: float) -> tuple[str, dict[str, Any], str]:
    """(winner, each candidate's estimated gap, terms and budget check, why): the candidates within
    the accuracy ``budget`` first, then the lowest estimated gap (ties: the earlier candidate)."""
    unions: dict[str, Any] = {}
    for name, measure in measures.items():
        gap, terms = estimated_gap(measure, original)
        unions[name] = {"estimated_gap": gap, "terms": terms, "within_budget": within_budget(measure, original, budget),
                        "measure": measure.as_dict()}
    ranked = sorted(unions, key=lambda n: (not unions[n]["within_budget"], unions[n]["estimated_gap"]))
    winner = ranked[0]
    others = ", ".join(f"{n} {unions[n]['estimated_gap']:.2f}"
                       + ("" if unions[n]["within_budget"] else " (over budget)") for n in ranked[1:])
    budget_text = "within the accuracy budget, " if unions[winner]["within_budget"] else "no union within budget: "
    why = (f"{budget_text}lowest estimated gap: {winner} {unions[winner]['estimated_gap']:.2f}"
           + (f" (others: {others})" if others else ""))
    return winner, unions, why


def _warn_resolution(size: int, accuracy: float, budget: float) -> None:
    half_width, needed = holdout_resolution(accuracy, size, budget)
    if half_width > budget / 2:
        warnings.warn(
            f"AMUN calibration: {size} held-out samples measure accuracy only to +-{half_width:.1f} points "
            f"(95%), more than half the accuracy budget ({budget} points): losses of test "
            f"accuracy that size go unseen. Pass at least {needed} held-out samples.", stacklevel=3)
