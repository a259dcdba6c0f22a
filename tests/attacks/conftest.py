"""Fixtures of the attack tests: one torch thread per module (timings and counts stay comparable)
and ``count_samples``, a wrapper that counts the samples a model sees with and without an input
gradient."""

from __future__ import annotations

from typing import Iterator

import pytest
import torch
from torch import nn


class Counting(nn.Module):
    """The wrapped model, counting samples through forward passes that build an input-gradient
    graph (``grad_samples``) and those that do not (``forward_samples``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.grad_samples = 0
        self.forward_samples = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            self.grad_samples += x.shape[0]
        else:
            self.forward_samples += x.shape[0]
        return self.model(x)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def count_samples() -> type[Counting]:
    """The :class:`Counting` wrapper: ``count_samples(model)``."""
    return Counting
