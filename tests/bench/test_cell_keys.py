"""Cell keys (the resume keys of a running benchmark): a cell's ``resolved`` hashes the cache key of
its method's config (``config.cache_key``), so a config field added with a default that keeps the
old behaviour, or declared unable to change a result, moves no cell id. ``SUITE_HASHES`` pins the
suite configs' content hashes (from before the record restructuring), the other pins were computed
by the code before the cache key existed (commit 784a8ad)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from amun_plugin.artifacts import ArtifactCache, content_hash
from amun_plugin.bench.cells import resolved_hash
from amun_plugin.bench.suite_config import SUITES_DIR, SuiteConfig, load_suite
from amun_plugin.bench.tuning import grid_points
from amun_plugin.bench.workspace import Workspace
from amun_plugin.config import cache_key, config_to_dict, load_yaml
from amun_plugin.plugins import get_plugin_manager

SUITE_HASHES = {
    "ablation/cifar10-resnet18": "dc6a7694f9c843d0a508",
    "ablation/fmnist-cnn": "462ab14845d072e2c9c2",
    "ablation/fmnist-gpu": "ea416af33101b2d30d53",
    "ablation/fmnist-paper": "137b2d1e597d6ee4ef27",
    "continuous/cifar10-resnet18": "b855a748c944312f9e21",
    "continuous/fmnist-cnn": "9e45762087826ae15fe3",
    "continuous/fmnist-gpu": "7d7529496b821427cad0",
    "continuous/fmnist-paper": "538f33c4a8f91e937fba",  # + four "(calibrated...)" rows (session 9)
    "forgetting_quality/cifar10-resnet18": "41f0e40396014e94b990",
    "forgetting_quality/digits-mlp": "6910dbf1ee912ae3e87c",
    "forgetting_quality/fmnist-cnn": "854673ae6e41879ec264",
    "regime_map/fmnist-paper": "ccebd99433773bebceba",  # the regime map (issue 24)
    "regime_map/fmnist-10k": "de041caf2f38f3dd501c",
    "regime_map/fmnist-20k": "c07021ffd6769dcd3cdb",
    "regime_map/fmnist-60k": "9edd655be5fb7b5fad82",
    "regime_map/fmnist-60k-augmented": "8269fb1f34b34172eec3",
    "robust/cifar10-resnet18": "d9d5107cc473f4dbc12e",
    "robust/fmnist-cnn": "12f12ae75cddf337d748",
    "robust/fmnist-gpu": "9458c4cbf5536f43a19e",
    "robust/fmnist-paper": "d53ea1631e3d5fbb87f6",
    "table1/cifar10-resnet18": "d7f13f8aa293eaaeddb1",
    "table1/fmnist-cnn": "95b18145c6b806acf7c9",
    "table1/fmnist-gpu": "c80a89ca2e27765c4766",
    "table1/fmnist-paper": "1e3d8a07bba36ae00304",
    "table1/quick": "dccc39fb30043d09f2a8",  # the quick preset (issue 29)
    "table2/cifar10-resnet18": "351a589b51b8b6cf9615",
    "table2/fmnist-cnn": "db5495e71a2b1de3994a",
    "table2/fmnist-gpu": "722ce9e09bc457de249c",
    "table2/fmnist-paper": "75578f65e9fa51d78d40",
    "table2/quick": "f050d205af372bf9ed48",  # the quick preset (issue 29)
    "transfer/cifar10-resnet18": "72d808826cfc076aa39a",
    "transfer/fmnist-cnn": "8205f84daaba324b6b8d",
    "transfer/fmnist-gpu": "f462caaa871b2c71d8df",
    "transfer/fmnist-paper": "abb64937b8bd1a3cdbe7",
    "weak_attack/cifar10-resnet18": "97657f2897dd25722ad8",
    "weak_attack/fmnist-cnn": "e96b0e9fd8f01e44aebf",
    "weak_attack/fmnist-gpu": "be0109d9723b92e336aa",
    "weak_attack/fmnist-paper": "f0d0b2f339c3264c9d99",
}
"""content_hash(load_suite(suite, preset).to_dict()) before the restructuring (commit d77d736); table1 and
table2 (but cifar10-resnet18, whose preset lists its own methods) since they gained the ``auto`` row and
table1 the ``l1-Sparse (AMUN authors' growing alpha)`` row (issues 24, 25): new rows, no existing key moved."""

DEFAULT_KEYS = {
    "amun": "05f45f1c151fb68c9b25", "amun_a": "05f45f1c151fb68c9b25", "amun_salun": "5ed63d4ca6f0c2b93f04",
    "bs": "1c9c671ea7f0bbaf8cb9", "dau": "88c144d2cf36ad4c7e93", "ft": "0b986381bfda95dd8d4c",
    "ga": "f6c2d0d4139cf3663f9a", "l1_sparse": "467447182f21e361f63c", "retrain": "08827e03fd60508b5695",
    "rl": "0b986381bfda95dd8d4c", "salun": "0b9fbfd79e36f7a4ecd8",
}
"""content_hash of each built-in unlearner's default config (``resolved`` of a cell without options)."""

SUITE_KEYS = {
    "ablation": "1113c792756045f7afb7",
    "continuous": "f4999176d0a40e4102fa", "continuous/fmnist-paper": "e330d5732776cdab8e13",
    "forgetting_quality/cifar10-resnet18": "b6861db03d1a2d9b70d6",
    "forgetting_quality/digits-mlp": "f51ac8e6941f6ea71010",
    "forgetting_quality/fmnist-cnn": "3554965609919c262176",
    "regime_map": "ef74f282a10d34d1d951",
    "robust": "5f34f8d6769b9709f90a", "robust/cifar10-resnet18": "0d84bde4270eb22f591f",
    "robust/fmnist-cnn": "0d84bde4270eb22f591f",
    "table1": "d4e67416782b81504b78", "table1/cifar10-resnet18": "ffe3d81dce47ed14628e",
    "table2": "543c47b51d35bc2fde7d", "table2/cifar10-resnet18": "f1dbeb87a97dd4e819fc",
    "transfer": "03dc8f56cf964af3c4da", "transfer/cifar10-resnet18": "b6790c779a2be4e6c415",
    "weak_attack": "38f35bc56e4a0ab1bd52", "weak_attack/cifar10-resnet18": "7ad32e16edb8f12ebbcd",
}
"""Per suite (a preset named where it differs from the suite's other presets): the content hash of
every (method, setting, options) -> ``resolved`` the suite can run (fixed options and grid points).
table1 / table2 moved on purpose in sessions 13 and 14: ``Auto.revision`` 1 and 2 moved their ``auto`` rows alone
(``test_the_rows_added_for_issues_24_and_25_moved_no_other_key`` checks the rest)."""

MOVED = ("a config's cache key moved, and with it the id of every cell using it (a resumed run recomputes "
         "them): list a new field in the config's OMIT_WHEN_DEFAULT (its default keeps the old behaviour) "
         "or NOT_IN_CACHE_KEY (it cannot change a result)")


def _presets() -> list[str]:
    return [f"{path.stem}/{preset}" for path in sorted(SUITES_DIR.glob("*.yaml")) if path.stem != "presets"
            for preset in load_yaml(path).get("presets") or {}]


def _resolved(config: SuiteConfig, tmp_path: Path) -> dict[str, str]:
    """(method, setting, options) -> ``resolved`` of every option set the suite can hash."""
    ws = Workspace(config, ArtifactCache(tmp_path))
    out = {}
    if config.ablation is not None:
        spec = config.ablation
        out[f"ablation|{spec.method}|{json.dumps(dict(spec.options), sort_keys=True)}"] = \
            resolved_hash(ws, spec.method, spec.options)
    for method in config.methods:
        for setting in sorted({*config.grid.settings, *method.settings}):
            for point in [{}] + (grid_points(method) if method.grid else []):
                options = {**method.options_in(setting), **point}
                out[f"{method.label}|{setting}|{json.dumps(options, sort_keys=True)}"] = \
                    resolved_hash(ws, method.name, options)
    return out


@pytest.mark.parametrize("key", _presets())
def test_the_shipped_suites_keys_are_unchanged(key: str, tmp_path: Path) -> None:
    suite, preset = key.split("/")
    config = load_suite(suite, preset)
    assert content_hash(config.to_dict()) == SUITE_HASHES[key]
    assert content_hash(_resolved(config, tmp_path)) == SUITE_KEYS.get(key, SUITE_KEYS.get(suite)), MOVED


@pytest.mark.parametrize("suite, before", [("table1", "c89ca64c320ee5c1d468"), ("table2", "4df80699a213089442bc")])
def test_the_rows_added_for_issues_24_and_25_moved_no_other_key(suite: str, before: str, tmp_path: Path) -> None:
    added = ("auto|", "l1-Sparse (AMUN authors' growing alpha)|")
    keys = _resolved(load_suite(suite, "fmnist-paper"), tmp_path)
    assert content_hash({k: v for k, v in keys.items() if not k.startswith(added)}) == before, MOVED


def test_a_change_of_the_calibrated_schedule_moves_only_calibrated_cells(tmp_path: Path, monkeypatch) -> None:
    import amun_plugin.bench.cells as cells

    ws = Workspace(load_suite("table1", "fmnist-paper"), ArtifactCache(tmp_path))
    fixed, calibrated = resolved_hash(ws, "amun", {"epochs": 10}), resolved_hash(ws, "amun", {"epochs": 10}, True)
    assert fixed != calibrated
    monkeypatch.setattr(cells, "CALIBRATION_REVISION", cells.CALIBRATION_REVISION + 1)
    assert resolved_hash(ws, "amun", {"epochs": 10}) == fixed
    assert resolved_hash(ws, "amun", {"epochs": 10}, True) != calibrated


def test_an_unlearners_revision_moves_only_its_own_cells(tmp_path: Path, monkeypatch) -> None:
    from amun_plugin.unlearn.auto import Auto

    ws = Workspace(load_suite("table1", "fmnist-paper"), ArtifactCache(tmp_path))
    auto, amun = resolved_hash(ws, "auto", {}, True), resolved_hash(ws, "amun", {}, True)
    monkeypatch.setattr(Auto, "revision", Auto.revision + 1)
    assert resolved_hash(ws, "auto", {}, True) != auto
    assert resolved_hash(ws, "amun", {}, True) == amun


def test_the_unlearners_default_keys_are_unchanged() -> None:
    host = get_plugin_manager()
    keys = {name: content_hash(cache_key(host.unlearners.get(name)({}).config)) for name in DEFAULT_KEYS}
    assert keys == DEFAULT_KEYS, MOVED


@dataclass(frozen=True)
class _Inner:
    steps: int = 3


@dataclass(frozen=True)
class _Before:
    lr: float = 0.1
    inner: _Inner = field(default_factory=_Inner)


@dataclass(frozen=True)
class _InnerAfter(_Inner):
    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("warmup",)
    NOT_IN_CACHE_KEY: ClassVar[tuple[str, ...]] = ("log_every",)

    warmup: int = 0
    log_every: int = 10


@dataclass(frozen=True)
class _After(_Before):
    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("extra", "schedule")
    NOT_IN_CACHE_KEY: ClassVar[tuple[str, ...]] = ("progress",)

    inner: _Inner = field(default_factory=_InnerAfter)
    extra: dict[str, Any] = field(default_factory=dict)
    schedule: str = "constant"
    progress: bool = False


def test_new_fields_at_their_default_and_fields_out_of_the_key_leave_it_unchanged() -> None:
    before = content_hash(cache_key(_Before()))
    assert content_hash(cache_key(_After())) == before  # nested, and a default factory's default
    assert content_hash(cache_key(_After(progress=True, inner=_InnerAfter(log_every=1)))) == before
    assert "progress" in config_to_dict(_After())  # out of the key, not out of the config
    assert cache_key(_After(schedule="step", inner=_InnerAfter(warmup=2))) == {
        "lr": 0.1, "inner": {"steps": 3, "warmup": 2}, "schedule": "step"}
    assert content_hash(cache_key(_After(extra={"a": 1}))) != before
