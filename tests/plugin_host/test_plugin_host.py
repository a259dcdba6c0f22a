"""The plugin host: built-ins, a third-party plugin installed through an entry point, broken
plugins reported by name, the autoload switch, and registry validation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from plugin_isolation import entry_points_under, only_entry_points

import amun_plugin
from amun_plugin.cli import main
from amun_plugin.errors import InvalidInputError, PluginError
from amun_plugin.hookspecs import hookimpl
from amun_plugin.plugins import DISABLE_AUTOLOAD_ENV, PluginHost, get_plugin_manager
from amun_plugin.unlearn.base import Unlearner

PLUGIN_SOURCE = '''
import torch
from amun_plugin import hookimpl, Unlearner

class ShrinkHead(Unlearner):
    """A toy third-party method: scales the last layer's weights by 0.5."""
    name = "shrink_head"
    description = "third-party test method"

    def _unlearn(self, model, request, ctx):
        with torch.no_grad():
            model.head.weight.mul_(0.5)
        return {"shrunk": True}

@hookimpl
def amun_register_unlearners(register):
    register(ShrinkHead)
'''


def _install_fake_distribution(root: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    """Write a module and a *.dist-info with an ``amun_plugin`` entry point, as pip would."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[amun_plugin]\n{ep_name} = {module}\n")


def _only_entry_points_under(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Make the host see the entry points of the distributions under ``root`` and nothing else
    (plugins installed in site-packages would otherwise leak into these tests); the host's own
    reading of ``importlib.metadata`` runs unchanged."""
    only_entry_points(monkeypatch, entry_points_under(root))


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _install_fake_distribution(tmp_path, "shrink_plugin", "shrink_plugin_hooks", PLUGIN_SOURCE, "shrink")
    _install_fake_distribution(tmp_path, "broken_plugin", "broken_plugin_hooks", "raise RuntimeError('boom')\n",
                               "broken")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    _only_entry_points_under(monkeypatch, tmp_path)
    return tmp_path


def test_builtins_are_registered_through_the_hooks() -> None:
    host = get_plugin_manager(autoload=False)
    assert "amun" in host.unlearners
    assert {"native_pgd_l2", "torchattacks_pgd_l2", "torchattacks_ffgsm", "art_pgd_l2"} <= set(host.attacks.names())
    assert {"accuracy", "confidence_mia"} <= set(host.evaluators.names())
    assert {"digits", "fashion_mnist", "cifar10", "cifar100"} <= set(host.datasets.names())
    assert {"mlp", "cnn", "small_resnet", "resnet18"} <= set(host.models.names())
    assert host.unlearners.registration("amun").package == "amun_plugin"


def test_entry_point_plugin_is_listed_and_runs_by_name(third_party: Path, capsys: pytest.CaptureFixture,
                                                        tiny_model: torch.nn.Module, tiny_data) -> None:
    with pytest.warns(RuntimeWarning, match="broken"):
        host = get_plugin_manager()
    assert "shrink_head" in host.unlearners
    assert host.unlearners.registration("shrink_head").package == "shrink_plugin"
    assert [e.plugin for e in host.load_errors] == ["broken"]
    assert "boom" in host.load_errors[0].error

    before = tiny_model.head.weight.detach().clone()
    result = amun_plugin.unlearn(tiny_model, forget=tiny_data.subset(range(6)), method="shrink_head", plugins=host)
    assert torch.equal(tiny_model.head.weight, before)  # input untouched
    assert torch.allclose(result.model.head.weight, 0.5 * before)
    assert result.stats["shrunk"] is True

    assert main(["plugins"]) == 0
    out, err = capsys.readouterr()
    assert "shrink_head" in out and "shrink_plugin" in out
    assert "broken" in err and "boom" in err
    assert err.count("boom") == 1  # one host, one report: no repeated warnings


def test_autoload_can_be_switched_off(third_party: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    host = get_plugin_manager()
    assert "shrink_head" not in host.unlearners
    assert host.load_errors == []


def test_strict_mode_raises_on_a_broken_plugin(third_party: Path) -> None:
    with pytest.raises(PluginError, match="broken"):
        get_plugin_manager(strict=True)


class _NotAnUnlearner:
    name = "bogus"


class _Duplicate(Unlearner):
    name = "amun"

    def _unlearn(self, model, request, ctx):  # pragma: no cover - never runs
        return {}


class _BadCapability(Unlearner):
    name = "bad_capability"
    requires_retain = "yes"  # type: ignore[assignment]

    def _unlearn(self, model, request, ctx):  # pragma: no cover - never runs
        return {}


@pytest.mark.parametrize(
    "component, message",
    [(_NotAnUnlearner, "not a subclass"), (_Duplicate, "already registered"), (_BadCapability, "must be a bool")],
)
def test_registry_refuses_invalid_components(component: type, message: str) -> None:
    class Plugin:
        @hookimpl
        def amun_register_unlearners(self, register):
            register(component)

    host = get_plugin_manager(autoload=False, strict=True)
    with pytest.raises(PluginError, match=message):
        host.register(Plugin(), name="bad-plugin")


def test_unknown_component_name_lists_the_known_ones() -> None:
    host = get_plugin_manager(autoload=False)
    with pytest.raises(InvalidInputError, match="amun"):
        host.unlearners.get("no_such_method")


def test_hosts_are_independent() -> None:
    first, second = get_plugin_manager(autoload=False), PluginHost()
    assert "amun" in first.unlearners and "amun" not in second.unlearners


def test_a_broken_plugin_is_reported_once_per_command_as_a_warning_line(third_party: Path, tmp_path: Path,
                                                                     capsys) -> None:
    """One plugin host per command: the broken plugin is one ``warning:`` line, never a second report
    or a raw RuntimeWarning, although the command builds a host, trains and audits (issue 26, item 10)."""
    from amun_plugin.cli import main

    out = tmp_path / "model.safetensors"
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--model-option", "hidden=[8]",
                 "--recipe-option", "epochs=1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("broken_plugin") == 1 and "warning: skipped plugin" in err and "RuntimeWarning" not in err
    assert main(["unlearn", str(out), "--forget-indices", "0,1,2", "--holdout-size", "0", "--option", "epochs=1",
                 "--out", str(tmp_path / "u.safetensors")]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped plugin broken") == 1 and "RuntimeWarning" not in err
