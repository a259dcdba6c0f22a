"""ART's membership-inference attacks as evaluators (adapters; ART does the attacking).

The Adversarial Robustness Toolbox (https://github.com/Trusted-AI/adversarial-robustness-toolbox),
``art.attacks.inference.membership_inference``:
  * ``art_blackbox`` — ``MembershipInferenceBlackBox`` (Shokri et al. style attack model on the
    target's outputs and the one-hot label). D_T is split in two seeded halves: the attack is fitted
    on shadow members (|T_fit| random D_R samples) vs T_fit, and scored on D_F vs T_eval (FT) and on
    the unused D_R vs T_eval (RT). Scores: the attack model's member probability.
  * ``art_rule_based`` — ``MembershipInferenceBlackBoxRuleBased``: member iff the prediction is
    correct (no fitting). Scores are 0/1, so its AUC is the balanced accuracy.
  * ``art_label_only`` — ``LabelOnlyDecisionBoundary`` (Choquette-Choo et al., 2021): HopSkipJump
    distance to the decision boundary, threshold calibrated on shadow data. Expensive (many queries
    per sample): it runs on ``max_samples`` points per set with a tiny HopSkipJump budget, and is
    opt-in (no default audit runs it).

Metrics (percent): FT_AUC, RT_AUC (equal-size subsamples, ``subsample_seeds`` draws), the share of
D_F predicted member (FT_member_rate) and, for the black-box attack, FT/RT TPR at 0.1% and 1% FPR.
All conversions go through :mod:`amun_plugin.art_interop`; labels are one-hot; ART's predictions
are batched; the model's device, train/eval flags and the global RNGs are restored afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from amun_plugin.art_interop import art_session, import_art, labeled_to_art
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.evaluate.roc import balanced_auc, membership_tpr_metrics

__all__ = [
    "ArtBlackBoxConfig",
    "ArtBlackBoxEvaluator",
    "ArtLabelOnlyConfig",
    "ArtLabelOnlyEvaluator",
    "ArtRuleBasedConfig",
    "ArtRuleBasedEvaluator",
    "shadow_split",
]

_MEMBERSHIP = "art.attacks.inference.membership_inference"


@dataclass(frozen=True)
class ShadowSplit:
    """Disjoint sets of one audit: shadow members/non-members to fit on, the rest to score."""

    fit_members: LabeledData
    fit_nonmembers: LabeledData
    retain: LabeledData
    forget: LabeledData
    test: LabeledData


def shadow_split(data: AuditData, seed: int, max_samples: int | None = None) -> ShadowSplit:
    """Halve D_T (seeded) into T_fit / T_eval; shadow members = |T_fit| random D_R samples (fewer
    when D_R is small), the other D_R samples are scored. ``max_samples`` caps every set's size."""
    if len(data.test) < 4 or len(data.retain) < 4:
        raise InvalidInputError("ART membership attacks need at least 4 retain and 4 test samples")
    rng = np.random.default_rng(seed)
    test_order, retain_order = rng.permutation(len(data.test)), rng.permutation(len(data.retain))
    half = min(len(data.test) // 2, len(data.retain) // 2)

    def take(part: LabeledData, order: np.ndarray, name: str) -> LabeledData:
        return part.subset(np.sort(order[:max_samples]), name=name)  # order[:None] keeps all

    forget = take(data.forget, rng.permutation(len(data.forget)), "forget")
    return ShadowSplit(fit_members=take(data.retain, retain_order[:half], "fit_members"),
                       fit_nonmembers=take(data.test, test_order[:half], "fit_nonmembers"),
                       retain=take(data.retain, retain_order[half:], "retain"),
                       forget=forget, test=take(data.test, test_order[half:], "test"))


def _scored_metrics(parts: dict[str, np.ndarray], seed: int, rounds: int) -> dict[str, float]:
    """FT / RT AUC on equal-size subsamples and the share of D_F scored >= 0.5 (predicted member)."""
    return {
        "FT_AUC": balanced_auc(parts["forget"], parts["test"], sizes_from=parts, seed=seed, rounds=rounds),
        "RT_AUC": balanced_auc(parts["retain"], parts["test"], sizes_from=parts, seed=seed, rounds=rounds),
        "FT_member_rate": float(100.0 * np.mean(parts["forget"] >= 0.5)),
    }


class _ArtMembershipEvaluator(Evaluator):
    """Owns the ART session; a subclass writes ``_attack(classifier, split, seed) -> scores``."""

    def _evaluate(self, model: nn.Module, data: AuditData, device: torch.device, seed: int) -> EvaluationResult:
        split = shadow_split(data, seed, self.config.max_samples)
        with art_session(model, data.forget.input_shape, data.num_classes, device, seed) as classifier:
            parts = self._attack(classifier, split)
        metrics = _scored_metrics(parts, seed, self.config.subsample_seeds)
        metrics.update(self._extra_metrics(parts))
        return EvaluationResult(metrics, parts)

    def _attack(self, classifier: Any, split: ShadowSplit) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _extra_metrics(self, parts: dict[str, np.ndarray]) -> dict[str, float]:
        return {}


@dataclass(frozen=True)
class ArtBlackBoxConfig:
    """Options of :class:`ArtBlackBoxEvaluator`.

    Attributes:
        attack_model_type: ART's attack model: "nn", "rf", "gb", "lr", "dt", "knn" or "svm". (Default: "rf")
        input_type: what the attack model reads: "prediction" (the model's logits) or "loss". (Default: "prediction")
        nn_epochs: training epochs of the "nn" attack model (unused by the others). (Default: 100)
        max_samples: cap on the samples of every set (shadow, D_R, D_F, D_T halves); None = all. (Default: None)
        subsample_seeds: seeded equal-size subsample draws averaged into each AUC. (Default: 3)
    """

    attack_model_type: str = "rf"
    input_type: str = "prediction"
    nn_epochs: int = 100
    max_samples: int | None = None
    subsample_seeds: int = 3

    def __post_init__(self) -> None:
        if self.attack_model_type not in ("nn", "rf", "gb", "lr", "dt", "knn", "svm"):
            raise ValueError(f"unknown attack_model_type {self.attack_model_type!r}")
        if self.input_type not in ("prediction", "loss"):
            raise ValueError(f"input_type must be 'prediction' or 'loss', got {self.input_type!r}")
        _check_common(self.max_samples, self.subsample_seeds)


class ArtBlackBoxEvaluator(_ArtMembershipEvaluator):
    name = "art_blackbox"
    config_class: ClassVar[type] = ArtBlackBoxConfig
    description = "ART MembershipInferenceBlackBox fitted on D_R / D_T shadows: FT and RT AUC"

    def _attack(self, classifier: Any, split: ShadowSplit) -> dict[str, np.ndarray]:
        config: ArtBlackBoxConfig = self.config
        attack = import_art(_MEMBERSHIP).MembershipInferenceBlackBox(
            classifier, input_type=config.input_type, attack_model_type=config.attack_model_type,
            nn_model_epochs=int(config.nn_epochs))
        x_in, y_in = labeled_to_art(split.fit_members)
        x_out, y_out = labeled_to_art(split.fit_nonmembers)
        attack.fit(x_in, y_in, x_out, y_out)
        return {name: np.asarray(attack.infer(*labeled_to_art(part), probabilities=True), dtype=np.float64).ravel()
                for name, part in (("retain", split.retain), ("forget", split.forget), ("test", split.test))}

    def _extra_metrics(self, parts: dict[str, np.ndarray]) -> dict[str, float]:
        return membership_tpr_metrics(parts)


@dataclass(frozen=True)
class ArtRuleBasedConfig:
    """Options of :class:`ArtRuleBasedEvaluator`.

    Attributes:
        max_samples: cap on the samples of every set (D_R, D_F, D_T halves); None = all. (Default: None)
        subsample_seeds: seeded equal-size subsample draws averaged into each AUC. (Default: 3)
    """

    max_samples: int | None = None
    subsample_seeds: int = 3

    def __post_init__(self) -> None:
        _check_common(self.max_samples, self.subsample_seeds)


class ArtRuleBasedEvaluator(_ArtMembershipEvaluator):
    name = "art_rule_based"
    config_class: ClassVar[type] = ArtRuleBasedConfig
    description = "ART MembershipInferenceBlackBoxRuleBased (member iff correctly classified)"

    def _attack(self, classifier: Any, split: ShadowSplit) -> dict[str, np.ndarray]:
        attack = import_art(_MEMBERSHIP).MembershipInferenceBlackBoxRuleBased(classifier)
        return {name: np.asarray(attack.infer(*labeled_to_art(part)), dtype=np.float64).ravel()
                for name, part in (("retain", split.retain), ("forget", split.forget), ("test", split.test))}


@dataclass(frozen=True)
class ArtLabelOnlyConfig:
    """Options of :class:`ArtLabelOnlyEvaluator`; max_iter .. init_size are HopSkipJump's budget,
    used for both the threshold calibration and the scoring.

    Attributes:
        max_samples: samples per set (shadow halves for calibration, D_R, D_F, D_T to score); None = all.
            (Default: 20)
        max_iter: HopSkipJump iterations per sample. (Default: 2)
        max_eval: HopSkipJump's most model queries per gradient estimate. (Default: 100)
        init_eval: HopSkipJump's first number of queries per gradient estimate. (Default: 10)
        init_size: HopSkipJump's most random trials for an initial adversarial point. (Default: 50)
        subsample_seeds: seeded equal-size subsample draws averaged into each AUC. (Default: 3)
    """

    max_samples: int | None = 20
    max_iter: int = 2
    max_eval: int = 100
    init_eval: int = 10
    init_size: int = 50
    subsample_seeds: int = 3

    def __post_init__(self) -> None:
        _check_common(self.max_samples, self.subsample_seeds)
        if min(self.max_iter, self.max_eval, self.init_eval, self.init_size) < 1:
            raise ValueError("max_iter, max_eval, init_eval and init_size must be >= 1")


class ArtLabelOnlyEvaluator(_ArtMembershipEvaluator):
    name = "art_label_only"
    config_class: ClassVar[type] = ArtLabelOnlyConfig
    description = "ART LabelOnlyDecisionBoundary (HopSkipJump distance; slow, subsampled, opt-in)"

    def _attack(self, classifier: Any, split: ShadowSplit) -> dict[str, np.ndarray]:
        config: ArtLabelOnlyConfig = self.config
        budget = {"max_iter": config.max_iter, "max_eval": config.max_eval, "init_eval": config.init_eval,
                  "init_size": config.init_size, "verbose": False}
        attack = import_art(_MEMBERSHIP).LabelOnlyDecisionBoundary(classifier)
        fresh_state = np.random.RandomState
        np.random.RandomState = _SeededRandomState  # type: ignore[misc]  # HopSkipJump makes an unseeded one
        try:
            attack.calibrate_distance_threshold(*labeled_to_art(split.fit_members),
                                                *labeled_to_art(split.fit_nonmembers), **budget)
            return {name: np.asarray(attack.infer(*labeled_to_art(part), **budget), dtype=np.float64).ravel()
                    for name, part in (("retain", split.retain), ("forget", split.forget), ("test", split.test))}
        finally:
            np.random.RandomState = fresh_state  # type: ignore[misc]


class _SeededRandomState(np.random.RandomState):
    """``np.random.RandomState`` whose unseeded construction draws its seed from numpy's global RNG
    (seeded by ``art_session``): HopSkipJump's "fresh" random state becomes reproducible."""

    def __init__(self, seed: Any = None) -> None:
        super().__init__(np.random.randint(2**31) if seed is None else seed)


def _check_common(max_samples: int | None, subsample_seeds: int) -> None:
    if max_samples is not None and max_samples < 2:
        raise ValueError(f"max_samples must be >= 2 or null, got {max_samples}")
    if subsample_seeds < 1:
        raise ValueError(f"subsample_seeds must be >= 1, got {subsample_seeds}")
