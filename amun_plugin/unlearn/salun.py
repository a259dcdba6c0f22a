"""SalUn: Random Labelling restricted to the salient weights (Fan et al., ICLR 2024).

First the saliency mask m is computed on the model before unlearning
(:mod:`amun_plugin.unlearn.saliency`: |sum of grad of -CE on D_F|, eval mode, global top-r
elements kept). Then RL runs (:func:`~amun_plugin.unlearn.random_label.train_with_random_labels`):

    with D_R:     L = CE(f(x), y) on D_R  ∪  CE(f(x), y') on D_F,  y' random other label
    without D_R:  L = CE(f(x), y') on D_F

with every update multiplied by m (weight decay included), so only the top-r weights move.

Defaults: r = 0.5 (the paper's default; it searches [0.1, 0.9]), and RL's fine-tuning defaults
(10 epochs, SGD lr 0.01 constant, momentum 0.9, weight decay 5e-4, batch 128).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.finetune import FinetuneConfig
from amun_plugin.unlearn.random_label import train_with_random_labels
from amun_plugin.unlearn.saliency import mask_summary, masked_update_hook, saliency_mask

__all__ = ["SalUn", "SalUnConfig", "check_saliency_ratio"]


def check_saliency_ratio(ratio: float) -> None:
    """Raise :class:`InvalidInputError` unless 0 < ratio <= 1."""
    if not 0.0 < ratio <= 1.0:
        raise InvalidInputError(f"saliency_ratio must lie in (0, 1], got {ratio}")


@dataclass(frozen=True)
class SalUnConfig(FinetuneConfig):
    """SalUn's knobs: RL's (see :class:`FinetuneConfig`) plus the mask.

    Attributes:
        saliency_ratio: r, the fraction of parameter elements that may change. (Default: 0.5)
        saliency_batch_size: forget samples per gradient batch when computing the mask. (Default: 128)
    """

    saliency_ratio: float = 0.5
    saliency_batch_size: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        check_saliency_ratio(self.saliency_ratio)
        if self.saliency_batch_size < 1:
            raise InvalidInputError(f"saliency_batch_size must be >= 1, got {self.saliency_batch_size}")


class SalUn(Unlearner):
    """SalUn: RL whose updates touch only the top-r salient weights."""

    name = "salun"
    config_class = SalUnConfig
    description = "SalUn: random-label fine-tuning restricted to the weights most salient for D_F"

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: SalUnConfig = self.config
        mask = saliency_mask(model, request.forget, config.saliency_ratio, config.saliency_batch_size)
        hook = masked_update_hook(mask, config.weight_decay)
        stats = train_with_random_labels(
            model, request.forget, request.retain, config.train_config(weight_decay=0.0), ctx,
            before_step=hook, progress="SalUn",
        )
        return {**mask_summary(mask), **stats}
