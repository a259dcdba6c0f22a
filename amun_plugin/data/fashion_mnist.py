"""Fashion-MNIST (Xiao et al., 2017) read from its four IDX files with numpy alone.

The files are looked up under ``root`` as ``<name>.gz`` or uncompressed ``<name>``. On Debian
images they come from ``apt-get install -y dataset-fashion-mnist`` (into
/usr/share/datasets/fashion-mnist); nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import numbers
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from amun_plugin.data.base import DatasetBundle, LabeledData
from amun_plugin.data.source import DatasetSource
from amun_plugin.data.splits import stratified_indices
from amun_plugin.errors import DatasetNotFoundError, InvalidInputError

__all__ = ["FashionMNISTConfig", "FashionMNISTSource", "read_idx"]

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UBYTE = 0x08  # IDX type code of unsigned bytes
_SIDE = 28


@dataclass(frozen=True)
class FashionMNISTConfig:
    """Options of Fashion-MNIST.

    Attributes:
        root: directory holding the four IDX files (gzipped or not).
        train_size: if set, a seeded class-stratified subset of this many train images (<= 60000).
        test_size: if set, a seeded class-stratified subset of this many test images (<= 10000).
        seed: seed of the subsets.
    """

    root: str = DEFAULT_ROOT
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("train_size", "test_size"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
                raise InvalidInputError(f"FashionMNISTConfig.{key} must be a positive integer or null, got {value!r}")


class FashionMNISTSource(DatasetSource):
    """Fashion-MNIST: x of shape (N, 1, 28, 28), float32 in [0, 1]; 60000 train / 10000 test, 10 classes."""

    name = "fashion_mnist"
    config_class = FashionMNISTConfig
    header_options = ("train_size", "test_size", "seed")
    description = "Fashion-MNIST 28x28 grey images of clothing, read from local IDX files"

    def load(self) -> DatasetBundle:
        """Read the IDX files under ``root`` (optionally subsampled)."""
        cfg: FashionMNISTConfig = self.config
        root = Path(cfg.root).expanduser()
        train = _load_part(root, "train", cfg.train_size, cfg.seed)
        test = _load_part(root, "test", cfg.test_size, cfg.seed)
        return DatasetBundle(self.name, train, test, CLASSES)


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (``.gz`` or raw) into a uint8 array with ``ndim`` axes.

    Raises :class:`InvalidInputError` naming the file when the magic number, the dimension
    count or the payload size is wrong, or the gzip stream is corrupt.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DatasetNotFoundError(f"{path} not found; check the path or the dataset's `root` option") from exc
        raise InvalidInputError(f"{path}: cannot read this IDX file ({exc}); it is corrupt, replace it") from exc
    header = 4 + 4 * ndim
    if len(raw) < header or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or raw[3] != ndim:
        raise InvalidInputError(
            f"{path}: not an unsigned-byte IDX file with {ndim} dimension(s) "
            f"(expected magic 0x000008{ndim:02x}, got 0x{raw[:4].hex() or 'empty'}); the file is corrupt"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) + header
    if len(raw) != expected:
        raise InvalidInputError(
            f"{path}: header promises shape {dims} ({expected} bytes) but the file holds {len(raw)} bytes; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise DatasetNotFoundError(
        f"Fashion-MNIST file {stem}(.gz) not found in {root}. Install the dataset with "
        f"`apt-get install -y dataset-fashion-mnist` (it goes to {DEFAULT_ROOT}), or set the `root` "
        "option to a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may be .gz)."
    )


def _load_part(root: Path, part: str, size: int | None, seed: int) -> LabeledData:
    image_path, label_path = (_find(root, stem) for stem in _FILES[part])
    images = read_idx(image_path, ndim=3)
    labels = read_idx(label_path, ndim=1)
    if images.shape[1:] != (_SIDE, _SIDE):
        raise InvalidInputError(f"{image_path}: images must be {_SIDE}x{_SIDE}, got {images.shape[1:]}")
    if images.shape[0] != labels.shape[0]:
        raise InvalidInputError(
            f"{image_path} holds {images.shape[0]} images but {label_path} holds {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= len(CLASSES):
        raise InvalidInputError(f"{label_path}: label {int(labels.max())} is not a Fashion-MNIST class (0..9)")
    if size is not None:
        if size > labels.size:
            raise InvalidInputError(
                f"fashion_mnist {part}_size={size} exceeds the {labels.size} {part} images available"
            )
        keep = stratified_indices(labels, size, seed=seed)
        images, labels = images[keep], labels[keep]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return LabeledData(x, y, len(CLASSES), f"fashion_mnist/{part}")
