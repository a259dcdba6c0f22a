"""``method="auto"``: the first candidate within budget stands unless a later one is better with
confidence (so the candidate with the clearly lowest estimated gap wins), a clearly losing candidate is
stopped early, a candidate outside the accuracy budget is never returned, a third-party unlearner
takes part, the candidates are judged on held-out data none of them selected a trained state on,
and AMUN, whose calibration makes the judge's split itself, calibrates as it would alone."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import amun_plugin
from amun_plugin.errors import InvalidInputError, MissingInputError
from amun_plugin.hookspecs import hookimpl
from amun_plugin.plugins import get_plugin_manager
from amun_plugin.training import TrainConfig, train_model
from amun_plugin.unlearn.auto import NoCandidateWithinBudgetError
from amun_plugin.unlearn.base import ForgetRequest, UnlearnContext, Unlearner
from amun_plugin.unlearn.calibration import split_holdout
from amun_plugin.unlearn.estimate import estimated_gap, measure_proxy, retain_probe


@dataclass(frozen=True)
class _Steps:
    steps: int = 200
    lr: float = 1e-9


class _Idle(Unlearner):
    """Trains for many steps at lr 1e-9: the model barely moves (a clear loser, slow on purpose)."""

    name = "idle_third_party"
    config_class = _Steps

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> dict[str, Any]:
        assert request.retain is not None
        steps_per_epoch = max(1, len(request.retain) // 16)
        epochs = max(1, self.config.steps // steps_per_epoch)
        train_model(model, request.retain, TrainConfig(epochs=epochs, batch_size=16, lr=self.config.lr,
                                                       momentum=0.0, weight_decay=0.0), device=ctx.device)
        return {"epochs": epochs}


class _Destroyer(Unlearner):
    """Scrambles the last layer: D_F looks unseen, and so does everything else (over budget)."""

    name = "destroyer_third_party"

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> dict[str, Any]:
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():
            last.weight.copy_(torch.randn(last.weight.shape, generator=torch.Generator().manual_seed(0)))
        return {}


@pytest.fixture(scope="module")
def plugin_host():
    class Plugin:
        @hookimpl
        def amun_register_unlearners(self, register):
            register(_Idle)
            register(_Destroyer)

    host = get_plugin_manager(autoload=False, strict=True)
    host.register(Plugin(), name="third-party-test")
    return host


def _auto(memorised, host, candidates, **options):
    model, forget, retain, holdout = memorised
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the small holdout's resolution warning
        return amun_plugin.unlearn(model, forget, retain, method="auto", holdout=holdout, plugins=host, seed=0,
                                   candidates=candidates, **options)


FT = {"method": "ft", "options": {"epochs": 5, "lr": 0.05}, "label": "FT"}
RL = {"method": "rl", "options": {"epochs": 5, "lr": 0.05}, "label": "RL"}


def _chain(rows: list[dict[str, Any]], confidence: float) -> str:
    """The choice by auto's rule, from the candidates' recorded rows."""
    choice = None
    for row in rows:
        if row["finished"] and row["within_budget"]:
            if choice is None or row["chance_lower"] >= confidence:
                choice = row["label"]
    assert choice is not None
    return choice


IDLE = {"method": "idle_third_party", "options": {"steps": 10}, "label": "idle"}  # stays at the original (4.8)
RL3 = {"method": "rl", "options": {"epochs": 3, "lr": 0.02}, "label": "RL3"}  # estimated gap ~3.1 here


def test_the_first_candidate_stands_unless_another_is_better_with_confidence(memorised, plugin_host) -> None:
    model, forget, retain, holdout = memorised
    result = _auto(memorised, plugin_host, [IDLE, RL3, RL], confidence=0.75)
    auto = result.stats["auto"]
    rows = {r["label"]: r for r in auto["candidates"]}
    assert rows["idle"]["chance_lower"] is None and rows["RL3"]["chance_lower"] >= 0.75  # RL3 forgets better
    assert auto["chosen"] == _chain(auto["candidates"], 0.75) == "RL3" and auto["chosen"] in auto["why"]
    eligible = {label: r["estimated_gap"] for label, r in rows.items() if r["finished"] and r["within_budget"]}
    assert min(eligible, key=eligible.get) == "RL3"
    assert all("terms" in r and r["seconds"] > 0 for r in rows.values() if r["finished"])
    # the judgement is reproducible from the returned model on the selection half of the holdout
    _, selection = split_holdout(holdout, 0.5, 0)
    probe = retain_probe(retain, len(selection), 0)
    again, _ = estimated_gap(measure_proxy(result.model, forget, selection, probe),
                             measure_proxy(model, forget, selection, probe))
    assert again == pytest.approx(rows["RL3"]["estimated_gap"])
    assert auto["tuning_size"] + auto["selection_size"] == len(holdout)


def test_a_lower_point_estimate_without_confidence_does_not_replace_the_first(memorised, plugin_host) -> None:
    strict = _auto(memorised, plugin_host, [IDLE, RL3]).stats["auto"]
    lenient = _auto(memorised, plugin_host, [IDLE, RL3], confidence=0.5).stats["auto"]
    idle, rl3 = strict["candidates"]
    assert rl3["estimated_gap"] < idle["estimated_gap"] and 0.5 <= rl3["chance_lower"] < 0.9  # lower, not clearly
    assert lenient["candidates"][1]["chance_lower"] == rl3["chance_lower"]  # same models, same resamples
    assert strict["chosen"] == "idle" and "the first candidate" in strict["why"]
    assert lenient["chosen"] == "RL3" and "better than the earlier choice" in lenient["why"]


def test_amun_as_a_candidate_calibrates_on_all_of_the_holdout_as_it_would_alone(memorised, plugin_host) -> None:
    model, forget, retain, holdout = memorised
    result = _auto(memorised, plugin_host, [{"method": "amun", "label": "AMUN"}], accuracy_budget=100)
    assert result.stats["auto"]["candidates"][0]["calibrated_on"] == len(holdout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        alone = amun_plugin.unlearn(model, forget, retain, method="amun", holdout=holdout, plugins=plugin_host,
                                    seed=0)
    # its union choice splits the holdout as auto does, so it ends where it would alone, bit for bit
    assert result.stats["candidate_stats"]["calibrated_union"] == alone.stats["calibrated_union"]
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, result.model.state_dict()[name]), name


def test_a_calibrating_candidate_with_one_union_calibrates_on_the_tuning_part_only(memorised, plugin_host) -> None:
    _, _, _, holdout = memorised
    pinned = {"method": "amun", "options": {"variant": "adv_only"}, "label": "AMUN adv_only"}
    result = _auto(memorised, plugin_host, [pinned], accuracy_budget=100)
    tuning, _ = split_holdout(holdout, 0.5, 0)
    assert result.stats["auto"]["candidates"][0]["calibrated_on"] == len(tuning)  # it would select states on all


def test_a_clearly_losing_candidate_is_stopped_early(memorised, plugin_host) -> None:
    idle = {"method": "idle_third_party", "options": {"steps": 3000}, "label": "idle"}  # stays at the original's 4.8
    # 40 forget images give weak evidence: RL3's lead is a chance of ~0.8, hence confidence 0.75
    result = _auto(memorised, plugin_host, [RL3, idle], check_every=25, confidence=0.75)
    rows = {r["label"]: r for r in result.stats["auto"]["candidates"]}
    assert rows["idle"]["stopped_early"] and not rows["idle"]["finished"] and "behind" in rows["idle"]["outcome"]
    assert rows["idle"]["checks"] < 3000 // 25  # stopped long before its end
    assert "idle: stopped after" in result.stats["candidate_outcomes"]  # flat, for a bench record
    assert result.stats["auto"]["chosen"] == "RL3"


def test_a_candidate_outside_the_accuracy_budget_is_never_returned(memorised, plugin_host) -> None:
    destroyer = {"method": "destroyer_third_party", "label": "destroyer"}
    result = _auto(memorised, plugin_host, [destroyer, FT], accuracy_budget=5.0)
    rows = {r["label"]: r for r in result.stats["auto"]["candidates"]}
    assert rows["destroyer"]["finished"] and not rows["destroyer"]["within_budget"]
    assert result.stats["auto"]["chosen"] == "FT"
    with pytest.raises(NoCandidateWithinBudgetError, match="no model is returned"):
        _auto(memorised, plugin_host, [destroyer])


def test_a_third_party_unlearner_takes_part_and_can_win(memorised, plugin_host) -> None:
    idle = {"method": "idle_third_party", "options": {"steps": 10}, "label": "idle"}
    result = _auto(memorised, plugin_host, [{"method": "destroyer_third_party"}, idle])
    assert result.stats["auto"]["chosen"] == "idle" and result.stats["chosen_method"] == "idle_third_party"


def test_auto_needs_a_holdout_and_valid_candidates(memorised, plugin_host) -> None:
    model, forget, retain, _ = memorised
    with pytest.raises(MissingInputError, match="needs holdout"):
        amun_plugin.unlearn(model, forget, retain, method="auto", plugins=plugin_host)
    with pytest.raises(InvalidInputError, match="unknown option"):
        _auto(memorised, plugin_host, [{"method": "ft", "options": {"nope": 1}}])
    with pytest.raises(InvalidInputError, match="each candidate is"):
        _auto(memorised, plugin_host, [{"name": "ft"}])
    with pytest.raises(InvalidInputError, match="needs D_R"):
        amun_plugin.unlearn(model, forget, None, method="auto", holdout=memorised[3], plugins=plugin_host,
                            candidates=[FT])


def test_amun_unlearn_method_auto_from_the_command_line(tmp_path, capsys) -> None:
    from amun_plugin.cli import main
    from amun_plugin.models.checkpoint import read_checkpoint_metadata

    original = tmp_path / "original.safetensors"
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--model-option", "hidden=[32]",
                 "--recipe-option", "epochs=3", "--recipe-option", "lr=0.05", "--out", str(original)]) == 0
    out = tmp_path / "auto.safetensors"
    code = main(["unlearn", str(original), "--method", "auto", "--forget-fraction", "0.05", "--option",
                 'candidates=[{"method": "ft", "options": {"epochs": 2}}, {"method": "rl", "options": {"epochs": 2}}]',
                 "--option", "accuracy_budget=100", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "auto chose " in printed.out and "estimated gap" in printed.out
    unlearned = read_checkpoint_metadata(out).extra["unlearned"]
    assert unlearned["method"] == "auto" and "holdout" in unlearned["held_out_test_indices"]
