"""Typed record contents (``bench/record_types.py``) and their schema versions (``bench/migrations.py``):
every record of the fixture set (``fixtures/``: a few records of every kind, copied from
``benchmarks/results``, in the old formats and the current version) round-trips to the exact line
it was read from, every committed record still parses and round-trips (one pass, no tables), and a
malformed record, or one of an unknown schema, is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amun_plugin.bench.migrations import SCHEMA_KEY, SCHEMA_VERSION, downgrade, upgrade
from amun_plugin.bench.record_types import (
    AblationRecord,
    ChainRecord,
    ForgettingRecord,
    OriginalRecord,
    RetrainRecord,
    UnlearnRecord,
    parse_record,
)
from amun_plugin.bench.records import Cell, CellKind, load_records
from amun_plugin.errors import InvalidInputError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_LOGS = sorted(FIXTURES.rglob("*.jsonl"))
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
COMMITTED = sorted(RESULTS.glob("*/results.jsonl")) + sorted(RESULTS.glob("*/tuning.jsonl")) + sorted(
    RESULTS.glob("archive/*/results.jsonl")) + sorted(RESULTS.glob("archive/*/tuning.jsonl"))
TYPES = {CellKind.RETRAIN: RetrainRecord, CellKind.ORIGINAL: OriginalRecord, CellKind.UNLEARN: UnlearnRecord,
         CellKind.TUNE: UnlearnRecord, CellKind.CHAIN: ChainRecord, CellKind.ABLATION: AblationRecord,
         CellKind.FORGETTING: ForgettingRecord}


def _text(record: dict) -> str:
    return json.dumps(record, sort_keys=True)  # the writer's form (ResultLog): an int written back as a float differs


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _round_trip_failures(path: Path) -> list[str]:
    """``path:line`` of every record that is not typed by its kind or not written back as its exact line."""
    failures = []
    for number, (line, record) in enumerate(zip(_lines(path), load_records(path)), start=1):
        typed = parse_record(record)
        if not (isinstance(typed, TYPES[CellKind(record["kind"])]) and _text(typed.to_json()) == line
                and typed.id == record["id"] and typed.cell == Cell.from_record(record)):
            failures.append(f"{path}:{number}")
    return failures


@pytest.mark.parametrize("path", FIXTURE_LOGS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_record_round_trips_to_its_exact_line(path: Path) -> None:
    assert _lines(path) and not _round_trip_failures(path)


def test_every_committed_record_still_parses_and_round_trips() -> None:
    failures = [failure for path in COMMITTED for failure in _round_trip_failures(path)]
    assert COMMITTED and not failures, failures[:5]


def test_the_fixtures_cover_every_kind_the_old_formats_and_the_current_version() -> None:
    typed = [parse_record(r) for path in FIXTURE_LOGS for r in load_records(path)]
    assert {r.kind for r in typed if r.schema == 1} == {r.kind for r in typed if r.schema == SCHEMA_VERSION} \
        == set(CellKind)
    assert any("resolved" in r.absent for r in typed)  # an ablation record from before `resolved`
    unlearn = [r for r in typed if isinstance(r, UnlearnRecord)]
    assert any(r.proxy is None and r.tuning_mode is None for r in unlearn)  # before retrain-free tuning
    assert any(r.proxy is not None for r in unlearn) and any(r.diverged for r in unlearn)
    originals = [r.original for r in typed if isinstance(r, OriginalRecord)]
    assert any(not o.has_rt_auc and o.saturated_fraction is None for o in originals)
    assert any(o.has_rt_auc and o.saturated_fraction is not None for o in originals)


def test_an_old_record_is_read_in_the_current_version_and_written_back_as_it_was() -> None:
    old = json.loads(_lines(FIXTURES / "table-old" / "results.jsonl")[0])
    current = upgrade(old)
    assert SCHEMA_KEY not in old and current == {**old, SCHEMA_KEY: SCHEMA_VERSION}
    assert downgrade(current, 1) == old and Cell.from_record(current).id == old["id"]  # the version is no coordinate
    typed = parse_record(old)
    assert typed.schema == 1 and typed.to_json() == old
    assert parse_record(current).to_json() == current


@pytest.mark.parametrize("schema", [SCHEMA_VERSION + 1, 0, "2", True])
def test_a_record_of_an_unknown_schema_is_refused(schema: object) -> None:
    record = {**json.loads(_lines(FIXTURES / "current.jsonl")[0]), SCHEMA_KEY: schema}
    with pytest.raises(InvalidInputError, match="schema"):
        parse_record(record)


def test_typed_fields_read_what_the_writer_wrote() -> None:
    line = {**Cell(CellKind.CHAIN, "AMUN").coords(), "seconds": 3.5, "unlearner": "amun", "seconds_precompute": 1,
            "requests": [{"request": 1, "metrics": {"rmia.FR_AUC": 60.0}, "fr_minus_ft": 2.5, "seconds": 1.25},
                         {"request": 2, "retrain_seconds": 4.0, "later": "a key a newer writer adds"}],
            "git_dirty": True}
    chain = parse_record(line)
    assert isinstance(chain, ChainRecord) and chain.requests[0].fr_minus_ft == 2.5
    assert chain.requests[1].metrics is None and chain.git_dirty and chain.wall_seconds == 3.5
    assert chain.requests[1].rest == {"later": "a key a newer writer adds"}
    assert _text(chain.to_json()) == _text(line)  # the int 1 stays an int, the unknown key is kept


def test_a_malformed_record_is_refused() -> None:
    retrain = {**Cell(CellKind.RETRAIN).coords(), "metrics": {}, "gaps": {}, "seconds": 1.0}
    with pytest.raises(InvalidInputError, match="lacks original, retrain_seconds"):
        parse_record(retrain)
    with pytest.raises(InvalidInputError, match="no known kind"):
        parse_record({**retrain, "kind": "retrian"})


def test_a_diverged_run_round_trips_without_the_fields_it_never_had() -> None:
    line = {**Cell(CellKind.TUNE, "GA", options={"lr": 0.1}).coords(), "unlearner": "ga", "tuning_mode": "oracle",
            "diverged": "ga diverged at lr 0.1", "metrics": {}, "gaps": {}, "seconds": 0.5, "seconds_search": 0.0}
    run = parse_record(line)
    assert isinstance(run, UnlearnRecord) and run.diverged and run.retrain_seconds is None and run.stats is None
    assert _text(run.to_json()) == _text(line)
