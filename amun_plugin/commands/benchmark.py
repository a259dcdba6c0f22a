"""What ``amun bench`` does (the CLI only parses and prints): load the suite, pick the executor,
run it (:func:`~amun_plugin.bench.runner.run_suite`) and print its table."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from amun_plugin.bench.ray_executor import RayExecutor
from amun_plugin.bench.runner import run_suite
from amun_plugin.bench.suite_config import load_suite
from amun_plugin.errors import InvalidInputError
from amun_plugin.executors import Executor, LocalExecutor

__all__ = ["bench_command"]


def bench_command(suite: str, *, preset: str | None = None, executor: str = "local", address: str | None = None,
                  output: str | None = None, runs: int | None = None, fractions: Sequence[float] | None = None,
                  echo: Callable[[str], Any], methods: Sequence[str] | None = None) -> Path:
    """Run or resume ``suite`` (a name under benchmarks/suites or a YAML path) with ``preset``,
    optionally fewer ``runs``, other ``fractions`` or a subset of ``methods``; returns the run folder."""
    config = load_suite(suite, preset)
    if runs is not None:
        config = config.with_runs(runs)
    if fractions is not None:
        config = config.with_fractions(fractions)
    if methods is not None:
        config = config.with_methods(methods)
    if executor == "ray":
        chosen: Executor = RayExecutor(address=address)
    elif address is not None:
        raise InvalidInputError("--address is only used with --executor ray")
    else:
        chosen = LocalExecutor()
    folder = run_suite(config, output, executor=chosen, echo=echo)
    echo((folder / "table.md").read_text(encoding="utf-8"))
    return folder
