"""Issue 16, items 2, 7 and 10: ``amun train`` says what it will cost, refuses a model at chance and
warns about one that does not memorise, and takes a preset's recipe; errors name the CLI's flags,
not the Python API's keywords; ``amun unlearn`` never picks a forget set silently."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from amun_plugin.cli import main
from amun_plugin.commands import checkpoints
from amun_plugin.commands.checkpoints import TrainSpec
from amun_plugin.errors import MissingInputError
from amun_plugin.plugins import get_plugin_manager

TINY = ["--model-option", "hidden=[32]", "--recipe-option", "epochs=3", "--recipe-option", "lr=0.05"]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("newcomer") / "original.safetensors"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_prints_its_steps_and_a_time_estimate_first(tmp_path: Path, capsys) -> None:
    assert main(["train", *TINY, "--out", str(tmp_path / "m.safetensors")]) == 0
    lines = capsys.readouterr().out.splitlines()
    n = len(get_plugin_manager().load_dataset("digits", {}).train)
    assert lines[0].startswith(f"training mlp on {n} digits images, 3 epochs: {3 * math.ceil(n / 128)} SGD steps")
    assert "roughly" in lines[0] and lines[-1].startswith("train accuracy")


def test_train_warns_when_the_model_does_not_memorise(tmp_path: Path, capsys) -> None:
    assert main(["train", "--model-option", "hidden=[32]", "--recipe-option", "epochs=2", "--recipe-option",
                 "lr=0.05", "--out", str(tmp_path / "m.safetensors")]) == 0
    assert "warning: the model does not memorise its training set" in capsys.readouterr().out


def test_train_refuses_a_model_at_chance_and_saves_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    def constant(architecture, data, recipe, **_):
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        nn.init.zeros_(model[1].weight)
        with torch.no_grad():
            model[1].bias.copy_(torch.arange(10.0))  # always class 9
        return model.eval()

    monkeypatch.setattr(checkpoints, "train_classifier", constant)
    out = tmp_path / "m.safetensors"
    assert main(["train", *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "at chance" in err and "--preset fmnist-cnn" in err and "nothing was saved" in err
    assert not out.exists()


def test_a_preset_gives_dataset_model_and_recipe_and_options_override_it() -> None:
    spec = TrainSpec(preset="fmnist-cnn", recipe_options={"epochs": 1}, dataset_options={"train_size": 500})
    dataset, data_options, model, model_options, recipe, device = spec.resolved()
    assert (dataset, model, device) == ("fashion_mnist", "cnn", "cpu")
    assert data_options == {"train_size": 500, "test_size": 1000, "seed": 0}
    assert model_options == {"width": 8, "hidden": 128}
    assert recipe["epochs"] == 1 and recipe["lr"] == 0.03 and recipe["weight_decay"] == 0.0
    other = TrainSpec(preset="fmnist-cnn", architecture="mlp").resolved()
    assert other[2:4] == ("mlp", {})  # the preset's cnn options do not go to another model


def test_an_unknown_preset_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["train", "--preset", "nope", "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "unknown preset 'nope'; presets: fmnist-cnn" in capsys.readouterr().err


def test_unlearn_needs_an_explicit_forget_set(original: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "u.safetensors"
    assert main(["unlearn", str(original), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "name the forget set" in err and "--forget-fraction" in err and not out.exists()


@pytest.mark.parametrize("args, flag, keyword", [
    (["--method", "dau"], "--validation-size", "validation="),
    (["--method", "ft", "--no-retain"], "drop --no-retain", "retain="),
])
def test_unlearn_errors_name_the_cli_flags(original: Path, tmp_path: Path, capsys, args, flag, keyword) -> None:
    assert main(["unlearn", str(original), "--forget-fraction", "0.05", *args,
                 "--out", str(tmp_path / "u.safetensors")]) == 2
    err = capsys.readouterr().err
    assert flag in err and keyword not in err


def test_audit_without_a_bank_names_the_bank_flag(original: Path, tmp_path: Path, capsys) -> None:
    assert main(["audit", str(original), "--forget-fraction", "0.1", "--evaluator", "rmia", "--no-plots",
                 "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "--bank-dir" in err and "bank_dir=" not in err


def test_python_callers_still_read_the_api_keywords(tiny_model, tiny_data) -> None:
    from amun_plugin import unlearn

    with pytest.raises(MissingInputError, match=r"pass retain=\.\.\."):
        unlearn(tiny_model, tiny_data, None, method="ft")


def test_audit_refuses_a_forget_set_other_than_the_retrained_models(original: Path, tmp_path: Path, capsys) -> None:
    retrained = tmp_path / "retrained.safetensors"
    assert main(["train", *TINY, "--without-forget", "--forget-fraction", "0.1", "--out", str(retrained)]) == 0
    common = [str(original), "--retrained", str(retrained), "--evaluator", "accuracy", "--no-plots"]
    assert main(["audit", *common, "--forget-fraction", "0.2", "--out", str(tmp_path / "wrong")]) == 2
    err = capsys.readouterr().err
    assert "retrained.safetensors (retrained) records another forget split" in err
    assert not (tmp_path / "wrong").exists()
    # without a --forget-* option the split recorded in the retrained model is used
    assert main(["audit", *common, "--out", str(tmp_path / "right")]) == 0
    assert main(["audit", *common, "--forget-fraction", "0.1", "--out", str(tmp_path / "same")]) == 0
    capsys.readouterr()
    right, same = (json.loads((tmp_path / d / "original" / "metrics.json").read_text()) for d in ("right", "same"))
    assert (right["metrics"], right["avg_gap"]) == (same["metrics"], same["avg_gap"])
