"""l1-sparse: fine-tuning on D_R with a decaying L1 penalty (Jia et al., "Model Sparsity Can
Simplify Machine Unlearning", NeurIPS 2023; as in the AMUN paper's tables).

During epoch t = 0, ..., T - 1 the model minimises over D_R

    L = CE(f(x), y) + alpha_t * ||theta||_1,      alpha_t = alpha_0 * (1 - t / T),

where ||theta||_1 sums |w| over every trainable parameter (weights and biases) and T is the
number of epochs (``alpha_schedule="decay"``, the SalUn authors' code). D_F is never seen, so
l1-sparse needs D_R (it is refused without it).

``alpha_schedule="grow"`` is the AMUN authors' baseline: their code multiplies the coefficient by
(2 - 2t/T) at every epoch t, so alpha_t = alpha_0 * prod_{k=0..t} (2 - 2k/T): for T = 10 it rises
to 9.7 alpha_0 at t = 4-5 and averages 5.3 alpha_0 over the run, 9.7 times the decaying schedule's
average (0.55 alpha_0). Kept as a named option so that the paper's ranking can be reproduced.

Defaults: alpha_0 = 5e-4 (the paper's), 10 epochs, SGD lr 0.01 (constant), momentum 0.9,
weight decay 5e-4, batch 128.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.training import train_model
from amun_plugin.unlearn.base import Capabilities, ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.finetune import FinetuneConfig, train_summary

__all__ = ["L1Sparse", "L1SparseConfig", "l1_coefficient", "l1_norm"]


def l1_coefficient(alpha0: float, epoch: int, epochs: int, schedule: str = "decay") -> float:
    """alpha_t for epoch ``t`` (from 0) of ``T`` epochs: alpha_0 (1 - t / T) ("decay"), or
    alpha_0 prod_{k=0..t} (2 - 2k / T) ("grow", the AMUN authors' code)."""
    if schedule == "grow":
        return float(alpha0) * math.prod(2.0 - 2.0 * k / epochs for k in range(epoch + 1))
    return float(alpha0) * (1.0 - epoch / epochs)


def l1_norm(model: nn.Module) -> Tensor:
    """||theta||_1 over the trainable parameters of ``model`` (a scalar with gradient)."""
    return torch.stack([p.abs().sum() for p in model.parameters() if p.requires_grad]).sum()


@dataclass(frozen=True)
class L1SparseConfig(FinetuneConfig):
    """l1-sparse's knobs (see :class:`FinetuneConfig`) plus the penalty.

    Attributes:
        alpha: alpha_0, the L1 coefficient of the first epoch. (Default: 5e-4)
        alpha_schedule: "decay" (linearly to 0, the SalUn authors') or "grow" (the AMUN authors'
            code, see the module docstring). (Default: "decay")
    """

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("alpha_schedule",)

    alpha: float = 5e-4
    alpha_schedule: str = "decay"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise InvalidInputError(f"alpha must be >= 0, got {self.alpha}")
        if self.alpha_schedule not in ("decay", "grow"):
            raise InvalidInputError(f"alpha_schedule must be 'decay' or 'grow', got {self.alpha_schedule!r}")


class _L1Loss:
    """CE plus the current epoch's alpha times ||theta||_1; ``set_epoch`` moves alpha on."""

    def __init__(self, model: nn.Module, alpha0: float, epochs: int, schedule: str) -> None:
        self.model, self.alpha0, self.epochs, self.schedule = model, alpha0, epochs, schedule
        self.alphas = [l1_coefficient(alpha0, 0, epochs, schedule)]

    def set_epoch(self, epoch: int) -> None:
        self.alphas.append(l1_coefficient(self.alpha0, epoch, self.epochs, self.schedule))

    def __call__(self, logits: Tensor, y: Tensor, _indices: Tensor) -> Tensor:
        return F.cross_entropy(logits, y) + self.alphas[-1] * l1_norm(self.model)


class L1Sparse(Unlearner):
    """l1-sparse: FT on D_R with a linearly decaying L1 penalty (needs D_R)."""

    name = "l1_sparse"
    config_class = L1SparseConfig
    description = "l1-sparse: fine-tune on D_R with an L1 penalty decaying linearly to 0 (needs D_R)"
    capabilities = Capabilities(requires_retain=True)

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: L1SparseConfig = self.config
        assert request.retain is not None  # check_request refused the request otherwise
        loss = _L1Loss(model, config.alpha, config.epochs, config.alpha_schedule)

        def next_epoch(epoch: int, _model: nn.Module) -> None:
            if epoch + 1 < config.epochs:
                loss.set_epoch(epoch + 1)

        stats = train_model(
            model, request.retain, config.train_config(), device=ctx.device, seed=ctx.seed, loss_fn=loss,
            epoch_end=next_epoch, progress="l1-sparse" if ctx.progress else False,
        )
        return {
            "retain_size": len(request.retain),
            "l1_alpha_per_epoch": list(loss.alphas),
            "l1_norm_final": float(l1_norm(model).item()),
            **train_summary(stats),
        }
