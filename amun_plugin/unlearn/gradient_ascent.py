"""GA: Gradient Ascent on the forget set (Thudi et al. 2022; as used by the AMUN paper's tables).

Maximise the cross-entropy of the forget samples, i.e. minimise ``L = -CE(f(x), y)`` over D_F.
With D_R (the AMUN paper's adaptation), each epoch first runs one ordinary pass over D_R
(``L = CE(f(x), y)``), then the ascent pass over D_F; one SGD optimiser and one per-epoch
learning-rate schedule serve both passes.

The D_R pre-pass machinery, :func:`forget_pass_with_retain_prepass`, is shared with boundary
shrink (BS).

Defaults for small models: 5 epochs, SGD lr 1e-3 (constant), momentum 0.9, weight decay 5e-4,
batch 128 — GA diverges quickly, so it gets fewer epochs and a 10x smaller lr than FT/RL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.training import LossFn, Schedule, TrainConfig, TrainStats, make_optimizer, train_model
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.finetune import FinetuneConfig, next_seed, train_summary

__all__ = [
    "EpochStart",
    "GradientAscent",
    "GradientAscentConfig",
    "forget_pass_with_retain_prepass",
    "negative_cross_entropy",
]

EpochStart = Callable[[int, nn.Module], None]
"""``epoch_start(epoch, model)``: called before each forget pass (after that epoch's D_R pass)."""


def negative_cross_entropy(logits: Tensor, y: Tensor, _indices: Tensor) -> Tensor:
    """GA's loss: ``-CE(logits, y)`` (batch mean); logits (B, C), y (B,)."""
    return -F.cross_entropy(logits, y)


def forget_pass_with_retain_prepass(
    model: nn.Module,
    forget: LabeledData,
    retain: LabeledData | None,
    config: TrainConfig,
    ctx: UnlearnContext,
    loss_fn: LossFn,
    epoch_start: EpochStart | None = None,
    progress: str = "forget pass",
) -> dict[str, Any]:
    """For each of ``config.epochs`` epochs: one CE pass over ``retain`` (if given), then
    ``epoch_start(epoch, model)`` (if given), then one pass over ``forget`` with ``loss_fn``.

    One SGD optimiser is shared by both passes, and the schedule is stepped once per epoch: the
    D_R pass runs at the lr of the epoch it precedes. Returns the forget pass's statistics
    (``train_*``) and the D_R passes' (``retain_loss_per_epoch``, ``retain_lr_per_epoch``).
    """
    optimizer = make_optimizer(model, config)
    retain_passes: list[TrainStats] = []
    # A STEP schedule with gamma 1 never changes the lr (torch's chainable form keeps the
    # optimiser's current lr), so the D_R pass leaves the outer schedule in charge.
    held_lr = replace(config, epochs=1, schedule=Schedule.STEP, gamma=1.0)

    def begin(epoch: int) -> None:
        if retain is not None:
            retain_passes.append(train_model(
                model, retain, held_lr, device=ctx.device, seed=next_seed(ctx), optimizer=optimizer,
            ))
        if epoch_start is not None:
            epoch_start(epoch, model)

    def end(epoch: int, _model: nn.Module) -> None:
        if epoch + 1 < config.epochs:
            begin(epoch + 1)

    begin(0)
    stats = train_model(
        model, forget, config, device=ctx.device, seed=ctx.seed, loss_fn=loss_fn, epoch_end=end,
        optimizer=optimizer, progress=progress if ctx.progress else False,
    )
    return {
        "forget_size": len(forget),
        "retain_passes": len(retain_passes),
        "retain_loss_per_epoch": [s.loss_per_epoch[0] for s in retain_passes],
        "retain_lr_per_epoch": [s.lr_per_epoch[0] for s in retain_passes],
        **train_summary(stats),
    }


@dataclass(frozen=True)
class GradientAscentConfig(FinetuneConfig):
    """GA's knobs (see :class:`FinetuneConfig`); defaults 5 epochs, lr 1e-3."""

    epochs: int = 5
    lr: float = 1e-3


class GradientAscent(Unlearner):
    """GA: ascend the forget loss, after a D_R pass each epoch when D_R is given."""

    name = "ga"
    config_class = GradientAscentConfig
    description = "GA: gradient ascent on D_F (each epoch preceded by a D_R pass when available)"

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: GradientAscentConfig = self.config
        return forget_pass_with_retain_prepass(
            model, request.forget, request.retain, config.train_config(), ctx, negative_cross_entropy, progress="GA",
        )
