"""The one training loop: original, retrained and reference models, and unlearners' fine-tuning.

SGD (momentum, weight decay, optional Nesterov) with a per-epoch learning-rate schedule, seeded
shuffling and seeded tensor-only augmentation (random crop with zero padding, horizontal flip),
per-sample augmentation masks (AMUN does not augment its adversarial set D_A), a pluggable
per-sample loss (RL relabels, GA negates) and a hook between backward and step (SalUn's mask).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.device import preserved_mode, resolve_device
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.inference import accuracy, predict_logits
from amun_plugin.progress import progress_bar

__all__ = [
    "Augment",
    "LossFn",
    "Schedule",
    "TrainConfig",
    "TrainStats",
    "accuracy",
    "augment_batch",
    "make_optimizer",
    "make_scheduler",
    "observing_steps",
    "predict_logits",
    "train_model",
]

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``loss_fn(logits (B, C), y (B,), batch_indices (B,) into the training data) -> scalar loss``."""


class Schedule(str, Enum):
    """Learning-rate schedule, stepped once per epoch."""

    CONSTANT = "constant"
    STEP = "step"  # lr * gamma ** (epoch // step_size)
    COSINE = "cosine"  # cosine annealing from lr to 0 over all epochs


class Augment(str, Enum):
    """Training-time augmentation of image batches (N, C, H, W)."""

    NONE = "none"
    CROP_FLIP = "crop_flip"  # random crop after zero padding (4 px for >= 28 px images, else 1) + h-flip
    CROP = "crop"  # random crop only (digits, Fashion-MNIST: flips change meaning)


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe. ``lr`` is the initial learning rate; ``step_size`` is in epochs (STEP).

    ``label_smoothing`` in [0, 1) is the default cross-entropy's smoothing (``F.cross_entropy``):
    with 0.1 the loss is minimised at p_y = 0.91 on 10 classes, so a model that fits its training
    set does not drive p_y to 1.0 in float32 (saturated logits, vanishing gradients). It applies
    only to the default loss, not to a ``loss_fn`` passed to :func:`train_model`; at 0 it is left
    out of :func:`~amun_plugin.config.config_to_dict` so earlier content hashes stay valid.

    Attributes:
        epochs: passes over the training data. (Default: 40)
        batch_size: samples per SGD step. (Default: 128)
        lr: SGD learning rate at the start. (Default: 0.1)
        momentum: SGD momentum, in [0, 1). (Default: 0.9)
        weight_decay: SGD weight decay (L2 penalty, >= 0). (Default: 0.0)
        schedule: per-epoch lr schedule: "constant", "step" or "cosine" (to 0 over all epochs). (Default: "cosine")
        step_size: epochs between the step schedule's lr cuts. (Default: 1)
        gamma: factor in (0, 1] on the lr at each cut of the step schedule. (Default: 0.1)
        augment: training augmentation of image batches ("none", "crop", "crop_flip"). (Default: "none")
        nesterov: Nesterov momentum (needs momentum > 0). (Default: False)
        label_smoothing: cross-entropy label smoothing of the default loss, in [0, 1). (Default: 0.0)
    """

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("label_smoothing",)

    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Schedule = Schedule.COSINE
    step_size: int = 1
    gamma: float = 0.1
    augment: Augment = Augment.NONE
    nesterov: bool = False
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", _as_enum(Schedule, self.schedule, "schedule"))
        object.__setattr__(self, "augment", _as_enum(Augment, self.augment, "augment"))
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (0 <= self.momentum < 1, f"momentum must lie in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.step_size >= 1, f"step_size must be >= 1 epoch, got {self.step_size}"),
            (0 < self.gamma <= 1, f"gamma must lie in (0, 1], got {self.gamma}"),
            (not self.nesterov or self.momentum > 0, "nesterov needs momentum > 0"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must lie in [0, 1), got {self.label_smoothing}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(f"invalid TrainConfig: {message}")


@dataclass
class TrainStats:
    """What a call to :func:`train_model` did. Losses are per-sample means (assuming ``loss_fn``
    returns a batch mean); accuracies are in percent, running over each epoch in train mode,
    against ``data.y`` whatever ``loss_fn`` does; ``lr_per_epoch`` is the first param group's
    learning rate during each epoch."""

    epochs: int
    steps: int
    seconds: float
    final_loss: float
    loss_per_epoch: list[float] = field(default_factory=list)
    train_accuracy_per_epoch: list[float] = field(default_factory=list)
    lr_per_epoch: list[float] = field(default_factory=list)


def _as_enum(kind: type[Enum], value: object, name: str) -> Enum:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)  # type: ignore[attr-defined]
        raise InvalidInputError(f"invalid TrainConfig: {name} {value!r} is not one of {choices}") from None


def augment_batch(
    x: Tensor, augment: Augment | str, generator: torch.Generator, mask: Tensor | None = None
) -> Tensor:
    """Augmented copy of an image batch ``x`` (B, C, H, W), values unchanged in range.

    Random numbers come from ``generator`` (a CPU generator), so the same generator state gives
    the same output on any device; the draws do not depend on ``mask``. ``mask`` (B,) bool picks
    the samples to augment; the others are returned unchanged.
    """
    augment = Augment(augment)
    if augment is Augment.NONE:
        return x
    if x.ndim != 4:
        raise InvalidInputError(f"augmentation needs image batches (B, C, H, W), got shape {tuple(x.shape)}")
    batch, _, height, width = x.shape
    pad = 4 if min(height, width) >= 28 else 1
    out = _random_crop(x, pad, generator)
    if augment is Augment.CROP_FLIP:
        flip = (torch.rand(batch, generator=generator) < 0.5).to(x.device)
        out = torch.where(flip.view(-1, 1, 1, 1), out.flip(-1), out)
    if mask is not None:
        if mask.shape != (batch,) or mask.dtype != torch.bool:
            raise InvalidInputError(
                f"augment mask must be a bool tensor of shape ({batch},), got {mask.dtype} {tuple(mask.shape)}"
            )
        out = torch.where(mask.to(x.device).view(-1, 1, 1, 1), out, x)
    return out


def _random_crop(x: Tensor, pad: int, generator: torch.Generator) -> Tensor:
    """Zero-pad (B, C, H, W) by ``pad`` on every side, then crop a random H x W window per sample."""
    batch, _, height, width = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator).to(x.device)
    rows = (dy.view(-1, 1) + torch.arange(height, device=x.device)).view(batch, 1, height, 1)
    cols = (dx.view(-1, 1) + torch.arange(width, device=x.device)).view(batch, 1, 1, width)
    index = torch.arange(batch, device=x.device).view(batch, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[index, channel, rows, cols]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD over the model's trainable parameters with the config's lr, momentum, wd, nesterov."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InvalidInputError("the model has no trainable parameters (all have requires_grad=False)")
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov
    )


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch learning-rate schedule of ``config`` on ``optimizer``, starting from the
    optimizer's current learning rates (also when an earlier scheduler already drove it)."""
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    if config.schedule is Schedule.STEP:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.schedule is Schedule.COSINE:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _epoch: 1.0)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """A seeded shuffle of range(n) cut into batches; a trailing batch of one sample is merged
    into the previous batch (BatchNorm cannot train on a single sample)."""
    order = torch.randperm(n, generator=generator)
    chunks = list(order.split(batch_size))
    if len(chunks) > 1 and chunks[-1].numel() == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


_STEP_OBSERVER: ContextVar[Callable[[nn.Module], None] | None] = ContextVar("amun_step_observer", default=None)


@contextmanager
def observing_steps(observer: Callable[[nn.Module], None]) -> Iterator[None]:
    """Call ``observer(model)`` after every optimizer step of every :func:`train_model` run inside
    the block, whatever the run's own callbacks (e.g. to race unlearners: all of a method's training
    loops report without it knowing); an exception it raises ends the run and leaves the block."""
    token = _STEP_OBSERVER.set(observer)
    try:
        yield
    finally:
        _STEP_OBSERVER.reset(token)


def train_model(
    model: nn.Module,
    data: LabeledData,
    config: TrainConfig,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    augment_mask: Tensor | None = None,
    loss_fn: LossFn | None = None,
    before_step: Callable[[nn.Module], None] | None = None,
    epoch_end: Callable[[int, nn.Module], None] | None = None,
    step_end: Callable[[int, nn.Module], bool] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    progress: bool | str = False,
) -> TrainStats:
    """Train ``model`` in place on ``data`` for ``config.epochs`` epochs and return statistics.

    Args:
        model: moved to ``device``; in train mode while training, its modes restored afterwards.
        data: training samples, x (N, ...) in [0, 1], y (N,).
        config: the recipe (optimizer, schedule, augmentation).
        seed: seeds the CPU generator used for shuffling and augmentation.
        augment_mask: (N,) bool, which samples ``config.augment`` applies to (default: all).
        loss_fn: ``loss_fn(logits, y, batch_indices)`` -> scalar; default cross-entropy. The
            indices (B,) (CPU, long) point into ``data`` so callers can relabel or weight samples.
        before_step: called as ``before_step(model)`` after backward, before ``optimizer.step()``.
        epoch_end: called as ``epoch_end(epoch, model)`` after each epoch (epoch counts from 0).
        step_end: called as ``step_end(step, model)`` after each optimizer step (step counts from
            1 over the whole run); returning True ends training there (an early stop).
        optimizer: used instead of the config's SGD (its own lr is then the schedule's start).
        progress: show a tqdm bar; a string is the bar's description.
    """
    if not isinstance(data, LabeledData):
        raise InvalidInputError(f"train_model needs LabeledData, got {type(data).__name__}")
    target = resolve_device(device)
    model.to(target)
    optimizer = optimizer if optimizer is not None else make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    runner = _EpochRunner(
        model, data, config, target, torch.Generator().manual_seed(int(seed)), _check_mask(augment_mask, len(data)),
        loss_fn if loss_fn is not None else _cross_entropy(config.label_smoothing), before_step, step_end, optimizer,
        _progress_bar(progress, config.epochs * _num_batches(len(data), config.batch_size)),
    )
    stats = TrainStats(epochs=0, steps=0, seconds=0.0, final_loss=float("nan"))
    start = time.perf_counter()
    try:
        with preserved_mode(model, training=True):
            for epoch in range(config.epochs):
                model.train()  # an epoch_end callback may have switched to eval mode
                stats.lr_per_epoch.append(float(optimizer.param_groups[0]["lr"]))
                runner.run_epoch(stats)
                scheduler.step()
                stats.epochs += 1
                if epoch_end is not None:
                    epoch_end(epoch, model)
                if runner.stopped:
                    break
    finally:
        if runner.bar is not None:
            runner.bar.close()
    stats.seconds = time.perf_counter() - start
    stats.final_loss = stats.loss_per_epoch[-1]
    return stats


@dataclass
class _EpochRunner:
    """The state one training epoch needs; ``run_epoch`` does one seeded pass over the data."""

    model: nn.Module
    data: LabeledData
    config: TrainConfig
    device: torch.device
    generator: torch.Generator
    mask: Tensor | None
    loss_fn: LossFn
    before_step: Callable[[nn.Module], None] | None
    step_end: Callable[[int, nn.Module], bool] | None
    optimizer: torch.optim.Optimizer
    bar: Any
    stopped: bool = False

    def run_epoch(self, stats: TrainStats) -> None:
        """One pass; appends the epoch's mean loss and running accuracy (%) to ``stats``."""
        n = len(self.data)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        for indices in _batches(n, self.config.batch_size, self.generator):
            x, y = self._batch(indices)
            logits = self.model(x)
            loss = self.loss_fn(logits, y, indices)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.before_step is not None:
                self.before_step(self.model)
            self.optimizer.step()
            stats.steps += 1
            observer = _STEP_OBSERVER.get()
            if observer is not None:
                observer(self.model)
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.detach().argmax(dim=1) == y).sum()
            seen += y.shape[0]
            if self.bar is not None:
                self.bar.update(1)
            if self.step_end is not None and self.step_end(stats.steps, self.model):
                self.stopped = True
                break
        stats.loss_per_epoch.append(float(loss_sum.item()) / seen)
        stats.train_accuracy_per_epoch.append(100.0 * float(correct.item()) / seen)
        if self.bar is not None:
            mean_loss, acc = stats.loss_per_epoch[-1], stats.train_accuracy_per_epoch[-1]
            self.bar.set_postfix(loss=f"{mean_loss:.4f}", acc=f"{acc:.1f}")

    def _batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Inputs (B, ...) augmented as configured and labels (B,), both on the training device."""
        x = self.data.x[indices.to(self.data.x.device)]
        if self.config.augment is not Augment.NONE:
            mask = None if self.mask is None else self.mask[indices]
            x = augment_batch(x, self.config.augment, self.generator, mask)
        y = self.data.y[indices.to(self.data.y.device)]
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def _cross_entropy(label_smoothing: float) -> LossFn:
    """The default loss: mean cross-entropy with ``label_smoothing``."""

    def loss(logits: Tensor, y: Tensor, _indices: Tensor) -> Tensor:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)

    return loss


def _check_mask(mask: Tensor | None, n: int) -> Tensor | None:
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (n,):
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise InvalidInputError(
            f"augment_mask must be a bool tensor of shape ({n},) (one flag per sample), got {shape}"
        )
    return mask.cpu()


def _num_batches(n: int, batch_size: int) -> int:
    full, rest = divmod(n, batch_size)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


def _progress_bar(progress: bool | str, total: int) -> Any:
    return progress_bar(progress, total, "train", unit="step", leave=False)
