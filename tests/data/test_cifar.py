"""CIFAR-10/100 readers on tiny fixtures written in the real on-disk format (no download)."""

from __future__ import annotations

import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from amun_plugin.data.cifar import Cifar10Source, Cifar100Source, CifarConfig, read_pickle_batch
from amun_plugin.errors import DatasetNotFoundError, InvalidInputError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(n: int, num_classes: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [i % num_classes for i in range(n)]
    return data, labels


def _dump(path: Path, obj: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def write_cifar10(root: Path, per_batch: int = 10, n_test: int = 20, protocol: int = 4) -> dict[str, np.ndarray]:
    """The cifar-10-batches-py layout with bytes keys, as the official files unpickle."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    arrays = {}
    for i in range(1, 6):
        data, labels = _batch(per_batch, 10, seed=i)
        _dump(base / f"data_batch_{i}", {b"batch_label": b"b", b"data": data, b"labels": labels}, protocol)
        arrays[f"data_batch_{i}"] = data
    data, labels = _batch(n_test, 10, seed=99)
    _dump(base / "test_batch", {b"data": data, b"labels": labels}, protocol)
    arrays["test_batch"] = data
    _dump(base / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072}, protocol)
    return arrays


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100) -> None:
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    for part, n in (("train", n_train), ("test", n_test)):
        data, labels = _batch(n, 100, seed=n)
        coarse = [y // 5 for y in labels]
        _dump(base / part, {b"data": data, b"fine_labels": labels, b"coarse_labels": coarse})
    names = [f"class{i}".encode() for i in range(100)]
    _dump(base / "meta", {b"fine_label_names": names, b"coarse_label_names": names[:20]})


def test_cifar10_reads_the_python_format(tmp_path: Path) -> None:
    arrays = write_cifar10(tmp_path)
    bundle = Cifar10Source({"root": str(tmp_path)}).load()
    assert bundle.name == "cifar10"
    assert bundle.classes == tuple(CIFAR10_NAMES)
    assert bundle.train.x.shape == (50, 3, 32, 32) and bundle.test.x.shape == (20, 3, 32, 32)
    assert bundle.train.x.dtype == torch.float32
    assert 0.0 <= float(bundle.train.x.min()) and float(bundle.train.x.max()) <= 1.0
    # row layout: 1024 red bytes, then green, then blue; batches in order 1..5
    first = arrays["data_batch_1"][0]
    assert float(bundle.train.x[0, 0, 0, 1]) == pytest.approx(first[1] / 255)
    assert float(bundle.train.x[0, 1, 0, 0]) == pytest.approx(first[1024] / 255)
    assert float(bundle.train.x[0, 2, 31, 31]) == pytest.approx(first[3071] / 255)
    assert float(bundle.train.x[10, 0, 0, 0]) == pytest.approx(arrays["data_batch_2"][0, 0] / 255)
    assert bundle.train.y.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_reads_other_pickle_protocols(tmp_path: Path, protocol: int) -> None:
    arrays = write_cifar10(tmp_path, per_batch=2, n_test=3, protocol=protocol)
    bundle = Cifar10Source({"root": str(tmp_path)}).load()
    expected = torch.from_numpy(arrays["test_batch"].reshape(3, 3, 32, 32).astype(np.float32) / 255)
    assert torch.equal(bundle.test.x, expected)


def _py2_str(raw: bytes) -> bytes:
    return (b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<I", len(raw))) + raw


def _py2_array(data: np.ndarray) -> bytes:
    """How numpy 1.x under Python 2 pickled a uint8 array (the official CIFAR files)."""
    rows, cols = data.shape
    dtype = (
        b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R"
        + b"(K\x03" + _py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )  # fmt: skip
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R"
        + b"(K\x01M" + struct.pack("<H", rows) + b"M" + struct.pack("<H", cols) + b"\x86"
        + dtype + b"\x89" + _py2_str(data.tobytes()) + b"tb"
    )  # fmt: skip


def test_reads_python2_pickles_like_the_official_files(tmp_path: Path) -> None:
    data, labels = _batch(3, 10, seed=1)
    body = b"".join(b"K" + bytes([y]) for y in labels)
    blob = b"\x80\x02}(" + _py2_str(b"data") + _py2_array(data) + _py2_str(b"labels") + b"](" + body + b"eu."
    path = tmp_path / "batch"
    path.write_bytes(blob)
    batch = read_pickle_batch(path)
    assert set(batch) == {"data", "labels"}
    assert np.array_equal(batch["data"], data) and batch["labels"] == labels


def test_cifar100_uses_fine_labels_and_subsets(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    bundle = Cifar100Source(CifarConfig(root=str(tmp_path), train_size=100, test_size=50, seed=3)).load()
    assert bundle.num_classes == 100 and bundle.classes[7] == "class7"
    assert len(bundle.train) == 100 and len(bundle.test) == 50
    assert torch.bincount(bundle.train.y, minlength=100).tolist() == [1] * 100  # stratified
    again = Cifar100Source(CifarConfig(root=str(tmp_path), train_size=100, test_size=50, seed=3)).load()
    other = Cifar100Source(CifarConfig(root=str(tmp_path), train_size=100, test_size=50, seed=4)).load()
    assert torch.equal(bundle.train.x, again.train.x)
    assert not torch.equal(bundle.train.x, other.train.x)


def test_missing_files_explain_layout_and_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="--dataset-option download=true") as info:
        Cifar10Source({"root": str(tmp_path)}).load()
    assert "cifar-10-batches-py" in str(info.value) and "data_batch_1" in str(info.value)


def test_subset_larger_than_data_is_refused(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=2, n_test=3)
    with pytest.raises(InvalidInputError, match="train_size=11 exceeds the 10"):
        Cifar10Source({"root": str(tmp_path), "train_size": 11}).load()


def test_bad_sizes_in_config_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="train_size"):
        CifarConfig(train_size=0)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=2, n_test=3)
    marker = tmp_path / "pwned"
    _dump(tmp_path / "cifar-10-batches-py" / "data_batch_3", {b"data": _Exploit(marker), b"labels": [0]})
    with pytest.raises(InvalidInputError, match=r"refusing to unpickle (posix|os|nt)\.system") as info:
        Cifar10Source({"root": str(tmp_path)}).load()
    assert "data_batch_3" in str(info.value)
    assert not marker.exists()


def test_non_numpy_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil"
    _dump(path, {b"data": CifarConfig()})
    with pytest.raises(InvalidInputError, match=r"refusing to unpickle amun_plugin\.data\.cifar\.CifarConfig"):
        read_pickle_batch(path)


def test_corrupt_batches_are_refused(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=2, n_test=3)
    base = tmp_path / "cifar-10-batches-py"
    _dump(base / "test_batch", {b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]})
    with pytest.raises(InvalidInputError, match=r"test_batch: 'data' must be a uint8 array of shape \(n, 3072\)"):
        Cifar10Source({"root": str(tmp_path)}).load()
    (base / "test_batch").write_bytes((base / "data_batch_1").read_bytes()[:50])
    with pytest.raises(InvalidInputError, match="not a readable CIFAR batch file"):
        Cifar10Source({"root": str(tmp_path)}).load()
    _dump(base / "test_batch", {b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1, 10]})
    with pytest.raises(InvalidInputError, match=r"labels must lie in \[0, 9\]"):
        Cifar10Source({"root": str(tmp_path)}).load()


def _fake_torchvision(monkeypatch: pytest.MonkeyPatch, **classes: object) -> None:
    """Stand-in torchvision modules (importing the real one takes seconds; nothing may download)."""
    package = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    for name, value in classes.items():
        setattr(datasets, name, value)
    package.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def test_download_goes_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append({"root": root, "train": train, "download": download})
            write_cifar10(Path(root), per_batch=2, n_test=3)

    _fake_torchvision(monkeypatch, CIFAR10=FakeCIFAR10)
    bundle = Cifar10Source({"root": str(tmp_path / "d"), "download": True}).load()
    assert calls == [{"root": str(tmp_path / "d"), "train": True, "download": True}]
    assert len(bundle.train) == 10
    Cifar10Source({"root": str(tmp_path / "d"), "download": True}).load()
    assert len(calls) == 1  # files present: no second download


def test_failed_download_is_a_dataset_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(**kwargs: object) -> None:
        raise OSError("network unreachable")

    _fake_torchvision(monkeypatch, CIFAR100=offline)
    with pytest.raises(DatasetNotFoundError, match="network unreachable"):
        Cifar100Source({"root": str(tmp_path), "download": True}).load()
