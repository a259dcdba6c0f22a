"""A checkpoint's header is untrusted input: sizes are bounded and checked against the stored
tensors before anything is built, dtypes are checked, and files get the usual permissions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from amun_plugin.errors import CheckpointError
from amun_plugin.models import MLP, CheckpointMetadata, build_model, load_checkpoint, save_checkpoint
from amun_plugin.models.checkpoint import METADATA_KEY


def _meta(**changes: object) -> CheckpointMetadata:
    values = dict(architecture="mlp", architecture_config={"hidden": [8]}, num_classes=3, input_shape=(1, 4, 4))
    values.update(changes)
    return CheckpointMetadata(**values)  # type: ignore[arg-type]


def _build(meta: CheckpointMetadata) -> nn.Module:
    return MLP(meta.architecture_config).build(meta.num_classes, meta.input_shape)


def _saved(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "model", build_model(MLP({"hidden": [8]}), 3, (1, 4, 4), seed=0), _meta())


def _rewrite(path: Path, header: dict | None = None, tensors: dict | None = None) -> None:
    """Rewrite ``path`` with another metadata header and/or other tensors (as an attacker would)."""
    stored = load_file(str(path))
    original = json.loads(_meta().to_json())
    save_file(tensors if tensors is not None else stored, str(path),
              metadata={METADATA_KEY: json.dumps({**original, **(header or {})})})


@pytest.mark.parametrize("header, message", [
    ({"architecture_config": {"hidden": [10**9]}}, "shape mismatches"),
    ({"num_classes": 10**9}, "exceeds"),
    ({"input_shape": [1, 10**5, 10**5]}, "too large"),
    ({"input_shape": [1, 1, 1, 1, 1, 16]}, "too large"),
])
def test_oversized_header_is_refused_before_building(tmp_path, header, message):
    path = _saved(tmp_path)
    _rewrite(path, header=header)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, _build)


def test_float_tensors_relabelled_as_integers_are_refused(tmp_path):
    path = _saved(tmp_path)
    stored = load_file(str(path))
    _rewrite(path, tensors={k: v.view(torch.int32) for k, v in stored.items()})
    with pytest.raises(CheckpointError, match=r"dtype mismatches \[.*stored int32, model float32"):
        load_checkpoint(path, _build)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_checkpoints_honour_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = _saved(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE(path.with_suffix(".json").stat().st_mode) == mode
