"""benchmarks/frontier_paired.py: the paired bootstrap of a quantile difference between two methods."""

from __future__ import annotations

import json

import numpy as np
import pytest
from script_loader import load_benchmark


@pytest.fixture(scope="module")
def paired():
    return load_benchmark("frontier_paired.py")


def test_a_shifted_tail_is_beyond_noise_and_identical_methods_are_not(paired) -> None:
    base = 1.0 + np.random.default_rng(1).exponential(0.03, 400)
    shifted = np.where(base > np.quantile(base, 0.8), base + 0.05, base)
    out = paired.paired_quantile_difference(shifted, base, 0.9, resamples=500)
    assert out["difference"] == pytest.approx(0.05) and 0 < out["lo"] <= out["hi"]
    same = paired.paired_quantile_difference(base, base, 0.9, resamples=500)
    assert same["difference"] == same["lo"] == same["hi"] == 0.0
    with pytest.raises(ValueError):
        paired.paired_quantile_difference(base, base[:10], 0.9)


def test_main_reads_a_results_folder_and_writes_its_comparison(paired, tmp_path, capsys) -> None:
    n = 50
    near = list(np.linspace(0.2, 1.0, n))
    rows = [{"label": "a", "distances": near, "already_misclassified": [False] * n},
            {"label": "b", "distances": [1.2 * d for d in near], "already_misclassified": [False] * n}]
    (tmp_path / "results.json").write_text(json.dumps({"results": rows}))
    assert paired.main([str(tmp_path), "a", "b"]) == 0
    out = json.loads((tmp_path / "paired_a_vs_b.json").read_text())
    assert out["p90"]["difference"] == pytest.approx(-0.2) and out["p90"]["hi"] < 0
    assert "p90 a - b" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        paired.main([str(tmp_path), "a", "c"])
