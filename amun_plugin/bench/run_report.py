"""The report of a benchmark run folder: ``table.md`` and the plots, written from the records in the
suite's order (:func:`write_report`, after each forget fraction of :func:`~amun_plugin.bench.runner.run_suite`),
and re-rendered from the folder alone (:func:`render_folder`, ``amun report``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from amun_plugin.bench.record_types import parse_records
from amun_plugin.bench.records import Cell, load_records
from amun_plugin.bench.suite_config import SuiteConfig, SuiteKind
from amun_plugin.bench.suite_plots import suite_plots
from amun_plugin.bench.suite_specs import SETTINGS
from amun_plugin.bench.suite_tables import STATISTICS_NOTE, suite_tables
from amun_plugin.config import load_yaml, make_config
from amun_plugin.errors import InvalidInputError
from amun_plugin.io import atomic_write_text

__all__ = ["render_folder", "write_report"]


def _folder_view(folder: Path, config: SuiteConfig,
                 current: list[dict[str, Any]]) -> tuple[SuiteConfig, list[dict[str, Any]]]:
    """What ``table.md`` shows: this invocation's records, plus, for a table suite, those of the
    methods and fractions that earlier invocations ran into the same folder (``--methods`` and
    ``--fraction`` subsets; the latest record of each cell) under the union of their configs."""
    if config.kind is not SuiteKind.TABLE or not (folder / "results.jsonl").exists():
        return config, current
    stored = make_config(SuiteConfig, load_yaml(folder / "config.yaml"))
    labels = {m.label for m in stored.methods} | {"Retrain", "Original"}
    ran = {(r["method"], r["fraction"]) for r in current}
    earlier: dict[str, dict[str, Any]] = {}
    for record in load_records(folder / "results.jsonl"):
        if record.get("method") in labels and (record.get("method"), record.get("fraction")) not in ran:
            earlier[_place(record)] = record  # the latest record of each place in the table
    fractions = sorted({*config.grid.fractions, *(r["fraction"] for r in earlier.values())})
    union = dataclasses.replace(config, methods=stored.methods,
                                grid=dataclasses.replace(config.grid, fractions=tuple(fractions)))
    return union, [*current, *earlier.values()]


def _place(record: dict[str, Any]) -> str:
    """A record's cell coordinates without its options: a rerun with other options takes its place."""
    coords = Cell.from_record(record).coords()
    return json.dumps({k: v for k, v in coords.items() if k not in ("id", "options", "resolved")}, sort_keys=True)


def render_folder(folder: str | Path) -> str:
    """Rewrite a run folder's ``table.md`` and plots from its ``config.yaml`` and ``results.jsonl``
    with this version's tables; nothing is computed, nothing else is written. Returns the Markdown."""
    folder = Path(folder)
    missing = [name for name in ("config.yaml", "results.jsonl") if not (folder / name).is_file()]
    if missing:
        raise InvalidInputError(f"{folder} is not a benchmark run folder: no {' or '.join(missing)}")
    config = make_config(SuiteConfig, load_yaml(folder / "config.yaml"))
    if config.kind is SuiteKind.TABLE:
        config, records = _folder_view(folder, config, [])
    else:
        records = load_records(folder / "results.jsonl")
    return write_report(config, records, folder)


def _in_suite_order(config: SuiteConfig, records: Sequence[dict]) -> list[dict]:
    """``records`` by their cell's place: fraction, variant, original and forget seed, tuning mode,
    then Retrain, Original and the methods in the suite's order, setting, unlearn seed (id last)."""
    labels = {label: i for i, label in enumerate(["Retrain", "Original", *(m.label for m in config.methods)])}

    def place(record: dict) -> tuple:
        method, setting = str(record.get("method", "")), record.get("setting")
        mode = str((record.get("extra") or {}).get("tuning_mode", ""))
        setting_rank = SETTINGS.index(setting) if setting in SETTINGS else len(SETTINGS)
        return (float(record.get("fraction") or 0.0), str(record.get("variant", "")),
                int(record.get("original_seed") or 0), int(record.get("forget_seed") or 0), mode,
                labels.get(method, len(labels)), method, setting_rank, int(record.get("unlearn_seed") or 0),
                str(record.get("id", "")))

    return sorted(records, key=place)


def write_report(config: SuiteConfig, records: Sequence[dict], folder: Path) -> str:
    """Write ``table.md`` and the plots from ``records``, taken in the suite's order (not the order
    runs appended them in: a folder renders to the same bytes during a run and from ``amun
    report``, whatever invocations or executor made it); returns the Markdown."""
    typed = parse_records(_in_suite_order(config, records))
    plots = suite_plots(config, typed, folder)
    body = suite_tables(config, typed)
    images = "".join(f"\n![{p.stem}]({p.name})\n" for p in plots)
    dirty = sum(1 for r in typed if r.git_dirty)
    warning = (f"**Warning: {dirty} of {len(records)} records were computed from a working tree with uncommitted "
               "changes (`git_dirty` in results.jsonl): they may not match any commit.**\n\n" if dirty else "")
    how = "" if config.kind is SuiteKind.FORGETTING_QUALITY else f" {STATISTICS_NOTE}"
    text = (f"# {config.name} ({config.preset})\n\n{warning}{config.description}\n\n"
            f"Dataset `{config.dataset.name}`, model `{config.model.name}`.{how}\n\n" + body + images)
    atomic_write_text(folder / "table.md", text)
    return text
