"""AMUN's retrain-free calibration: the estimated gap, the lr ramp, and AMUN with held-out data on
a memorising digits model (both settings), never reading a retrained model."""

from __future__ import annotations

import warnings

import pytest
import torch

import amun_plugin
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError, NoHoldoutWarning
from amun_plugin.unlearn.calibration import (
    CalibrationConfig,
    ProxyMeasure,
    estimated_gap,
    measure_proxy,
    within_budget,
)
from amun_plugin.unlearn.retrain import Retrain


def test_estimated_gap_matches_a_hand_computed_example() -> None:
    original = ProxyMeasure(forget_accuracy=100.0, holdout_accuracy=90.0, forget_holdout_auc=64.0, retain_accuracy=99.0)
    current = ProxyMeasure(forget_accuracy=94.0, holdout_accuracy=88.0, forget_holdout_auc=47.0, retain_accuracy=98.0)
    gap, terms = estimated_gap(current, original)
    assert terms == {"UA": 4.0, "TA": 2.0, "MIA": 3.0, "RA": 1.0}
    assert gap == pytest.approx(2.5)
    without_retain = ProxyMeasure(94.0, 88.0, 47.0)
    assert estimated_gap(without_retain, original)[0] == pytest.approx(3.0)  # no RA term without D_R
    assert estimated_gap(original, original)[0] == pytest.approx((10.0 + 0.0 + 14.0 + 0.0) / 4)
    assert within_budget(current, original, 2.0) and not within_budget(current, original, 1.5)


def test_the_learning_rate_rises_geometrically_then_holds() -> None:
    config = CalibrationConfig(lr_min=0.01, lr_max=0.16)
    assert config.lr_at(1, 5) == pytest.approx(0.01)
    assert config.lr_at(3, 5) == pytest.approx(0.04)
    assert config.lr_at(5, 5) == pytest.approx(0.16) and config.lr_at(50, 5) == pytest.approx(0.16)
    with pytest.raises(InvalidInputError, match="lr_min <= lr_max"):
        CalibrationConfig(lr_min=0.2, lr_max=0.1)


def test_measure_proxy_auc_is_50_for_identical_sets(host, memorised) -> None:
    model, forget, _, _ = memorised
    measure = measure_proxy(model, forget, forget)
    assert measure.forget_holdout_auc == pytest.approx(50.0)
    assert measure.forget_accuracy == measure.holdout_accuracy


@pytest.mark.parametrize("with_retain", [True, False])
def test_calibrated_amun_makes_the_forget_set_look_held_out_where_the_default_does_not(
        host, memorised, with_retain, monkeypatch) -> None:
    model, forget, retain, holdout = memorised
    retain_arg = retain if with_retain else None
    before = measure_proxy(model, forget, holdout, retain)
    assert before.forget_holdout_auc > 58  # the fixture memorises

    def no_retrained_model(*_args, **_kwargs):
        raise AssertionError("calibration must never read or train a retrained model")

    monkeypatch.setattr("amun_plugin.models.checkpoint.load_checkpoint", no_retrained_model)
    monkeypatch.setattr("amun_plugin.plugins.PluginHost.load_model", no_retrained_model)
    monkeypatch.setattr(Retrain, "run", no_retrained_model)
    with pytest.warns(NoHoldoutWarning, match="no holdout given"):
        fixed = amun_plugin.unlearn(model, forget, retain_arg, plugins=host, seed=0)
    calibrated = amun_plugin.unlearn(model, forget, retain_arg, holdout=holdout, plugins=host, seed=0)
    after_fixed = measure_proxy(fixed.model, forget, holdout, retain)
    after = measure_proxy(calibrated.model, forget, holdout, retain)
    assert after_fixed.forget_holdout_auc > 58  # the fixed default barely moves
    assert abs(after.forget_holdout_auc - 50) < 4
    assert after.holdout_accuracy >= before.holdout_accuracy - 5.0  # the stated accuracy budget
    assert after.retain_accuracy >= before.retain_accuracy - 5.0
    stats = calibrated.stats
    chosen = stats["calibration"]["chosen"]
    assert chosen["within_budget"] and stats["calibration_estimated_gap"] == chosen["estimated_gap"]
    assert chosen["estimated_gap"] < stats["calibration"]["original"]["estimated_gap"]
    assert 0.01 <= stats["calibrated_lr"] <= 0.1 and stats["calibration_checks"] >= 1


def test_calibration_is_deterministic_for_a_seed(host, memorised) -> None:
    model, forget, retain, holdout = memorised
    first = amun_plugin.unlearn(model, forget, retain, holdout=holdout, plugins=host, seed=3)
    second = amun_plugin.unlearn(model, forget, retain, holdout=holdout, plugins=host, seed=3)
    assert first.stats["calibration"]["chosen"] == second.stats["calibration"]["chosen"]
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key])


def test_the_hold_restarts_from_the_ramps_best_state_at_its_lr_and_keeps_the_best_of_both(host, memorised) -> None:
    model, forget, retain, holdout = memorised
    ramp_only = amun_plugin.unlearn(model, forget, retain, holdout=holdout, plugins=host, seed=0,
                                    calibration=CalibrationConfig(hold_epochs=0)).stats["calibration"]
    held = amun_plugin.unlearn(model, forget, retain, holdout=holdout, plugins=host, seed=0).stats["calibration"]
    assert ramp_only["hold_from_step"] is None
    start = held["hold_from_step"]
    ramp_trace = [check for check in held["trace"] if check[0] <= ramp_only["steps"]]
    assert ramp_trace[:len(ramp_only["trace"])] == ramp_only["trace"]  # the ramp is the same run
    assert start == ramp_only["chosen"]["step"]
    hold = held["trace"][len(ramp_only["trace"]):]
    assert hold and {lr for _, lr, _ in hold} == {ramp_only["chosen"]["lr"]}  # constant, at the ramp's choice
    assert [step for step, _, _ in hold] == sorted(step for step, _, _ in hold) and hold[0][0] > ramp_only["steps"]
    assert held["chosen"]["within_budget"] and ramp_only["chosen"]["within_budget"]
    assert held["chosen"]["estimated_gap"] <= ramp_only["chosen"]["estimated_gap"]  # the best of both phases


def test_calibration_none_runs_the_fixed_defaults_silently_without_holdout(host, memorised) -> None:
    model, forget, retain, _ = memorised
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit fixed schedule: no NoHoldoutWarning
        result = amun_plugin.unlearn(model, forget, retain, calibration=None, plugins=host)
    assert "calibration" not in result.stats and result.stats["finetune_schedule"] == "fixed"


@pytest.mark.parametrize("case, message", [
    ("forget", "shares 40 sample"),
    ("retain", "shares 10 sample"),
    ("empty", "holdout is empty|empty"),
    ("shape", "input shape"),
])
def test_bad_holdout_is_refused_before_any_work(host, memorised, case, message) -> None:
    model, forget, retain, holdout = memorised
    bad = {"forget": forget, "retain": retain.subset(range(10)).concat(holdout, name="holdout"),
           "empty": (holdout.x[:0], holdout.y[:0]),
           "shape": (torch.zeros(5, 1, 4, 4), torch.zeros(5, dtype=torch.long))}
    with pytest.raises(InvalidInputError, match=message):
        amun_plugin.unlearn(model, forget, retain, holdout=bad[case], plugins=host)


def _random_holdout(n: int = 30) -> LabeledData:
    generator = torch.Generator().manual_seed(5)
    return LabeledData(torch.rand(n, 1, 4, 4, generator=generator), torch.randint(0, 3, (n,), generator=generator),
                       3, "holdout")


def test_amun_salun_calibrates_through_its_mask(host, tiny_model, tiny_data) -> None:
    holdout = _random_holdout()
    result = amun_plugin.unlearn(tiny_model, tiny_data.subset(range(10)), tiny_data.subset(range(10, 90)),
                                 method="amun_salun", holdout=holdout, plugins=host)
    assert "calibrated_lr" in result.stats and result.stats["calibration"]["holdout_size"] == 30


def test_holdout_resolution_matches_the_binomial_half_width() -> None:
    from amun_plugin.unlearn.calibration import holdout_resolution

    half, needed = holdout_resolution(87.5, 200, 5.0)
    assert half == pytest.approx(100 * 1.96 * (0.875 * 0.125 / 200) ** 0.5)  # 4.58 points
    assert holdout_resolution(87.5, needed, 5.0)[0] <= 2.5 < holdout_resolution(87.5, needed - 1,
                                                                                                   5.0)[0]
    assert holdout_resolution(100.0, 10, 5.0)[0] > 0  # a perfect holdout still has finite resolution


def test_a_holdout_too_small_for_the_budget_is_warned_about_and_recorded(host, memorised) -> None:
    model, forget, retain, holdout = memorised
    with pytest.warns(UserWarning, match=r"held-out samples measure accuracy only to \+-.* Pass at least"):
        small = amun_plugin.unlearn(model, forget, retain, holdout=holdout.subset(range(20)), plugins=host,
                                    calibration=CalibrationConfig(max_epochs=1, min_steps=4, ramp_min_steps=4,
                                                                  hold_epochs=0))
    assert small.stats["calibration"]["holdout_accuracy_half_width"] > 2.5
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*measure accuracy only.*")
        amun_plugin.unlearn(model, forget, retain, holdout=holdout, plugins=host,
                            calibration=CalibrationConfig(accuracy_budget=20.0, max_epochs=1, min_steps=4,
                                                          ramp_min_steps=4, hold_epochs=0))


# --- the union the calibration fine-tunes on (issue 24) ------------------------------------------------------

_ORIGINAL = ProxyMeasure(forget_accuracy=100.0, holdout_accuracy=88.0, forget_holdout_auc=70.0, retain_accuracy=100.0)


@pytest.mark.parametrize("measures, winner", [
    # with D_R at a small forget fraction: dropping D_F's labels brings UA down to TA
    ({"full": ProxyMeasure(97.0, 86.0, 52.0, 99.0), "adv_only": ProxyMeasure(89.0, 87.0, 51.0, 99.0),
      "partial": ProxyMeasure(93.0, 86.0, 51.0, 99.0)}, "adv_only"),
    # adv_only overshoots (D_F far below held-out accuracy, AUC below 50): partial lands in between
    ({"full": ProxyMeasure(97.0, 86.0, 53.0, 99.0), "adv_only": ProxyMeasure(70.0, 85.0, 40.0, 99.0),
      "partial": ProxyMeasure(89.0, 86.5, 50.5, 99.0)}, "partial"),
    # without D_R the others break the accuracy budget: the paper's union is the only one within it
    ({"full": ProxyMeasure(95.0, 85.0, 55.0, None), "adv_only": ProxyMeasure(80.0, 70.0, 50.0, None),
      "partial": ProxyMeasure(88.0, 81.0, 50.0, None)}, "full"),
])
def test_the_union_within_budget_with_the_lowest_estimated_gap_wins(measures, winner) -> None:
    from amun_plugin.unlearn.calibration import rank_unions

    chosen, unions, why = rank_unions(measures, _ORIGINAL, 5.0)
    assert chosen == winner and winner in why
    gaps = {n: u["estimated_gap"] for n, u in unions.items() if u["within_budget"]}
    assert unions[winner]["within_budget"] and gaps[winner] == min(gaps.values())
    assert set(unions) == set(measures)


def test_calibrated_amun_chooses_its_union_on_selection_data_no_ramp_was_selected_on(host, memorised) -> None:
    model, forget, retain, holdout = memorised
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = amun_plugin.unlearn(model, forget, retain, holdout=holdout, plugins=host, seed=0)
    calibration = result.stats["calibration"]
    unions = calibration["unions"]
    assert set(unions) == {"full", "adv_only", "partial"} and calibration["union"] == result.stats["calibrated_union"]
    ranked = sorted(unions, key=lambda n: (not unions[n]["within_budget"], unions[n]["estimated_gap"]))
    assert calibration["union"] == ranked[0] and calibration["why"].startswith(("within", "no union"))
    assert calibration["tuning_size"] + calibration["selection_size"] == len(holdout) == calibration["holdout_size"]
    # partial drops the D_F samples nearest the boundary, as many as the held-out error rate predicts
    error = 100.0 - calibration["original"]["measure"]["holdout_accuracy"]
    assert calibration["partial_unlabeled"] == round(error / 100.0 * len(forget))
    assert unions["partial"]["size"] == unions["full"]["size"] - calibration["partial_unlabeled"]
    assert unions["adv_only"]["size"] == unions["full"]["size"] - len(forget)


def test_an_explicit_variant_pins_the_union_and_partial_needs_a_holdout(host, memorised) -> None:
    model, forget, retain, holdout = memorised
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pinned = amun_plugin.unlearn(model, forget, retain, holdout=holdout, variant="adv_only", plugins=host,
                                     calibration=CalibrationConfig(max_epochs=1, min_steps=4, ramp_min_steps=4,
                                                                   hold_epochs=0))
    assert pinned.stats["calibrated_union"] == "adv_only" and pinned.stats["calibration"]["unions"] == {}
    with pytest.raises(InvalidInputError, match="partial' needs holdout"):
        amun_plugin.unlearn(model, forget, retain, variant="partial", plugins=host)
    with pytest.raises(InvalidInputError, match="unions must be among"):
        amun_plugin.unlearn(model, forget, retain, holdout=holdout, calibration={"unions": ["full", "nope"]},
                            plugins=host)
