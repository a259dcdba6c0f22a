"""Options naming other components are checked before any work (before the model is copied)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.base import ForgetRequest


class _CopyCounting(nn.Module):
    """A tiny model that counts how often it is deep-copied."""

    copies = 0

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))

    def __deepcopy__(self, memo):
        type(self).copies += 1
        clone = _CopyCounting()
        clone.load_state_dict(self.state_dict())
        return clone


@pytest.mark.parametrize("options, message", [
    ({"attack": "no_such_backend"}, "unknown attack 'no_such_backend'"),
    ({"attack": "native_pgd_l2", "attack_options": {"no_such_option": 1}}, "no_such_option"),
])
def test_unknown_attack_backend_is_refused_before_the_model_is_copied(tiny_data, options, message):
    host = get_plugin_manager(autoload=False)
    unlearner = host.unlearners.get("amun")(dict(options, epochs=1))
    _CopyCounting.copies = 0
    with pytest.raises(InvalidInputError, match=message):
        unlearner.run(_CopyCounting(), ForgetRequest(tiny_data.subset(range(6))), plugins=host)
    assert _CopyCounting.copies == 0


def test_cli_refuses_an_unknown_attack_backend_before_loading_anything(tmp_path, capsys):
    from amun_plugin.cli import main

    missing = tmp_path / "never_read.safetensors"
    missing.write_bytes(b"not a checkpoint")  # would fail loudly if it were read
    code = main(["unlearn", str(missing), "--option", "attack=no_such_backend", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "unknown attack 'no_such_backend'" in capsys.readouterr().err
