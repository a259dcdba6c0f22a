"""The exported conformance check, run on every registered unlearner, and shown to catch faults."""

from __future__ import annotations

import copy
import dataclasses
import random

import pytest
import torch

from amun_plugin.hookspecs import hookimpl
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.base import Unlearner
from amun_plugin.unlearn.conformance import check_unlearner

# Options that keep each built-in quick on the tiny model; unknown (third-party) names get none.
FAST = {
    "dau": {"epochs": 1, "attacker_width": 8, "attacker_layers": 1, "attacker_heads": 2, "attacker_ffn": 16,
            "sensitivity_draws": 2, "pair_batch_size": 8},
    "retrain": {"epochs": 2},
}
EPOCH_METHODS = {"amun", "amun_a", "amun_salun", "bs", "ft", "ga", "l1_sparse", "rl", "salun"}


def _options(name: str) -> dict:
    return FAST.get(name, {"epochs": 1} if name in EPOCH_METHODS else {})


@pytest.mark.parametrize("name", get_plugin_manager(autoload=False).unlearners.names())
def test_every_registered_unlearner_conforms(name: str, tiny_model, tiny_data) -> None:
    host = get_plugin_manager(autoload=False)
    report = check_unlearner(host, name, lambda: copy.deepcopy(tiny_model), tiny_data, _options(name))
    assert report.checks[-1] == "deterministic"
    assert "with_retain" in report.settings


@dataclasses.dataclass(frozen=True)
class _Scale:
    factor: float = 0.5


class _Unseeded(Unlearner):
    """Scales the head by a draw from Python's own RNG: not controlled by the seed."""

    name = "unseeded"
    config_class = _Scale

    def _unlearn(self, model, request, ctx):
        with torch.no_grad():
            model.head.weight.mul_(random.random())
        return {}


class _LateRefusal(Unlearner):
    """Needs D_R, but its check_request lets a request without D_R through to _unlearn."""

    name = "late_refusal"
    config_class = _Scale
    requires_retain = True

    def check_request(self, request):
        return None

    def _unlearn(self, model, request, ctx):
        return {}


class _FeaturesUnchecked(Unlearner):
    """Declares requires_features but never checks for them: reads ``model.features`` blindly."""

    name = "features_unchecked"
    config_class = _Scale
    requires_features = True

    def _unlearn(self, model, request, ctx):
        model.features(request.forget.x)
        return {}


class _BrokenOnValidRequests(Unlearner):
    """Fails on every request with an AttributeError from its own code."""

    name = "broken_on_valid"
    config_class = _Scale

    def _unlearn(self, model, request, ctx):
        return request.no_such_attribute


class _Plugin:
    def __init__(self, component: type) -> None:
        self.component = component

    @hookimpl
    def amun_register_unlearners(self, register) -> None:
        register(self.component)


@pytest.mark.parametrize("component, message", [
    (_Unseeded, "not deterministic"),
    (_LateRefusal, "was not refused"),
    (_FeaturesUnchecked, "was not refused with UnsupportedSettingError; it raised AttributeError"),
    (_BrokenOnValidRequests, r"broken_on_valid \(with D_R\) failed on a valid request: AttributeError"),
])
def test_the_check_catches_a_faulty_plugin(component: type, message: str, tiny_model, tiny_data) -> None:
    host = get_plugin_manager(autoload=False)
    host.register(_Plugin(component), name=f"faulty_{component.name}")
    with pytest.raises(AssertionError, match=message):
        check_unlearner(host, component.name, lambda: copy.deepcopy(tiny_model), tiny_data)
