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

With held-out data (``holdout=``: samples the model never trained on) the fine-tuning is
**calibrated** without any retrained model (:mod:`amun_plugin.unlearn.calibration`): the lr
rises from 0.01 to 0.1 over two epochs, then restarts from the best state at that state's lr,
held for two epochs; the estimated Avg Gap (D_F against held-out data) is checked every quarter
epoch and the best state of both phases is kept; ``lr``, ``epochs``, ``step_size`` and ``gamma``
are then replaced by the calibration's choice (in ``stats["calibration"]``). Without held-out data the
fixed defaults run, with a warning that they may not forget on a strongly memorising model.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar, Iterator, Mapping

import torch
from torch import nn

from amun_plugin.attacks.search import AdversarialSet, SearchConfig, nearest_adversarial
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError
from amun_plugin.training import Augment, Schedule, TrainConfig, train_model
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.calibration import CalibrationConfig, calibrated_finetune, check_holdout, retain_probe

__all__ = ["PAPER_SETTINGS", "Amun", "AmunConfig", "AmunVariant", "build_adversarial_set", "finetune_on_union",
           "uncalibrated_on_purpose"]

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


class AmunVariant(str, Enum):
    FULL = "full"
    ADV_ONLY = "adv_only"


@dataclass(frozen=True)
class AmunConfig:
    """Fine-tuning (epochs, lr, ...), which union to train on (variant), and how D_A is found:
    ``attack`` names a registered attack backend, ``attack_options`` its config, ``search`` the
    Algorithm 1 settings (see ``PAPER_SETTINGS`` for the paper's).

    Attributes (beyond the optimiser's):
        epochs: fine-tuning epochs. (Default: 2; the paper: 10, which the default lr schedule
            makes equivalent)
        lr, momentum, weight_decay, batch_size: SGD of the fine-tuning, as in FinetuneConfig.
            (Default: 0.01, 0.9, 5e-4, 128)
        step_size, gamma: the learning rate times ``gamma`` every ``step_size`` epochs. (Default: 1, 0.1)
        augment: training augmentation of image batches ("none", "crop", "crop_flip"). (Default: "none")
        variant: "full" trains on D_F with D_A (and D_R when given); "adv_only" drops D_F (the
            ablation's union). (Default: "full")
        retain_ratio: with D_R, fine-tune on a random subset of D_R of ``retain_ratio`` x
            (|D_F| + |D_A|) samples (drawn once per request from the seed) instead of all of it;
            cheaper, at some cost in unlearning quality (not benchmarked). (Default: None = all)
        attack, attack_options: the backend finding D_A. (Default: "native_min_norm", {})
        search: Algorithm 1's settings. (Default: automatic eps_init from a 100-sample probe)
        calibration: how the fine-tuning is calibrated when held-out data is given (see
            :class:`~amun_plugin.unlearn.calibration.CalibrationConfig`); None = never calibrate.
    """

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

    def __post_init__(self) -> None:
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
    reuses_adversarial: ClassVar[bool] = True
    """A continuous-unlearning session hands this method D_A computed once on the original model."""
    calibrates: ClassVar[bool] = True
    """Given held-out data, the method calibrates itself on it (the suites' retrain-free mode
    then runs it calibrated instead of selecting a grid point)."""

    def check_request(self, request: ForgetRequest) -> None:
        super().check_request(request)
        if request.holdout is not None:
            check_holdout(request.holdout, request.forget, request.retain)

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: AmunConfig = self.config
        start = time.perf_counter()
        adversarial = request.adversarial
        if adversarial is None:
            adversarial = build_adversarial_set(model, request.forget, config, ctx)
        search_seconds = time.perf_counter() - start
        retain = request.retain if self.uses_retain else None
        before_step, hook_stats = self._finetune_hook(model, request, ctx)
        calibrate = request.holdout is not None and config.calibration is not None
        if not calibrate and request.holdout is None:
            warnings.warn(f"{self.name}: {_NO_HOLDOUT}, so the fine-tuning runs uncalibrated at lr {config.lr:g}; "
                          "on a strongly memorising model it may not forget; pass holdout=<samples never trained "
                          "on> to calibrate", stacklevel=3)
        holdout = None
        if calibrate and request.holdout is not None:
            holdout = check_holdout(request.holdout, request.forget, request.retain)
        stats = finetune_on_union(model, request.forget, retain, adversarial, config, ctx, before_step, holdout,
                                  reference=request.reference)
        return {
            **hook_stats,
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


_NO_HOLDOUT = "no holdout given"


@contextmanager
def uncalibrated_on_purpose() -> Iterator[None]:
    """Silence AMUN's "no holdout given" warning inside the block, for callers that run fixed
    options deliberately (the suites' oracle mode, fixed-option continuous chains)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{_NO_HOLDOUT}.*")
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
) -> dict[str, Any]:
    """Fine-tune ``model`` in place on the variant's union; D_A is not augmented.
    ``before_step(model)`` runs between backward and each optimizer step (e.g. a SalUn mask).
    With ``holdout`` (and ``config.calibration``), the fine-tuning is calibrated on it, against
    ``reference``'s accuracies (default: ``model``'s before fine-tuning)."""
    if len(adversarial.y_true) != len(forget):
        raise InvalidInputError(
            f"the adversarial set has {len(adversarial.y_true)} samples but the forget set has {len(forget)}"
        )
    parts: list[tuple[LabeledData, bool]] = []
    if config.variant is AmunVariant.FULL:
        parts.append((forget, True))
    if int(adversarial.found.sum()) > 0:
        parts.append((adversarial.as_labeled_data(), False))
    if retain is not None:
        parts.insert(0, (_retain_subset(retain, sum(len(p) for p, _ in parts), config, ctx), True))
    if not parts:
        raise InvalidInputError("nothing to fine-tune on: no adversarial example was found and variant is adv_only")
    union = parts[0][0]
    for part, _ in parts[1:]:
        union = union.concat(part, name="union")
    augment_mask = torch.cat([torch.full((len(part),), flag) for part, flag in parts])
    start = time.perf_counter()
    progress = "AMUN fine-tuning" if ctx.progress else False
    out: dict[str, Any] = {}
    if holdout is not None and config.calibration is not None:
        probes = (forget, holdout, retain_probe(retain, len(holdout), ctx.seed))
        out = calibrated_finetune(model, union, augment_mask, probes, config.train_config(), config.calibration,
                                  device=ctx.device, seed=ctx.seed, before_step=before_step, progress=progress,
                                  reference=reference)
        chosen = out["calibration"]["chosen"]
        out.update({"calibrated_lr": chosen["lr"], "calibrated_step": chosen["step"],
                    "calibration_estimated_gap": chosen["estimated_gap"],
                    "calibration_checks": out["calibration"]["checks"],
                    "calibration_steps": out["calibration"]["steps"]})
    else:
        train_stats = train_model(model, union, config.train_config(), device=ctx.device, seed=ctx.seed,
                                  augment_mask=augment_mask, before_step=before_step, progress=progress)
        out["finetune_final_loss"] = train_stats.final_loss
    return {
        "seconds_finetune": time.perf_counter() - start,
        "finetune_size": len(union),
        "retain_used": len(parts[0][0]) if retain is not None else 0,
        "adversarial_used": int(adversarial.found.sum()),
        **out,
    }


def _retain_subset(retain: LabeledData, forget_side: int, config: AmunConfig, ctx: UnlearnContext) -> LabeledData:
    """All of D_R, or (``retain_ratio``) a random subset of ``retain_ratio * forget_side`` samples
    drawn once from ``ctx.generator``."""
    if config.retain_ratio is None:
        return retain
    size = min(len(retain), max(1, round(config.retain_ratio * forget_side)))
    if size == len(retain):
        return retain
    return retain.subset(torch.randperm(len(retain), generator=ctx.generator)[:size].sort().values, name="retain")
