"""Bench record coordinates: the cells' ids did not move with the restructuring (the pinned values
were computed by the code before ``bench/records.py`` existed; the suites' cache keys are pinned in
``test_cell_keys.py``), the schema version is no coordinate, and an edited record is refused. The
committed results are read in ``test_record_types.py``; the tables are rendered from a small
fixture set (``fixtures/``, copied from ``benchmarks/results``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from amun_plugin.bench.migrations import SCHEMA_KEY, SCHEMA_VERSION
from amun_plugin.bench.records import Cell, CellKind, Setting, SplitRef, load_records
from amun_plugin.bench.suite_config import SuiteConfig
from amun_plugin.bench.suite_tables import suite_tables
from amun_plugin.config import make_config
from amun_plugin.errors import InvalidInputError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUNS = sorted(p.parent for p in FIXTURES.glob("*/results.jsonl"))


def test_cell_ids_are_the_ones_of_their_plain_strings() -> None:
    typed = Cell(CellKind.UNLEARN, "FT", setting=Setting.WITHOUT_RETAIN, options={"lr": 0.1},
                 extra={"tuning_mode": "retrain_free"})
    assert typed.id == "4dde3863861a28cbf599"  # the id the string-typed Cell had
    assert Cell("chain", "AMUN", fraction=0.05, forget_seed=2).id == "c7fa8e477208bcc62d91"
    assert Cell("unlearn", "FT", setting="without_retain", options={"lr": 0.1},
                extra={"tuning_mode": "retrain_free"}) == typed


def test_the_schema_version_is_written_but_no_coordinate() -> None:
    cell = Cell(CellKind.CHAIN, "AMUN", fraction=0.05, forget_seed=2)
    line = cell.coords()
    assert line[SCHEMA_KEY] == SCHEMA_VERSION and line["id"] == "c7fa8e477208bcc62d91"  # the id before versions
    assert Cell.from_record(line) == Cell.from_record({k: v for k, v in line.items() if k != SCHEMA_KEY}) == cell


def test_a_cell_survives_its_json_line() -> None:
    cell = Cell(CellKind.ABLATION, "amun", "standard", 1, 0.05, 2, Setting.WITH_RETAIN, 3, {"epochs": 2},
                {"variant": "adv", "union": "all"}, "abc")
    line = json.loads(json.dumps({**cell.coords(), "metrics": {}}))
    assert line["kind"] == "ablation" and line["setting"] == "with_retain"  # plain strings on disk
    back = Cell.from_record(line)
    assert back == cell and back.id == line["id"] and back.kind is CellKind.ABLATION


def test_bad_coordinates_and_split_references_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="invalid cell"):
        Cell("unlearnn")
    with pytest.raises(InvalidInputError, match="invalid cell"):
        Cell("unlearn", setting="with_retian")
    with pytest.raises(InvalidInputError):
        SplitRef(0)  # neither a fraction nor a number of requests
    with pytest.raises(InvalidInputError):
        SplitRef(0, fraction=0.1, requests=2)
    assert SplitRef.random(0.1, 3) == SplitRef(3, fraction=0.1)


def test_an_edited_record_is_refused(tmp_path: Path) -> None:
    record = {**Cell(CellKind.RETRAIN).coords(), "metrics": {}}
    record["forget_seed"] = 7  # the coordinates no longer match the id
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(InvalidInputError, match="does not match"):
        load_records(tmp_path / "results.jsonl")


def test_a_record_of_an_unknown_schema_is_refused(tmp_path: Path) -> None:
    record = {**Cell(CellKind.RETRAIN).coords(), "metrics": {}, SCHEMA_KEY: SCHEMA_VERSION + 1}
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(InvalidInputError, match=f"results.jsonl:1: .*schema {SCHEMA_VERSION + 1}"):
        load_records(tmp_path / "results.jsonl")


@pytest.mark.parametrize("folder", RUNS, ids=lambda p: p.name)
def test_the_fixture_runs_render_the_tables_they_rendered_before(folder: Path) -> None:
    """``tables.md``: what the code before schema versions rendered from the same records."""
    config = make_config(SuiteConfig, yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")))
    records = load_records(folder / "results.jsonl")
    text = suite_tables(config, records)
    assert text == (folder / "tables.md").read_text(encoding="utf-8")
    ran = {r.get("method") for r in records}  # a fixture holds a subset of its suite's methods
    assert all(m.label in text for m in config.methods if m.label in ran)
