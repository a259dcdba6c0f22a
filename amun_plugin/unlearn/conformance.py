"""The conformance check every unlearner should pass — built-in or third-party.

For plugin authors::

    from amun_plugin import get_plugin_manager
    from amun_plugin.unlearn.conformance import check_unlearner

    def test_my_unlearner_conforms():
        host = get_plugin_manager(autoload=False)
        host.register(my_hooks_module)
        check_unlearner(host, "my_method", model_factory=MyTinyNet, data=my_tiny_data, options={"epochs": 1})

On a tiny model it checks, raising ``AssertionError`` with a message on the first failure:

* the config is a frozen dataclass and unknown options are refused (``InvalidInputError``);
* unsupported settings are refused with ``UnsupportedSettingError`` before any work
  (``_unlearn`` is never entered): no D_R when ``requires_retain``, no validation set when
  ``requires_validation``, no holdout when ``requires_holdout``; a model without readable penultimate features when
  ``requires_features`` (refused, input untouched);
* in every supported setting (with D_R; without D_R unless ``requires_retain``) it returns a new
  model of the same type with the same ``state_dict`` keys, shapes and dtypes, with the input
  model's train/eval flags (a mixed pattern is used), and leaves the input model's weights,
  buffers and flags untouched;
* two runs with the same seed give bit-identical weights.

``data`` is split deterministically: the first sixth is D_F, the next sixth the validation
set, the rest D_R (so give at least 12 samples, every class present is fine).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError, UnsupportedSettingError
from amun_plugin.registry import Components
from amun_plugin.unlearn.base import ForgetRequest, Unlearner, UnlearnResult

__all__ = [
    "ConformanceReport",
    "check_config",
    "check_deterministic",
    "check_refusals",
    "check_settings",
    "check_unlearner",
    "conformance_parts",
]

ModelFactory = Callable[[], nn.Module]


@dataclass
class ConformanceReport:
    """What :func:`check_unlearner` verified for one unlearner (every entry passed)."""

    name: str
    checks: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def conformance_parts(data: LabeledData) -> tuple[LabeledData, LabeledData, LabeledData]:
    """(forget, retain, validation): the first sixth, the last two thirds, the second sixth."""
    n = len(data)
    if n < 12:
        raise InvalidInputError(f"the conformance check needs at least 12 samples, got {n}")
    sixth = n // 6
    return (data.subset(range(sixth), "forget"), data.subset(range(2 * sixth, n), "retain"),
            data.subset(range(sixth, 2 * sixth), "validation"))


def _request(unlearner: Unlearner, data: LabeledData, with_retain: bool) -> ForgetRequest:
    """A valid request: D_F, D_R (``with_retain``), and the held-out sixth as the validation set and
    the holdout where the method needs them."""
    forget, retain, validation = conformance_parts(data)
    caps = unlearner.capabilities
    return ForgetRequest(forget, retain if with_retain else None, validation if caps.requires_validation else None,
                         holdout=validation if caps.requires_holdout else None)


def _snapshot(model: nn.Module) -> tuple[dict[str, Tensor], list[bool]]:
    assert isinstance(model, nn.Module), f"model_factory must return a torch.nn.Module, got {type(model).__name__}"
    return ({k: v.detach().clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()])


def _mixed_mode(model: nn.Module) -> nn.Module:
    """Train mode with the first submodule (if any) in eval mode: a flag pattern no method sets."""
    model.train()
    children = list(model.children())
    if children:
        children[0].eval()
    return model


def check_config(host: Components, name: str) -> None:
    """The config class is a frozen dataclass and unknown options are refused."""
    cls = host.unlearners.get(name)
    config_class = cls.config_class
    assert dataclasses.is_dataclass(config_class), f"{name}: config_class must be a dataclass"
    frozen = config_class.__dataclass_params__.frozen  # type: ignore[union-attr]
    assert frozen, f"{name}: config_class must be a frozen dataclass"
    try:
        cls({"no_such_option_for_conformance": 1})
    except InvalidInputError:
        return
    raise AssertionError(f"{name}: an unknown option was accepted; build the config with make_config")


def _expect_refusal(unlearner: Unlearner, model: nn.Module, request: ForgetRequest, host: Components,
                    why: str, spy: bool = True) -> None:
    entered: list[bool] = []
    if spy:
        def _spy(*_args: Any, **_kwargs: Any) -> Mapping[str, Any]:
            entered.append(True)
            return {}

        unlearner._unlearn = _spy  # type: ignore[method-assign]
    before, flags = _snapshot(model)
    try:
        unlearner.run(model, request, plugins=host)
    except UnsupportedSettingError:
        pass
    except Exception as exc:  # the method's own code failing (e.g. AttributeError) is a failed check
        raise AssertionError(
            f"{unlearner.name}: {why} was not refused with UnsupportedSettingError; it raised {exc!r}"
        ) from exc
    else:
        raise AssertionError(f"{unlearner.name}: {why} was not refused with UnsupportedSettingError")
    assert not entered, f"{unlearner.name}: {why} was refused only after _unlearn started; refuse in check_request"
    assert _same_weights(before, model.state_dict()), f"{unlearner.name}: a refused request changed the input model"
    assert flags == [m.training for m in model.modules()], f"{unlearner.name}: a refused request changed its mode"


class _WithoutFeatures(nn.Module):
    """Wraps a model, hiding its ``features`` method (no penultimate features to read)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]


def check_refusals(host: Components, name: str, model_factory: ModelFactory, data: LabeledData,
                   options: Mapping[str, Any] | None = None) -> list[str]:
    """Every declared need is enforced; returns the refusals checked."""
    cls = host.unlearners.get(name)
    checked = []
    if cls.capabilities.requires_retain:
        unlearner = cls(options)
        _expect_refusal(unlearner, model_factory(), _request(unlearner, data, False), host, "a request without D_R")
        checked.append("refuses_without_retain")
    if cls.capabilities.requires_validation:
        forget, retain, _ = conformance_parts(data)
        _expect_refusal(cls(options), model_factory(), ForgetRequest(forget, retain), host,
                        "a request without a validation set")
        checked.append("refuses_without_validation")
    if cls.capabilities.requires_holdout:
        forget, retain, _ = conformance_parts(data)
        _expect_refusal(cls(options), model_factory(), ForgetRequest(forget, retain), host,
                        "a request without a holdout")
        checked.append("refuses_without_holdout")
    if cls.capabilities.requires_features:
        unlearner = cls(options)
        _expect_refusal(unlearner, _WithoutFeatures(model_factory()), _request(unlearner, data, True), host,
                        "a model without penultimate features", spy=False)
        checked.append("refuses_model_without_features")
    return checked


def _same_weights(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k].detach().to(a[k].device)) for k in a)


def _run_and_check(host: Components, name: str, model: nn.Module, data: LabeledData, with_retain: bool,
                   options: Mapping[str, Any] | None, seed: int) -> UnlearnResult:
    unlearner = host.unlearners.get(name)(options)
    before, flags = _snapshot(model)
    setting = "with D_R" if with_retain else "without D_R"
    try:
        result = unlearner.run(model, _request(unlearner, data, with_retain), plugins=host, seed=seed)
    except Exception as exc:  # any failure of the method on a valid request is a failed check, with a message
        raise AssertionError(f"{name} ({setting}) failed on a valid request: {exc!r}") from exc
    assert isinstance(result, UnlearnResult) and isinstance(result.model, nn.Module), (
        f"{name} ({setting}): run must return an UnlearnResult holding a torch.nn.Module, got {result!r:.200}")
    assert _same_weights(before, model.state_dict()), f"{name} ({setting}) changed the input model's weights"
    assert flags == [m.training for m in model.modules()], f"{name} ({setting}) changed the input model's mode"
    out = result.model
    assert out is not model and type(out) is type(model), f"{name} ({setting}) must return a new model of the same type"
    got = {k: (tuple(v.shape), v.dtype) for k, v in out.state_dict().items()}
    want = {k: (tuple(v.shape), v.dtype) for k, v in before.items()}
    assert got == want, f"{name} ({setting}) returned a different architecture (state_dict keys/shapes/dtypes)"
    assert [m.training for m in out.modules()] == flags, f"{name} ({setting}): the result must keep the input's mode"
    assert isinstance(result.stats, dict), f"{name} ({setting}): stats must be a dict"
    return result


def check_settings(host: Components, name: str, model_factory: ModelFactory, data: LabeledData,
                   options: Mapping[str, Any] | None = None, seed: int = 0) -> list[str]:
    """Run in every supported setting from mixed train/eval flags; returns the settings run."""
    cls = host.unlearners.get(name)
    settings = ["with_retain"] + ([] if cls.capabilities.requires_retain else ["without_retain"])
    for setting in settings:
        _run_and_check(host, name, _mixed_mode(model_factory()), data, setting == "with_retain", options, seed)
    return settings


def check_deterministic(host: Components, name: str, model_factory: ModelFactory, data: LabeledData,
                        options: Mapping[str, Any] | None = None, seed: int = 0) -> None:
    """Two runs with the same seed (and copies of the same model) give identical weights."""
    model = model_factory()
    runs = [_run_and_check(host, name, model, data, True, options, seed) for _ in range(2)]
    first, second = (r.model.state_dict() for r in runs)
    assert _same_weights(first, second), f"{name} is not deterministic for a fixed seed"


def check_unlearner(host: Components, name: str, model_factory: ModelFactory, data: LabeledData,
                    options: Mapping[str, Any] | None = None, seed: int = 0) -> ConformanceReport:
    """Every check of this module for the unlearner registered as ``name`` in ``host``.

    ``model_factory()`` returns a fresh tiny model (the same weights each call, e.g. seeded or
    trained deterministically) taking ``data``'s inputs; ``options`` are config fields that make
    the method quick (e.g. ``{"epochs": 1}``).
    """
    start = time.perf_counter()
    report = ConformanceReport(name)
    check_config(host, name)
    report.checks.append("frozen_config_refuses_unknown_options")
    report.checks += check_refusals(host, name, model_factory, data, options)
    report.settings = check_settings(host, name, model_factory, data, options, seed)
    report.checks.append("preserves_input_and_architecture")
    check_deterministic(host, name, model_factory, data, options, seed)
    report.checks.append("deterministic")
    report.seconds = time.perf_counter() - start
    return report
