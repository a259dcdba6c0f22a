"""A checkpoint header names its dataset; it never sets paths or downloads (only the user does)."""

from __future__ import annotations

import pytest

from amun_plugin.cli import main
from amun_plugin.data.cifar import Cifar10Source
from amun_plugin.models import MLP, CheckpointMetadata, build_model, save_checkpoint
from amun_plugin.plugins import get_plugin_manager


def test_header_cannot_trigger_a_download(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(Cifar10Source, "_download", lambda self, root: calls.append(root))
    meta = CheckpointMetadata(architecture="mlp", architecture_config={"hidden": [2]}, num_classes=10,
                              input_shape=(3, 32, 32), dataset="cifar10",
                              dataset_config={"root": str(tmp_path / "attacker"), "download": True, "seed": 0})
    path = save_checkpoint(tmp_path / "model", build_model(MLP({"hidden": [2]}), 10, (3, 32, 32), seed=0), meta)
    monkeypatch.chdir(tmp_path)
    assert main(["unlearn", str(path), "--out", str(tmp_path / "out.safetensors")]) == 2
    err = capsys.readouterr()
    assert calls == []
    assert not (tmp_path / "attacker").exists()
    assert "ignoring the checkpoint's dataset option(s) download, root" in err.err
    assert "CIFAR" in err.err or "cifar" in err.err


def test_header_selection_options_are_kept_and_the_user_sets_the_rest():
    meta = CheckpointMetadata(architecture="mlp", architecture_config={}, num_classes=10, input_shape=(1, 8, 8),
                              dataset="digits", dataset_config={"test_fraction": 0.5, "seed": 3})
    bundle = get_plugin_manager(autoload=False).load_checkpoint_dataset(meta)
    assert len(bundle.test) == pytest.approx(1797 / 2, abs=1)
