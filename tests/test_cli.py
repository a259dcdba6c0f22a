"""The amun command line end to end on the embedded digits data (tiny recipes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amun_plugin.cli import main
from amun_plugin.models.checkpoint import read_checkpoint_metadata


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "original.safetensors"
    code = main(["train", "--dataset", "digits", "--model", "mlp", "--model-option", "hidden=[32]",
                 "--recipe-option", "epochs=3", "--recipe-option", "lr=0.05", "--out", str(out)])
    assert code == 0
    return out


def test_train_writes_a_checkpoint_with_its_recipe(original: Path) -> None:
    metadata = read_checkpoint_metadata(original)
    assert metadata.architecture == "mlp" and metadata.dataset == "digits"
    assert metadata.recipe["epochs"] == 3 and metadata.architecture_config["hidden"] == [32]
    assert json.loads(original.with_suffix(".json").read_text())["metadata"]["num_classes"] == 10


def test_train_without_forget_records_the_split(tmp_path: Path) -> None:
    out = tmp_path / "retrain.safetensors"
    assert main(["train", "--model-option", "hidden=[16]", "--recipe-option", "epochs=1", "--without-forget",
                 "--forget-indices", "0,1,2", "--out", str(out)]) == 0
    assert read_checkpoint_metadata(out).extra["trained_without_forget"]["forget_indices"] == [0, 1, 2]


def test_unlearn_saves_a_new_checkpoint_and_prints_a_table(original: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "unlearned.safetensors"
    before = original.read_bytes()
    code = main(["unlearn", str(original), "--method", "amun", "--forget-fraction", "0.05", "--no-retain",
                 "--holdout-size", "0", "--option", "epochs=1", "--out", str(out)])
    assert code == 0
    assert original.read_bytes() == before
    printed = capsys.readouterr().out
    assert "| before |" in printed and "| after |" in printed
    extra = read_checkpoint_metadata(out).extra["unlearned"]
    assert extra["method"] == "amun" and extra["with_retain"] is False and extra["config"]["epochs"] == 1


def test_unlearn_refuses_to_overwrite_its_input(original: Path, capsys) -> None:
    assert main(["unlearn", str(original), "--out", str(original)]) == 2
    assert "never overwritten" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--forget-indices", "1,1,2"], "duplicate"),
        (["--forget-indices", "99999"], "out of range"),
        (["--forget-fraction", "0.1", "--forget-classes", "1"], "only one of"),
        (["--option", "epoch=3"], "unknown option"),
        (["--method", "nope"], "unknown unlearner"),
    ],
)
def test_bad_unlearn_requests_get_one_clear_line(original: Path, tmp_path: Path, capsys, args, message) -> None:
    assert main(["unlearn", str(original), "--out", str(tmp_path / "x.safetensors"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_a_pickled_checkpoint_is_refused(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x80\x04K\x01.")
    assert main(["unlearn", str(bad), "--out", str(tmp_path / "y.safetensors")]) == 2
    assert "pickle" in capsys.readouterr().err.lower()


def test_plugins_lists_every_kind(capsys) -> None:
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    kinds = listing["components"]
    assert set(kinds) == {"unlearners", "attacks", "evaluators", "datasets", "models"}
    assert {"name": "amun", "package": "amun_plugin"}.items() <= kinds["unlearners"][0].items() or any(
        e["name"] == "amun" for e in kinds["unlearners"])
    assert all(e["package"] == "amun_plugin" for kind in kinds.values() for e in kind)


def test_retrain_uses_the_checkpoint_recipe_and_dau_gets_a_validation_split(original: Path, tmp_path: Path) -> None:
    out = tmp_path / "retrained.safetensors"
    assert main(["unlearn", str(original), "--method", "retrain", "--forget-fraction", "0.1",
                 "--out", str(out)]) == 0
    assert read_checkpoint_metadata(out).extra["unlearned"]["config"]["epochs"] == 3  # the recipe's, not 40
    dau = tmp_path / "dau.safetensors"
    assert main(["unlearn", str(original), "--method", "dau", "--forget-fraction", "0.05", "--validation-size", "40",
                 "--option", "epochs=1", "--option", "attacker_layers=1", "--out", str(dau)]) == 0


def test_unlearn_calibrates_amun_on_a_held_out_part_of_the_test_split(original: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "calibrated.safetensors"
    assert main(["unlearn", str(original), "--forget-fraction", "0.05", "--holdout-size", "60",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "calibrated on 60 held-out samples" in printed
    assert read_checkpoint_metadata(out).extra["unlearned"]["config"]["calibration"]["lr_max"] == 0.1


def test_unlearn_reads_held_out_samples_from_a_npz_file(original: Path, tmp_path: Path, capsys) -> None:
    import numpy as np

    from amun_plugin.data.digits import DigitsSource

    test = DigitsSource().load().test
    path = tmp_path / "holdout.npz"
    np.savez(path, x=test.x[:50].numpy(), y=test.y[:50].numpy())
    out = tmp_path / "from_file.safetensors"
    assert main(["unlearn", str(original), "--forget-fraction", "0.05", "--holdout-file", str(path),
                 "--out", str(out)]) == 0
    assert "calibrated on 50 held-out samples" in capsys.readouterr().out
    np.savez(path, images=test.x[:5].numpy())
    assert main(["unlearn", str(original), "--forget-fraction", "0.05", "--holdout-file", str(path),
                 "--out", str(tmp_path / "bad.safetensors")]) == 2
    assert "expected a .npz with arrays x and y" in capsys.readouterr().err
