"""A long training run reports progress with an ETA in a log, not only "started" and "done"
(issue 29, item 5): a line every ~10% of the run, 10 s to 60 s apart."""

from __future__ import annotations

import re

import torch

from amun_plugin import progress as progress_module
from amun_plugin.data.base import LabeledData
from amun_plugin.training import TrainConfig, train_model

LINE = re.compile(r"^train: (\d+)/2520 steps, [\d.]+ (s|min) elapsed, ~[\d.]+ (s|min) left$")


class FakeClock:
    """A clock that advances ``step`` seconds each time it is read after ``start``."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_fourteen_minute_run_prints_a_line_a_minute_with_the_time_left(capsys) -> None:
    bar = progress_module._StageLines("train", 2520, "step", clock=FakeClock(1 / 3))  # 2520 steps in 14 min
    for _ in range(2520):
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "train: started (2520 steps)" and lines[-1].startswith("train: done, 2520/2520 steps in 840")
    progress = lines[1:-1]
    assert 12 <= len(progress) <= 14 and all(LINE.match(line) for line in progress), progress
    assert progress[0] == "train: 180/2520 steps, 60 s elapsed, ~13.0 min left"
    assert any(line.endswith(" steps, 5.0 min elapsed, ~9.0 min left") for line in progress)


def test_a_short_run_lines_follow_ten_percent_steps(capsys) -> None:
    bar = progress_module._StageLines("train", 100, "step", clock=FakeClock(1.0))  # 100 s in all
    for _ in range(100):
        bar.update(1)
    lines = capsys.readouterr().err.splitlines()[1:]
    assert [int(line.split("/")[0].split()[-1]) for line in lines] == list(range(10, 100, 10))


def test_a_real_training_run_logs_progress_lines(monkeypatch, capsys) -> None:
    monkeypatch.setattr(progress_module, "MIN_LINE_GAP", 0.0)  # a tiny run: every ~10%
    data = LabeledData(torch.rand(64, 4), torch.randint(0, 3, (64,)), 3)
    train_model(torch.nn.Linear(4, 3), data, TrainConfig(epochs=10, batch_size=4), progress="train")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "train: started (160 steps)" and lines[-1].startswith("train: done, 160/160 steps")
    middle = lines[1:-1]
    assert middle and all(re.match(r"^train: \d+/160 steps, \d+ s elapsed, ~\d+ s left$", line) for line in middle)
