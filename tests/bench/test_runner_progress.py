"""A suite run into a log (stderr not a terminal) prints a line per stage, never bar redraws."""

from __future__ import annotations

from pathlib import Path

from bench_helpers import tiny_suite

from amun_plugin.bench.runner import run_suite


def test_a_logged_suite_prints_stage_lines_without_carriage_returns(tmp_path: Path, capsys) -> None:
    config = tiny_suite(grid={"forget_seeds": [0]}, methods=[{"name": "ft", "label": "FT", "options": {"epochs": 1}}])
    run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=True, echo=print)
    err = capsys.readouterr().err
    assert "models: started" in err and "cells: done" in err
    assert "\r" not in err
