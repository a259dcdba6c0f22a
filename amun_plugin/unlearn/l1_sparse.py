"""l1-sparse: fine-tuning on D_R with a decaying L1 penalty (Jia et al., "Model Sparsity Can
Simplify Machine Unlearning", NeurIPS 2023; as in the AMUN paper's tables).

During epoch t = 0, ..., T - 1 the model minimises over D_R

    L = CE(f(x), y) + alpha_t * ||theta||_1,      alpha_t = alpha_0 * (1 - t / T),

where ||theta||_1 sums |w| over every trainable parameter (weights and biases) and T is the
number of epochs. D_F is never seen, so l1-sparse needs D_R (it is refused without it).

Defaults: alpha_0 = 5e-4 (the paper's), 10 epochs, SGD lr 0.01 (constant), momentum 0.9,
weight decay 5e-4, batch 128.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.training import train_model
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.finetune import FinetuneConfig, train_summary

__all__ = ["L1Sparse", "L1SparseConfig", "l1_coefficient", "l1_norm"]


def l1_coefficient(alpha0: float, epoch: int, epochs: int) -> float:
    """alpha_t = alpha_0 * (1 - t / T) for epoch ``t`` (from 0) of ``T`` epochs."""
    return float(alpha0) * (1.0 - epoch / epochs)


def l1_norm(model: nn.Module) -> Tensor:
    """||theta||_1 over the trainable parameters of ``model`` (a scalar with gradient)."""
    return torch.stack([p.abs().sum() for p in model.parameters() if p.requires_grad]).sum()


@dataclass(frozen=True)
class L1SparseConfig(FinetuneConfig):
    """l1-sparse's knobs (see :class:`FinetuneConfig`) plus the penalty.

    Attributes:
        alpha: alpha_0, the L1 coefficient of the first epoch; it decays linearly. (Default: 5e-4)
    """

    alpha: float = 5e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise InvalidInputError(f"alpha must be >= 0, got {self.alpha}")


class _L1Loss:
    """CE plus the current epoch's alpha times ||theta||_1; ``set_epoch`` moves alpha on."""

    def __init__(self, model: nn.Module, alpha0: float, epochs: int) -> None:
        self.model, self.alpha0, self.epochs = model, alpha0, epochs
        self.alphas = [l1_coefficient(alpha0, 0, epochs)]

    def set_epoch(self, epoch: int) -> None:
        self.alphas.append(l1_coefficient(self.alpha0, epoch, self.epochs))

    def __call__(self, logits: Tensor, y: Tensor, _indices: Tensor) -> Tensor:
        return F.cross_entropy(logits, y) + self.alphas[-1] * l1_norm(self.model)


class L1Sparse(Unlearner):
    """l1-sparse: FT on D_R with a linearly decaying L1 penalty (needs D_R)."""

    name = "l1_sparse"
    config_class = L1SparseConfig
    description = "l1-sparse: fine-tune on D_R with an L1 penalty decaying linearly to 0 (needs D_R)"
    requires_retain = True

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Mapping[str, Any]:
        config: L1SparseConfig = self.config
        assert request.retain is not None  # check_request refused the request otherwise
        loss = _L1Loss(model, config.alpha, config.epochs)

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
