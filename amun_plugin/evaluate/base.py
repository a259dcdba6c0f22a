"""The evaluator interface: a model and its audit splits in, named metrics out."""

from __future__ import annotations

import contextlib
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from amun_plugin.config import NoConfig, make_config
from amun_plugin.data.base import LabeledData
from amun_plugin.device import preserved_mode, resolve_device
from amun_plugin.errors import InvalidInputError

__all__ = ["AuditData", "EvaluationResult", "Evaluator"]


@dataclass(frozen=True, eq=False)
class AuditData:
    """The three sets an unlearned model is audited on: D_R, D_F and D_T."""

    retain: LabeledData
    forget: LabeledData
    test: LabeledData

    def __post_init__(self) -> None:
        shapes = {self.retain.input_shape, self.forget.input_shape, self.test.input_shape}
        classes = {self.retain.num_classes, self.forget.num_classes, self.test.num_classes}
        if len(shapes) != 1 or len(classes) != 1:
            raise InvalidInputError("retain, forget and test must share input shape and number of classes")

    @property
    def num_classes(self) -> int:
        return self.forget.num_classes


@dataclass
class EvaluationResult:
    """metrics: name -> value (percentages are 0-100); scores: per-sample arrays by set name
    (e.g. "forget", "test") that plots and ROC curves are drawn from; a 2-D array holds one row per
    model (the forgetting-quality protocol's per-model confidences)."""

    metrics: dict[str, float]
    scores: dict[str, np.ndarray] = field(default_factory=dict)


class Evaluator(ABC):
    """Base class of metrics and membership-inference attacks.

    ``evaluate`` resolves the device and restores the model's train/eval flags and the global
    random states (torch, numpy, Python) afterwards, whatever ``_evaluate`` (or a third-party
    library it calls, e.g. a scikit-learn model or a training run) does to them.
    """

    name: ClassVar[str]
    config_class: ClassVar[type] = NoConfig
    description: ClassVar[str] = ""
    needs_components: ClassVar[bool] = False
    """True for an evaluator built as ``cls(config, plugins=registries)`` (it runs other components)."""

    def __init__(self, config: Mapping[str, Any] | Any | None = None) -> None:
        self.config = make_config(self.config_class, config)

    def evaluate(
        self, model: nn.Module, data: AuditData, *, device: str | torch.device = "cpu", seed: int = 0
    ) -> EvaluationResult:
        target = resolve_device(device)
        with preserved_mode(model, training=False), _preserved_global_rng(target):
            return self._evaluate(model, data, target, seed)

    @abstractmethod
    def _evaluate(self, model: nn.Module, data: AuditData, device: torch.device, seed: int) -> EvaluationResult:
        """Compute the metrics; the model is in eval mode."""


@contextlib.contextmanager
def _preserved_global_rng(device: torch.device) -> Iterator[None]:
    """torch's CPU (and ``device``'s CUDA) RNG, numpy's and Python's global RNG as found, on exit:
    a caller's random stream must not depend on whether (or from a cache) an evaluation ran."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
