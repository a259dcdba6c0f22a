"""Rough cost estimates before long work: SGD steps of a recipe and seconds per training sample
measured on this machine (timed steps of the real architecture on random inputs).

The measurement runs with the thread count the work will use (a bench job's ``threads``; more
threads than free cores make every step wait) and keeps the fastest of several short repeats, so
a burst of other work on the machine does not inflate it and two calls agree. It is a forecast,
not a measurement of the run: data loading, evaluation and augmentation come on top, and a busy
machine slows the run itself (benchmarks/results/time_estimates compares it with measured runs).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from amun_plugin.models.base import ModelArchitecture
from amun_plugin.progress import duration

__all__ = ["TrainingEstimate", "format_seconds", "seconds_per_sample", "training_estimate"]


@dataclass(frozen=True)
class TrainingEstimate:
    """``steps`` SGD steps (epochs x ceil(samples / batch)) and about ``seconds`` of wall time."""

    steps: int
    seconds: float

    def describe(self) -> str:
        return f"{self.steps:,} SGD steps, roughly {format_seconds(self.seconds)} on this machine"


def format_seconds(seconds: float) -> str:
    """``42 s``, ``7 min`` or ``1.5 h``: a duration at the precision an estimate deserves."""
    return duration(seconds, minute_digits=0)


REPEATS = 5
"""Timed repeats of a measurement; the fastest counts."""


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` (None: unchanged) inside the block."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seconds_per_sample(architecture: ModelArchitecture, input_shape: tuple[int, ...], num_classes: int,
                       batch_size: int, *, device: str = "cpu", steps: int = 2, repeats: int = REPEATS,
                       threads: int | None = None) -> float:
    """Seconds one training sample costs (forward, backward, SGD step): the fastest of ``repeats``
    timings of ``steps`` batches of ``batch_size`` random inputs of shape ``input_shape``, after two
    warm-up batches, with ``threads`` torch threads (None: the current setting)."""
    with _torch_threads(threads):
        return _fastest_step(architecture, input_shape, num_classes, batch_size, device, steps, repeats)


def _fastest_step(architecture: ModelArchitecture, input_shape: tuple[int, ...], num_classes: int,
                  batch_size: int, device: str, steps: int, repeats: int) -> float:
    model: nn.Module = architecture.build(num_classes, tuple(input_shape)).to(device).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((batch_size, *input_shape), generator=generator).to(device)
    y = torch.randint(0, num_classes, (batch_size,), generator=generator).to(device)

    def step() -> None:
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / (steps * batch_size)

    step()
    step()
    return min(timed() for _ in range(max(1, repeats)))


def training_estimate(samples: int, epochs: int, batch_size: int, per_sample: float) -> TrainingEstimate:
    """The steps and seconds of ``epochs`` passes over ``samples`` samples in batches of
    ``batch_size`` at ``per_sample`` seconds per sample (:func:`seconds_per_sample`)."""
    steps = epochs * math.ceil(samples / max(1, batch_size))
    return TrainingEstimate(steps=steps, seconds=epochs * samples * per_sample)
