"""Issue 16, item 5: ``amun plugins --json`` lists every option (type, default, docstring line) and
``amun describe NAME`` shows them: options are found without passing a wrong one."""

from __future__ import annotations

import json

from amun_plugin.cli import main


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
