"""The dataset plugin interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

from amun_plugin.config import NoConfig, make_config
from amun_plugin.data.base import DatasetBundle

__all__ = ["DatasetSource"]


class DatasetSource(ABC):
    """A named dataset that loads as a :class:`DatasetBundle` (train + test, pixels in [0, 1])."""

    name: ClassVar[str]
    config_class: ClassVar[type] = NoConfig
    description: ClassVar[str] = ""
    #: options that may be taken from a checkpoint's (untrusted) header: ones that only choose
    #: samples (sizes, seeds) — never paths, downloads or anything with a side effect.
    header_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping[str, Any] | Any | None = None) -> None:
        self.config = make_config(self.config_class, config)

    @abstractmethod
    def load(self) -> DatasetBundle:
        """Read the data (never from the network unless the config's ``download`` says so)."""
