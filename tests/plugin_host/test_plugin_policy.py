"""Hostile or clumsy plugins: a raising hook is reported and skipped, a name belongs to the first
registrant (built-ins first, then plugins by entry-point name), each plugin's hooks run once and
through pluggy, a method returning no mapping is named, and the listing stays aligned."""

from __future__ import annotations

import pytest
from plugin_isolation import entry_points_under

from amun_plugin.attacks.base import AttackBackend
from amun_plugin.cli import main
from amun_plugin.data.source import DatasetSource
from amun_plugin.errors import PluginError
from amun_plugin.evaluate.base import Evaluator
from amun_plugin.hookspecs import hookimpl
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.base import ForgetRequest, Unlearner
from tests.plugin_host.test_plugin_host import _install_fake_distribution, _only_entry_points_under

RAISING_COMMANDS = '''
from amun_plugin import hookimpl

@hookimpl
def amun_register_commands(cli):
    raise RuntimeError("commands hook exploded")
'''

LONG_NAME = '''
from amun_plugin import hookimpl, Unlearner

class LongName(Unlearner):
    """A method with a long name."""
    name = "a_really_long_unlearner_name_for_alignment"
    description = "long-named method"

    def _unlearn(self, model, request, ctx):
        return {}

@hookimpl
def amun_register_unlearners(register):
    register(LongName)
'''


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install fake distributions ``{dist: (module source, entry-point name)}`` under tmp_path."""
    def install(plugins: dict[str, tuple[str, str]]) -> None:
        for dist, (source, ep_name) in plugins.items():
            _install_fake_distribution(tmp_path, dist, f"{dist}_hooks", source, ep_name)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delenv("AMUN_DISABLE_PLUGIN_AUTOLOAD", raising=False)
        _only_entry_points_under(monkeypatch, tmp_path)
    return install


@pytest.mark.parametrize("args", [["--help"], ["plugins"]])
def test_a_raising_commands_hook_is_reported_and_skipped(installed, capsys, args):
    installed({"exploding": (RAISING_COMMANDS, "exploding")})
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "unlearn" in out or "amun" in out  # the built-ins still answer
    assert "exploding" in err and "commands hook exploded" in err
    assert "Traceback" not in err


def test_listing_aligns_long_names(installed, capsys):
    installed({"longname": (LONG_NAME, "longname")})
    assert main(["plugins"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    long = next(line for line in lines if "a_really_long" in line)
    amun = next(line for line in lines if line.split()[0] == "amun")
    assert long.index("longname") == amun.index("amun_plugin")  # the package column lines up


def _component(base: type, name: str) -> type:
    """A minimal valid subclass of ``base`` called ``name``."""
    body = {"name": name}
    if base is Unlearner:
        body["_unlearn"] = lambda self, model, request, ctx: {}
    elif base is AttackBackend:
        body["_perturb"] = lambda self, model, x, y, eps, x_init: None
    elif base is Evaluator:
        body["evaluate"] = lambda self, *args, **kwargs: {}
    elif base is DatasetSource:
        body["load"] = lambda self: None
    elif base is ModelArchitecture:
        body["build"] = lambda self, num_classes, input_shape: None
    return type(f"Fake{base.__name__}", (base,), body)


KINDS = {
    "unlearners": (Unlearner, "amun_register_unlearners", "amun"),
    "attacks": (AttackBackend, "amun_register_attacks", "native_pgd_l2"),
    "evaluators": (Evaluator, "amun_register_evaluators", "accuracy"),
    "datasets": (DatasetSource, "amun_register_datasets", "digits"),
    "models": (ModelArchitecture, "amun_register_models", "mlp"),
}


def _plugin(hook: str, component: type, calls: list[str] | None = None) -> object:
    def register_hook(register):
        if calls is not None:
            calls.append(hook)
        register(component)

    return type("Plugin", (), {hook: staticmethod(hookimpl(register_hook))})()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_builtins_and_first_comers_keep_their_names(kind):
    base, hook, builtin_name = KINDS[kind]
    host = get_plugin_manager(autoload=False)
    original = getattr(host, kind).get(builtin_name)
    with pytest.raises(PluginError, match="plugin 'intruder' registered .*the name stays with 'amun_plugin.builtin'"):
        host.register(_plugin(hook, _component(base, builtin_name)), name="intruder")
    assert getattr(host, kind).get(builtin_name) is original
    first = _component(base, "shared_name")
    host.register(_plugin(hook, first), name="first")
    with pytest.raises(PluginError, match="plugin 'second' registered .*which plugin 'first'"):
        host.register(_plugin(hook, _component(base, "shared_name")), name="second")
    assert getattr(host, kind).get("shared_name") is first
    assert not host.manager.has_plugin("second") and not host.manager.has_plugin("intruder")


def test_hooks_run_once_per_plugin_and_errors_are_not_repeated(installed):
    calls: list[str] = []
    host = get_plugin_manager(autoload=False)
    host.register(_plugin("amun_register_models", _component(ModelArchitecture, "counted"), calls), name="counted")
    for i in range(3):
        host.register(_plugin("amun_register_datasets", _component(DatasetSource, f"extra{i}")), name=f"extra{i}")
    assert calls == ["amun_register_models"]
    broken = '''
from amun_plugin import hookimpl

@hookimpl
def amun_register_attacks(register):
    raise ValueError("attack hook exploded")
'''
    installed({"broken_a": (broken, "broken_a"), "fine": (LONG_NAME, "fine")})
    with pytest.warns(RuntimeWarning, match="attack hook exploded"):
        host = get_plugin_manager()
    assert [e.plugin for e in host.load_errors] == ["broken_a"]
    assert "a_really_long_unlearner_name_for_alignment" in host.unlearners


SHARED_NAME = '''
from amun_plugin import hookimpl, Unlearner

class Shared(Unlearner):
    """A method whose name another plugin also registers."""
    name = "shared_method"
    description = "clashing method"

    def _unlearn(self, model, request, ctx):
        return {}

@hookimpl
def amun_register_unlearners(register):
    register(Shared)
'''


def test_of_two_plugins_on_one_name_the_first_entry_point_name_wins_in_any_discovery_order(installed, tmp_path):
    installed({"zz_dist": (SHARED_NAME, "alpha"), "aa_dist": (SHARED_NAME, "beta")})
    found = entry_points_under(tmp_path)
    for order in (found, found[::-1]):
        host = get_plugin_manager(autoload=False)
        with pytest.warns(RuntimeWarning) as caught:
            host.load_entry_points(order)
        assert host.unlearners.registration("shared_method").plugin == "alpha"
        assert [e.plugin for e in host.load_errors] == ["beta"]
        message = " ".join(str(w.message) for w in caught)
        assert "plugin 'beta'" in message and "plugin 'alpha'" in message
        assert "aa_dist_hooks.Shared" in message and "zz_dist_hooks.Shared" in message


def test_register_hooks_are_called_through_pluggy():
    host = get_plugin_manager(autoload=False)
    seen: list[tuple[str, list[str]]] = []
    host.manager.add_hookcall_monitoring(
        lambda hook, impls, kwargs: seen.append((hook, [impl.plugin_name for impl in impls])),
        lambda outcome, hook, impls, kwargs: None)
    host.register(_plugin("amun_register_models", _component(ModelArchitecture, "traced")), name="traced")
    assert ("amun_register_models", ["traced"]) in seen
    assert "traced" in host.models


class _ReturnsNoMapping(Unlearner):
    """A clumsy method: ``_unlearn`` returns a list of strings, not a mapping of statistics."""

    name = "returns_no_mapping"

    def _unlearn(self, model, request, ctx):
        return ["done"]


def test_an_unlearner_returning_no_mapping_is_named(tiny_model, tiny_data):
    host = get_plugin_manager(autoload=False)
    host.register(_plugin("amun_register_unlearners", _ReturnsNoMapping), name="clumsy")
    request = ForgetRequest(tiny_data.subset(range(6)))
    with pytest.raises(PluginError, match=r"'returns_no_mapping' \(.*_ReturnsNoMapping\) returned a list"):
        host.unlearners.get("returns_no_mapping")().run(tiny_model, request, plugins=host)
