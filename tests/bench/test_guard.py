"""Guard rails and traceability: refuse an original model that does not memorise (in the runner
and the CLI, one line), stamp every record with run id and commit, append invocations to env.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from bench_helpers import TINY, record_line, tiny_suite
from script_loader import load_benchmark

from amun_plugin.bench.original_check import NotMemorisingError, check_memorises
from amun_plugin.bench.runner import run_suite
from amun_plugin.cli import main


def test_check_memorises_refuses_chance_and_low_train_accuracy() -> None:
    check_memorises(100.0, 86.0, 10)
    with pytest.raises(NotMemorisingError, match="at chance: test accuracy 12.0%"):
        check_memorises(100.0, 12.0, 10)  # memorised labels, learnt nothing general
    with pytest.raises(NotMemorisingError, match="train accuracy 97.0% < 98%"):
        check_memorises(97.0, 86.0, 10)
    check_memorises(97.0, 86.0, 10, min_train_accuracy=95.0)


def test_the_runner_refuses_before_any_unlearning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amun_plugin.bench import cells as cells_module

    monkeypatch.setattr(cells_module, "unlearn", lambda *a, **k: pytest.fail("unlearning ran"))
    with pytest.raises(NotMemorisingError, match=r"seed 0, standard training\) does not memorise"):
        run_suite(tiny_suite(min_train_accuracy=99.9), tmp_path / "run", cache_dir=tmp_path / "cache",
                  progress=False, echo=print)
    assert not (tmp_path / "run" / "results.jsonl").exists()


def test_the_cli_refuses_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AMUN_BENCH_CACHE", str(tmp_path / "cache"))
    suite = {k: v for k, v in TINY.items() if k not in ("name", "kind", "preset")}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "kind": "table", "suite": {**suite, "min_train_accuracy": 99.9},
                                    "presets": {"test": {}}}))
    assert main(["bench", str(path), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # before it: the progress bars of training
    assert last.startswith("error: the original model (seed 0, standard training) does not memorise")
    assert "Traceback" not in err


def test_records_carry_run_id_and_commit_and_env_json_keeps_every_invocation(tmp_path: Path) -> None:
    config = tiny_suite(grid={"forget_seeds": [0]}, methods=[{"name": "ft", "label": "FT", "options": {"epochs": 1}}])
    folder = run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    run_suite(config.with_runs(2), folder, cache_dir=tmp_path / "cache", progress=False, echo=print)
    env = json.loads((folder / "env.json").read_text())
    assert len(env["invocations"]) == 2 and all(i["command"] for i in env["invocations"])
    first, second = (i["run_id"] for i in env["invocations"])
    records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert {r["run_id"] for r in records} == {first, second}
    assert all("git_commit" in r and "git_dirty" in r for r in records)
    original = next(r for r in records if r["kind"] == "original")
    assert 0.0 <= original["original"]["saturated_fraction"] <= 100.0
    assert "Original model (seed 0): train" in (folder / "table.md").read_text()


def test_audit_fmnist_refuses_a_model_at_chance_in_one_line(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    module = load_benchmark("audit_fmnist.py")
    code = module.main(["--train-size", "200", "--test-size", "100", "--epochs", "1", "--lr", "1e-9",
                        "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the original model is at chance: test accuracy")
    assert not (tmp_path / "out" / "results.json").exists()
    # the model went into the package's artefact cache (no private checkpoint folder) and is reused
    cached = sorted((tmp_path / "cache" / "audit_fmnist").glob("*.safetensors"))
    assert len(cached) == 1 and cached[0].with_suffix(".json").exists()
    stamp = cached[0].stat().st_mtime_ns
    assert module.main(["--train-size", "200", "--test-size", "100", "--epochs", "1", "--lr", "1e-9",
                        "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]) == 2
    assert sorted((tmp_path / "cache" / "audit_fmnist").glob("*.safetensors")) == cached
    assert cached[0].stat().st_mtime_ns == stamp


def test_an_old_env_json_becomes_the_first_invocation(tmp_path: Path) -> None:
    from amun_plugin.bench.results import record_invocation

    (tmp_path / "env.json").write_text(json.dumps({"python": "3.11", "git_commit": "abc"}))
    run = record_invocation(tmp_path, "local", "cpu", ["amun", "bench", "table1"], notes={"note": 1})
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["invocations"][0] == {"python": "3.11", "git_commit": "abc"}
    assert env["invocations"][1]["command"] == ["amun", "bench", "table1"] and env["invocations"][1]["note"] == 1
    assert env["invocations"][1]["run_id"] == run.run_id and env["git_commit"] == run.git_commit
    assert run.stamp({"id": "x"}) == {"id": "x", "run_id": run.run_id, "git_commit": run.git_commit,
                                      "git_dirty": run.git_dirty}


def test_records_from_a_dirty_tree_are_flagged_in_the_report(tmp_path: Path) -> None:
    from amun_plugin.bench.runner import write_report

    metrics = {"accuracy.UA": 1.0, "accuracy.RA": 1.0, "accuracy.TA": 1.0, "confidence_mia.FT_AUC": 50.0}
    record = record_line("retrain", seconds=1.0, git_dirty=True, metrics=metrics, gaps={"conf": 0.0})
    other = record_line("retrain", forget_seed=1, seconds=1.0, git_dirty=False, metrics=metrics, gaps={"conf": 0.0})
    text = write_report(tiny_suite(), [record, other], tmp_path)
    assert "1 of 2 records were computed from a working tree with uncommitted changes" in text
    assert "uncommitted" not in write_report(tiny_suite(), [{**record, "git_dirty": False}], tmp_path)


def test_only_changes_outside_the_results_folders_make_a_tree_dirty() -> None:
    from amun_plugin.bench.results import _code_changes

    assert _code_changes("?? benchmarks/results/recipe_sweep/\n M benchmarks/results/t/results.jsonl") == ""
    assert _code_changes(" M amun_plugin/bench/runner.py\n?? benchmarks/results/x/") == " M amun_plugin/bench/runner.py"
    # _command strips its output: the first line's leading space (" M path") is gone
    assert _code_changes("M benchmarks/results/x/rows/a.json\n M benchmarks/results/x/env.json") == ""
    assert _code_changes("M amun_plugin/io.py") == "M amun_plugin/io.py"
    assert _code_changes(None) is None
