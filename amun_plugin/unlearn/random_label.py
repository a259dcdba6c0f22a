"""RL: Random Labelling (Golatkar et al. 2020; as used by Jia et al. 2023 and the AMUN paper).

Every time a forget sample (x, y) is visited it gets a label y' drawn uniformly from the classes
other than y (redrawn at every visit, never the true label), and the model minimises

    with D_R:     L = CE(f(x), y)  on D_R  ∪  CE(f(x), y')  on D_F, shuffled together
    without D_R:  L = CE(f(x), y') on D_F alone

(one mean cross-entropy per mixed batch). :func:`random_other_labels` and
:func:`train_with_random_labels` are shared with SalUn, which is RL with a saliency mask.

Defaults (:class:`~amun_plugin.unlearn.finetune.FinetuneConfig`): 10 epochs, SGD lr 0.01
(constant), momentum 0.9, weight decay 5e-4, batch 128.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.training import TrainConfig, train_model
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.finetune import FinetuneConfig, next_seed, train_summary

__all__ = [
    "RandomLabel",
    "RandomLabelConfig",
    "RelabelLoss",
    "random_other_labels",
    "train_with_random_labels",
]


def random_other_labels(y: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """For labels ``y`` (B,) int64 in [0, C), labels (B,) drawn uniformly from the C - 1 other
    classes: ``(y + k) mod C`` with k uniform in {1, ..., C - 1}; never equal to ``y``.
    The draws come from ``generator`` (CPU); the result is on ``y``'s device."""
    shift = torch.randint(1, int(num_classes), tuple(y.shape), generator=generator)
    return (y + shift.to(y.device)) % int(num_classes)


@dataclass
class RelabelLoss:
    """``loss_fn`` for :func:`~amun_plugin.training.train_model`: mean cross-entropy where the
    samples at data positions ``>= first_forget`` (the forget part) get fresh random other
    labels at every call; the others keep their labels."""

    first_forget: int
    num_classes: int
    generator: torch.Generator

    def __call__(self, logits: Tensor, y: Tensor, indices: Tensor) -> Tensor:
        is_forget = (indices >= self.first_forget).to(y.device)
        random = random_other_labels(y, self.num_classes, self.generator)
        return F.cross_entropy(logits, torch.where(is_forget, random, y))


def train_with_random_labels(
    model: nn.Module,
    forget: LabeledData,
    retain: LabeledData | None,
    train_config: TrainConfig,
    ctx: UnlearnContext,
    before_step: Callable[[nn.Module], None] | None = None,
    progress: str = "RL",
) -> dict[str, Any]:
    """Train ``model`` in place on D_R ∪ D_F (or D_F alone) with D_F randomly relabelled."""
    data = forget if retain is None else retain.concat(forget, name="retain+forget")
    first_forget = 0 if retain is None else len(retain)
    loss = RelabelLoss(first_forget, forget.num_classes, torch.Generator().manual_seed(next_seed(ctx)))
    stats = train_model(
        model, data, train_config, device=ctx.device, seed=ctx.seed, loss_fn=loss,
        before_step=before_step, progress=progress if ctx.progress else False,
    )
    return {"train_size": len(data), **train_summary(stats)}


@dataclass(frozen=True)
class RandomLabelConfig(FinetuneConfig):
    """RL's fine-tuning knobs (see :class:`FinetuneConfig`; defaults 10 epochs, lr 0.01)."""


class RandomLabel(Unlearner):
    """RL: fine-tune with random wrong labels on D_F (mixed with D_R when given)."""

    name = "rl"
    config_class = RandomLabelConfig
    description = "RL: fine-tune with random other labels on D_F (mixed with D_R when available)"

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: RandomLabelConfig = self.config
        return train_with_random_labels(model, request.forget, request.retain, config.train_config(), ctx)
