"""Plugins installed in the environment change no test: the root ``conftest.py`` hides them from the
plugin host (``plugin_isolation.py``), even when the shell switches autoloading on."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import plugin_isolation
import pytest

import amun_plugin
from amun_plugin.cli import main
from tests.plugin_host.test_plugin_host import PLUGIN_SOURCE, _install_fake_distribution


@pytest.fixture
def installed_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution with an ``amun_plugin`` entry point on ``sys.path``, as pip would leave it, and
    autoloading switched on as a user might have it."""
    _install_fake_distribution(tmp_path, "installed_plugin", "installed_plugin_hooks", PLUGIN_SOURCE, "installed")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("AMUN_DISABLE_PLUGIN_AUTOLOAD", "0")
    return tmp_path


def test_an_installed_plugin_is_hidden_from_the_host_and_the_cli(installed_elsewhere: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    real = plugin_isolation._REAL_ENTRY_POINTS(group=plugin_isolation.GROUP)
    assert "installed" in real.names  # the environment really has it...
    assert metadata.entry_points(group=plugin_isolation.GROUP).names == set()  # ...the tests do not see it
    host = amun_plugin.get_plugin_manager()
    assert "shrink_head" not in host.unlearners and host.load_errors == []
    assert {r.package for kind in host.all_registrations().values() for r in kind} == {"amun_plugin"}
    assert main(["plugins"]) == 0
    assert "shrink_head" not in capsys.readouterr().out


def test_a_test_sees_exactly_the_entry_points_it_hands_in(installed_elsewhere: Path, tmp_path_factory,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path_factory.mktemp("mine")
    _install_fake_distribution(mine, "my_plugin", "my_plugin_hooks", PLUGIN_SOURCE.replace("shrink_head", "mine"),
                               "mine")
    monkeypatch.syspath_prepend(str(mine))
    plugin_isolation.only_entry_points(monkeypatch, plugin_isolation.entry_points_under(mine))
    host = amun_plugin.get_plugin_manager()
    assert "mine" in host.unlearners and "shrink_head" not in host.unlearners
    assert host.unlearners.registration("mine").package == "my_plugin"
    other_groups = metadata.entry_points(group="console_scripts")
    assert other_groups.names == plugin_isolation._REAL_ENTRY_POINTS(group="console_scripts").names
