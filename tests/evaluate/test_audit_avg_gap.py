"""``audit()`` returns the Avg Gap its docstring lists with or without a report folder (issue 27)."""

from __future__ import annotations

import pytest
import torch
from audit_fixtures import tiny_audit_data
from tiny_fixtures import TinyNet

from amun_plugin.evaluate.audit import audit
from amun_plugin.plugins import get_plugin_manager


def _net(seed: int) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def test_avg_gap_without_out_dir_equals_the_written_one(tmp_path):
    data, _ = tiny_audit_data()
    host = get_plugin_manager(autoload=False)
    model, retrained = _net(0), _net(1)
    kwargs = {"evaluators": ["accuracy", "confidence_mia"], "retrained": retrained, "plugins": host, "plots": False}
    bare = audit(model, data.retain, data.forget, data.test, **kwargs)
    written = audit(model, data.retain, data.forget, data.test, out_dir=tmp_path / "a", **kwargs)
    assert isinstance(bare["avg_gap"], float) and "paths" not in bare
    assert bare["avg_gap"] == pytest.approx(written["avg_gap"], abs=1e-12)
    alone = audit(model, data.retain, data.forget, data.test, evaluators=["accuracy"], plugins=host, plots=False)
    assert alone["avg_gap"] is None  # no retrained model
