"""Issue 26: ``amun bench`` writes only into its own run folder (a plain suite name, never a
user's folder), one run at a time, re-renders deterministically, checks every option before any
job, fails fast on an address nothing listens on, and says how to resume after Ctrl-C."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from bench_helpers import TINY, tiny_suite
from plugin_isolation import only_entry_points

from amun_plugin.artifacts import ArtifactCache
from amun_plugin.bench import ray_executor
from amun_plugin.bench.results import LOCK_FILE, check_run_folder, run_lock
from amun_plugin.bench.suite_config import method_spec
from amun_plugin.bench.workspace import Workspace
from amun_plugin.cli import main
from amun_plugin.errors import BackendUnavailableError, InvalidInputError


def suite_file(tmp_path: Path, name: str = "tiny", **overrides: Any) -> Path:
    """The tiny suite as a suite file (one preset, ``test``) with ``overrides`` in its ``suite``."""
    body = {k: v for k, v in TINY.items() if k not in ("name", "kind", "preset")}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": name, "kind": "table", "suite": {**body, **overrides},
                                    "presets": {"test": {}}}))
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    return err


@pytest.fixture
def no_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a suite starts (its workspace is made) — a refusal must come first."""
    monkeypatch.setattr("amun_plugin.bench.runner.Workspace", lambda *a, **k: pytest.fail("the suite started"))


# 1. A suite's name is a plain name, not a path.
@pytest.mark.parametrize("name", ["../../x", "/tmp/amun-absolute", "a/b", ".."])
def test_a_suite_name_that_is_a_path_is_refused_also_by_a_dry_run(tmp_path: Path, monkeypatch, capsys, no_jobs,
                                                                  name: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = suite_file(tmp_path, name=name)
    assert main(["bench", str(path), "--dry-run"]) == 2
    assert "must be a plain name" in one_error_line(capsys)
    assert main(["bench", str(path)]) == 2
    assert "must be a plain name" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


# 2. A run folder is new, empty or ours.
def test_output_into_a_folder_of_someone_elses_files_is_refused_and_nothing_is_written(tmp_path: Path, monkeypatch,
                                                                                     capsys, no_jobs) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "table.md").write_text("my own table\n")
    (folder / "notes.txt").write_text("notes\n")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert main(["bench", str(suite_file(tmp_path)), "--output", str(folder)]) == 2
    assert "holds no benchmark results" in one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        check_run_folder(tmp_path / "a-file")
    (tmp_path / "empty").mkdir()
    check_run_folder(tmp_path / "empty")  # new, empty: fine
    check_run_folder(tmp_path / "new")


# 3. and 4. need one real (tiny) run.
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AMUN_BENCH_CACHE", str(root / "cache"))
        patch.setenv("AMUN_DISABLE_PLUGIN_AUTOLOAD", "1")
        only_entry_points(patch)  # (the autouse isolation is per test; this fixture runs before it)
        assert main(["bench", str(suite_file(root)), "--no-tune", "--output", str(root / "run")]) == 0
    return root / "run"


def test_report_renders_the_same_bytes_whatever_the_record_order_and_says_what_it_rewrote(
        tiny_run: Path, capsys) -> None:
    table = (tiny_run / "table.md").read_bytes()
    plots = {p.name: p.read_bytes() for p in tiny_run.glob("*.png")}
    capsys.readouterr()
    assert main(["report", str(tiny_run)]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert (tiny_run / "table.md").read_bytes() == table
    results = tiny_run / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(reversed(lines)))  # as another executor or a resumed run could have appended them
    assert main(["report", str(tiny_run)]) == 0
    assert (tiny_run / "table.md").read_bytes() == table
    assert {p.name: p.read_bytes() for p in tiny_run.glob("*.png")} == plots
    (tiny_run / "table.md").write_text("edited by hand\n")
    capsys.readouterr()
    assert main(["report", str(tiny_run)]) == 0
    assert "rewrote table.md" in capsys.readouterr().out and (tiny_run / "table.md").read_bytes() == table


def test_a_second_run_on_a_locked_folder_is_refused_and_names_the_holder(tiny_run: Path, capsys, no_jobs) -> None:
    with run_lock(tiny_run):
        assert main(["bench", str(tiny_run.parent / "tiny.yaml"), "--no-tune", "--output", str(tiny_run)]) == 2
        err = one_error_line(capsys)
        assert "in use by another run" in err and f"pid {os.getpid()} " in err
    assert not (tiny_run / LOCK_FILE).exists()  # released: a later run may take it
    with run_lock(tiny_run):
        pass


# 8. Every option is checked before any job.
@pytest.mark.parametrize("method", [
    {"name": "ft", "label": "FT", "options": {"epochs": 1, "bogus": 3}},
    {"name": "ft", "label": "FT", "grid": {"lr": ["fast"]}},
    {"name": "amun", "label": "AMUN", "adversarial": "own", "options": {"attack_options": {"bogus": 1}}},
    {"name": "ft", "label": "FT", "setting_options": {"without_retain": {"bogus": 1}}},
])
def test_an_unknown_or_ill_typed_method_option_is_refused_before_any_job(tmp_path: Path, monkeypatch, capsys,
                                                                         no_jobs, method: dict) -> None:
    monkeypatch.chdir(tmp_path)
    path = suite_file(tmp_path, methods=[method], tuning={"enabled": True})
    assert main(["bench", str(path), "--dry-run"]) == 2
    assert "method" in one_error_line(capsys)
    assert main(["bench", str(path)]) == 2
    one_error_line(capsys)
    assert not (tmp_path / "amun-bench").exists()


# 6. A plain host:port with nothing listening fails fast.
class _NeverInit:
    @staticmethod
    def is_initialized() -> bool:
        return False

    @staticmethod
    def init(**_: Any) -> None:
        pytest.fail("ray.init was reached: on a plain address nothing listens on it retries for minutes")


def test_a_ray_address_nothing_listens_on_is_one_line_within_seconds(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ray_executor, "import_ray", lambda: _NeverInit())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    start = time.perf_counter()
    with pytest.raises(BackendUnavailableError, match="no Ray cluster reachable"):
        ray_executor.RayExecutor(address=f"127.0.0.1:{port}").connect()
    assert main(["bench", str(suite_file(tmp_path)), "--executor", "ray", "--address", f"127.0.0.1:{port}"]) == 2
    assert time.perf_counter() - start < 2 * ray_executor.PROBE_SECONDS
    assert f"127.0.0.1:{port}" in one_error_line(capsys)
    assert not (tmp_path / "amun-bench").exists()


# 7. One-line errors instead of tracebacks.
@pytest.mark.parametrize(("overrides", "message"), [
    ({"grid": {"forget_seeds": "zero"}}, "grid.forget_seeds must be a list"),
    ({"grid": {"fractions": 0.1}}, "grid.fractions must be a list"),
    ({"device": "cuda"}, "CUDA is not available"),
])
def test_bad_suite_values_and_a_missing_gpu_are_one_line_in_a_dry_run(tmp_path: Path, monkeypatch, capsys,
                                                                       overrides: dict, message: str) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["bench", str(suite_file(tmp_path, **overrides)), "--dry-run"]) == 2
    assert message in one_error_line(capsys)


def test_a_dry_run_on_cuda_without_a_gpu_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["bench", str(suite_file(tmp_path)), "--dry-run", "--device", "cuda"]) == 2
    assert "CUDA is not available" in one_error_line(capsys)


# 11. Ctrl-C during a run says how to resume.
def test_ctrl_c_during_a_run_says_how_to_resume(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMUN_BENCH_CACHE", str(tmp_path / "cache"))

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("amun_plugin.bench.runner.check_originals", interrupt)
    assert main(["bench", str(suite_file(tmp_path)), "--no-tune", "--output", "run"]) == 130
    captured = capsys.readouterr()
    assert "rerun the same command to resume" in captured.out
    assert "Traceback" not in captured.err and captured.err.strip().splitlines()[-1] == "interrupted"
    assert not (tmp_path / "run").exists()  # nothing computed: no folder left


# 12. A dry run plans a CIFAR suite whose data is not downloaded yet.
def test_a_dry_run_without_the_cifar_files_prints_the_plan_and_the_missing_path(tmp_path: Path, monkeypatch,
                                                                                capsys) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "no-data"
    path = suite_file(tmp_path, dataset={"name": "cifar10", "options": {"root": str(root)}},
                      model={"name": "mlp", "options": {"hidden": [8]}})
    assert main(["bench", str(path), "--dry-run", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "cifar10 50000 train / 10000 test" in out and "data missing" in out and "cells: 4 job(s)" in out
    assert str(root / "cifar-10-batches-py") in out and "--dataset-option download=true" in out
    assert not root.exists() and not (tmp_path / "amun-bench").exists()


# 14. No tqdm bars from the adversarial-set stage where stderr is not a terminal.
def test_the_adversarial_stage_draws_no_bars_into_a_log(tmp_path: Path, monkeypatch) -> None:
    seen: list[Any] = []

    def spy(*_: Any, progress: Any = None, **__: Any) -> None:
        seen.append(progress)
        raise RuntimeError("spied")

    monkeypatch.setattr("amun_plugin.bench.workspace.nearest_adversarial", spy)
    monkeypatch.setattr("amun_plugin.progress.interactive", lambda: False)
    config = tiny_suite()
    ws = Workspace(config, ArtifactCache(tmp_path), progress=True)
    with pytest.raises(RuntimeError, match="spied"):
        ws.adversarial(torch.nn.Linear(1, 1), "key", ws.split(0.05, 0), method_spec(config, "AMUN"))
    assert seen == [False]


def test_the_search_itself_draws_no_bars_into_a_log_whoever_calls_it(monkeypatch, capsys) -> None:
    """A continuous session builds its D_A outside Unlearner.run: the search filters its own bars."""
    from amun_plugin.attacks.search import nearest_adversarial
    from amun_plugin.plugins import get_plugin_manager
    from amun_plugin.testing import TinyNet, make_tiny_data

    monkeypatch.setattr("amun_plugin.progress.interactive", lambda: False)
    torch.manual_seed(0)
    backend = get_plugin_manager(autoload=False).attacks.get("native_min_norm")({})
    nearest_adversarial(TinyNet().eval(), make_tiny_data(6), backend, progress=True)
    assert "nearest adversarial" not in capsys.readouterr().err
