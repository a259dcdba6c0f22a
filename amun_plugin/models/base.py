"""The model-architecture plugin interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

from torch import nn

from amun_plugin.config import NoConfig, make_config

__all__ = ["ModelArchitecture"]


class ModelArchitecture(ABC):
    """A named, configurable model family.

    Built models take inputs in [0, 1] with shape (N, *input_shape) and return logits (N, num_classes).
    Built-in models also expose ``features(x) -> (N, D)`` (penultimate activations) and ``head``
    (the last layer) so that ``head(features(x)) == model(x)``.
    """

    name: ClassVar[str]
    config_class: ClassVar[type] = NoConfig
    description: ClassVar[str] = ""

    def __init__(self, config: Mapping[str, Any] | Any | None = None) -> None:
        self.config = make_config(self.config_class, config)

    @abstractmethod
    def build(self, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
        """A freshly initialised model (initialisation follows torch's global RNG)."""
