"""Safe checkpoints: round trips, refusal of pickles, corrupt files, atomic writes."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from amun_plugin.errors import CheckpointError
from amun_plugin.models import (
    CNN,
    CheckpointMetadata,
    SmallResNet,
    build_model,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    sidecar_path,
)
from amun_plugin.models import checkpoint as checkpoint_module

ARCHS = {"cnn": CNN, "small_resnet": SmallResNet}


def _metadata(arch: str = "small_resnet", **extra: object) -> CheckpointMetadata:
    config = {"width": 4, "blocks_per_stage": 1} if arch == "small_resnet" else {"width": 2, "hidden": 8}
    return CheckpointMetadata(
        architecture=arch,
        architecture_config=config,
        num_classes=3,
        input_shape=(1, 8, 8),
        classes=("a", "b", "c"),
        dataset="toy",
        dataset_config={"n": 10},
        recipe={"epochs": 2, "lr": 0.1, "schedule": "cosine"},
        extra=dict(extra),
    )


def _build(meta: CheckpointMetadata) -> nn.Module:
    return ARCHS[meta.architecture](meta.architecture_config).build(meta.num_classes, meta.input_shape)


def _trained_like(meta: CheckpointMetadata, seed: int = 0) -> nn.Module:
    model = build_model(ARCHS[meta.architecture](meta.architecture_config), 3, (1, 8, 8), seed=seed)
    with torch.no_grad():  # make BatchNorm running statistics non-trivial
        model.train()(torch.rand(16, 1, 8, 8))
    return model.eval()


def test_round_trip_gives_identical_outputs_and_metadata(tmp_path: Path) -> None:
    meta = _metadata(note="hello", nested={"k": [1, 2]})
    model = _trained_like(meta)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = save_checkpoint(tmp_path / "sub" / "model", model, meta)
    assert path == tmp_path / "sub" / "model.safetensors" and path.is_file()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # input untouched
    loaded, loaded_meta = load_checkpoint(path, _build)
    assert loaded_meta == meta
    assert read_checkpoint_metadata(path) == meta
    x = torch.rand(5, 1, 8, 8)
    loaded.eval()
    assert torch.equal(loaded(x), model(x))
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["metadata"]["architecture"] == "small_resnet"
    assert sidecar["metadata"]["input_shape"] == [1, 8, 8]
    assert "stem.0.weight" in sidecar["tensors"]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_pickled_checkpoint_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # unpickling would call os.system and create the marker
            return (os.system, (f"touch {marker}",))

    for name in ("evil.pt", "evil.safetensors", "evil.bin"):
        path = tmp_path / name
        torch.save({"weights": Payload()}, path)
        with pytest.raises(CheckpointError, match="unpickling runs arbitrary code") as info:
            load_checkpoint(path, _build)
        assert "weights_only=True" in str(info.value)
        with pytest.raises(CheckpointError, match="pickle"):
            read_checkpoint_metadata(path)
    legacy = tmp_path / "legacy.model"
    legacy.write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(legacy, _build)
    assert not marker.exists()


def test_truncated_and_garbage_files_are_checkpoint_errors(tmp_path: Path) -> None:
    meta = _metadata()
    path = save_checkpoint(tmp_path / "m.safetensors", _trained_like(meta), meta)
    data = path.read_bytes()
    for cut in (4, 20, len(data) // 2, len(data) - 3):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            load_checkpoint(bad, _build)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors"):
        read_checkpoint_metadata(garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors", _build)


def test_safetensors_without_our_metadata_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="without amun_plugin metadata"):
        read_checkpoint_metadata(path)
    save_file({"w": torch.zeros(2)}, str(path), metadata={"amun_plugin": json.dumps({"architecture": "x"})})
    with pytest.raises(CheckpointError, match="missing keys"):
        read_checkpoint_metadata(path)


def test_shape_or_key_mismatch_is_a_checkpoint_error(tmp_path: Path) -> None:
    meta = _metadata()
    path = save_checkpoint(tmp_path / "m.safetensors", _trained_like(meta), meta)
    def wider(m: CheckpointMetadata) -> nn.Module:
        return SmallResNet({"width": 8}).build(m.num_classes, m.input_shape)

    def other(m: CheckpointMetadata) -> nn.Module:
        return CNN({"width": 2, "hidden": 8}).build(m.num_classes, m.input_shape)

    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(path, wider)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(path, other)


def test_failure_mid_write_leaves_previous_checkpoint_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = _metadata()
    old_model = _trained_like(meta, seed=0)
    path = save_checkpoint(tmp_path / "m.safetensors", old_model, meta)
    old_bytes, old_sidecar = path.read_bytes(), sidecar_path(path).read_text()
    import safetensors.torch

    def broken_save(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _trained_like(meta, seed=1), _metadata(note="new"))
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert sidecar_path(path).read_text() == old_sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    loaded, loaded_meta = load_checkpoint(path, _build)
    assert loaded_meta == meta
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(loaded.eval()(x), old_model(x))


def test_bad_paths_and_metadata_are_refused_before_writing(tmp_path: Path) -> None:
    meta = _metadata()
    model = _trained_like(meta)
    with pytest.raises(CheckpointError, match=".safetensors"):
        save_checkpoint(tmp_path / "m.pt", model, meta)
    with pytest.raises(CheckpointError, match="JSON-serialisable"):
        save_checkpoint(tmp_path / "m.safetensors", model, _metadata(bad=object()))
    with pytest.raises(CheckpointError, match="class names"):
        save_checkpoint(tmp_path / "m.safetensors", model, CheckpointMetadata("cnn", {}, 4, (1, 8, 8), ("a",)))
    assert list(tmp_path.iterdir()) == []


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    meta = _metadata()
    newer = CheckpointMetadata(**{**meta.__dict__, "format_version": checkpoint_module.FORMAT_VERSION + 1})
    path = save_checkpoint(tmp_path / "m.safetensors", _trained_like(meta), newer)
    with pytest.raises(CheckpointError, match="upgrade"):
        read_checkpoint_metadata(path)
