"""The 8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes, offline).

Small enough for tests and quick demos: no download, loads in milliseconds.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch

from amun_plugin.data.base import DatasetBundle, LabeledData
from amun_plugin.data.source import DatasetSource
from amun_plugin.data.splits import stratified_indices
from amun_plugin.errors import BackendUnavailableError, InvalidInputError

__all__ = ["DigitsConfig", "DigitsSource"]

_MAX_PIXEL = 16.0  # scikit-learn's digits hold integer intensities 0..16
_CLASSES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DigitsConfig:
    """Options of the digits dataset.

    Attributes:
        test_fraction: share of the 1797 images held out as the test set, in (0, 1); the
            split is class-stratified.
        seed: seed of the train/test split.
    """

    test_fraction: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        frac = self.test_fraction
        if isinstance(frac, bool) or not isinstance(frac, numbers.Real) or not 0.0 < frac < 1.0:
            raise InvalidInputError(f"DigitsConfig.test_fraction must lie strictly between 0 and 1, got {frac!r}")


class DigitsSource(DatasetSource):
    """scikit-learn's ``load_digits``: x of shape (N, 1, 8, 8), float32 in [0, 1]; classes "0".."9"."""

    name = "digits"
    config_class = DigitsConfig
    header_options = ("test_fraction", "seed")
    description = "8x8 handwritten digits bundled with scikit-learn (1797 images, offline)"

    def load(self) -> DatasetBundle:
        """Read the bundled images and make a deterministic class-stratified train/test split."""
        cfg: DigitsConfig = self.config
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the digits dataset needs scikit-learn ({exc}); install it with `pip install scikit-learn`"
            ) from exc
        raw = load_digits()
        x = (np.asarray(raw.images, dtype=np.float32) / _MAX_PIXEL).reshape(-1, 1, 8, 8)
        y = np.asarray(raw.target, dtype=np.int64)
        n_test = min(max(round(cfg.test_fraction * y.size), 1), y.size - 1)
        test_idx = stratified_indices(y, n_test, seed=cfg.seed)
        train_idx = np.setdiff1d(np.arange(y.size, dtype=np.int64), test_idx)
        train = LabeledData(torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx]), 10, "digits/train")
        test = LabeledData(torch.from_numpy(x[test_idx]), torch.from_numpy(y[test_idx]), 10, "digits/test")
        return DatasetBundle(self.name, train, test, _CLASSES)
