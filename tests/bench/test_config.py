"""Suite YAML: strict validation, presets, and every shipped suite loads for every preset."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from bench_helpers import tiny_suite

from amun_plugin.bench.suite_config import SUITES_DIR, SuiteKind, load_suite
from amun_plugin.errors import InvalidInputError

SUITE = {
    "name": "s", "kind": "table", "default_preset": "a",
    "suite": {"dataset": {"name": "digits"}, "model": {"name": "mlp"},
              "methods": [{"name": "ft", "options": {"epochs": 1}}], "grid": {"fractions": [0.1]}},
    "presets": {"a": {}, "b": {"grid": {"forget_seeds": [7]}, "methods": [{"name": "amun", "label": "A"}]}},
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_presets_merge_over_the_common_part(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE)
    a, b = load_suite(path), load_suite(path, "b")
    assert a.preset == "a" and a.grid.fractions == (0.1,) and a.methods[0].label == "ft"
    assert b.grid.forget_seeds == (7,) and b.grid.fractions == (0.1,)
    assert [m.label for m in b.methods] == ["A"]


@pytest.mark.parametrize("where, patch", [
    ("top", {"colour": 1}),
    ("suite", {"suite": {**SUITE["suite"], "learning_rate": 0.1}}),
    ("grid", {"suite": {**SUITE["suite"], "grid": {"fractionz": [0.1]}}}),
    ("method", {"suite": {**SUITE["suite"], "methods": [{"name": "ft", "optons": {}}]}}),
    ("recipe", {"suite": {**SUITE["suite"], "training": {"recipe": {"epoch": 3}}}}),
])
def test_unknown_keys_are_refused(tmp_path: Path, where: str, patch: dict) -> None:
    bad = "colour" if where == "top" else {"suite": "learning_rate", "grid": "fractionz", "method": "optons",
                                           "recipe": "epoch"}[where]
    with pytest.raises(InvalidInputError, match=bad):
        load_suite(write(tmp_path, {**SUITE, **patch}))


def test_bad_values_and_unknown_presets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="preset"):
        load_suite(write(tmp_path, SUITE), "nope")
    with pytest.raises(InvalidInputError, match="setting"):
        tiny_suite(grid={"settings": ["with_retian"]})
    with pytest.raises(InvalidInputError, match="duplicate method label"):
        tiny_suite(methods=[{"name": "ft"}, {"name": "ft"}])
    with pytest.raises(InvalidInputError, match="unknown suite"):
        load_suite("no_such_suite")


def _shipped_suite_presets() -> list[tuple[str, str]]:
    """(suite, preset) for every shipped suite and every preset it offers (those its file lists;
    a shared preset that only some suites use, e.g. the regime map's, is not offered by the others):
    each must load."""
    from amun_plugin.config import load_yaml

    pairs = []
    for path in sorted(SUITES_DIR.glob("*.yaml")):
        if path.stem == "presets":
            continue
        pairs += [(path.stem, preset) for preset in sorted(load_yaml(path).get("presets") or {})]
    return pairs


SUITE_PRESETS = _shipped_suite_presets()


def test_the_table_suites_offer_every_shared_preset() -> None:
    for suite in ("table1", "table2", "continuous", "ablation", "weak_attack", "transfer", "robust"):
        offered = {preset for name, preset in SUITE_PRESETS if name == suite}
        assert {"fmnist-cnn", "fmnist-paper", "fmnist-gpu", "cifar10-resnet18"} <= offered, suite


@pytest.mark.parametrize("name, preset", SUITE_PRESETS)
def test_every_shipped_suite_loads(name: str, preset: str) -> None:
    config = load_suite(name, preset)
    assert config.name == name and config.preset == preset
    assert config.kind in SuiteKind
    if config.kind is not SuiteKind.ABLATION:
        assert config.methods


def test_with_runs_sets_the_forget_seeds() -> None:
    assert tiny_suite().with_runs(3).grid.forget_seeds == (0, 1, 2)
    with pytest.raises(InvalidInputError):
        tiny_suite().with_runs(0)


def test_with_fractions_replaces_the_grid_and_validates() -> None:
    suite = tiny_suite().with_fractions([0.1])
    assert suite.grid.fractions == (0.1,) and suite.methods == tiny_suite().methods
    with pytest.raises(InvalidInputError, match="fractions"):
        tiny_suite().with_fractions([1.5])


def test_setting_options_override_the_fixed_options_in_their_setting_only() -> None:
    from amun_plugin.bench.tuning import resolved_options

    suite = tiny_suite(methods=[{"name": "ft", "options": {"epochs": 1, "lr": 0.1},
                                 "setting_options": {"without_retain": {"lr": 0.01}}}])
    method = suite.methods[0]
    assert resolved_options(suite, method, {}, "standard", 0.1, "with_retain") == {"epochs": 1, "lr": 0.1}
    assert resolved_options(suite, method, {}, "standard", 0.1, "without_retain") == {"epochs": 1, "lr": 0.01}
    with pytest.raises(InvalidInputError, match="unknown setting"):
        tiny_suite(methods=[{"name": "ft", "setting_options": {"sometimes": {"lr": 1.0}}}])


@pytest.mark.parametrize("name, preset", SUITE_PRESETS)
def test_step_size_grids_fit_in_the_epochs(name: str, preset: str) -> None:
    """A step_size grid {1, 5, 10} over 2 epochs tunes nothing but step 1: epochs >= the largest step."""
    from amun_plugin.plugins import get_plugin_manager

    host = get_plugin_manager()
    for method in load_suite(name, preset).methods:
        if "step_size" in method.grid:
            config = host.unlearners.get(method.name)(dict(method.options)).config
            assert config.epochs >= max(method.grid["step_size"]), (name, preset, method.label)


@pytest.mark.parametrize("name", ["table1", "table2", "transfer", "weak_attack"])
@pytest.mark.parametrize("preset", ["fmnist-cnn", "fmnist-paper", "fmnist-gpu", "cifar10-resnet18"])
def test_amun_augments_d_r_and_d_f_like_the_original_training(name: str, preset: str) -> None:
    """The paper fine-tunes AMUN with the training augmentation on D_R and D_F (never on D_A)."""
    from amun_plugin.plugins import get_plugin_manager

    config = load_suite(name, preset)
    host = get_plugin_manager()
    amun = [m for m in config.methods if m.name in ("amun", "amun_salun")]
    assert amun
    for method in amun:
        assert host.unlearners.get(method.name)(dict(method.options)).config.augment == config.training.recipe.augment


def test_paper_regime_presets() -> None:
    """fmnist-paper: label smoothing (no saturation), 500 forget samples at 10%, 5 forget sets;
    fmnist-gpu: the same recipe on all of Fashion-MNIST, on cuda."""
    paper, gpu = load_suite("table1", "fmnist-paper"), load_suite("table1", "fmnist-gpu")
    assert paper.training.recipe.label_smoothing == 0.1 and paper.device == "cpu"
    assert paper.dataset.options["train_size"] * 0.1 >= 500 and len(paper.grid.forget_seeds) >= 5
    assert gpu.training.recipe == paper.training.recipe and gpu.device == "cuda"
    assert "train_size" not in gpu.dataset.options
