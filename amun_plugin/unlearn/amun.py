"""AMUN: Adversarial Machine UNlearning (Ebrahimpour-Boroojeny et al., 2025).

To forget D_F, find for every forget sample its nearest adversarial example (Algorithm 1,
``attacks/search.py``), label it with the model's own (wrong) prediction, and fine-tune on

    variant "full":      D_R ∪ D_F ∪ D_A   (with D_R)   |   D_F ∪ D_A   (without D_R)
    variant "adv_only":  D_R ∪ D_A         (with D_R)   |   D_A         (without D_R)

shuffled together. D_A is never augmented; D_R and D_F get the training augmentation.
Fine-tuning follows the paper: SGD, momentum 0.9, weight decay 5e-4, batch 128, lr 0.01 decayed
x0.1 every ``step_size`` epochs, plain cross-entropy, model in train mode.

Two defaults differ from the paper, to make AMUN much cheaper than retraining (issue 6, measured
in ``benchmarks/results/amun_cost``) at the same unlearning quality:
    - D_A is found by the minimum-norm attack ``native_min_norm`` with an automatic eps_init
      (12.4 gradient evaluations per sample instead of 174, median distance +2.8%);
    - 2 epochs instead of 10: with lr x0.1 every epoch, epochs 3+ run at lr <= 1e-4; measured,
      UA / TA / membership AUC moved by at most 0.4 point.
``PAPER_SETTINGS`` holds the paper's choices: ``unlearn(model, forget, **PAPER_SETTINGS)``.

The fine-tuning runs one of two **schedules**, chosen by the inputs:
    - *calibrated* (``holdout=`` given, ``calibration`` not None): calibrated without any retrained
      model (:mod:`amun_plugin.unlearn.calibration`): the lr rises from 0.01 to 0.1 over two epochs,
      then restarts from the best state at that state's lr, held for two epochs; the estimated Avg
      Gap (D_F against held-out data) is checked every quarter epoch and the best state of both
      phases is kept (``stats["calibration"]``). ``FIXED_SCHEDULE``'s options are then refused.
    - *fixed* (no holdout, or ``calibration=None`` without a holdout): ``lr``, ``epochs``,
      ``step_size``, ``gamma``. Without an explicit choice (one of those options, or
      ``calibration=None``) a :class:`~amun_plugin.errors.NoHoldoutWarning` says it may not
      forget on a strongly memorising model. Calibration options without a holdout are refused.
``stats["finetune_schedule"]`` says which ran.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar, Iterator, Mapping

import torch
from torch import Tensor, nn

from amun_plugin.attacks.search import AdversarialSet, SearchConfig, nearest_adversarial
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError, NoHoldoutWarning
from amun_plugin.models.inference import predict_logits
from amun_plugin.training import Augment, Schedule, TrainConfig, train_model
from amun_plugin.unlearn.base import Capabilities, ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.calibration import CalibrationConfig, Probes, calibrated_finetune
from amun_plugin.unlearn.estimate import MembershipProbe, check_holdout, retain_probe

__all__ = ["FIXED_SCHEDULE", "PAPER_SETTINGS", "Amun", "AmunConfig", "AmunVariant", "build_adversarial_set",
           "finetune_on_union", "uncalibrated_on_purpose"]

PAPER_SETTINGS: Mapping[str, Any] = {
    "epochs": 10,
    "retain_ratio": None,
    "attack": "native_pgd_l2",
    "attack_options": {"loss": "ce"},
    "search": {"eps_init": 0.04, "refine_steps": 0},
}
"""AmunConfig options of the paper's exact procedure: Algorithm 1, strictly (no bisection:
``refine_steps`` 0, whereas SearchConfig's default adds 10 bisection steps), with PGD-L2
(cross-entropy, 50 steps per round, alpha = eps / 10, early stop at the first misclassified iterate,
eps_init 0.04, eps doubling from the current iterate) and 10 epochs of fine-tuning on all of D_R.
tests/attacks/test_algorithm1.py checks the search against a direct port of Algorithm 1."""


FIXED_SCHEDULE = ("epochs", "lr", "step_size", "gamma")
"""The options only AMUN's fixed schedule reads; the calibrated schedule (with a holdout) chooses
its own learning rate and length, so passing one of them with a holdout is an error."""
FIXED_CHOICES = frozenset({*FIXED_SCHEDULE, "calibration"})
"""Options whose explicit value chooses the fixed schedule on purpose (no "no holdout" warning)."""


class AmunVariant(str, Enum):
    """What AMUN fine-tunes on besides D_R: "full" D_F ∪ D_A (the paper), "adv_only" D_A,
    "partial" D_A and D_F without the share of D_F a model that never saw it would misclassify
    (estimated from the held-out error rate; the samples nearest the boundary), so that accuracy
    on D_F can fall to the level of unseen data while the rest of D_F keeps its labels."""

    FULL = "full"
    ADV_ONLY = "adv_only"
    PARTIAL = "partial"


@dataclass(frozen=True)
class AmunConfig:
    """Fine-tuning (epochs, lr, ...), which union to train on (variant), and how D_A is found:
    ``attack`` names a registered attack backend, ``attack_options`` its config, ``search`` the
    Algorithm 1 settings (see ``PAPER_SETTINGS`` for the paper's).

    Attributes:
        epochs: fine-tuning epochs. They are passes over the union in the fixed schedule (read only
            by the fixed schedule, which runs without a holdout; the calibrated one chooses its own
            length); the paper uses 10, which the default lr decay makes equivalent to 2.
        lr: SGD learning rate at the start of the fixed schedule (read only by the fixed schedule;
            the calibrated one searches its own between ``calibration.lr_min`` and ``lr_max``).
        momentum: SGD momentum of the fine-tuning, in both schedules (the paper's 0.9).
        weight_decay: SGD weight decay (L2 penalty) of the fine-tuning, in both schedules (the
            paper's 5e-4).
        batch_size: samples per SGD step, drawn from the shuffled union, in both schedules (the
            paper's 128).
        step_size: epochs between two learning-rate decays of the fixed schedule (read only by the
            fixed schedule).
        gamma: factor the fixed schedule multiplies the learning rate by every ``step_size`` epochs
            (read only by the fixed schedule).
        augment: training augmentation of the D_R and D_F image batches ("none", "crop",
            "crop_flip"); D_A is never augmented.
        variant: "full" trains on D_F with D_A (and D_R when given); "adv_only" drops D_F (the
            ablation's union); "partial" drops from D_F the share a model that never saw it would
            misclassify, estimated on the holdout (see AmunVariant).
        retain_ratio: with D_R, fine-tune on a random subset of D_R of ``retain_ratio`` x
            (|D_F| + |D_A|) samples (drawn once per request from the seed) instead of all of it;
            cheaper, at some cost in unlearning quality (not benchmarked). (Default: None = all)
        attack: the registered attack backend that finds D_A (``amun plugins`` lists them).
        attack_options: that backend's options (``amun describe ATTACK`` shows them).
        search: Algorithm 1's settings; the default picks eps_init automatically from a 100-sample
            probe.
        calibration: how the fine-tuning is calibrated when held-out data is given (see
            :class:`~amun_plugin.unlearn.calibration.CalibrationConfig`); None = never calibrate.
        repair_epochs, repair_lr: with D_R, after the fine-tuning, this many epochs on D_R alone at
            the constant ``repair_lr`` (same momentum, weight decay and batch size), to win back
            retain and test accuracy the fine-tuning lost without training on D_F again. Not the
            paper's; an experiment that did not pay off: at fmnist-paper, forget 10%, it wins back
            RA and TA but D_F's accuracy and the MIA AUC rise with them (Avg Gap +0.33 ± 0.77 over
            the default for 1 epoch, n = 5, ``benchmarks/results/auto-fmnist-paper``).
            (Default: 0 = none, 0.01)
    """

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("repair_epochs", "repair_lr")

    epochs: int = 2
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    step_size: int = 1
    gamma: float = 0.1
    augment: Augment = Augment.NONE
    variant: AmunVariant = AmunVariant.FULL
    retain_ratio: float | None = None
    attack: str = "native_min_norm"
    attack_options: Mapping[str, Any] = field(default_factory=dict)
    search: SearchConfig = field(default_factory=lambda: SearchConfig(eps_init=None))
    calibration: CalibrationConfig | None = field(default_factory=CalibrationConfig)
    repair_epochs: int = 0
    repair_lr: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.repair_epochs, bool) or not isinstance(self.repair_epochs, int) or self.repair_epochs < 0:
            raise InvalidInputError(f"repair_epochs must be an integer >= 0, got {self.repair_epochs!r}")
        if not self.repair_lr > 0:
            raise InvalidInputError(f"repair_lr must be > 0, got {self.repair_lr!r}")
        ratio = self.retain_ratio
        if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0):
            raise InvalidInputError(f"retain_ratio must be a number > 0 or None (all of D_R), got {ratio!r}")

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay, schedule=Schedule.STEP, step_size=self.step_size,
            gamma=self.gamma, augment=self.augment,
        )


class Amun(Unlearner):
    name = "amun"
    config_class = AmunConfig
    description = "AMUN: fine-tune on the nearest adversarial examples of D_F with their wrong labels"
    capabilities = Capabilities(calibrates=True, reuses_adversarial=True, fixed_schedule=FIXED_SCHEDULE)
    """Calibrates on a holdout (then ``FIXED_SCHEDULE`` options are refused), and takes a precomputed
    D_A (a continuous session computes it once on the original model)."""

    def calibrates_with(self, holdout: bool) -> bool:
        return holdout and self.config.calibration is not None

    def check_schedule(self, holdout: bool) -> None:
        super().check_schedule(holdout)
        if not holdout and "calibration" in self.given_options and self.config.calibration is not None:
            raise InvalidInputError(f"{self.name!r}: calibration options need holdout=<samples never trained on>; "
                                    "without a holdout the fixed schedule runs (lr, epochs, step_size, gamma)")
        if not self.calibrates_with(holdout) and self.config.variant is AmunVariant.PARTIAL:
            raise InvalidInputError(f"{self.name!r}: variant 'partial' needs holdout= (the share of D_F it drops is "
                                    "estimated from the held-out accuracy) and the calibrated schedule")
        self.candidate_variants(holdout)  # unknown union names: refused here

    def candidate_variants(self, holdout: bool) -> tuple[AmunVariant, ...]:
        """The unions a run chooses between: the calibration's ``unions`` when it calibrates and no
        ``variant`` was given, else ``variant`` alone."""
        calibration = self.config.calibration
        if not self.calibrates_with(holdout) or calibration is None or "variant" in self.given_options:
            return (self.config.variant,)
        try:
            return tuple(AmunVariant(name) for name in calibration.unions)
        except ValueError:
            raise InvalidInputError(f"{self.name!r}: calibration unions must be among "
                                    f"{[v.value for v in AmunVariant]}, got {list(calibration.unions)}") from None

    def holdout_when_judged(self, holdout: LabeledData, tuning: LabeledData, selection_share: float) -> LabeledData:
        """All of ``holdout`` when the calibration chooses between several unions with the same
        ``selection_share``: it then makes the judge's split itself (same seed), selects states on
        ``tuning`` only and chooses the union on the judge's part. Otherwise ``tuning``."""
        calibration = self.config.calibration
        if calibration is not None and len(self.candidate_variants(True)) > 1 \
                and calibration.selection_share == selection_share:
            return holdout
        return tuning

    def adversarial_set(self, model: nn.Module, forget: LabeledData, ctx: UnlearnContext) -> AdversarialSet:
        return build_adversarial_set(model, forget, self.config, ctx)

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: AmunConfig = self.config
        holdout = None
        if self.calibrates_with(request.holdout is not None) and request.holdout is not None:
            holdout = check_holdout(request.holdout, request.forget, request.retain)  # before any work
        elif not FIXED_CHOICES & self.given_options:
            warnings.warn(f"{self.name}: no holdout given, so the fine-tuning runs its fixed schedule at lr "
                          f"{config.lr:g}; on a strongly memorising model it may not forget; pass holdout=<samples "
                          "never trained on> to calibrate (or choose the fixed schedule explicitly, e.g. lr=..., "
                          "to silence this)", NoHoldoutWarning, stacklevel=4)
        start = time.perf_counter()
        adversarial = request.adversarial
        if adversarial is None:
            adversarial = self.adversarial_set(model, request.forget, ctx)
        search_seconds = time.perf_counter() - start
        retain = request.retain if self.capabilities.uses_retain else None
        before_step, hook_stats = self._finetune_hook(model, request, ctx)
        if config.repair_epochs and retain is None:
            raise InvalidInputError(f"{self.name!r}: repair_epochs fine-tunes on D_R, and this request has none")
        stats = finetune_on_union(model, request.forget, retain, adversarial, config, ctx, before_step, holdout,
                                  reference=request.reference, variants=self.candidate_variants(holdout is not None),
                                  membership=request.membership)
        if config.repair_epochs and retain is not None:
            stats.update(_repair(model, retain, config, ctx, before_step))
        return {
            **hook_stats,
            "finetune_schedule": "calibrated" if holdout is not None else "fixed",
            "seconds_search": search_seconds if request.adversarial is None else 0.0,
            "adversarial_reused": request.adversarial is not None,
            "adversarial": adversarial.summary(),
            **stats,
        }

    def _finetune_hook(
        self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext
    ) -> tuple[Callable[[nn.Module], None] | None, dict[str, Any]]:
        """Extension point: a ``before_step`` hook for the fine-tuning and its statistics
        (AMUN+SalUn returns its saliency-mask hook); called before fine-tuning starts."""
        return None, {}


def _repair(model: nn.Module, retain: LabeledData, config: AmunConfig, ctx: UnlearnContext,
            before_step: Callable[[nn.Module], None] | None) -> dict[str, Any]:
    """``config.repair_epochs`` epochs on D_R alone at the constant ``config.repair_lr``."""
    repair = TrainConfig(epochs=config.repair_epochs, batch_size=config.batch_size, lr=config.repair_lr,
                         momentum=config.momentum, weight_decay=config.weight_decay, schedule=Schedule.CONSTANT,
                         augment=config.augment)
    stats = train_model(model, retain, repair, device=ctx.device, seed=ctx.seed + 1, before_step=before_step,
                        progress="AMUN repair on D_R" if ctx.progress else False)
    return {"repair_seconds": stats.seconds, "repair_final_loss": stats.final_loss}


@contextmanager
def uncalibrated_on_purpose() -> Iterator[None]:
    """Silence AMUN's :class:`NoHoldoutWarning` inside the block, for callers that run fixed
    options deliberately (the suites' oracle mode, fixed-option continuous chains)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoHoldoutWarning)
        yield


def build_adversarial_set(
    model: nn.Module, forget: LabeledData, config: AmunConfig, ctx: UnlearnContext
) -> AdversarialSet:
    """Algorithm 1 on ``forget`` with the configured backend (looked up in the plugin host)."""
    backend = ctx.plugins.attacks.get(config.attack)(dict(config.attack_options))
    return nearest_adversarial(model, forget, backend, config.search, device=ctx.device, progress=ctx.progress)


def finetune_on_union(
    model: nn.Module,
    forget: LabeledData,
    retain: LabeledData | None,
    adversarial: AdversarialSet,
    config: AmunConfig,
    ctx: UnlearnContext,
    before_step: Callable[[nn.Module], None] | None = None,
    holdout: LabeledData | None = None,
    *,
    reference: nn.Module | None = None,
    variants: tuple[AmunVariant, ...] | None = None,
    membership: MembershipProbe | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place on the variant's union; D_A is not augmented.
    ``before_step(model)`` runs between backward and each optimizer step (e.g. a SalUn mask).
    With ``holdout`` (and ``config.calibration``), the fine-tuning is calibrated on it, against
    ``reference``'s accuracies (default: ``model``'s before fine-tuning), choosing between the
    unions of ``variants`` (default: ``config.variant`` alone) with ``membership`` as the
    estimate's membership signal."""
    if len(adversarial.y_true) != len(forget):
        raise InvalidInputError(
            f"the adversarial set has {len(adversarial.y_true)} samples but the forget set has {len(forget)}"
        )
    variants = variants or (config.variant,)
    calibrated = holdout is not None and config.calibration is not None
    if AmunVariant.PARTIAL in variants and not calibrated:
        raise InvalidInputError("variant 'partial' needs holdout= (the share of D_F it fine-tunes on without "
                                "labels is estimated from the held-out accuracy) and a calibration")
    found = int(adversarial.found.sum())
    forget_side = found + (len(forget) if config.variant is AmunVariant.FULL else 0)
    retain_part = None if retain is None else _retain_subset(retain, forget_side, config, ctx)
    unlabeled = _likely_misclassified(model if reference is None else reference, holdout, adversarial, ctx) \
        if AmunVariant.PARTIAL in variants else None
    candidates = {v.value: build_union(v, forget, retain_part, adversarial, unlabeled) for v in variants}
    start = time.perf_counter()
    progress = "AMUN fine-tuning" if ctx.progress else False
    out: dict[str, Any] = {}
    if calibrated and holdout is not None and config.calibration is not None:
        probes = Probes(forget, holdout, retain_probe(retain, len(holdout), ctx.seed), membership)
        out = calibrated_finetune(model, candidates, probes, config.train_config(), config.calibration,
                                  device=ctx.device, seed=ctx.seed, before_step=before_step, progress=progress,
                                  reference=reference)
        chosen, winner = out["calibration"]["chosen"], out["calibration"]["union"]
        out.update({"calibrated_lr": chosen["lr"], "calibrated_step": chosen["step"], "calibrated_union": winner,
                    "calibration_estimated_gap": chosen["estimated_gap"],
                    "calibration_checks": out["calibration"]["checks"],
                    "calibration_steps": out["calibration"]["steps"]})
        if unlabeled is not None:
            out["calibration"]["partial_unlabeled"] = int(unlabeled.numel())
    else:
        winner = variants[0].value
        union, augment_mask = candidates[winner]
        train_stats = train_model(model, union, config.train_config(), device=ctx.device, seed=ctx.seed,
                                  augment_mask=augment_mask, before_step=before_step, progress=progress)
        out["finetune_final_loss"] = train_stats.final_loss
    return {
        "seconds_finetune": time.perf_counter() - start,
        "finetune_size": len(candidates[winner][0]),
        "retain_used": len(retain_part) if retain_part is not None else 0,
        "adversarial_used": found,
        **out,
    }


def build_union(variant: AmunVariant, forget: LabeledData, retain: LabeledData | None, adversarial: AdversarialSet,
                unlabeled: Tensor | None = None) -> tuple[LabeledData, Tensor]:
    """(union, augment mask) of ``variant``: D_R (if given), then D_F ("full"; "partial": without
    the ``unlabeled`` positions), then the found adversarial examples (never augmented)."""
    parts: list[tuple[LabeledData, bool]] = []
    if retain is not None:
        parts.append((retain, True))
    if variant is AmunVariant.FULL:
        parts.append((forget, True))
    elif variant is AmunVariant.PARTIAL:
        keep = torch.ones(len(forget), dtype=torch.bool)
        if unlabeled is not None:
            keep[unlabeled] = False
        if bool(keep.any()):
            parts.append((forget.subset(torch.nonzero(keep).squeeze(1), name="forget"), True))
    if int(adversarial.found.sum()) > 0:
        parts.append((adversarial.as_labeled_data(), False))
    if not parts:
        raise InvalidInputError(f"nothing to fine-tune on: no adversarial example was found and variant is "
                                f"{variant.value}")
    union = parts[0][0]
    for part, _ in parts[1:]:
        union = union.concat(part, name="union")
    return union, torch.cat([torch.full((len(part),), flag) for part, flag in parts])


def _likely_misclassified(model: nn.Module, holdout: LabeledData | None, adversarial: AdversarialSet,
                          ctx: UnlearnContext) -> Tensor:
    """The positions of D_F that a model which never saw them would most likely misclassify: as
    many as the held-out error rate of ``model`` predicts (round((1 - acc(H)) |D_F|)), nearest the
    decision boundary first (smallest adversarial distance; already-misclassified samples have
    distance 0, failed searches count as farthest)."""
    assert holdout is not None
    logits = predict_logits(model, holdout.x, device=ctx.device)
    error = float((logits.argmax(dim=1) != holdout.y.cpu()).double().mean())
    count = round(error * len(adversarial.y_true))
    distance = torch.where(adversarial.found, adversarial.distance_l2.float(), torch.full_like(
        adversarial.distance_l2.float(), float("inf")))
    return torch.argsort(distance, stable=True)[:count].sort().values


def _retain_subset(retain: LabeledData, forget_side: int, config: AmunConfig, ctx: UnlearnContext) -> LabeledData:
    """All of D_R, or (``retain_ratio``) a random subset of ``retain_ratio * forget_side`` samples
    drawn once from ``ctx.generator``."""
    if config.retain_ratio is None:
        return retain
    size = min(len(retain), max(1, round(config.retain_ratio * forget_side)))
    if size == len(retain):
        return retain
    return retain.subset(torch.randperm(len(retain), generator=ctx.generator)[:size].sort().values, name="retain")
