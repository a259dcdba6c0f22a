"""The result of Algorithm 1 (``attacks/search.py``): the adversarial set D_A of a forget set,
one entry per sample, with what the search spent on each."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError

__all__ = ["AdversarialSet"]


@dataclass(frozen=True, eq=False)
class AdversarialSet:
    """The result of :func:`nearest_adversarial`: one entry per input sample, tensors on the CPU.

    Attributes:
        x_adv: (N, ...) float in [0, 1]; x itself for already-misclassified samples, the last
            iterate for failures.
        y_adv: (N,) int64, the model's prediction on x_adv (never the true label).
        y_true: (N,) int64, the true labels.
        eps: (N,) float32 radius (backend's norm) of the round that succeeded; 0 for samples
            already misclassified, +inf for failures.
        distance_l2: (N,) float32, ||x_adv - x||_2 whatever the backend's norm.
        grad_evals: (N,) int64 forward+backward passes spent on each sample.
        forward_evals: (N,) int64 forward-only passes (prediction checks, bisection).
        found: (N,) bool, x_adv is misclassified (includes already-misclassified samples).
        already_misclassified: (N,) bool.
        doublings: (N,) int64 doublings of eps each sample went through.
        backend, seconds, eps_init, num_classes: the backend's name, wall time of the search,
            the first radius used, the task's class count.
    """

    x_adv: Tensor
    y_adv: Tensor
    y_true: Tensor
    eps: Tensor
    distance_l2: Tensor
    grad_evals: Tensor
    forward_evals: Tensor
    found: Tensor
    already_misclassified: Tensor
    doublings: Tensor
    backend: str
    seconds: float
    eps_init: float
    num_classes: int

    def __post_init__(self) -> None:
        n = self.x_adv.shape[0]
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor) and value.shape[:1] != (n,):
                raise InvalidInputError(f"AdversarialSet.{f.name} has shape {tuple(value.shape)}, expected ({n}, ...)")

    def __len__(self) -> int:
        return int(self.x_adv.shape[0])

    def summary(self) -> dict[str, Any]:
        """Counts, L2 distance quantiles over the samples the search fooled (found and not already
        misclassified: those sit at distance 0), mean evaluations per sample, timing."""
        found = self.found
        dist = self.distance_l2[found & ~self.already_misclassified].double()
        failed = (~found).nonzero(as_tuple=True)[0]

        def quantile(q: float) -> float | None:
            return float(torch.quantile(dist, q)) if dist.numel() else None

        return {
            "backend": self.backend,
            "n": len(self),
            "found": int(found.sum()),
            "failures": int(failed.numel()),
            "failed_indices": failed[:20].tolist(),
            "already_misclassified": int(self.already_misclassified.sum()),
            "median_l2": quantile(0.5),
            "p90_l2": quantile(0.9),
            "p99_l2": quantile(0.99),
            "mean_grad_evals": float(self.grad_evals.double().mean()) if len(self) else 0.0,
            "mean_forward_evals": float(self.forward_evals.double().mean()) if len(self) else 0.0,
            "seconds": float(self.seconds),
            "eps_init": float(self.eps_init),
            "max_doublings_used": int(self.doublings.max()) if len(self) else 0,
        }

    def as_labeled_data(self) -> LabeledData:
        """The found adversarial examples with the model's labels y_adv, named "adversarial"."""
        if not bool(self.found.any()):
            raise InvalidInputError("the search found no adversarial example: nothing to return as data")
        return LabeledData(self.x_adv[self.found], self.y_adv[self.found], self.num_classes, "adversarial")

    def select(self, indices: Tensor | Sequence[int] | np.ndarray) -> "AdversarialSet":
        """The entries at ``indices`` (a new set; scalar metadata is kept)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[idx] if isinstance(value, Tensor) else value
        return AdversarialSet(**values)
