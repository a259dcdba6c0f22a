"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009) from their python-format batch files.

``download=True`` asks torchvision to fetch and md5-verify the archive into ``root`` (a failed
download removes what it wrote); the batch files are then read here with a restricted unpickler
that only rebuilds numpy arrays, dicts, lists, strings and numbers (never ``pickle.load`` on user
files). CIFAR-100 uses the 100 fine labels.
"""

from __future__ import annotations

import numbers
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from amun_plugin.data.base import DatasetBundle, DatasetShape, LabeledData
from amun_plugin.data.source import DatasetSource
from amun_plugin.data.splits import stratified_indices
from amun_plugin.errors import BackendUnavailableError, DatasetNotFoundError, InvalidInputError

__all__ = ["CifarConfig", "Cifar10Source", "Cifar100Source", "SafeUnpickler", "read_pickle_batch"]

_PIXELS = 3 * 32 * 32  # one row of b"data": 1024 red, then 1024 green, then 1024 blue bytes


@dataclass(frozen=True)
class CifarConfig:
    """Options of CIFAR-10 / CIFAR-100.

    Attributes:
        root: directory that holds (or will hold) ``cifar-10-batches-py/`` or ``cifar-100-python/``.
        download: fetch the archive through torchvision (about 170 MB, md5-verified) if needed.
        train_size: if set, a seeded class-stratified subset of this many train images (<= 50000).
        test_size: if set, a seeded class-stratified subset of this many test images (<= 10000).
        seed: seed of the subsets.
    """

    root: str = "./data"
    download: bool = False
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("train_size", "test_size"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
                raise InvalidInputError(f"CifarConfig.{key} must be a positive integer or null, got {value!r}")


def _numpy_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    """The few callables a pickled numpy array needs, under both numpy 1.x and 2.x module names."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    import _codecs

    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _codecs.encode,  # bytes pickled by Python 3 with protocol < 3
        ("builtins", "bytearray"): bytearray,
    }
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{module}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{module}.numeric", "_frombuffer")] = getattr(numeric, "_frombuffer")  # protocol 5  # noqa: B009
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays and plain containers.

    Any other global (``os.system``, ``builtins.eval``, a class, ...) raises
    :class:`InvalidInputError` before it is imported, so a crafted file cannot run code.
    """

    _allowed: ClassVar[dict[tuple[str, str], Callable[..., Any]] | None] = None

    def find_class(self, module: str, name: str) -> Any:
        if SafeUnpickler._allowed is None:
            SafeUnpickler._allowed = _numpy_globals()
        found = SafeUnpickler._allowed.get((module, name))
        if found is None:
            raise InvalidInputError(
                f"refusing to unpickle {module}.{name}: CIFAR batch files may only hold numpy arrays, "
                "dicts, lists, strings and numbers; the file is corrupt or malicious"
            )
        return found


def read_pickle_batch(path: Path) -> dict[str, Any]:
    """Read one CIFAR python-format file into a dict with ``str`` keys (b"data" -> "data").

    Python 2 strings are decoded as latin-1 (what numpy needs for its arrays).
    """
    try:
        with open(path, "rb") as handle:
            obj = SafeUnpickler(handle, encoding="latin1").load()
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InvalidInputError(
            f"{path}: not a readable CIFAR batch file ({exc}); delete it and download again"
        ) from exc
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


class _CifarSource(DatasetSource):
    """Shared loader of the CIFAR python format; subclasses name the files and keys."""

    config_class = CifarConfig
    header_options = ("train_size", "test_size", "seed")
    folder: ClassVar[str]
    train_files: ClassVar[tuple[str, ...]]
    test_file: ClassVar[str]
    meta_file: ClassVar[str]
    label_key: ClassVar[str]
    names_key: ClassVar[str]
    num_classes: ClassVar[int]
    torchvision_name: ClassVar[str]

    def load(self) -> DatasetBundle:
        """Read train and test (downloading first when ``download=True``), optionally subsampled.

        Returns x of shape (N, 3, 32, 32), float32 in [0, 1], and int64 labels.
        """
        cfg: CifarConfig = self.config
        base = Path(cfg.root).expanduser() / self.folder
        if cfg.download and self._missing(base):
            self._download(Path(cfg.root).expanduser())
        missing = self._missing(base)
        if missing:
            raise DatasetNotFoundError(self._not_found_message(base, missing))
        classes = self._read_names(base / self.meta_file)
        train = self._read_part([base / f for f in self.train_files], "train", cfg.train_size, cfg.seed)
        test = self._read_part([base / self.test_file], "test", cfg.test_size, cfg.seed)
        return DatasetBundle(self.name, train, test, classes)

    def expected_shape(self) -> DatasetShape:
        """Sizes, image shape and classes without reading the files (a dry run before a download)."""
        cfg: CifarConfig = self.config
        return DatasetShape(cfg.train_size or 50000, cfg.test_size or 10000, (3, 32, 32), self.num_classes)

    def _missing(self, base: Path) -> list[str]:
        names = (*self.train_files, self.test_file, self.meta_file)
        return [n for n in names if not (base / n).is_file()]

    def _not_found_message(self, base: Path, missing: list[str]) -> str:
        files = ", ".join((*self.train_files, self.test_file, self.meta_file))
        return (
            f"{self.name}: {', '.join(missing)} not found in {base}. Expected the python-format "
            f"dataset at <root>/{self.folder}/ with {files}. Set the dataset option download=true to fetch it "
            "through torchvision (md5-verified): `--dataset-option download=true` on the command line, "
            "`download: true` under a suite's dataset options; or set `root` to the directory that contains "
            f"{self.folder}/."
        )

    def _download(self, root: Path) -> None:
        try:
            import torchvision.datasets
        except ImportError as exc:
            raise BackendUnavailableError(
                f"download=True needs torchvision ({exc}); `pip install torchvision` or fetch the files yourself"
            ) from exc
        dataset_class = getattr(torchvision.datasets, self.torchvision_name)
        created = [p for p in (root, *root.parents) if not p.exists()]  # innermost first
        before = set(root.iterdir()) if root.is_dir() else set()
        try:  # one call fetches, md5-checks and extracts the archive that holds train and test
            dataset_class(root=str(root), train=True, download=True)
        except BaseException as exc:  # also Ctrl-C: leave no empty folder or partial archive behind
            for path in [created[-1]] if created else sorted(set(root.iterdir()) - before):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            if not isinstance(exc, (OSError, RuntimeError)):
                raise
            raise DatasetNotFoundError(
                f"{self.name}: downloading into {root} failed ({exc}); check the network, or put "
                f"{self.folder}/ under `root` yourself"
            ) from exc

    def _read_names(self, path: Path) -> tuple[str, ...]:
        meta = read_pickle_batch(path)
        names = meta.get(self.names_key)
        if not isinstance(names, list) or len(names) != self.num_classes:
            raise InvalidInputError(f"{path}: expected {self.num_classes} class names under {self.names_key!r}")
        return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)

    def _read_part(self, paths: list[Path], part: str, size: int | None, seed: int) -> LabeledData:
        chunks = [self._read_batch(p) for p in paths]
        data = np.concatenate([c[0] for c in chunks])
        labels = np.concatenate([c[1] for c in chunks])
        if size is not None:
            if size > labels.size:
                raise InvalidInputError(f"{self.name} {part}_size={size} exceeds the {labels.size} {part} images")
            keep = stratified_indices(labels, size, seed=seed)
            data, labels = data[keep], labels[keep]
        x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
        return LabeledData(x, torch.from_numpy(labels), self.num_classes, f"{self.name}/{part}")

    def _read_batch(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 array (n, 3072), int64 labels (n,)) of one batch file, checked."""
        batch = read_pickle_batch(path)
        data, labels = batch.get("data"), batch.get(self.label_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
            shape = getattr(data, "shape", None)
            raise InvalidInputError(f"{path}: 'data' must be a uint8 array of shape (n, {_PIXELS}), got {shape}")
        try:
            y = np.asarray(labels, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{path}: {self.label_key!r} must be a list of integers ({exc})") from exc
        if y.size != data.shape[0]:
            raise InvalidInputError(f"{path}: {data.shape[0]} images but {y.size} {self.label_key!r}")
        if y.size and (y.min() < 0 or y.max() >= self.num_classes):
            raise InvalidInputError(f"{path}: labels must lie in [0, {self.num_classes - 1}]")
        return data, y


class Cifar10Source(_CifarSource):
    """CIFAR-10: 50000 train / 10000 test 32x32 colour images, 10 classes."""

    name = "cifar10"
    description = "CIFAR-10 32x32 colour images, 10 classes (python format; download via torchvision)"
    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_file = "test_batch"
    meta_file = "batches.meta"
    label_key = "labels"
    names_key = "label_names"
    num_classes = 10
    torchvision_name = "CIFAR10"


class Cifar100Source(_CifarSource):
    """CIFAR-100: 50000 train / 10000 test 32x32 colour images, 100 fine classes."""

    name = "cifar100"
    description = "CIFAR-100 32x32 colour images, 100 fine classes (python format; download via torchvision)"
    folder = "cifar-100-python"
    train_files = ("train",)
    test_file = "test"
    meta_file = "meta"
    label_key = "fine_labels"
    names_key = "fine_label_names"
    num_classes = 100
    torchvision_name = "CIFAR100"
