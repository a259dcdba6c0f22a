"""benchmarks/amun_cost.py keeps its models and finished phases in the package's artefact cache."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch
from script_loader import load_benchmark

from amun_plugin.artifacts import ArtifactCache
from amun_plugin.data.base import LabeledData


def _script() -> ModuleType:
    return load_benchmark("amun_cost.py")


@pytest.fixture()
def tiny(tmp_path: Path):
    module = _script()
    args = module.parse_args(["--cache-dir", str(tmp_path / "cache"), "--train-size", "48", "--epochs", "1",
                              "--forget-size", "8"])
    g = torch.Generator().manual_seed(0)
    data = LabeledData(torch.rand(48, 1, 28, 28, generator=g), torch.arange(48) % 10, 10, name="train")
    return module, args, data, ArtifactCache(args.cache_dir)


def test_a_trained_model_is_cached_and_a_forced_retraining_is_bit_identical(tiny) -> None:
    module, args, data, cache = tiny
    first, info = module.train_or_load(args, cache, data, "original")
    assert info["cached"] is False and Path(info["checkpoint"]).parent.name == module.KIND
    again, info2 = module.train_or_load(args, cache, data, "original")
    assert info2["cached"] is True and info2["seconds"] == info["seconds"]
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    _, forced = module.train_or_load(args, cache, data, "original", force=True)
    assert forced["cached"] is False and forced["identical_to_cache"] is True


def test_model_keys_differ_by_role_recipe_and_forget_size(tiny) -> None:
    module, args, data, _ = tiny
    original = module.model_key(args, data, "original")
    keys = {original, module.model_key(args, data, "retrain")}
    args.forget_size = 9
    keys.add(module.model_key(args, data, "retrain"))
    assert module.model_key(args, data, "original") == original  # the original does not depend on D_F
    args.lr = 0.01
    keys.add(module.model_key(args, data, "retrain"))
    assert len(keys) == 4


def test_fresh_phases_are_not_reused(tiny) -> None:
    module, args, _, _ = tiny
    setup = {"original_key": "k"}
    assert module.phase_key(args, setup, "retrain") == module.phase_key(args, setup, "retrain")
    fresh = module.parse_args(["--cache-dir", args.cache_dir, "--train-size", "48", "--forget-size", "8", "--fresh"])
    assert module.phase_key(fresh, setup, "retrain") != module.phase_key(args, setup, "retrain")
