"""AMUN+SalUn: AMUN's fine-tuning with SalUn's saliency mask on every update
(Ebrahimpour-Boroojeny et al., 2025, "AMUN: Adversarial Machine UNlearning", App. D).

Exactly AMUN (:mod:`amun_plugin.unlearn.amun`: fine-tune with plain cross-entropy on
D_R ∪ D_F ∪ D_A, or D_F ∪ D_A without D_R, D_A = nearest adversarial examples labelled with the
model's wrong predictions), except that the saliency mask m of the model before unlearning
(:mod:`amun_plugin.unlearn.saliency`: |sum of grad of -CE on D_F|, top-r elements) multiplies
every update, weight decay included, so only the top-r weights move. All AMUN knobs apply,
plus ``saliency_ratio`` r (default 0.5) and ``saliency_batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from torch import nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.training import TrainConfig
from amun_plugin.unlearn.amun import Amun, AmunConfig
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext
from amun_plugin.unlearn.saliency import mask_summary, masked_update_hook, saliency_mask
from amun_plugin.unlearn.salun import check_saliency_ratio

__all__ = ["AmunSalUn", "AmunSalUnConfig"]


@dataclass(frozen=True)
class AmunSalUnConfig(AmunConfig):
    """AMUN's config plus the mask.

    Attributes:
        saliency_ratio: r, the fraction of parameter elements that may change. (Default: 0.5)
        saliency_batch_size: forget samples per gradient batch when computing the mask. (Default: 128)

    ``weight_decay`` is applied by the mask hook (so masked weights do not decay); the optimiser
    built from :meth:`train_config` therefore has weight decay 0.
    """

    saliency_ratio: float = 0.5
    saliency_batch_size: int = 128

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)  # AmunConfig's own checks, if it has any
        if parent is not None:
            parent()
        check_saliency_ratio(self.saliency_ratio)
        if self.saliency_batch_size < 1:
            raise InvalidInputError(f"saliency_batch_size must be >= 1, got {self.saliency_batch_size}")

    def train_config(self) -> TrainConfig:
        return replace(super().train_config(), weight_decay=0.0)


class AmunSalUn(Amun):
    """AMUN whose fine-tuning updates touch only the top-r salient weights."""

    name = "amun_salun"
    config_class = AmunSalUnConfig
    description = "AMUN+SalUn: AMUN's fine-tuning restricted to the weights most salient for D_F"

    def _finetune_hook(
        self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext
    ) -> tuple[Callable[[nn.Module], None] | None, dict[str, Any]]:
        config: AmunSalUnConfig = self.config
        mask = saliency_mask(model, request.forget, config.saliency_ratio, config.saliency_batch_size)
        return masked_update_hook(mask, config.weight_decay), mask_summary(mask)
