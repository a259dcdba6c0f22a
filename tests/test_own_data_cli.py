"""Issue 29, item 11: your own data (a .npz) and your own model (an import path) from the CLI:
``amun train`` records both, ``amun unlearn`` and ``amun audit`` reload them; nothing is unpickled and
nothing is imported unless its package is named in AMUN_TRUSTED_IMPORTS (not even from a header)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from amun_plugin.cli import main
from amun_plugin.data import DigitsSource, NpzSource
from amun_plugin.errors import CheckpointError, DatasetNotFoundError, InvalidInputError
from amun_plugin.models import ImportedModel
from amun_plugin.models.checkpoint import CheckpointMetadata, read_checkpoint_metadata, save_checkpoint
from amun_plugin.models.imported import TRUSTED_IMPORTS_ENV
from amun_plugin.plugins import get_plugin_manager

MODULE = '''
from pathlib import Path
from torch import nn

Path(__file__).with_name("imported.marker").write_text("imported")  # shows that the module ran


def make(num_classes, input_shape):
    width = 1
    for size in input_shape:
        width *= size
    return nn.Sequential(nn.Flatten(), nn.Linear(width, 32), nn.ReLU(), nn.Linear(32, num_classes))


def wrong_width(num_classes, input_shape):
    return make(num_classes + 1, input_shape)
'''


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    """The digits' train / test split, written as the four arrays of a .npz."""
    bundle = DigitsSource().load()
    path = tmp_path / "my.npz"
    np.savez(path, x_train=bundle.train.x.numpy(), y_train=bundle.train.y.numpy(),
             x_test=bundle.test.x.numpy(), y_test=bundle.test.y.numpy())
    return path


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package (unique per test: modules stay imported) holding ``nets.make``, on sys.path."""
    name = f"ownmodels_{tmp_path.name.replace('-', '_')}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "nets.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _marker(tmp_path: Path, package: str) -> Path:
    return tmp_path / package / "imported.marker"


def test_train_unlearn_audit_on_own_npz_and_imported_model(tmp_path: Path, npz: Path, package: str,
                                                           monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(TRUSTED_IMPORTS_ENV, package)
    original, unlearned = tmp_path / "original.safetensors", tmp_path / "unlearned.safetensors"
    target = f"{package}.nets:make"
    assert main(["train", "--dataset", "npz", "--dataset-option", f"path={npz}", "--model", "import",
                 "--model-option", f"target={target}", "--recipe-option", "epochs=3", "--recipe-option", "lr=0.05",
                 "--out", str(original)]) == 0, capsys.readouterr().err
    metadata = read_checkpoint_metadata(original)
    assert (metadata.architecture, metadata.architecture_config) == ("import", {"target": target})
    assert (metadata.dataset, metadata.dataset_config) == ("npz", {"path": str(npz)})
    assert metadata.input_shape == (1, 8, 8) and metadata.num_classes == 10
    assert main(["unlearn", str(original), "--dataset-option", f"path={npz}", "--forget-fraction", "0.05",
                 "--holdout-size", "0", "--option", "epochs=1", "--out", str(unlearned)]) == 0, capsys.readouterr().err
    assert "| after |" in capsys.readouterr().out
    assert read_checkpoint_metadata(unlearned).extra["unlearned"]["method"] == "amun"
    assert main(["audit", str(unlearned), "--original", str(original), "--dataset-option", f"path={npz}",
                 "--forget-fraction", "0.05", "--evaluator", "accuracy", "--no-plots",
                 "--out", str(tmp_path / "report")]) == 0, capsys.readouterr().err
    assert any((tmp_path / "report").iterdir())


def test_a_later_command_without_the_path_says_to_give_it(tmp_path: Path, npz: Path, package: str,
                                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(TRUSTED_IMPORTS_ENV, package)
    original = tmp_path / "original.safetensors"
    assert main(["train", "--dataset", "npz", "--dataset-option", f"path={npz}", "--model", "import",
                 "--model-option", f"target={package}.nets:make", "--recipe-option", "epochs=3",
                 "--recipe-option", "lr=0.05", "--out", str(original)]) == 0
    capsys.readouterr()
    assert main(["unlearn", str(original), "--forget-fraction", "0.05", "--holdout-size", "0",
                 "--out", str(tmp_path / "u.safetensors")]) == 2
    assert "--dataset-option path=FILE.npz" in capsys.readouterr().err


def test_an_untrusted_package_is_never_imported(tmp_path: Path, npz: Path, package: str,
                                                monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv(TRUSTED_IMPORTS_ENV, raising=False)
    assert main(["train", "--dataset", "npz", "--dataset-option", f"path={npz}", "--model", "import",
                 "--model-option", f"target={package}.nets:make", "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert f"{TRUSTED_IMPORTS_ENV}={package}" in err and len(err.strip().splitlines()) == 1
    assert not _marker(tmp_path, package).exists()


def test_a_checkpoint_header_cannot_make_amun_import(tmp_path: Path, package: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone else's checkpoint naming an importable module: refused before the import."""
    monkeypatch.setenv(TRUSTED_IMPORTS_ENV, package)
    config = {"target": f"{package}.nets:make"}
    model = ImportedModel(config).build(3, (1, 4, 4))
    path = save_checkpoint(tmp_path / "theirs", model, CheckpointMetadata("import", config, 3, (1, 4, 4)))
    _marker(tmp_path, package).unlink()
    monkeypatch.delenv(TRUSTED_IMPORTS_ENV)
    with pytest.raises(CheckpointError, match=TRUSTED_IMPORTS_ENV):
        get_plugin_manager(autoload=False).load_model(path)
    assert not _marker(tmp_path, package).exists()
    monkeypatch.setenv(TRUSTED_IMPORTS_ENV, f"other, {package}")
    rebuilt, read = get_plugin_manager(autoload=False).load_model(path)
    assert read.architecture_config == config and not rebuilt.training


@pytest.mark.parametrize("target, message", [
    ("no_colon", "package.module:factory"),
    ("pkg.mod:__class__", "dunder"),
    ("{package}.missing:make", "cannot import"),
    ("{package}.nets:absent", "no attribute 'absent'"),
    ("{package}.nets:wrong_width", "logits of shape (N, 3)"),
])
def test_import_architecture_errors_are_one_clear_line(target: str, message: str, package: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRUSTED_IMPORTS_ENV, f"{package},pkg")
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ImportedModel({"target": target.format(package=package)}).build(3, (1, 4, 4))


def _write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_checks_arrays_and_never_unpickles(tmp_path: Path) -> None:
    x, y = np.random.default_rng(0).random((6, 1, 2, 2), dtype=np.float32), np.array([0, 1, 2, 0, 1, 2])
    good = dict(x_train=x, y_train=y, x_test=x[:3], y_test=y[:3])
    bundle = NpzSource({"path": str(_write(tmp_path / "ok.npz", **good))}).load()
    assert (bundle.name, bundle.num_classes, bundle.input_shape, len(bundle.train)) == ("npz", 3, (1, 2, 2), 6)
    assert NpzSource({"path": str(tmp_path / "ok.npz"), "num_classes": 5}).load().classes == tuple("01234")
    pickled = _write(tmp_path / "pickled.npz", **{**good, "y_test": np.array([0, 1, None], dtype=object)})
    cases = [
        ({"path": ""}, InvalidInputError, "path=FILE.npz"),
        ({"path": str(tmp_path / "absent.npz")}, DatasetNotFoundError, "does not exist"),
        ({"path": str(pickled)}, InvalidInputError, "never loaded"),
        ({"path": str(_write(tmp_path / "partial.npz", x_train=x, y_train=y))}, InvalidInputError,
         "lacks the array"),
        ({"path": str(_write(tmp_path / "bytes.npz", **{**good, "x_train": (x * 255).astype(np.uint8)}))},
         InvalidInputError, "/ 255"),
        ({"path": str(_write(tmp_path / "range.npz", **{**good, "x_test": x[:3] * 3}))}, InvalidInputError,
         "pixels must lie in"),
        ({"path": str(_write(tmp_path / "shape.npz", **{**good, "x_test": x[:3, :, :1]}))}, InvalidInputError,
         "must match"),
        ({"path": str(_write(tmp_path / "labels.npz", **{**good, "y_train": y.astype(float)}))},
         InvalidInputError, "integer class ids"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            NpzSource(options).load()


def test_npz_options_from_a_header_never_give_the_path() -> None:
    assert NpzSource.header_options == ("num_classes",)
    assert dataclasses.fields(NpzSource.config_class)[0].name == "path"
