"""FT: fine-tune on the retain set only (the "catastrophic forgetting" baseline), and the
fine-tuning pieces every baseline shares.

Method (as in the AMUN paper's tables, after Warnecke et al. 2023 / Jia et al. 2023 "Model
Sparsity Can Simplify Machine Unlearning"): minimise the plain cross-entropy
``L = CE(f(x), y)`` over D_R for a few epochs, starting from the trained model. D_F is never
seen, so FT needs D_R (it is refused without it).

Shared here (used by every fine-tuning baseline): :class:`FinetuneConfig`, the optimiser and
schedule knobs and their one conversion to a :class:`~amun_plugin.training.TrainConfig`;
``next_seed`` (seeds derived from the run's generator) and ``train_summary``.

Defaults chosen for small models (the benchmark tunes ``lr`` per method): SGD, momentum 0.9,
weight decay 5e-4, batch 128 (the paper's AMUN recipe), 10 epochs at a constant lr of 0.01
(the unlearning epochs and lr of Jia et al.'s FT/RL/l1-sparse runs, which keep lr constant).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
from torch import nn

from amun_plugin.training import Augment, Schedule, TrainConfig, TrainStats, train_model
from amun_plugin.unlearn.base import Capabilities, ForgetRequest, UnlearnContext, Unlearner

__all__ = ["Finetune", "FinetuneConfig", "next_seed", "train_summary"]

_SEED_BOUND = 2**62


@dataclass(frozen=True)
class FinetuneConfig:
    """Optimiser and schedule of a fine-tuning unlearner (the base of every baseline's config).

    Attributes:
        epochs: passes over the method's training data. (Default: 10)
        lr: SGD learning rate at the start. (Default: 0.01)
        momentum, weight_decay: SGD settings. (Default: 0.9, 5e-4)
        batch_size: samples per step. (Default: 128)
        schedule: "constant", "step" (x ``gamma`` every ``step_size`` epochs) or "cosine".
            (Default: "constant")
        step_size, gamma: the step schedule. (Default: 1, 0.1)
        augment: training augmentation of image batches ("none", "crop", "crop_flip").
            (Default: "none")
    """

    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    schedule: Schedule = Schedule.CONSTANT
    step_size: int = 1
    gamma: float = 0.1
    augment: Augment = Augment.NONE

    def __post_init__(self) -> None:
        self.train_config()  # validates every field now, with TrainConfig's messages

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The :class:`TrainConfig` these knobs describe (``overrides`` replace fields)."""
        values = {f.name: getattr(self, f.name) for f in fields(FinetuneConfig)}
        values.update(overrides)
        return TrainConfig(**values)


def next_seed(ctx: UnlearnContext) -> int:
    """A fresh seed drawn from the run's generator (for a second shuffle, a relabelling stream...)."""
    return int(torch.randint(0, _SEED_BOUND, (1,), generator=ctx.generator).item())


def train_summary(stats: TrainStats, prefix: str = "train") -> dict[str, Any]:
    """The statistics of one :func:`train_model` call as a flat, JSON-friendly mapping."""
    return {
        f"{prefix}_epochs": stats.epochs,
        f"{prefix}_steps": stats.steps,
        f"{prefix}_seconds": stats.seconds,
        f"{prefix}_final_loss": stats.final_loss,
        f"{prefix}_loss_per_epoch": list(stats.loss_per_epoch),
        f"{prefix}_lr_per_epoch": list(stats.lr_per_epoch),
    }


class Finetune(Unlearner):
    """FT: ``L = CE(f(x), y)`` on D_R only (needs D_R)."""

    name = "ft"
    config_class = FinetuneConfig
    description = "FT: fine-tune on the retain set with cross-entropy (needs D_R)"
    capabilities = Capabilities(requires_retain=True)

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: FinetuneConfig = self.config
        assert request.retain is not None  # check_request refused the request otherwise
        stats = train_model(
            model, request.retain, config.train_config(), device=ctx.device, seed=ctx.seed,
            progress="FT" if ctx.progress else False,
        )
        return {"retain_size": len(request.retain), **train_summary(stats)}
