"""Issue 26 outside the bench: one-line errors for bad labels and devices, a progress line that
does not say "done" after Ctrl-C, Ctrl-C at start-up without a traceback, and a CIFAR download
that fails cleanly (no empty folder left, the CLI spelling of the option)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from amun_plugin import cli
from amun_plugin.data.base import as_labeled_data, labeled_for_model
from amun_plugin.data.cifar import Cifar10Source
from amun_plugin.device import resolve_device
from amun_plugin.errors import DatasetNotFoundError, InvalidInputError
from amun_plugin.training import TrainConfig, train_model

X = np.random.default_rng(0).random((6, 4)).astype("float32")


# 7. Labels and devices.
def test_string_labels_are_one_error() -> None:
    with pytest.raises(InvalidInputError, match="labels must be integer class ids"):
        labeled_for_model((X, np.array(["a", "b", "c", "a", "b", "c"])), 3, "forget")
    with pytest.raises(InvalidInputError, match="labels must be integer class ids"):
        as_labeled_data((X, ["cat"] * 6))
    with pytest.raises(InvalidInputError, match="x must be numbers"):
        as_labeled_data((np.array([["a"]] * 6), [0, 1] * 3))


def test_one_hot_labels_wider_than_the_model_are_refused() -> None:
    one_hot = np.eye(5)[[0, 1, 2, 0, 1, 2]]  # 5 columns, every label < 3
    with pytest.raises(InvalidInputError, match="one-hot labels have 5 columns.*the model has 3 outputs"):
        labeled_for_model((X, one_hot), 3, "forget")
    assert labeled_for_model((X, np.eye(3)[[0, 1, 2, 0, 1, 2]]), 3, "forget").y.tolist() == [0, 1, 2, 0, 1, 2]


def test_a_cuda_index_the_machine_lacks_is_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 1)
    with pytest.raises(InvalidInputError, match="'cuda:99' does not exist: this machine has 1 CUDA device"):
        resolve_device("cuda:99")
    assert resolve_device("cuda:0") == torch.device("cuda:0")


# 11. Ctrl-C.
def test_a_stage_line_closed_by_ctrl_c_says_interrupted_not_done(capsys: pytest.CaptureFixture[str]) -> None:
    data = as_labeled_data((X, [0, 1, 2, 0, 1, 2]), 3)

    def stop(step: int, _model: Any) -> bool:
        if step == 2:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        train_model(torch.nn.Linear(4, 3), data, TrainConfig(epochs=3, batch_size=2), step_end=stop, progress=True)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("train: interrupted, 2/9 steps"), last
    train_model(torch.nn.Linear(4, 3), data, TrainConfig(epochs=1, batch_size=2), progress=True)
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("train: done, 3/3 steps")


def test_ctrl_c_while_amun_starts_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    def interrupt(_argv: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load_plugins", interrupt)
    assert cli.main(["plugins"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


# 12. CIFAR.
def test_a_failed_cifar_download_leaves_nothing_and_names_the_cli_option(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    class Offline:
        def __init__(self, root: str, **_: Any) -> None:
            Path(root).mkdir(parents=True, exist_ok=True)
            (Path(root) / "cifar-10-python.tar.gz").write_bytes(b"partial")
            raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    with pytest.raises(DatasetNotFoundError, match="downloading into .* failed"):
        Cifar10Source({"root": str(tmp_path / "data" / "cifar"), "download": True}).load()
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "keep.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError):
        Cifar10Source({"root": str(existing), "download": True}).load()
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    with pytest.raises(DatasetNotFoundError, match="--dataset-option download=true"):
        Cifar10Source({"root": str(tmp_path / "none")}).load()

