"""Retrain-free calibration of AMUN's fine-tuning: stop where D_F looks like held-out data.

A party that could afford a retrained model would not need unlearning, so the calibration never
reads one. It estimates what a retrained model would show from data the deleting party has:
a retrained model classifies D_F as well as unseen data (UA ~ TA; the paper: 94.49 vs 94.33),
keeps its accuracy on unseen data and on D_R, and gives D_F the confidence of unseen data (a
forget-vs-held-out membership AUC of 50). The **estimated Avg Gap** is the paper's Avg Gap with
the retrained model's values replaced by these estimates, all measured with the current model::

    mean( |acc(D_F) - acc0(H)|,  |acc(H) - acc0(H)|,  |AUC(D_F vs H) - 50|,  [|acc(D_R') - acc0(D_R')|] )

where H is the held-out set, acc0 the original model's accuracy, AUC the ROC AUC (%) of the
logit-scaled confidence log p_y - log sum_{j != y} p_j separating D_F from H, and D_R' a fixed
random sample of D_R of |H| samples (the last term only when D_R is available). The same rule
selects every method's hyper-parameters in the suites' retrain-free tuning mode
(``bench/tuning.py``), so that comparison is fair.

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
folders ``*-fmnist-paper*`` and ``benchmarks/README.md`` compare ramp only with ramp + hold). Measured in
``benchmarks/results/calibration`` and the suites' retrain-free mode (``benchmarks/README.md``).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.data.overlap import shared_samples
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.inference import logit_scaled_confidence, predict_logits
from amun_plugin.training import Schedule, TrainConfig, make_optimizer, train_model

__all__ = [
    "CalibrationConfig",
    "ProxyMeasure",
    "calibrated_finetune",
    "check_holdout",
    "estimated_gap",
    "holdout_resolution",
    "measure_proxy",
    "retain_probe",
]


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
    """

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

    def lr_at(self, step: int, ramp_steps: int) -> float:
        """The learning rate of optimiser step ``step`` (from 1) on a ramp of ``ramp_steps``."""
        progress = min(1.0, (step - 1) / max(1, ramp_steps - 1))
        return float(self.lr_min * (self.lr_max / self.lr_min) ** progress)


@dataclass(frozen=True)
class ProxyMeasure:
    """What the deleting party can measure of one model: accuracies in %, AUC in % (50 = D_F
    indistinguishable from held-out data); ``retain_accuracy`` is None without D_R."""

    forget_accuracy: float
    holdout_accuracy: float
    forget_holdout_auc: float
    retain_accuracy: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {"forget_accuracy": self.forget_accuracy, "holdout_accuracy": self.holdout_accuracy,
                "forget_holdout_auc": self.forget_holdout_auc, "retain_accuracy": self.retain_accuracy}


def check_holdout(holdout: LabeledData, forget: LabeledData, retain: LabeledData | None,
                  max_shared: float = 0.01) -> LabeledData:
    """``holdout`` without the samples it shares with D_F or D_R (identical images).

    Samples the model trained on cannot stand for unseen data: when more than ``max_shared`` of
    the held-out samples are in D_F or D_R (a split mix-up) the holdout is refused; a few exact
    duplicates (real datasets have some, e.g. Fashion-MNIST's train and test) are dropped with a
    one-line warning. An empty holdout is refused."""
    if len(holdout) == 0:
        raise InvalidInputError("holdout is empty: pass samples the model never trained on "
                                "(a validation or test split)")
    shared = torch.zeros(len(holdout), dtype=torch.bool)
    for part in (forget, retain):
        if part is not None:
            found = shared_samples(holdout.x, part.x)
            if found.float().mean().item() > max_shared:
                raise InvalidInputError(
                    f"holdout shares {int(found.sum())} sample(s) with {part.name}: held-out data must be samples the "
                    "model never trained on (a validation or test split)")
            shared |= found
    if not shared.any():
        return holdout
    if bool(shared.all()):
        raise InvalidInputError("every holdout sample is also a training sample")
    warnings.warn(f"holdout: dropped {int(shared.sum())} sample(s) identical to training samples", stacklevel=3)
    return holdout.subset(torch.nonzero(~shared).squeeze(1), name=holdout.name)


def holdout_resolution(accuracy: float, size: int, budget: float) -> tuple[float, int]:
    """How well ``size`` held-out samples measure an accuracy of ``accuracy`` %: the 95% half-width
    in points (normal approximation, 1.96 sqrt(p (1 - p) / n)) and the holdout size at which it is
    ``budget`` / 2 points. Losses of held-out accuracy smaller than the half-width go unseen.
    Measured (``benchmarks/results/calibration_holdout-fmnist-paper``, n = 5 forget sets): without
    D_R, 200 held-out images let AMUN lose 6.9 points of test accuracy unseen (Avg Gap 5.11),
    2,000 held the loss to 3.7 (Avg Gap 3.92, paired -1.19 +- 0.82)."""
    p = min(max(accuracy / 100.0, 0.0), 1.0)
    variance = max(p * (1.0 - p), 1e-4)
    half_width = 100.0 * 1.96 * math.sqrt(variance / max(1, size))
    needed = math.ceil(variance * (100.0 * 1.96 / max(budget / 2.0, 1e-6)) ** 2)
    return half_width, needed


def retain_probe(retain: LabeledData | None, size: int, seed: int) -> LabeledData | None:
    """A fixed random sample of ``size`` retain samples (all of D_R when smaller), or None."""
    if retain is None:
        return None
    if len(retain) <= size:
        return retain
    order = torch.randperm(len(retain), generator=torch.Generator().manual_seed(seed))[:size]
    return retain.subset(order.sort().values, name="retain probe")


def measure_proxy(model: nn.Module, forget: LabeledData, holdout: LabeledData,
                  retain_sample: LabeledData | None = None, *, device: str | torch.device = "cpu") -> ProxyMeasure:
    """Accuracies on D_F, H (and the retain sample) and the D_F-vs-H confidence AUC of ``model``
    (eval mode, no gradients; the model's modes are restored)."""
    forget_logits = predict_logits(model, forget.x, device=device)
    holdout_logits = predict_logits(model, holdout.x, device=device)
    forget_conf = logit_scaled_confidence(forget_logits, forget.y.cpu()).numpy()
    holdout_conf = logit_scaled_confidence(holdout_logits, holdout.y.cpu()).numpy()
    labels = np.r_[np.ones(len(forget_conf)), np.zeros(len(holdout_conf))]
    auc = 100.0 * float(roc_auc_score(labels, np.r_[forget_conf, holdout_conf]))
    retain_acc = None
    if retain_sample is not None:
        retain_logits = predict_logits(model, retain_sample.x, device=device)
        retain_acc = _accuracy(retain_logits, retain_sample.y)
    return ProxyMeasure(_accuracy(forget_logits, forget.y), _accuracy(holdout_logits, holdout.y), auc, retain_acc)


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return 100.0 * float((logits.argmax(dim=1) == y.cpu()).double().mean().item())


def estimated_gap(current: ProxyMeasure, original: ProxyMeasure) -> tuple[float, dict[str, float]]:
    """The estimated Avg Gap (points, lower is better) of ``current`` and its terms, with the
    retrained model's UA and TA estimated by the original model's held-out accuracy, its RA by
    the original's retain accuracy, and its MIA AUC by 50 (see the module docstring)."""
    terms = {
        "UA": abs(current.forget_accuracy - original.holdout_accuracy),
        "TA": abs(current.holdout_accuracy - original.holdout_accuracy),
        "MIA": abs(current.forget_holdout_auc - 50.0),
    }
    if current.retain_accuracy is not None and original.retain_accuracy is not None:
        terms["RA"] = abs(current.retain_accuracy - original.retain_accuracy)
    return float(np.mean(list(terms.values()))), terms


def within_budget(current: ProxyMeasure, original: ProxyMeasure, budget: float) -> bool:
    """Held-out (and retain) accuracy at most ``budget`` points below the original model's."""
    if current.holdout_accuracy < original.holdout_accuracy - budget:
        return False
    if current.retain_accuracy is not None and original.retain_accuracy is not None:
        return current.retain_accuracy >= original.retain_accuracy - budget
    return True


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


def _phase(model: nn.Module, union: LabeledData, augment_mask: Tensor, probes: tuple, recipe: TrainConfig,
           search: _Search, lr_of: Callable[[int], float], max_steps: int, every: int, first_step: int, *,
           device: torch.device, seed: int, before_step: Callable[[nn.Module], None] | None,
           progress: bool | str, seconds: list[float]) -> int:
    """Fine-tune ``model`` for at most ``max_steps`` steps at ``lr_of(step)`` (steps numbered from
    ``first_step`` + 1), offering every ``every``-th state to ``search``; returns the last step."""
    forget, holdout, retain_sample = probes
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
        if before_step is not None:
            before_step(current)

    def step_end(step: int, current: nn.Module) -> bool:
        if step >= max_steps:
            return True
        if step % every:
            return False
        check_start = time.perf_counter()
        measure = measure_proxy(current, forget, holdout, retain_sample, device=device)
        stop = search.offer(current, measure, lr_of(first_step + step), first_step + step)
        seconds[0] += time.perf_counter() - check_start
        return stop

    train_model(model, union, config, device=device, seed=seed + first_step, augment_mask=augment_mask,
                before_step=set_lr, step_end=step_end, optimizer=optimizer, progress=progress)
    return steps[0]


def calibrated_finetune(
    model: nn.Module,
    union: LabeledData,
    augment_mask: Tensor,
    probes: tuple[LabeledData, LabeledData, LabeledData | None],
    recipe: TrainConfig,
    calibration: CalibrationConfig,
    *,
    device: torch.device,
    seed: int,
    before_step: Callable[[nn.Module], None] | None = None,
    progress: bool | str = False,
    reference: nn.Module | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place on ``union`` (x (N, ...) in [0, 1]) in two phases, checking
    the estimated gap on ``probes`` = (D_F, H, retain sample or None): the rising learning rate
    (ramp), then from the ramp's best state a hold at that state's learning rate; leave it in the
    best checked state of both. ``recipe`` gives the optimiser (momentum, weight decay, batch
    size, augmentation); lr, epochs and schedule are the calibration's. Returns
    ``{"calibration": statistics}``: the chosen state (lr, step, estimated gap and its terms,
    measures), every check as (step, lr, estimated gap) in ``trace``, where the hold began
    (``hold_from_step``), the original model's estimated gap, the held-out accuracy's 95%
    half-width (``holdout_accuracy_half_width``, points; a warning when it exceeds half the
    accuracy budget, see :func:`holdout_resolution`) and the seconds spent (``seconds_checks``
    of them on the checks). ``reference``: the model whose held-out / retain accuracies are the
    targets and the budget's baseline ("original" in the statistics; default: ``model`` as given,
    e.g. a continuous session passes its original model so that losses cannot add up)."""
    forget, holdout, retain_sample = probes
    baseline = model if reference is None else reference
    search = _Search(measure_proxy(baseline, forget, holdout, retain_sample, device=device), calibration)
    half_width, needed = holdout_resolution(search.original.holdout_accuracy, len(holdout), calibration.accuracy_budget)
    if half_width > calibration.accuracy_budget / 2:
        warnings.warn(
            f"AMUN calibration: {len(holdout)} held-out samples measure accuracy only to +-{half_width:.1f} points "
            f"(95%), more than half the accuracy budget ({calibration.accuracy_budget} points): losses of test "
            f"accuracy that size go unseen. Pass at least {needed} held-out samples.", stacklevel=2)
    steps_per_epoch = max(1, math.ceil(len(union) / recipe.batch_size))
    ramp_steps = max(calibration.ramp_min_steps, calibration.ramp_epochs * steps_per_epoch)
    max_steps = max(calibration.min_steps, calibration.max_epochs * steps_per_epoch, ramp_steps)
    every = max(1, steps_per_epoch // calibration.checks_per_epoch)
    check_seconds, start = [0.0], time.perf_counter()
    common: dict[str, Any] = {"device": device, "seed": seed, "before_step": before_step, "progress": progress,
                              "seconds": check_seconds}
    last = _phase(model, union, augment_mask, probes, recipe, search, lambda step: calibration.lr_at(step, ramp_steps),
                  max_steps, every, 0, **common)
    if search.best_state is None:  # stopped before the first check: check the final state
        search.offer(model, measure_proxy(model, forget, holdout, retain_sample, device=device),
                     calibration.lr_at(last, ramp_steps), last)
    assert search.best_state is not None
    hold_from = None
    if calibration.hold_epochs > 0:
        hold_from, hold_lr = int(search.best["step"]), float(search.best["lr"])
        model.load_state_dict(search.best_state)
        search.bad_checks = 0
        hold_steps = max(calibration.hold_min_steps, calibration.hold_epochs * steps_per_epoch)
        last = _phase(model, union, augment_mask, probes, recipe, search, lambda step: hold_lr, hold_steps, every,
                      last, **common)
    model.load_state_dict(search.best_state)
    if not search.best["within_budget"]:
        warnings.warn(
            f"AMUN calibration: no checked state kept held-out/retain accuracy within {calibration.accuracy_budget} "
            "points of the original model's; using the one of lowest estimated gap", stacklevel=2)
    gap0, terms0 = estimated_gap(search.original, search.original)
    return {"calibration": {"chosen": search.best, "checks": len(search.trace), "steps": last,
                            "seconds": time.perf_counter() - start, "seconds_checks": check_seconds[0],
                            "ramp_steps": ramp_steps, "max_steps": max_steps, "hold_from_step": hold_from,
                            "trace": search.trace,
                            "original": {"estimated_gap": gap0, "terms": terms0, "measure": search.original.as_dict()},
                            "holdout_size": len(holdout), "holdout_accuracy_half_width": half_width}}
