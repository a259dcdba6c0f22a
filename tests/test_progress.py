"""Progress: tqdm bars on a terminal; one line per stage in logs and pipes (no bar redraws)."""

from __future__ import annotations

import amun_plugin
from amun_plugin import progress as progress_module
from amun_plugin.training import TrainConfig, train_model


def test_training_and_unlearning_print_stage_lines_when_not_on_a_terminal(tiny_model, tiny_data, capsys):
    train_model(tiny_model, tiny_data, TrainConfig(epochs=1, batch_size=32), progress="train tiny")
    amun_plugin.unlearn(tiny_model, tiny_data.subset(range(6)), tiny_data.subset(range(6, 90)), method="ft",
                        epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err  # no bar redraws
    lines = [line for line in err.splitlines() if line]
    assert lines[0] == "train tiny: started (3 steps)"
    assert lines[1].startswith("train tiny: done, 3/3 steps in ")
    assert lines[2] == "unlearn ft: started (6 forget samples, with_retain)"
    assert lines[-1].startswith("unlearn ft: done in ")


def test_bars_are_kept_for_terminals(monkeypatch):
    monkeypatch.setattr(progress_module, "interactive", lambda: True)
    bar = progress_module.progress_bar("train", 5, "train", disable=True)
    assert type(bar).__name__ == "tqdm_asyncio" or "tqdm" in type(bar).__module__
    bar.close()
    assert progress_module.bars_allowed(True) is True
    assert progress_module.progress_bar(False, 5, "train") is None
