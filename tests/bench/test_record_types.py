"""Typed record contents (``bench/record_types.py``): every committed record round-trips to the
exact JSON it was read from (old records missing newer keys included), and a malformed one is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
LOGS = sorted(RESULTS.glob("*/results.jsonl")) + sorted(RESULTS.glob("*/tuning.jsonl"))
TYPES = {CellKind.RETRAIN: RetrainRecord, CellKind.ORIGINAL: OriginalRecord, CellKind.UNLEARN: UnlearnRecord,
         CellKind.TUNE: UnlearnRecord, CellKind.CHAIN: ChainRecord, CellKind.ABLATION: AblationRecord,
         CellKind.FORGETTING: ForgettingRecord}


def _text(record: dict) -> str:
    return json.dumps(record, sort_keys=True)  # the writer's form: an int written back as a float differs


@pytest.mark.parametrize("path", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_committed_record_round_trips_exactly(path: Path) -> None:
    for record in load_records(path):
        typed = parse_record(record)
        assert isinstance(typed, TYPES[CellKind(record["kind"])])
        assert _text(typed.to_json()) == _text(record)
        assert typed.id == record["id"] and typed.cell == Cell.from_record(record)


def test_the_committed_records_cover_every_kind_and_the_old_formats() -> None:
    typed = [parse_record(r) for path in LOGS for r in load_records(path)]
    assert {r.kind for r in typed} == set(CellKind)
    assert any("resolved" in r.absent for r in typed)  # an ablation record from before `resolved`
    unlearn = [r for r in typed if isinstance(r, UnlearnRecord)]
    assert any(r.proxy is None and r.tuning_mode is None for r in unlearn)  # before retrain-free tuning
    assert any(r.proxy is not None for r in unlearn)
    originals = [r.original for r in typed if isinstance(r, OriginalRecord)]
    assert any(o is not None and not o.has_rt_auc for o in originals)
    assert any(o is not None and o.has_rt_auc and o.saturated_fraction is not None for o in originals)


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
    with pytest.raises(InvalidInputError, match="lacks retrain_seconds, original"):
        parse_record(retrain)
    with pytest.raises(InvalidInputError, match="no known kind"):
        parse_record({**retrain, "kind": "retrian"})


def test_a_diverged_run_round_trips_without_the_fields_it_never_had() -> None:
    line = {**Cell(CellKind.TUNE, "GA", options={"lr": 0.1}).coords(), "unlearner": "ga", "tuning_mode": "oracle",
            "diverged": "ga diverged at lr 0.1", "metrics": {}, "gaps": {}, "seconds": 0.5, "seconds_search": 0.0}
    run = parse_record(line)
    assert isinstance(run, UnlearnRecord) and run.diverged and run.retrain_seconds is None and run.stats is None
    assert _text(run.to_json()) == _text(line)
