"""AMUN through the public API: settings, variants, input safety and the statistics returned."""

from __future__ import annotations

import pytest
import torch

import amun_plugin
from amun_plugin.attacks.search import SearchConfig
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.inference import predict_logits
from amun_plugin.plugins import get_plugin_manager


@pytest.fixture(scope="module")
def host():
    return get_plugin_manager(autoload=False)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("with_retain", [True, False])
def test_amun_returns_a_new_model_and_leaves_the_input_untouched(host, tiny_model, tiny_data, with_retain) -> None:
    forget, retain = tiny_data.subset(range(0, 12)), tiny_data.subset(range(12, 90))
    before = _state(tiny_model)
    tiny_model.train()
    result = amun_plugin.unlearn(tiny_model, forget=forget, retain=retain if with_retain else None,
                                 plugins=host, epochs=2, batch_size=16)
    model, stats = result
    assert model is not tiny_model
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())
    assert tiny_model.training and model.training  # the caller's mode, on both
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert stats["setting"] == ("with_retain" if with_retain else "without_retain")
    expected_size = (78 if with_retain else 0) + 12 + stats["adversarial"]["found"]
    assert stats["finetune_size"] == expected_size
    assert stats["adversarial"]["failures"] == 0
    # the search is timed (a fresh D_A, unlike a reused one, which reports 0) and both phases lie inside the total
    assert stats["seconds_search"] > 0 and stats["seconds_finetune"] > 0
    assert stats["seconds_search"] + stats["seconds_finetune"] <= stats["seconds_total"]
    assert stats["adversarial"]["found"] == 12 and stats["adversarial_used"] == 12


def test_adv_only_variant_trains_on_the_adversarial_set_alone(host, tiny_model, tiny_data) -> None:
    forget = tiny_data.subset(range(0, 12))
    result = amun_plugin.unlearn(tiny_model, forget=forget, plugins=host, variant="adv_only", epochs=1)
    assert result.stats["finetune_size"] == result.stats["adversarial"]["found"] == 12


def test_fine_tuning_moves_the_forget_predictions_toward_the_adversarial_labels(host, tiny_model, tiny_data) -> None:
    forget = tiny_data.subset(range(0, 30))
    result = amun_plugin.unlearn(tiny_model, forget=forget, plugins=host, variant="adv_only", epochs=20,
                                 lr=0.1, step_size=20, search=SearchConfig(refine_steps=10))
    adversarial = _adversarial_set(host, tiny_model, forget)
    p_before = torch.softmax(predict_logits(tiny_model, forget.x), 1).gather(1, forget.y.view(-1, 1)).mean()
    p_after = torch.softmax(predict_logits(result.model, forget.x), 1).gather(1, forget.y.view(-1, 1)).mean()
    assert p_after < p_before  # the model is less sure of the forgotten samples' labels
    assert adversarial.found.all()


def _adversarial_set(host, model, forget):
    from amun_plugin.attacks.search import nearest_adversarial

    return nearest_adversarial(model, forget, host.attacks.get("torchattacks_pgd_l2")(), SearchConfig())


def test_a_precomputed_adversarial_set_is_reused(host, tiny_model, tiny_data) -> None:
    forget = tiny_data.subset(range(0, 9))
    adversarial = _adversarial_set(host, tiny_model, forget)
    result = amun_plugin.unlearn(tiny_model, forget=forget, adversarial=adversarial, plugins=host, epochs=1)
    assert result.stats["adversarial_reused"] and result.stats["seconds_search"] == 0.0
    with pytest.raises(InvalidInputError, match="adversarial set has 9"):
        amun_plugin.unlearn(tiny_model, forget=tiny_data.subset(range(0, 5)), adversarial=adversarial, plugins=host)


def test_amun_is_deterministic_for_a_seed(host, tiny_model, tiny_data) -> None:
    forget, retain = tiny_data.subset(range(0, 9)), tiny_data.subset(range(9, 60))
    runs = [amun_plugin.unlearn(tiny_model, forget, retain, plugins=host, epochs=1, seed=3).model for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values()))


@pytest.mark.parametrize(
    "forget, message",
    [
        ((torch.rand(4, 1, 4, 4) * 2, torch.zeros(4, dtype=torch.long)), "pixels must lie in"),
        ((torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 7])), "labels must lie in"),
        ((torch.rand(4, 1, 4, 4), torch.zeros(3, dtype=torch.long)), "4 inputs but 3 labels"),
        ((torch.rand(0, 1, 4, 4), torch.zeros(0, dtype=torch.long)), "empty"),
        ((torch.rand(4, 1, 5, 5), torch.zeros(4, dtype=torch.long)), "model failed"),
    ],
)
def test_bad_input_gets_a_clear_error(host, tiny_model, forget, message) -> None:
    before = _state(tiny_model)
    with pytest.raises(InvalidInputError, match=message):
        amun_plugin.unlearn(tiny_model, forget=forget, num_classes=3, plugins=host)
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())


def test_unknown_options_and_methods_are_refused(host, tiny_model, tiny_data) -> None:
    with pytest.raises(InvalidInputError, match="unknown option.*epoch"):
        amun_plugin.unlearn(tiny_model, tiny_data.subset([0]), plugins=host, epoch=3)
    with pytest.raises(InvalidInputError, match="unknown unlearner"):
        amun_plugin.unlearn(tiny_model, tiny_data.subset([0]), plugins=host, method="nope")


def test_paper_settings_select_algorithm_1_exactly(host, tiny_model, tiny_data) -> None:
    from amun_plugin.unlearn.amun import PAPER_SETTINGS, AmunConfig

    default = host.unlearners.get("amun")({}).config
    paper = host.unlearners.get("amun")(dict(PAPER_SETTINGS)).config
    assert (default.attack, default.search.eps_init, default.epochs) == ("native_min_norm", None, 2)
    assert (paper.attack, dict(paper.attack_options), paper.search.eps_init, paper.epochs) == (
        "native_pgd_l2", {"loss": "ce"}, 0.04, 10)
    assert paper.lr == default.lr == AmunConfig().lr
    result = amun_plugin.unlearn(tiny_model, forget=tiny_data.subset(range(0, 8)), plugins=host,
                                 **{**PAPER_SETTINGS, "epochs": 1})
    assert result.stats["adversarial"]["backend"] == "native_pgd_l2" and result.stats["adversarial"]["failures"] == 0


def test_repair_epochs_fine_tune_on_the_retain_set_after_amun(host, tiny_model, tiny_data) -> None:
    import copy

    from amun_plugin.training import Schedule, TrainConfig, train_model

    forget, retain = tiny_data.subset(range(0, 9)), tiny_data.subset(range(9, 60))
    adversarial = _adversarial_set(host, tiny_model, forget)
    plain = amun_plugin.unlearn(tiny_model, forget, retain, adversarial=adversarial, plugins=host, epochs=1, seed=2)
    repaired = amun_plugin.unlearn(tiny_model, forget, retain, adversarial=adversarial, plugins=host, epochs=1,
                                   seed=2, repair_epochs=2, repair_lr=0.05)
    expected = copy.deepcopy(plain.model)  # AMUN's result, then two epochs on D_R alone at the constant lr
    train_model(expected, retain, TrainConfig(epochs=2, batch_size=128, lr=0.05, momentum=0.9, weight_decay=5e-4,
                                              schedule=Schedule.CONSTANT), seed=3)
    for name, value in expected.state_dict().items():
        assert torch.allclose(value, repaired.model.state_dict()[name]), name
    assert repaired.stats["repair_seconds"] > 0 and "repair_seconds" not in plain.stats
    with pytest.raises(InvalidInputError, match="repair_epochs fine-tunes on D_R"):
        amun_plugin.unlearn(tiny_model, forget, None, plugins=host, epochs=1, repair_epochs=1)
    with pytest.raises(InvalidInputError, match="repair_epochs must be"):
        amun_plugin.unlearn(tiny_model, forget, retain, plugins=host, epochs=1, repair_epochs=-1)
