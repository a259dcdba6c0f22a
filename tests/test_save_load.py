"""Issue 16, item 10: public ``save_model`` / ``load_model``; a CLI checkpoint loads from Python in
one call; a model of your own architecture and a plain state dict (CLI, architecture named) can
be unlearned."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import amun_plugin
from amun_plugin.cli import main
from amun_plugin.errors import CheckpointError, InvalidInputError
from amun_plugin.models.checkpoint import read_checkpoint_metadata
from amun_plugin.plugins import get_plugin_manager

TINY = ["--model-option", "hidden=[32]", "--recipe-option", "epochs=3", "--recipe-option", "lr=0.05"]


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def cli_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("saveload") / "original.safetensors"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_a_cli_checkpoint_loads_in_one_call(cli_checkpoint: Path) -> None:
    model, metadata = amun_plugin.load_model(cli_checkpoint)
    assert metadata is not None and metadata.architecture == "mlp" and metadata.dataset == "digits"
    assert not model.training and model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_save_model_round_trips_and_the_cli_reads_it(tmp_path: Path) -> None:
    architecture = get_plugin_manager().make_architecture("mlp", {"hidden": [16]})
    model = architecture.build(10, (1, 8, 8))
    path = amun_plugin.save_model(model, tmp_path / "mine", architecture="mlp", architecture_options={"hidden": [16]},
                                  num_classes=10, input_shape=(1, 8, 8), dataset="digits")
    assert path.suffix == ".safetensors" and read_checkpoint_metadata(path).dataset == "digits"
    loaded, metadata = amun_plugin.load_model(path)
    assert same_weights(model, loaded) and metadata is not None and metadata.num_classes == 10


class MyNet(nn.Module):
    """An architecture the package does not know."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.Tanh(), nn.Linear(24, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_your_own_architecture_loads_from_a_state_dict_and_unlearns(tmp_path: Path) -> None:
    torch.manual_seed(0)
    mine = MyNet()
    save_file(mine.state_dict(), str(tmp_path / "mine.safetensors"))
    loaded, metadata = amun_plugin.load_model(tmp_path / "mine.safetensors", MyNet())
    assert metadata is None and same_weights(mine, loaded)
    x, y = torch.rand(40, 1, 8, 8), torch.arange(40) % 10
    result = amun_plugin.unlearn(loaded, (x[:8], y[:8]), (x[8:], y[8:]), method="ft", epochs=1)
    assert isinstance(result.model, MyNet) and not same_weights(result.model, loaded)


def test_a_plain_state_dict_needs_its_architecture(tmp_path: Path) -> None:
    save_file(MyNet().state_dict(), str(tmp_path / "plain.safetensors"))
    with pytest.raises(InvalidInputError, match="plain state dict"):
        amun_plugin.load_model(tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="does not match"):
        amun_plugin.load_model(tmp_path / "plain.safetensors", architecture="mlp", num_classes=10,
                               input_shape=(1, 8, 8))


def test_the_cli_unlearns_a_plain_state_dict_with_the_architecture_named(cli_checkpoint: Path, tmp_path: Path,
                                                                         capsys) -> None:
    model, _ = amun_plugin.load_model(cli_checkpoint)
    plain = tmp_path / "plain.safetensors"
    save_file(model.state_dict(), str(plain))
    out = tmp_path / "unlearned.safetensors"
    assert main(["unlearn", str(plain), "--forget-fraction", "0.05", "--method", "ft", "--option", "epochs=1",
                 "--out", str(out)]) == 2
    assert "--model NAME" in capsys.readouterr().err and not out.exists()
    assert main(["unlearn", str(plain), "--model", "mlp", "--model-option", "hidden=[32]", "--dataset", "digits",
                 "--forget-fraction", "0.05", "--method", "ft", "--option", "epochs=1", "--out", str(out)]) == 0
    metadata = read_checkpoint_metadata(out)
    assert (metadata.architecture, metadata.dataset) == ("mlp", "digits")
    assert metadata.extra["unlearned"]["method"] == "ft"


def test_the_readme_audit_and_save_load_snippets_run(tmp_path: Path, monkeypatch, tiny_model, tiny_data) -> None:
    monkeypatch.chdir(tmp_path)
    x, y = tiny_data.x, tiny_data.y
    report = amun_plugin.audit(tiny_model, retain=(x[20:], y[20:]), forget=(x[:10], y[:10]), test=(x[10:20], y[10:20]),
                               retrained=copy.deepcopy(tiny_model), out_dir="audit")
    assert report["avg_gap"] == 0.0 and "accuracy.UA" in report["metrics"] and (tmp_path / "audit").is_dir()
    model = get_plugin_manager().make_architecture("cnn", {"width": 8}).build(10, (1, 28, 28))
    amun_plugin.save_model(model, "orig.safetensors", architecture="cnn", architecture_options={"width": 8},
                           num_classes=10, input_shape=(1, 28, 28), dataset="fashion_mnist")
    loaded, metadata = amun_plugin.load_model("orig.safetensors")
    assert same_weights(model, loaded) and metadata is not None and metadata.dataset == "fashion_mnist"
