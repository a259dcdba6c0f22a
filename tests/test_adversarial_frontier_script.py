"""benchmarks/adversarial_frontier.py: the per-sample ratio to the frontier, its intervals, and the
guard rail that refuses a model that does not memorise before any attack runs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from script_loader import load_benchmark
from tiny_fixtures import TinyNet, make_tiny_data


@pytest.fixture(scope="module")
def script():
    return load_benchmark("adversarial_frontier.py")


def _row(label: str, distances: list[float], misclassified: list[bool]) -> dict:
    return {"label": label, "distances": distances, "already_misclassified": misclassified}


def test_ratios_to_the_frontier(script) -> None:
    n = 200
    base = list(np.linspace(0.1, 1.0, n))
    misclassified = [i < 10 for i in range(n)]
    best = _row("best", [0.0 if m else d for d, m in zip(base, misclassified)], misclassified)
    farther = _row("farther", [0.0 if m else 1.1 * d for d, m in zip(base, misclassified)], misclassified)
    failing = _row("failing", [0.0 if m else (math.inf if i % 4 == 0 else d) for i, (d, m) in
                               enumerate(zip(base, misclassified))], misclassified)
    summary = script.add_frontier_ratios([best, farther, failing])
    assert summary["n_attacked"] == n - 10  # samples misclassified already (distance 0) are left out
    assert best["ratio_median"] == pytest.approx(1.0) and best["best_share"] == 1.0
    assert farther["ratio_median"] == pytest.approx(1.1) and farther["ratio_p90"] == pytest.approx(1.1)
    assert farther["best_share"] == 0.0
    assert failing["ratio_median"] == pytest.approx(1.0) and math.isinf(failing["ratio_p90"])
    assert best["ratio_median_lo"] <= best["ratio_median"] <= best["ratio_median_hi"]


def test_quantile_interval_brackets_the_estimate_and_covers_95_percent(script) -> None:
    """On 300 draws of 500 U(0, 1) values, the interval holds the estimate and covers the true
    q-quantile (q itself) in 92-98% of the draws."""
    for q in (0.5, 0.9):
        covered = 0
        for seed in range(300):
            estimate, low, high = script.quantile_interval(np.random.default_rng(seed).uniform(size=500), q)
            assert low <= estimate <= high and high - low < 0.15
            covered += low <= q <= high
        assert 0.92 <= covered / 300 <= 0.98


def test_main_refuses_a_model_that_does_not_memorise(script, monkeypatch, tmp_path, capsys) -> None:
    data = make_tiny_data(60)
    fake = SimpleNamespace(train=data, test=make_tiny_data(30, seed=1), original=lambda seed: (TinyNet(), {}))
    monkeypatch.setattr(script, "Workspace", lambda config, cache: fake)
    monkeypatch.setattr(script, "ArtifactCache", lambda root: None)
    monkeypatch.setattr(script, "run_method", lambda *a, **k: pytest.fail("an attack ran"))
    code = script.main(["--out", str(tmp_path / "out"), "--forget-size", "6", "--methods", "native_min_norm"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: the original model") and err.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()


def test_adversarial_search_delegates_the_frontier_mode(monkeypatch) -> None:
    search = load_benchmark("adversarial_search.py")
    seen = []
    monkeypatch.setattr(search, "_frontier_script", lambda: SimpleNamespace(main=lambda argv: seen.append(argv) or 0))
    assert search.main(["--frontier", "--forget-size", "7"]) == 0 and seen == [["--forget-size", "7"]]


def test_tail_variants_change_only_the_approach(script) -> None:
    """The p90-tail variants (issue 12's last gap) are runnable labels whose configs differ from
    the default search's only in the approach options they name."""
    from dataclasses import asdict

    from amun_plugin.attacks.native_min_norm import NativeMinNormConfig

    expected = {"native_min_norm_smoothing_1": {"approach_smoothing": 1.0},
                "native_min_norm_smoothing_06_overshoot_01": {"approach_smoothing": 0.6, "approach_overshoot": 0.1}}
    args = script.parse_args(["--methods", *expected])
    assert args.methods == list(expected)
    default = asdict(NativeMinNormConfig())
    for label, changed in expected.items():
        config = asdict(script.EXTRA[label][0]().config)
        assert {k: v for k, v in config.items() if default[k] != v} == changed
        assert script.EXTRA[label][1] == script.AUTO


def test_the_previous_defaults_stay_reproducible(script) -> None:
    """Issue 12's fourth pass made the runner-up walk (and boundary_tol 0.05) the default; the labels
    of the earlier defaults switch it off, so they still run the configs their results were measured
    with."""
    from dataclasses import asdict

    from amun_plugin.attacks.native_min_norm import NativeMinNormConfig

    default = asdict(NativeMinNormConfig())
    before = asdict(script.EXTRA["native_min_norm_before_runner_up"][0]().config)
    assert {k: v for k, v in before.items() if default[k] != v} == {"runner_up_steps": 0, "boundary_tol": 0.01}
    for label in ("native_min_norm_before_issue12", "native_min_norm_issue12_first", "native_min_norm_no_runner_up"):
        assert script.EXTRA[label][0]().config.runner_up_steps == 0
    assert script.EXTRA["native_min_norm_runner_up_tol_001"][0]().config.runner_up_steps == default["runner_up_steps"]
