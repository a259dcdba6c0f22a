"""In-memory labelled image data: the one data type every component exchanges."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from amun_plugin.errors import InvalidInputError

__all__ = ["LabeledData", "DatasetBundle", "DatasetShape", "as_labeled_data", "load_npz_pair"]

_PIXEL_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class LabeledData:
    """Images and labels held as tensors.

    Attributes:
        x: float tensor of shape (N, C, H, W) (or (N, D) for tabular inputs), pixels in [0, 1].
        y: int64 tensor of shape (N,), values in [0, num_classes).
        num_classes: number of classes of the task (not only those present in ``y``).

    Construction validates everything and raises :class:`InvalidInputError` with a clear
    message; a ``LabeledData`` that exists is always well formed.
    """

    x: Tensor
    y: Tensor
    num_classes: int
    name: str = field(default="data", compare=False)

    def __post_init__(self) -> None:
        _validate(self.x, self.y, self.num_classes, self.name)
        if self.y.dtype != torch.long:
            object.__setattr__(self, "y", self.y.long())
        if self.x.dtype != torch.float32:
            object.__setattr__(self, "x", self.x.float())
        object.__setattr__(self, "num_classes", int(self.num_classes))

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (1, 28, 28)."""
        return tuple(self.x.shape[1:])

    def subset(self, indices: Tensor | Sequence[int] | np.ndarray, name: str | None = None) -> "LabeledData":
        """The samples at ``indices`` (a copy-free view where torch allows)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return LabeledData(self.x[idx], self.y[idx], self.num_classes, name or self.name)

    def to(self, device: torch.device | str) -> "LabeledData":
        """The same data on ``device``."""
        return LabeledData(self.x.to(device), self.y.to(device), self.num_classes, self.name)

    def concat(self, other: "LabeledData", name: str | None = None) -> "LabeledData":
        """This data followed by ``other`` (same input shape and class count required)."""
        if other.input_shape != self.input_shape or other.num_classes != self.num_classes:
            raise InvalidInputError(
                f"cannot concatenate {self.name!r} {self.input_shape}/{self.num_classes} classes with "
                f"{other.name!r} {other.input_shape}/{other.num_classes} classes"
            )
        return LabeledData(
            torch.cat([self.x, other.x.to(self.x.device)]),
            torch.cat([self.y, other.y.to(self.y.device)]),
            self.num_classes,
            name or f"{self.name}+{other.name}",
        )


@dataclass(frozen=True)
class DatasetShape:
    """What a dataset holds, as far as a plan needs it: train and test sizes, one sample's shape
    and the number of classes (a source that knows it without its files offers ``expected_shape()``)."""

    train: int
    test: int
    input_shape: tuple[int, ...]
    num_classes: int


@dataclass(frozen=True, eq=False)
class DatasetBundle:
    """A dataset's train and test parts with its class names."""

    name: str
    train: LabeledData
    test: LabeledData
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.train.input_shape != self.test.input_shape:
            raise InvalidInputError(f"{self.name}: train and test input shapes differ")
        if not (self.train.num_classes == self.test.num_classes == len(self.classes)):
            raise InvalidInputError(f"{self.name}: class counts of train, test and names differ")

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.train.input_shape

    @property
    def shape(self) -> DatasetShape:
        return DatasetShape(len(self.train), len(self.test), self.input_shape, self.num_classes)


def as_labeled_data(data: Any, num_classes: int | None = None, name: str = "data") -> LabeledData:
    """Accept a ``LabeledData``, an ``(x, y)`` pair of tensors / numpy arrays, or a map-style
    torch ``Dataset`` of ``(x, y)`` items, and return a validated ``LabeledData``.

    ``num_classes`` defaults to ``max(y) + 1`` only when it cannot be known otherwise; pass it.
    """
    if isinstance(data, LabeledData):
        if num_classes is not None and num_classes != data.num_classes:
            raise InvalidInputError(f"{name}: has {data.num_classes} classes, expected {num_classes}")
        return LabeledData(data.x, data.y, data.num_classes, name)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    elif isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        if not items:
            raise InvalidInputError(f"{name} is empty")
        x = torch.stack([torch.as_tensor(item[0]) for item in items])
        y = torch.as_tensor([int(item[1]) for item in items])
    else:
        raise InvalidInputError(
            f"{name}: expected LabeledData, an (x, y) pair or a torch Dataset, got {type(data).__name__}"
        )
    x_t = torch.as_tensor(_numeric(x, f"{name}: x", "numbers (pixels in [0, 1])"))
    y_t = torch.as_tensor(_numeric(y, f"{name}: labels", "integer class ids (or one-hot rows)"))
    if x_t.dtype in (torch.float64, torch.float16, torch.bfloat16):
        x_t = x_t.float()
    if y_t.ndim == 2 and y_t.shape[1] > 1:  # one-hot labels (ART convention)
        if num_classes is not None and y_t.shape[1] > num_classes:
            raise InvalidInputError(f"{name}: one-hot labels have {y_t.shape[1]} columns, {_MORE_THAN} "
                                    f"{num_classes} classes")
        num_classes = num_classes or int(y_t.shape[1])
        y_t = y_t.argmax(dim=1)
    if num_classes is None:
        num_classes = int(y_t.max().item()) + 1 if y_t.numel() else 0
    return LabeledData(x_t, y_t, num_classes, name)


_MORE_THAN = "more than the"


def _numeric(values: Any, what: str, expected: str) -> Any:
    """``values`` as a tensor or numeric numpy array; strings or objects are one clear error."""
    if isinstance(values, Tensor):
        return values
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        sample = repr(array.ravel()[:1].tolist()[0]) if array.size else "none"
        raise InvalidInputError(f"{what} must be {expected}, got {array.dtype} values (e.g. {sample})")
    return array


def labeled_for_model(data: Any, num_classes: int | None, name: str, model_outputs: bool = True) -> LabeledData:
    """:func:`as_labeled_data`, where ``num_classes`` is the width of a model's output
    (``model_outputs``): labels out of range then say how many outputs the model has."""
    try:
        return as_labeled_data(data, num_classes, name)
    except InvalidInputError as exc:
        if not (model_outputs and num_classes is not None
                and ("labels must lie in" in str(exc) or _MORE_THAN in str(exc))):
            raise
        raise InvalidInputError(
            f"{exc}: the model has {num_classes} outputs (one logit per class), fewer than the labels need; "
            "give a model with one output per class, or num_classes=..."
        ) from None


def _validate(x: Tensor, y: Tensor, num_classes: int, name: str) -> None:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise InvalidInputError(f"{name}: x and y must be tensors")
    if not x.is_floating_point():
        raise InvalidInputError(f"{name}: x must be a float tensor with pixels in [0, 1], got {x.dtype}")
    if x.ndim < 2:
        raise InvalidInputError(f"{name}: x must have shape (N, ...), got {tuple(x.shape)}")
    if y.ndim != 1:
        raise InvalidInputError(f"{name}: y must have shape (N,), got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise InvalidInputError(f"{name}: y must hold integer class labels, got {y.dtype}")
    if x.shape[0] != y.shape[0]:
        raise InvalidInputError(f"{name}: {x.shape[0]} inputs but {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise InvalidInputError(f"{name} is empty")
    if int(num_classes) < 2:
        raise InvalidInputError(f"{name}: num_classes must be at least 2, got {num_classes}")
    y_min, y_max = int(y.min().item()), int(y.max().item())
    if y_min < 0 or y_max >= num_classes:
        raise InvalidInputError(
            f"{name}: labels must lie in [0, {num_classes - 1}], found values in [{y_min}, {y_max}]"
        )
    if not torch.isfinite(x).all():
        raise InvalidInputError(f"{name}: x contains NaN or infinite values")
    x_min, x_max = float(x.min().item()), float(x.max().item())
    if x_min < -_PIXEL_TOLERANCE or x_max > 1 + _PIXEL_TOLERANCE:
        raise InvalidInputError(
            f"{name}: pixels must lie in [0, 1] (put any normalisation inside the model), "
            f"found values in [{x_min:.4g}, {x_max:.4g}]"
        )


def load_npz_pair(path: str | Path, num_classes: int, name: str) -> LabeledData:
    """``LabeledData`` from a ``.npz`` with arrays ``x`` (N, ...) in [0, 1] and ``y`` (N,) (never
    unpickled); a missing file or array is one clear error."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            x, y = arrays["x"], arrays["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInputError(f"{path}: expected a .npz with arrays x and y ({exc})") from exc
    return as_labeled_data((x, y), num_classes, name=name)
