"""Typed bench records: the committed results still load and render, and neither the cells' ids
nor the suite configs' content hashes (the cache keys of a running benchmark) moved with the
restructuring. The pinned values were computed by the code before ``bench/records.py`` existed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from amun_plugin.artifacts import content_hash
from amun_plugin.bench.records import Cell, CellKind, Setting, SplitRef, load_records
from amun_plugin.bench.suite_config import SuiteConfig, load_suite
from amun_plugin.bench.suite_tables import suite_tables
from amun_plugin.config import make_config
from amun_plugin.errors import InvalidInputError

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
LOGS = sorted(RESULTS.glob("*/results.jsonl")) + sorted(RESULTS.glob("*/tuning.jsonl"))
RUNS = sorted(p.parent for p in RESULTS.glob("*/results.jsonl") if (p.parent / "config.yaml").exists())

SUITE_HASHES = {
    "ablation/cifar10-resnet18": "dc6a7694f9c843d0a508",
    "ablation/fmnist-cnn": "462ab14845d072e2c9c2",
    "ablation/fmnist-gpu": "ea416af33101b2d30d53",
    "ablation/fmnist-paper": "137b2d1e597d6ee4ef27",
    "continuous/cifar10-resnet18": "b855a748c944312f9e21",
    "continuous/fmnist-cnn": "9e45762087826ae15fe3",
    "continuous/fmnist-gpu": "7d7529496b821427cad0",
    "continuous/fmnist-paper": "538f33c4a8f91e937fba",  # + four "(calibrated...)" rows (session 9)
    "forgetting_quality/cifar10-resnet18": "41f0e40396014e94b990",
    "forgetting_quality/digits-mlp": "6910dbf1ee912ae3e87c",
    "forgetting_quality/fmnist-cnn": "854673ae6e41879ec264",
    "robust/cifar10-resnet18": "d9d5107cc473f4dbc12e",
    "robust/fmnist-cnn": "12f12ae75cddf337d748",
    "robust/fmnist-gpu": "9458c4cbf5536f43a19e",
    "robust/fmnist-paper": "d53ea1631e3d5fbb87f6",
    "table1/cifar10-resnet18": "d7f13f8aa293eaaeddb1",
    "table1/fmnist-cnn": "fb88af429622ebefe75b",
    "table1/fmnist-gpu": "4dc25f62e9ee7b0e8b6e",
    "table1/fmnist-paper": "72ec14e9fd21ae21fd22",
    "table2/cifar10-resnet18": "351a589b51b8b6cf9615",
    "table2/fmnist-cnn": "a11b73dfc38f2028b0c4",
    "table2/fmnist-gpu": "7044ed24fd6acb8b7a26",
    "table2/fmnist-paper": "f4007d74a8804859dd3e",
    "transfer/cifar10-resnet18": "72d808826cfc076aa39a",
    "transfer/fmnist-cnn": "8205f84daaba324b6b8d",
    "transfer/fmnist-gpu": "f462caaa871b2c71d8df",
    "transfer/fmnist-paper": "abb64937b8bd1a3cdbe7",
    "weak_attack/cifar10-resnet18": "97657f2897dd25722ad8",
    "weak_attack/fmnist-cnn": "e96b0e9fd8f01e44aebf",
    "weak_attack/fmnist-gpu": "be0109d9723b92e336aa",
    "weak_attack/fmnist-paper": "f0d0b2f339c3264c9d99",
}
"""content_hash(load_suite(suite, preset).to_dict()) before the restructuring (commit d77d736)."""


@pytest.mark.parametrize("key, expected", sorted(SUITE_HASHES.items()))
def test_suite_config_hashes_are_unchanged(key: str, expected: str) -> None:
    suite, preset = key.split("/")
    assert content_hash(load_suite(suite, preset).to_dict()) == expected


def test_cell_ids_are_the_ones_of_their_plain_strings() -> None:
    typed = Cell(CellKind.UNLEARN, "FT", setting=Setting.WITHOUT_RETAIN, options={"lr": 0.1},
                 extra={"tuning_mode": "retrain_free"})
    assert typed.id == "4dde3863861a28cbf599"  # the id the string-typed Cell had
    assert Cell("chain", "AMUN", fraction=0.05, forget_seed=2).id == "c7fa8e477208bcc62d91"
    assert Cell("unlearn", "FT", setting="without_retain", options={"lr": 0.1},
                extra={"tuning_mode": "retrain_free"}) == typed


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


@pytest.mark.parametrize("path", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_records_load_with_their_ids(path: Path) -> None:
    records = load_records(path)
    assert records and all(Cell.from_record(r).kind in CellKind for r in records)


def test_an_edited_record_is_refused(tmp_path: Path) -> None:
    record = {**Cell(CellKind.RETRAIN).coords(), "metrics": {}}
    record["forget_seed"] = 7  # the coordinates no longer match the id
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(InvalidInputError, match="does not match"):
        load_records(tmp_path / "results.jsonl")


@pytest.mark.parametrize("folder", RUNS, ids=lambda p: p.name)
def test_committed_runs_render_their_tables(folder: Path) -> None:
    config = make_config(SuiteConfig, yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")))
    records = load_records(folder / "results.jsonl")
    text = suite_tables(config, records)
    assert text.count("|") > 20
    ran = {r.get("method") for r in records}  # a folder may hold a subset of its suite's methods
    assert all(m.label in text for m in config.methods if m.label in ran)
