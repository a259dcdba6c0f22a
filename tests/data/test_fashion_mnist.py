"""Fashion-MNIST IDX reader: real installed files (small subset) and tiny fake files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from amun_plugin.data import FashionMNISTConfig, FashionMNISTSource
from amun_plugin.data.fashion_mnist import CLASSES, DEFAULT_ROOT, read_idx
from amun_plugin.errors import DatasetNotFoundError, InvalidInputError


def _idx(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fake(root: Path, n_train: int = 20, n_test: int = 10, compress: bool = False) -> np.ndarray:
    """Four tiny IDX files; returns the train images (n_train, 28, 28) uint8."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    parts = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        parts[part] = images
        labels = np.arange(n) % 10
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            blob = _idx(array)
            name = f"{part}-{kind}-ubyte"
            if compress:
                (root / f"{name}.gz").write_bytes(gzip.compress(blob))
            else:
                (root / name).write_bytes(blob)
    return parts["train"]


@pytest.mark.parametrize("compress", [False, True])
def test_fake_files_parse_exactly(tmp_path: Path, compress: bool) -> None:
    images = write_fake(tmp_path, compress=compress)
    bundle = FashionMNISTSource({"root": str(tmp_path)}).load()
    assert bundle.classes == CLASSES and bundle.classes[0] == "T-shirt/top" and bundle.classes[9] == "Ankle boot"
    assert bundle.train.x.shape == (20, 1, 28, 28) and len(bundle.test) == 10
    assert torch.equal(bundle.train.x[:, 0], torch.from_numpy(images.astype(np.float32) / 255))
    assert bundle.train.y.tolist() == [i % 10 for i in range(20)]


def test_subset_is_stratified_and_seeded(tmp_path: Path) -> None:
    write_fake(tmp_path, n_train=100)
    config = {"root": str(tmp_path), "train_size": 30, "test_size": 10, "seed": 2}
    a, b = FashionMNISTSource(config).load(), FashionMNISTSource(config).load()
    assert torch.bincount(a.train.y).tolist() == [3] * 10
    assert torch.equal(a.train.x, b.train.x)
    c = FashionMNISTSource({**config, "seed": 3}).load()
    assert not torch.equal(a.train.x, c.train.x)
    with pytest.raises(InvalidInputError, match="train_size=101 exceeds the 100"):
        FashionMNISTSource({**config, "train_size": 101}).load()


def test_missing_directory_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNISTSource(FashionMNISTConfig(root=str(tmp_path / "nowhere"))).load()
    message = str(info.value)
    assert "apt-get install -y dataset-fashion-mnist" in message and "`root`" in message
    assert "train-images-idx3-ubyte" in message


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + bytes(5), "expected magic 0x00000803"),
        (b"\x00\x00\x08\x03" + struct.pack(">III", 2, 28, 28) + bytes(100), "truncated or corrupt"),
        (b"", "got 0xempty"),
    ],
)
def test_corrupt_idx_names_the_file(tmp_path: Path, blob: bytes, message: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(blob)
    with pytest.raises(InvalidInputError, match=message) as info:
        read_idx(path, ndim=3)
    assert str(path) in str(info.value)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    write_fake(tmp_path, compress=True)
    bad = tmp_path / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(InvalidInputError, match=r"t10k-labels-idx1-ubyte\.gz"):
        FashionMNISTSource({"root": str(tmp_path)}).load()


def test_mismatched_counts_are_refused(tmp_path: Path) -> None:
    write_fake(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(7, np.uint8)))
    with pytest.raises(InvalidInputError, match=r"20 images but .* 7 labels"):
        FashionMNISTSource({"root": str(tmp_path)}).load()


@pytest.mark.skipif(not Path(DEFAULT_ROOT, "train-images-idx3-ubyte.gz").exists(), reason="dataset not installed")
def test_real_installed_files_small_subset() -> None:
    bundle = FashionMNISTSource({"train_size": 200, "test_size": 50}).load()
    assert bundle.train.x.shape == (200, 1, 28, 28) and len(bundle.test) == 50
    assert torch.bincount(bundle.train.y).tolist() == [20] * 10
    assert float(bundle.train.x.max()) == 1.0 and float(bundle.train.x.min()) == 0.0
    assert 0.2 < float(bundle.train.x.mean()) < 0.4  # Fashion-MNIST's mean pixel is about 0.286
