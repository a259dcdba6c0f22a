"""The training loop: learning, determinism, augmentation masks, hooks, modes, schedules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError
from amun_plugin.models import MLP, SmallResNet, accuracy, build_model, predict_logits
from amun_plugin.training import Augment, Schedule, TrainConfig, augment_batch, make_optimizer, train_model


def _random_data(n: int = 64, shape: tuple[int, ...] = (1, 8, 8), classes: int = 4, seed: int = 0) -> LabeledData:
    g = torch.Generator().manual_seed(seed)
    return LabeledData(torch.rand(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g), classes)


def _mlp(seed: int = 0, shape: tuple[int, ...] = (1, 8, 8), classes: int = 4) -> nn.Module:
    return build_model(MLP({"hidden": (64,)}), classes, shape, seed=seed)


def test_mlp_memorises_random_labels_and_loss_decreases() -> None:
    data = _random_data()
    model = _mlp()
    stats = train_model(model, data, TrainConfig(epochs=60, batch_size=16, lr=0.05))
    assert stats.epochs == 60 and stats.steps == 60 * 4
    assert stats.loss_per_epoch[-1] < 0.2 * stats.loss_per_epoch[0]
    assert stats.final_loss == stats.loss_per_epoch[-1]
    assert len(stats.train_accuracy_per_epoch) == 60 and stats.train_accuracy_per_epoch[-1] > 95
    assert accuracy(model, data) == 100.0
    assert stats.seconds > 0


def test_same_seed_gives_identical_weights_and_other_seed_differs() -> None:
    data = _random_data()
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, augment=Augment.CROP_FLIP)
    runs = []
    for seed in (3, 3, 4):
        model = build_model(SmallResNet({"width": 4}), 4, (1, 8, 8), seed=0)
        train_model(model, data, config, seed=seed)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_augment_batch_mask_crop_and_flip() -> None:
    x = torch.rand(16, 3, 32, 32)
    mask = torch.arange(16) % 2 == 0
    out = augment_batch(x, Augment.CROP_FLIP, torch.Generator().manual_seed(0), mask)
    assert out.shape == x.shape
    assert torch.equal(out[~mask], x[~mask])
    assert not torch.equal(out[mask], x[mask])
    again = augment_batch(x, "crop_flip", torch.Generator().manual_seed(0), mask)
    assert torch.equal(out, again)
    assert torch.equal(augment_batch(x, Augment.NONE, torch.Generator()), x)


def test_crop_is_a_shifted_window_of_the_zero_padded_image() -> None:
    x = torch.rand(32, 1, 8, 8)
    out = augment_batch(x, Augment.CROP, torch.Generator().manual_seed(1))
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(32):
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)]
        assert any(torch.equal(out[i], w) for w in windows)  # padding 1 for small images, no flips


def test_train_model_augment_mask_reaches_the_model() -> None:
    data = _random_data(n=8, shape=(1, 28, 28))
    seen: list[torch.Tensor] = []

    class Recorder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(28 * 28, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.detach().clone())
            return self.lin(x.flatten(1))

    mask = torch.tensor([True, False] * 4)
    indices_seen: list[torch.Tensor] = []

    def loss_fn(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        indices_seen.append(idx.clone())
        return nn.functional.cross_entropy(logits, y)

    config = TrainConfig(epochs=1, batch_size=8, augment="crop_flip")
    train_model(Recorder(), data, config, augment_mask=mask, loss_fn=loss_fn)
    idx, batch = indices_seen[0], seen[0]
    for row, i in enumerate(idx.tolist()):
        if not mask[i]:
            assert torch.equal(batch[row], data.x[i])
    assert not all(torch.equal(batch[r], data.x[i]) for r, i in enumerate(idx.tolist()) if mask[i])
    with pytest.raises(InvalidInputError, match="augment_mask"):
        train_model(Recorder(), data, TrainConfig(epochs=1), augment_mask=torch.ones(3, dtype=torch.bool))


def test_before_step_epoch_end_and_loss_fn_are_called() -> None:
    data = _random_data(n=40)
    model = _mlp()
    calls = {"before": 0, "grads_present": True, "epochs": []}

    def before_step(m: nn.Module) -> None:
        calls["before"] += 1
        calls["grads_present"] &= all(p.grad is not None for p in m.parameters())
        for p in m.parameters():  # zeroing every gradient must freeze the weights (SalUn-style mask)
            p.grad.zero_()

    start = {k: v.clone() for k, v in model.state_dict().items()}
    stats = train_model(
        model, data, TrainConfig(epochs=2, batch_size=16, momentum=0.0), before_step=before_step,
        epoch_end=lambda e, m: calls["epochs"].append(e),
    )
    assert calls["before"] == stats.steps == 2 * 3
    assert calls["grads_present"] and calls["epochs"] == [0, 1]
    assert all(torch.equal(start[k], v) for k, v in model.state_dict().items())


def test_negated_loss_is_used() -> None:
    data = _random_data(n=32)
    model = _mlp()
    before = nn.functional.cross_entropy(predict_logits(model, data.x), data.y)
    def ascent(logits: torch.Tensor, y: torch.Tensor, _idx: torch.Tensor) -> torch.Tensor:
        return -nn.functional.cross_entropy(logits, y)

    train_model(model, data, TrainConfig(epochs=3, batch_size=8, lr=0.01), loss_fn=ascent)
    assert nn.functional.cross_entropy(predict_logits(model, data.x), data.y) > before


def test_modes_are_restored_and_training_runs_in_train_mode() -> None:
    data = _random_data(n=16)
    model = build_model(SmallResNet({"width": 4}), 4, (1, 8, 8), seed=0)
    model.eval()
    model.stages.train()  # a mixed state must come back exactly
    saved = [m.training for m in model.modules()]
    observed: list[bool] = []
    train_model(model, data, TrainConfig(epochs=1, batch_size=8), before_step=lambda m: observed.append(m.training))
    assert observed and all(observed)
    assert [m.training for m in model.modules()] == saved
    predict_logits(model, data.x)
    assert [m.training for m in model.modules()] == saved


def _lrs_per_epoch(config: TrainConfig, lr: float) -> list[float]:
    """The learning rate seen at each step with one step per epoch (16 samples, batch 16)."""
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    lrs: list[float] = []
    train_model(model, _random_data(n=16), config, optimizer=optimizer,
                before_step=lambda m: lrs.append(optimizer.param_groups[0]["lr"]))
    return lrs


def test_step_schedule_learning_rates() -> None:
    config = TrainConfig(epochs=5, batch_size=16, schedule=Schedule.STEP, step_size=2, gamma=0.5)
    assert _lrs_per_epoch(config, 0.4) == pytest.approx([0.4, 0.4, 0.2, 0.2, 0.1])


def test_a_reused_optimizer_restarts_its_schedule_from_its_current_lr() -> None:
    model, data = _mlp(), _random_data(n=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.4)
    config = TrainConfig(epochs=2, batch_size=16, schedule=Schedule.STEP, step_size=1, gamma=0.5)
    assert train_model(model, data, config, optimizer=optimizer).lr_per_epoch == pytest.approx([0.4, 0.2])
    assert train_model(model, data, config, optimizer=optimizer).lr_per_epoch == pytest.approx([0.1, 0.05])


def test_cosine_and_constant_schedules_on_the_default_sgd() -> None:
    data = _random_data(n=16)
    constant = TrainConfig(epochs=4, batch_size=16, lr=0.1, schedule=Schedule.CONSTANT)
    assert train_model(_mlp(), data, constant).lr_per_epoch == pytest.approx([0.1] * 4)
    cosine = TrainConfig(epochs=4, batch_size=16, lr=0.1, schedule=Schedule.COSINE)
    stats = train_model(_mlp(), data, cosine)
    assert stats.lr_per_epoch == pytest.approx([0.1, 0.0853553, 0.05, 0.0146447], abs=1e-6)


def test_make_optimizer_follows_the_config() -> None:
    config = TrainConfig(lr=0.03, momentum=0.5, weight_decay=5e-4, nesterov=True)
    group = make_optimizer(_mlp(), config).param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == (0.03, 0.5, 5e-4, True)
    frozen = _mlp().requires_grad_(False)
    with pytest.raises(InvalidInputError, match="no trainable parameters"):
        make_optimizer(frozen, config)


def test_single_sample_last_batch_is_merged_for_batchnorm() -> None:
    data = _random_data(n=17)
    model = build_model(SmallResNet({"width": 4}), 4, (1, 8, 8), seed=0)
    stats = train_model(model, data, TrainConfig(epochs=1, batch_size=8))
    assert stats.steps == 2


def test_config_validation_and_string_enums() -> None:
    assert TrainConfig(schedule="step", augment="crop").schedule is Schedule.STEP
    for bad in ({"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"momentum": 1.0}, {"weight_decay": -1.0},
                {"gamma": 0.0}, {"step_size": 0}, {"nesterov": True, "momentum": 0.0}, {"schedule": "linear"}):
        with pytest.raises(InvalidInputError):
            TrainConfig(**bad)
    with pytest.raises(InvalidInputError, match=r"\(B, C, H, W\)"):
        augment_batch(torch.rand(4, 10), Augment.CROP, torch.Generator())


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    stats = train_model(_mlp(), _random_data(n=16), TrainConfig(epochs=1, batch_size=8), progress="demo")
    assert stats.steps == 2


def test_label_smoothing_keeps_p_y_below_one_while_fitting_the_training_set() -> None:
    data = _random_data()
    probabilities = {}
    for smoothing in (0.0, 0.2):
        model = _mlp()
        train_model(model, data, TrainConfig(epochs=150, batch_size=16, lr=0.05, label_smoothing=smoothing))
        assert accuracy(model, data) == 100.0
        p = torch.softmax(predict_logits(model, data.x), dim=1)
        probabilities[smoothing] = p[torch.arange(len(data)), data.y]
    # the smoothed optimum is p_y = 1 - 0.2 + 0.2 / 4 = 0.85; unsmoothed training goes far above it
    assert float(probabilities[0.2].max()) < 0.93
    assert float(probabilities[0.0].median()) > 0.97
    with pytest.raises(InvalidInputError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)


def test_label_smoothing_is_omitted_from_config_dicts_at_its_default() -> None:
    from amun_plugin.config import config_to_dict, make_config

    assert "label_smoothing" not in config_to_dict(TrainConfig())
    smoothed = config_to_dict(TrainConfig(label_smoothing=0.1))
    assert smoothed["label_smoothing"] == 0.1
    assert make_config(TrainConfig, smoothed) == TrainConfig(label_smoothing=0.1)
