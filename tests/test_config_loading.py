from dataclasses import dataclass, field
from enum import Enum

import pytest

from amun_plugin.config import config_to_dict, load_yaml, make_config
from amun_plugin.errors import InvalidInputError


class Colour(str, Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Inner:
    depth: int = 1


@dataclass(frozen=True)
class Outer:
    lr: float = 0.1
    colour: Colour = Colour.RED
    sizes: tuple[int, ...] = (1, 2)
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_values_are_coerced_to_field_types() -> None:
    config = make_config(Outer, {"lr": 1, "colour": "blue", "sizes": [3, 4], "flag": "true", "inner": {"depth": 3}})
    assert config == Outer(lr=1.0, colour=Colour.BLUE, sizes=(3, 4), flag=True, inner=Inner(3))
    assert isinstance(config.lr, float)
    assert config_to_dict(config) == {"lr": 1.0, "colour": "blue", "sizes": [3, 4], "flag": True,
                                      "inner": {"depth": 3}}


def test_unknown_keys_and_bad_values_are_errors() -> None:
    with pytest.raises(InvalidInputError, match="unknown option.*lrr.*valid options"):
        make_config(Outer, {"lrr": 0.1})
    with pytest.raises(InvalidInputError, match="not one of red, blue"):
        make_config(Outer, {"colour": "green"})
    with pytest.raises(InvalidInputError, match="expected a number"):
        make_config(Outer, {"lr": "fast"})


def test_overrides_apply_to_an_existing_instance() -> None:
    assert make_config(Outer, Outer(lr=0.5), flag=True) == Outer(lr=0.5, flag=True)


def test_yaml_is_read_safely(tmp_path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("lr: 0.2\ncolour: blue\n")
    assert make_config(Outer, load_yaml(good)).colour is Colour.BLUE
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        load_yaml(evil)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(InvalidInputError, match="mapping"):
        load_yaml(listing)
