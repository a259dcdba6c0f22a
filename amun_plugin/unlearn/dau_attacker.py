"""The attacker of Discriminative Adversarial Unlearning and its Barlow-Twins regulariser
(Sharma, Zhou, Ji, Chen, "Discriminative Adversarial Unlearning"; ``papers/`` and REFERENCE.md).

Pure pieces, no training loop (that is :mod:`amun_plugin.unlearn.dau`):

* :func:`logits_and_sensitivity`: the defender's logits D(x) (B, C) and the finite-difference
  input sensitivity s(x) = mean_k |D(x + h u_k) - D(x)| / h over K Gaussian draws u_k
  (K = 10, h = 1e-3), per class (B, C). D is the logit vector.
* :func:`attack_features`: per class the triple (logit, one-hot label, sensitivity): (B, C, 3).
* :class:`MembershipAttacker`: BatchNorm over the 3C features -> one token of 3 features per
  class -> Linear(3 -> width) + GELU -> transformer encoder (``layers`` layers, ``heads`` heads,
  FFN ``ffn``, dropout) -> flatten -> MLP -> 2 logits (0 = non-member, 1 = member).
  The authors' sizes: width 64, 3 layers, 4 heads, FFN 128, dropout 0.2.
* :func:`barlow_twins_loss`: with F, V (B, D) standardised per feature over the batch
  (biased variance), C = (1/B) sum_b v_b f_b^T (D x D) and
  L_BT = sum_i (C_ii - 1)^2 + lambda * sum_{i != j} C_ij^2, lambda = 5e-3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError

__all__ = [
    "MembershipAttacker",
    "attack_features",
    "barlow_twins_loss",
    "logits_and_sensitivity",
    "standardize",
]


def standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """(z - batch mean) / sqrt(batch variance + eps) per column; z (B, D), biased variance."""
    centred = z - z.mean(dim=0, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(dim=0, keepdim=True) + eps)


def barlow_twins_loss(f: Tensor, v: Tensor, off_diagonal_weight: float = 5e-3, eps: float = 1e-5) -> Tensor:
    """L_BT between forget features ``f`` (B, D) and validation features ``v`` (B, D), B >= 2.

    C = (1/B) sum_b v_b f_b^T on standardised features; returns the scalar
    sum_i (C_ii - 1)^2 + off_diagonal_weight * sum_{i != j} C_ij^2. Gradients flow to both inputs.
    """
    if f.shape != v.shape or f.ndim != 2 or f.shape[0] < 2:
        raise InvalidInputError(
            f"Barlow-Twins needs two (B, D) feature batches of equal shape with B >= 2, "
            f"got {tuple(f.shape)} and {tuple(v.shape)}"
        )
    c = standardize(v, eps).T @ standardize(f, eps) / f.shape[0]
    diagonal = torch.diagonal(c)
    on = (diagonal - 1.0).pow(2).sum()
    off = c.pow(2).sum() - diagonal.pow(2).sum()
    return on + off_diagonal_weight * off


def logits_and_sensitivity(
    model: nn.Module,
    x: Tensor,
    draws: int = 10,
    step: float = 1e-3,
    generator: torch.Generator | None = None,
    sensitivity_grad: bool = True,
) -> tuple[Tensor, Tensor]:
    """``(D(x), s(x))``, both (B, C): the logits and mean_k |D(x + step u_k) - D(x)| / step.

    ``u_k`` (k < ``draws``) are standard normal draws of x's shape from ``generator`` (CPU). The
    model runs in whatever mode the caller set; gradients flow through the logits, and through
    s(x) too unless ``sensitivity_grad`` is False (which saves the memory of ``draws`` extra
    backward graphs).
    """
    logits = model(x)
    noise = torch.randn((draws, *x.shape), generator=generator).to(x.device, x.dtype)
    with torch.set_grad_enabled(torch.is_grad_enabled() and sensitivity_grad):
        perturbed = model((x.unsqueeze(0) + step * noise).flatten(0, 1)).view(draws, *logits.shape)
        sensitivity = ((perturbed - logits.unsqueeze(0)).abs() / step).mean(dim=0)
    return logits, sensitivity


def attack_features(logits: Tensor, y: Tensor, sensitivity: Tensor) -> Tensor:
    """Per-class triples (logit, one-hot label, sensitivity): (B, C), (B,), (B, C) -> (B, C, 3)."""
    one_hot = F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return torch.stack([logits, one_hot, sensitivity], dim=-1)


class MembershipAttacker(nn.Module):
    """(B, C, 3) attack features -> (B, 2) logits of non-member / member (see the module doc)."""

    def __init__(
        self, num_classes: int, width: int = 64, layers: int = 3, heads: int = 4, ffn: int = 128, dropout: float = 0.2
    ) -> None:
        super().__init__()
        if width % heads:
            raise InvalidInputError(f"the attacker width ({width}) must be a multiple of its heads ({heads})")
        self.num_classes = int(num_classes)
        self.norm = nn.BatchNorm1d(3 * self.num_classes)
        self.embed = nn.Sequential(nn.Linear(3, width), nn.GELU())
        block = nn.TransformerEncoderLayer(width, heads, ffn, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(self.num_classes * width, width), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(width, 2),
        )

    def forward(self, features: Tensor) -> Tensor:
        """features (B, C, 3) -> logits (B, 2)."""
        batch = features.shape[0]
        tokens = self.norm(features.reshape(batch, -1)).view(batch, self.num_classes, 3)
        return self.classifier(self.encoder(self.embed(tokens)))
