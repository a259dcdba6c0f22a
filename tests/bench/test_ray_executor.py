"""The Ray executor on a local Ray instance started here: same numbers as the local executor."""

from __future__ import annotations

import builtins
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from bench_helpers import metric_view, tiny_suite

from amun_plugin.bench.runner import run_suite
from amun_plugin.errors import BackendUnavailableError


def read(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


def test_missing_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    from amun_plugin.bench.ray_executor import RayExecutor

    with pytest.raises(BackendUnavailableError, match=r"pip install 'amun_plugin\[ray\]'"):
        RayExecutor()


def test_ray_gives_the_local_executors_numbers(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from amun_plugin.bench.ray_executor import RayExecutor

    config = tiny_suite(  # RMIA: the reference models are Ray tasks too
        grid={"forget_seeds": [0]}, methods=[{"name": "ft", "options": {"epochs": 1}}],
        evaluation={"evaluators": [{"name": "accuracy"}, {"name": "rmia"}], "reference": {"num_models": 2},
                    "tables": [{"title": "RMIA", "mia": "rmia.FT_AUC"}]})
    local = run_suite(config, tmp_path / "local", cache_dir=tmp_path / "cache_local", progress=False, echo=print)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor()
        remote = run_suite(config, tmp_path / "ray", executor=executor, cache_dir=tmp_path / "cache_ray",
                           progress=False, echo=print)
        squares = executor.run([functools.partial(pow, i, 2) for i in range(4)])
    finally:
        ray.shutdown()
    assert squares == [0, 1, 4, 9]  # results come back in job order
    assert json.loads((remote / "env.json").read_text())["executor"] == "ray"
    records = read(remote)
    assert len(records) == 3 and metric_view(records) == metric_view(read(local))
    assert len(list((tmp_path / "cache_ray" / "banks").glob("*/logits_*.safetensors"))) == 2

