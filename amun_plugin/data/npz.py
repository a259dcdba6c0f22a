"""Your own data: one ``.npz`` file of numpy arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Pixels are floats in [0, 1] of shape (N, C, H, W) (or (N, D) for tabular rows), labels integer
class ids of shape (N,); an optional ``classes`` array (strings) names the classes. The file is read
with ``np.load(..., allow_pickle=False)``: object arrays (pickles) are refused, never unpickled.
A checkpoint's header never gives the path: later commands take ``--dataset-option path=...`` again.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amun_plugin.data.base import DatasetBundle, LabeledData
from amun_plugin.data.source import DatasetSource
from amun_plugin.errors import DatasetNotFoundError, InvalidInputError

__all__ = ["NPZ_ARRAYS", "NpzConfig", "NpzSource"]

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
"""The arrays an ``.npz`` dataset must hold (``classes`` is optional)."""


@dataclass(frozen=True)
class NpzConfig:
    """Options of the npz dataset.

    Attributes:
        path: the ``.npz`` file holding x_train, y_train, x_test and y_test (optionally classes);
            a checkpoint records it but never reads it back, so pass it again to later commands.
        num_classes: the number of classes; 0 takes the largest label of train and test plus one
            (give it when the highest classes may be absent from the file).
    """

    path: str = ""
    num_classes: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise InvalidInputError(f"npz num_classes must be an integer >= 0 (0: from the labels), "
                                    f"got {self.num_classes!r}")


class NpzSource(DatasetSource):
    """Arrays of a ``.npz`` file (no pickle): x in [0, 1] of shape (N, ...), y of shape (N,)."""

    name = "npz"
    config_class = NpzConfig
    header_options = ("num_classes",)
    description = "your own data: a .npz of x_train, y_train, x_test, y_test (pixels in [0, 1]; path=FILE)"

    def load(self) -> DatasetBundle:
        """Read and check the four arrays; one clear error for a missing, pickled or malformed file."""
        cfg: NpzConfig = self.config
        arrays = _read(_existing(cfg.path))
        num_classes = cfg.num_classes or _label_count(arrays)
        train = LabeledData(_pixels(arrays, "x_train"), _labels(arrays, "y_train"), num_classes, "npz/train")
        test = LabeledData(_pixels(arrays, "x_test"), _labels(arrays, "y_test"), num_classes, "npz/test")
        if train.input_shape != test.input_shape:
            raise InvalidInputError(f"npz: x_train samples have shape {train.input_shape}, x_test samples "
                                    f"{test.input_shape}; they must match")
        return DatasetBundle(self.name, train, test, _class_names(arrays, num_classes))


def _existing(path: str) -> Path:
    if not path:
        raise InvalidInputError("the npz dataset needs its file: --dataset-option path=FILE.npz (a checkpoint "
                                "records the path but never reads it back: give it again)")
    source = Path(path).expanduser()
    if not source.is_file():
        raise DatasetNotFoundError(f"npz dataset file {source} does not exist")
    return source


def _read(source: Path) -> dict[str, np.ndarray]:
    """Every array of the file, read without unpickling."""
    try:
        loaded = np.load(source, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InvalidInputError(f"{source} is a single .npy array, not a .npz of {', '.join(NPZ_ARRAYS)}")
        with loaded as handle:
            missing = [name for name in NPZ_ARRAYS if name not in handle.files]
            if missing:
                raise InvalidInputError(f"{source} lacks the array(s) {', '.join(missing)} (it holds "
                                        f"{', '.join(handle.files) or 'none'}); save with np.savez(path, "
                                        "x_train=..., y_train=..., x_test=..., y_test=...)")
            return {name: handle[name] for name in (*NPZ_ARRAYS, "classes") if name in handle.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InvalidInputError(f"{source} holds object arrays (pickled data), which are never loaded: "
                                    "save plain numeric arrays") from exc
        raise InvalidInputError(f"{source} is not a readable .npz file: {exc}") from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InvalidInputError(f"{source} is not a readable .npz file: {exc}") from exc


def _pixels(arrays: dict[str, np.ndarray], name: str) -> torch.Tensor:
    x = arrays[name]
    if x.dtype.kind in "biu":
        raise InvalidInputError(f"npz {name} holds {x.dtype} values: store float pixels in [0, 1] "
                                "(e.g. x.astype('float32') / 255)")
    if x.dtype.kind != "f":
        raise InvalidInputError(f"npz {name} must hold float pixels in [0, 1], got {x.dtype} values")
    if x.ndim < 2:
        raise InvalidInputError(f"npz {name} must have shape (N, C, H, W) or (N, D), got {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _labels(arrays: dict[str, np.ndarray], name: str) -> torch.Tensor:
    y = arrays[name]
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise InvalidInputError(f"npz {name} must hold integer class ids of shape (N,), got {y.dtype} of "
                                f"shape {y.shape}")
    return torch.from_numpy(y.astype(np.int64))


def _label_count(arrays: dict[str, np.ndarray]) -> int:
    """The largest label of train and test plus one (the labels are checked later)."""
    labels = [_labels(arrays, name) for name in ("y_train", "y_test")]
    return max(int(y.max().item()) + 1 if y.numel() else 0 for y in labels)


def _class_names(arrays: dict[str, Any], num_classes: int) -> tuple[str, ...]:
    names = arrays.get("classes")
    if names is None:
        return tuple(str(c) for c in range(num_classes))
    if names.ndim != 1 or names.shape[0] != num_classes:
        raise InvalidInputError(f"npz classes must name each of the {num_classes} classes once, got shape "
                                f"{names.shape}")
    return tuple(str(c) for c in names.tolist())
