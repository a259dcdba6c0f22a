"""One job object for the API and the CLI (issue 28): the same job gives the same model either way,
`amun audit` scores the test split `amun unlearn` scored, schedules refuse options they would not
read, capabilities are declared (and a third-party unlearner opts in), and `save_model` refuses a
module that is not the architecture it names."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_fixtures import TinyNet, make_tiny_data
from torch import nn

import amun_plugin
from amun_plugin.cli import main
from amun_plugin.data.splits import SplitConfig, make_split
from amun_plugin.errors import InvalidInputError, NoHoldoutWarning
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.unlearn.base import Capabilities, ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.continuous import ContinuousSession
from amun_plugin.unlearn.job import HOLDOUT_FRACTION, hold_out


@pytest.fixture(scope="module")
def host():
    return get_plugin_manager(autoload=False)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("job") / "original.safetensors"
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--model-option", "hidden=[32]",
                 "--recipe-option", "epochs=3", "--recipe-option", "lr=0.05", "--out", str(out)]) == 0
    return out


@pytest.fixture()
def tiny() -> tuple[nn.Module, Any, Any, Any]:
    torch.manual_seed(0)
    data = make_tiny_data(90)
    return TinyNet(), data.subset(range(0, 9), "forget"), data.subset(range(9, 60), "retain"), \
        make_tiny_data(30, seed=1)


def _printed_row(text: str, name: str) -> list[str]:
    row = next(line for line in text.splitlines() if line.startswith(f"| {name} "))
    return [cell.strip() for cell in row.strip("|").split("|")]


# --- item 1: one job, one test split -------------------------------------------------------------------------


def test_the_cli_and_the_api_run_the_same_job(original: Path, tmp_path: Path, host) -> None:
    out = tmp_path / "cli.safetensors"
    assert main(["unlearn", str(original), "--forget-fraction", "0.05", "--seed", "3", "--out", str(out)]) == 0
    model, metadata = amun_plugin.load_model(original)
    bundle = host.load_checkpoint_dataset(metadata)
    split = make_split(bundle.train, SplitConfig(kind="random", fraction=0.05))
    held = hold_out(bundle.test, host.unlearners.get("amun")(), holdout_size=None, validation_size=0, seed=3)
    assert held.holdout is not None and len(held.holdout) == int(len(bundle.test) * HOLDOUT_FRACTION)
    api = amun_plugin.unlearn(model, split.forget(bundle.train), split.retain(bundle.train), holdout=held.holdout,
                              seed=3, plugins=host)
    cli_model, cli_metadata = amun_plugin.load_model(out)
    assert cli_metadata is not None
    assert cli_metadata.extra["unlearned"]["held_out_test_indices"]["holdout"] == held.indices["holdout"]
    for key, value in api.model.state_dict().items():
        assert torch.equal(value, cli_model.state_dict()[key]), key


def test_audit_scores_the_test_split_unlearn_scored_and_shows_its_references(original: Path, tmp_path: Path,
                                                                            capsys) -> None:
    out = tmp_path / "unlearned.safetensors"
    assert main(["unlearn", str(original), "--forget-fraction", "0.05", "--out", str(out)]) == 0
    unlearned = capsys.readouterr().out
    assert main(["audit", str(out), "--original", str(original), "--evaluator", "accuracy",
                 "--evaluator", "confidence_mia", "--no-plots", "--out", str(tmp_path / "audit")]) == 0
    audited = capsys.readouterr().out
    after, audit_row = _printed_row(unlearned, "after"), _printed_row(audited, "unlearned")
    before, original_row = _printed_row(unlearned, "before"), _printed_row(audited, "original")
    assert after[1:5] == audit_row[1:5]  # UA, RA, TA, confidence FT AUC: the same numbers
    assert before[1:5] == original_row[1:5]
    assert re.search(r"auditing \d+ test samples: \d+ held out", audited)


# --- item 2: explicit schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize("option", [{"lr": 123.0}, {"epochs": 3}, {"step_size": 2}, {"gamma": 0.5}])
def test_a_calibrated_run_refuses_the_fixed_schedules_options(tiny, host, option) -> None:
    model, forget, retain, holdout = tiny
    name = next(iter(option))
    with pytest.raises(InvalidInputError, match=rf"{name} belong\(s\) to the fixed schedule"):
        amun_plugin.unlearn(model, forget, retain, holdout=holdout, plugins=host, **option)


def test_calibration_options_without_a_holdout_are_refused(tiny, host) -> None:
    model, forget, retain, _ = tiny
    with pytest.raises(InvalidInputError, match="calibration options need holdout"):
        amun_plugin.unlearn(model, forget, retain, calibration={"lr_max": 0.2}, plugins=host)


@pytest.mark.parametrize("method, options, why", [
    ("ft", {"epochs": 1}, "does not calibrate"), ("amun", {"calibration": None}, "switched off")])
def test_a_holdout_the_run_would_ignore_is_refused(tiny, host, method, options, why) -> None:
    model, forget, retain, holdout = tiny
    with pytest.raises(InvalidInputError, match=f"would ignore holdout: .*{why}"):
        amun_plugin.unlearn(model, forget, retain, method=method, holdout=holdout, plugins=host, **options)


def test_the_no_holdout_warning_has_its_own_category_and_an_explicit_choice_silences_it(tiny, host) -> None:
    model, forget, retain, _ = tiny
    with pytest.warns(NoHoldoutWarning):
        result = amun_plugin.unlearn(model, forget, retain, plugins=host)
    assert result.stats["finetune_schedule"] == "fixed"
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoHoldoutWarning)
        amun_plugin.unlearn(model, forget, retain, lr=0.02, epochs=1, plugins=host)


def test_a_calibrated_run_says_so(tiny, host) -> None:
    model, forget, retain, holdout = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the tiny holdout's resolution warning
        result = amun_plugin.unlearn(model, forget, retain, holdout=holdout, plugins=host)
    assert result.stats["finetune_schedule"] == "calibrated" and "calibrated_lr" in result.stats


# --- item 3: declared capabilities ---------------------------------------------------------------------------


class _ThirdPartyReuser(Unlearner):
    """A plugin that opts into reusing D_A without subclassing AMUN: it counts the searches."""

    name = "third_party_reuser"
    capabilities = Capabilities(reuses_adversarial=True)
    searches: list[int] = []

    def adversarial_set(self, model, forget, ctx):
        from amun_plugin.unlearn.amun import AmunConfig, build_adversarial_set

        type(self).searches.append(len(forget))
        return build_adversarial_set(model, forget, AmunConfig(), ctx)

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> dict[str, Any]:
        return {"got_adversarial": request.adversarial is not None}


@dataclass(frozen=True)
class _CalibratorConfig:
    lr: float = 0.01


class _ThirdPartyCalibrator(Unlearner):
    name = "third_party_calibrator"
    config_class = _CalibratorConfig
    capabilities = Capabilities(calibrates=True, fixed_schedule=("lr",))

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> dict[str, Any]:
        return {"holdout_size": None if request.holdout is None else len(request.holdout)}


def _host_with(*components: type) -> Any:
    from amun_plugin.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def amun_register_unlearners(self, register):
            for component in components:
                register(component)

    host = get_plugin_manager(autoload=False, strict=True)
    host.register(Plugin(), name="third-party")
    return host


def test_a_third_party_unlearner_opts_into_reusing_adversarial_sets(tiny) -> None:
    model, _, _, _ = tiny
    host = _host_with(_ThirdPartyReuser)
    _ThirdPartyReuser.searches.clear()
    session = ContinuousSession(model, make_tiny_data(90), "third_party_reuser", plugins=host)
    session.precompute_adversarial(range(10))
    records = session.run([[0, 1, 2], [3, 4]])
    assert _ThirdPartyReuser.searches == [10]  # one search, on the original model
    assert all(r.stats["got_adversarial"] and r.adversarial_source == "original" for r in records)


def test_a_third_party_calibrating_unlearner_gets_the_default_holdout(tiny) -> None:
    host = _host_with(_ThirdPartyCalibrator)
    unlearner = host.unlearners.get("third_party_calibrator")()
    held = hold_out(make_tiny_data(50), unlearner, holdout_size=None, validation_size=0, seed=0)
    assert held.holdout is not None and len(held.holdout) == 10
    with pytest.raises(InvalidInputError, match="lr belong"):
        host.unlearners.get("third_party_calibrator")({"lr": 0.1}).check_schedule(holdout=True)


def test_capabilities_are_read_from_the_declaration_and_checked_at_registration() -> None:
    class Legacy(Unlearner):  # the older one-flag-per-attribute style is folded in
        name = "legacy"
        requires_retain = True

        def _unlearn(self, model, request, ctx):  # pragma: no cover - never runs
            return {}

    assert Legacy.capabilities.requires_retain and not Legacy.capabilities.calibrates

    class Broken(Unlearner):
        name = "broken_reuser"
        capabilities = Capabilities(reuses_adversarial=True)

        def _unlearn(self, model, request, ctx):  # pragma: no cover - never runs
            return {}

    with pytest.raises(TypeError, match="does not implement adversarial_set"):
        Broken.check_class()
    with pytest.raises(ValueError, match="needs calibrates=True"):
        Capabilities(fixed_schedule=("lr",)).check("X")


# --- item 6: save_model checks the architecture --------------------------------------------------------------


def test_save_model_refuses_a_module_that_is_not_the_named_architecture(tmp_path: Path, host) -> None:
    path = tmp_path / "m.safetensors"
    with pytest.raises(InvalidInputError, match="is not architecture 'mlp'"):
        amun_plugin.save_model(TinyNet(), path, architecture="mlp", architecture_options={"hidden": [16]},
                               num_classes=3, input_shape=(1, 4, 4))
    assert not path.exists()
    mlp = host.make_architecture("mlp", {"hidden": [8]}).build(3, (1, 4, 4))
    amun_plugin.save_model(mlp, path, architecture="mlp", architecture_options={"hidden": [8]}, num_classes=3,
                           input_shape=(1, 4, 4))
    loaded, metadata = amun_plugin.load_model(path)
    assert metadata is not None and metadata.architecture == "mlp"
    for key, value in mlp.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


# --- issue 26 item 5: --out over an existing file ------------------------------------------------------------


def test_unlearn_out_refuses_an_existing_file_and_force_keeps_its_mode(original: Path, tmp_path: Path,
                                                                      capsys) -> None:
    out = tmp_path / "mine.safetensors"
    out.write_bytes(b"the user's file")
    os.chmod(out, 0o600)
    args = ["unlearn", str(original), "--forget-indices", "0,1,2", "--holdout-size", "0", "--option", "epochs=1",
            "--out", str(out)]
    assert main(args) == 2
    assert "pass --force" in capsys.readouterr().err and out.read_bytes() == b"the user's file"
    assert main([*args, "--force"]) == 0
    assert out.stat().st_mode & 0o777 == 0o600 and out.read_bytes() != b"the user's file"
