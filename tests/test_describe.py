"""Issue 16, item 5: ``amun plugins --json`` lists every option (type, default, docstring line) and
``amun describe NAME`` shows them: options are found without passing a wrong one."""

from __future__ import annotations

import json
from typing import Any

from amun_plugin.cli import main
from amun_plugin.config import describe_options
from amun_plugin.plugins import BUILTIN_PLUGIN, DISABLE_AUTOLOAD_ENV, get_plugin_manager


def test_plugins_json_lists_each_option_with_type_default_and_doc(capsys) -> None:
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    for entries in listing["components"].values():
        for entry in entries:
            for option in entry["options"]:
                assert set(option) == {"name", "type", "default", "doc"}
    ft = next(e for e in listing["components"]["unlearners"] if e["name"] == "ft")
    lr = next(o for o in ft["options"] if o["name"] == "lr")
    assert (lr["type"], lr["default"]) == ("float", 0.01) and lr["doc"].startswith("SGD learning rate")
    schedule = next(o for o in ft["options"] if o["name"] == "schedule")
    assert "'cosine'" in schedule["type"] and schedule["default"] == "constant"
    amun = next(e for e in listing["components"]["unlearners"] if e["name"] == "amun")
    assert all(o["doc"] for o in amun["options"]), [o["name"] for o in amun["options"] if not o["doc"]]


def test_describe_shows_a_component_and_its_options(capsys) -> None:
    assert main(["describe", "amun"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("amun (unlearners, amun_plugin): ")
    assert "  epochs: int = 2  fine-tuning epochs." in out and "  attack: str = \"native_min_norm\"" in out


def test_describe_an_unknown_name_is_one_error_line(capsys) -> None:
    assert main(["describe", "no_such_thing"]) == 2
    err = capsys.readouterr().err
    assert "no component named 'no_such_thing'" in err and "amun" in err


def _builtin_options() -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, component name, option) for every option of every built-in component, read from the
    registries (so a component or option added later is covered without editing this test)."""
    host = get_plugin_manager(autoload=False)
    return [(kind, r.name, option) for kind, entries in host.all_registrations().items() for r in entries
            if r.plugin == BUILTIN_PLUGIN
            for option in describe_options(getattr(r.component, "config_class", object))]


def test_every_builtin_option_has_a_docstring_line() -> None:
    rows = _builtin_options()
    assert {kind for kind, _, _ in rows} == set(get_plugin_manager(autoload=False).all_registrations())
    missing = [f"{kind}/{name}.{option['name']}" for kind, name, option in rows if not option["doc"].strip()]
    assert not missing, f"options without an 'Attributes:' line in their config docstring: {missing}"


def test_describe_prints_every_builtin_option_with_its_doc(capsys, monkeypatch) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for _, name, option in _builtin_options():
        by_name.setdefault(name, []).append(option)
    for name, options in by_name.items():
        assert main(["describe", name]) == 0
        lines = capsys.readouterr().out.splitlines()
        for option in options:
            assert option["doc"], f"{name}.{option['name']} has no doc"
            expected = f"  {option['name']}: {option['type']} = {json.dumps(option['default'])}  {option['doc']}"
            assert expected in lines, f"amun describe {name} does not print {expected!r}"


def test_describe_amun_prints_whole_sentences_of_its_own(capsys) -> None:
    """Issue 29, item 9: an option's doc is its whole Attributes entry (continuation lines joined),
    and AMUN documents its own SGD options instead of pointing at FinetuneConfig."""
    assert main(["describe", "amun"]) == 0
    lines = {line.split(":", 1)[0].strip(): line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["lr"].endswith("  SGD learning rate at the start of the fixed schedule (read only by the fixed "
                                "schedule; the calibrated one searches its own between ``calibration.lr_min`` "
                                "and ``lr_max``).")
    assert lines["calibration"].endswith("how the fine-tuning is calibrated when held-out data is given (see "
                                         ":class:`~amun_plugin.unlearn.calibration.CalibrationConfig`); None = "
                                         "never calibrate.")
    for name in ("epochs", "lr", "step_size", "gamma"):
        assert "read only by the fixed schedule" in lines[name], name
    assert not [line for line in lines.values() if "as in FinetuneConfig" in line]


def test_no_builtin_option_doc_stops_mid_sentence() -> None:
    """Every built-in option's doc ends where its docstring entry ends (a full stop or a closing
    bracket or quote), never at the end of the entry's first docstring line."""
    cut = [f"{kind}/{name}.{option['name']}: ...{option['doc'][-40:]!r}" for kind, name, option in _builtin_options()
           if not option["doc"].rstrip().endswith((".", ")", "]", '"', "`"))]
    assert not cut, cut
