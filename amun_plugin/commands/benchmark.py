"""What ``amun bench`` does (the CLI only parses and prints): load the suite, apply the knobs that
make it small, pick the executor, run it (:func:`~amun_plugin.bench.runner.run_suite`) and print
its table; or, with ``dry_run``, print what it would run and a rough time.

The run folder defaults to ``./amun-bench/<suite>-<preset>`` (never the committed
``benchmarks/results``); a folder that is not new, empty or a run folder is refused, and so is one
holding results of another commit unless ``resume``. A run that fails before its first result (no
Ray cluster, missing data) leaves no folder behind; one stopped by Ctrl-C says how to resume.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from amun_plugin.bench.plan import describe_plan
from amun_plugin.bench.ray_executor import RayExecutor
from amun_plugin.bench.results import check_resumable, check_run_folder
from amun_plugin.bench.runner import default_output, render_folder, run_suite
from amun_plugin.bench.suite_config import SuiteConfig, load_suite
from amun_plugin.errors import InvalidInputError
from amun_plugin.executors import Executor, LocalExecutor, ProcessExecutor
from amun_plugin.plugins import PluginHost, get_plugin_manager

__all__ = ["SuiteKnobs", "apply_knobs", "bench_command", "report_command"]

_RESULT_FILES = ("results.jsonl", "tuning.jsonl")


@dataclass(frozen=True)
class SuiteKnobs:
    """Command-line changes to a suite (None / False: the suite's own value): ``runs`` forget sets,
    forget ``fractions``, training ``variants`` of the original models, method labels ``methods``,
    ``reference_models`` RMIA reference models,
    ``no_tune`` (each method's fixed options, no grid search), torch ``threads`` per job, ``device``."""

    runs: int | None = None
    fractions: Sequence[float] | None = None
    variants: Sequence[str] | None = None
    methods: Sequence[str] | None = None
    reference_models: int | None = None
    no_tune: bool = False
    threads: int | None = None
    device: str | None = None


def apply_knobs(config: SuiteConfig, knobs: SuiteKnobs) -> SuiteConfig:
    """``config`` with ``knobs`` applied (each checked like the suite file)."""
    if knobs.runs is not None:
        config = config.with_runs(knobs.runs)
    if knobs.fractions is not None:
        config = config.with_fractions(knobs.fractions)
    if knobs.methods is not None:
        config = config.with_methods(knobs.methods)
    changes: dict[str, Any] = {}
    if knobs.variants is not None:
        changes["grid"] = {"variants": list(knobs.variants)}
    if knobs.reference_models is not None:
        if knobs.reference_models < 2:
            raise InvalidInputError(f"--reference-models must be >= 2 (RMIA needs IN and OUT models), "
                                    f"got {knobs.reference_models}")
        changes["evaluation"] = {"reference": {"num_models": knobs.reference_models}}
    if knobs.no_tune:
        changes["tuning"] = {"enabled": False}
    if knobs.threads is not None:
        if knobs.threads < 1:
            raise InvalidInputError(f"--threads must be >= 1, got {knobs.threads}")
        changes["threads"] = knobs.threads
    if knobs.device is not None:
        changes["device"] = knobs.device
    return config.overridden(changes) if changes else config


def bench_command(suite: str, *, preset: str | None = None, executor: str = "local", address: str | None = None,
                  workers: int | None = None, output: str | None = None, echo: Callable[[str], Any],
                  knobs: SuiteKnobs = SuiteKnobs(),
                  dry_run: bool = False, resume: bool = False, host: PluginHost | None = None) -> Path | None:
    """Run or resume ``suite`` (a shipped suite name or a YAML path) with ``preset`` and ``knobs``;
    returns the run folder (None for a dry run, which only prints the plan)."""
    config = apply_knobs(load_suite(suite, preset), knobs)
    if executor != "ray" and address is not None:
        raise InvalidInputError("--address is only used with --executor ray")
    if executor != "processes" and workers is not None:
        raise InvalidInputError("--workers is only used with --executor processes")
    if dry_run:
        for line in describe_plan(config, host or get_plugin_manager()):
            echo(line)
        return None
    folder = Path(output) if output is not None else default_output(config)
    check_resumable(folder, resume)
    check_run_folder(folder)
    chosen: Executor = LocalExecutor()
    if executor == "processes":
        chosen = ProcessExecutor(workers)
    if executor == "ray":
        ray_executor = RayExecutor(address=address)
        ray_executor.connect()  # no cluster: one line, before any folder exists
        chosen = ray_executor
    echo(f"running {config.name} ({config.preset}) into {folder}/")
    created = _first_missing(folder)
    try:
        run_suite(config, folder, executor=chosen, echo=echo, plugins=host)
    except BaseException as exc:
        kept = created is None or any((folder / name).exists() for name in _RESULT_FILES)
        if created is not None and not kept:
            shutil.rmtree(created, ignore_errors=True)  # nothing computed: leave no folder behind
        if isinstance(exc, KeyboardInterrupt):
            where = f"finished cells in {folder}/ and " if kept else ""
            echo(f"interrupted: {where}trained models in the cache are kept; rerun the same command to resume")
        raise
    echo((folder / "table.md").read_text(encoding="utf-8"))
    return folder


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet (None: it exists)."""
    if folder.exists():
        return None
    missing = folder
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    return missing


def report_command(folder: str, *, echo: Callable[[str], Any]) -> None:
    """Re-render ``folder``'s ``table.md`` and plots from its records (nothing is computed) and
    say which of them changed: an unchanged folder renders to the same bytes."""
    path = Path(folder)
    before = _rendered(path)
    render_folder(path)
    after = _rendered(path)
    changed = sorted(name for name in after if before.get(name) != after[name])
    source = path / "results.jsonl"
    if changed:
        echo(f"rewrote {', '.join(changed)} in {path} from {source} ({len(after) - len(changed)} file(s) unchanged)")
    else:
        echo(f"{path}: table.md and plots unchanged (re-rendered from {source})")


def _rendered(folder: Path) -> dict[str, bytes]:
    """The bytes of ``folder``'s table and plots."""
    return {p.name: p.read_bytes() for p in [folder / "table.md", *sorted(folder.glob("*.png"))] if p.is_file()}
