"""Issue 16: ``amun bench`` is safe and quick to try — a fresh folder under the current directory,
no silent writes into another commit's results, knobs that make a suite small, a dry run with an
estimate, a line per stage, and one clean line (no folder left) when Ray or the data is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from bench_helpers import TINY, tiny_suite

from amun_plugin.bench import ray_executor
from amun_plugin.bench.runner import default_output, run_suite
from amun_plugin.cli import main
from amun_plugin.commands.benchmark import SuiteKnobs, apply_knobs


def suite_file(tmp_path: Path, **overrides: Any) -> Path:
    """The tiny suite as a suite file (one preset, ``test``) with ``overrides`` in its ``suite``."""
    body = {k: v for k, v in TINY.items() if k not in ("name", "kind", "preset")}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "kind": "table", "suite": {**body, **overrides},
                                    "presets": {"test": {}}}))
    return path


def test_default_output_is_a_fresh_folder_under_the_current_directory() -> None:
    folder = default_output(tiny_suite())
    assert not folder.is_absolute() and folder.parts[0] == "amun-bench"
    assert "benchmarks" not in folder.parts and folder.name == "tiny-test"


def test_a_folder_of_another_commit_is_refused_unless_resume(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "env.json").write_text(json.dumps({"git_commit": "0" * 40, "invocations": [{"git_commit": "0" * 40}]}))
    before = sorted(p.name for p in folder.iterdir())
    assert main(["bench", str(suite_file(tmp_path)), "--output", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "holds results of commit 000000000000" in err and "--resume" in err
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written


def test_knobs_change_the_suite() -> None:
    config = tiny_suite(evaluation={"reference": {"num_models": 8}}, tuning={"enabled": True})
    small = apply_knobs(config, SuiteKnobs(reference_models=2, no_tune=True, threads=3, device="cpu:0",
                                           methods=["FT"], runs=1))
    assert small.evaluation.reference["num_models"] == 2 and not small.tuning.enabled
    assert (small.threads, small.device, [m.label for m in small.methods]) == (3, "cpu:0", ["FT"])
    assert small.grid.forget_seeds == (0,)
    only = apply_knobs(tiny_suite(grid={"variants": ["trades", "lipschitz"]}), SuiteKnobs(variants=["lipschitz"]))
    assert [v.value for v in only.grid.variants] == ["lipschitz"]
    with pytest.raises(Exception, match="variants"):
        apply_knobs(config, SuiteKnobs(variants=["adversarial"]))
    with pytest.raises(Exception, match="--reference-models must be >= 2"):
        apply_knobs(config, SuiteKnobs(reference_models=1))


def test_dry_run_prints_job_counts_and_an_estimate_and_writes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    path = suite_file(tmp_path, evaluation={"evaluators": [{"name": "accuracy"}, {"name": "rmia"}],
                                            "tables": [{"title": "RMIA", "mia": "rmia.FT_AUC"}],
                                            "reference": {"num_models": 8}})
    assert main(["bench", str(path), "--dry-run", "--reference-models", "4", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "RMIA reference models: 4 job(s)" in out
    assert "original models: 1 job(s)" in out and "retrained models: 1 job(s)" in out
    # 1 split x (Retrain + Original + FT + AMUN) = 4 cells
    assert "cells: 4 job(s)" in out and "total: " in out and "roughly" in out
    assert not (tmp_path / "amun-bench").exists()


def test_a_run_prints_a_line_per_stage(tmp_path: Path) -> None:
    lines: list[str] = []
    config = tiny_suite(grid={"forget_seeds": [0]}, methods=[{"name": "ft", "label": "FT", "options": {"epochs": 1}}])
    run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=lines.append)
    for stage in ("original models", "models", "adversarial sets", "cells"):
        assert any(line.startswith(f"{stage}: ") for line in lines), (stage, lines)


class _NoCluster:
    """A ``ray`` module with no cluster to join (as ``ray.init(address="auto")`` finds none)."""

    @staticmethod
    def is_initialized() -> bool:
        return False

    @staticmethod
    def init(**_: Any) -> None:
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to.")


def test_no_ray_cluster_is_one_line_and_no_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ray_executor, "import_ray", lambda: _NoCluster())
    code = main(["bench", str(suite_file(tmp_path)), "--executor", "ray", "--address", "auto"])
    err = capsys.readouterr().err
    assert code == 2 and "no Ray cluster reachable at address 'auto'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "amun-bench").exists()


def test_missing_data_is_one_line_and_no_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMUN_BENCH_CACHE", str(tmp_path / "cache"))
    path = suite_file(tmp_path, dataset={"name": "cifar10", "options": {"root": str(tmp_path / "no-data")}},
                      model={"name": "mlp", "options": {"hidden": [8]}})
    code = main(["bench", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "amun-bench").exists()


def test_the_gpu_preset_without_a_gpu_is_one_line_before_anything_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("amun_plugin.bench.runner.Workspace",
                        lambda *a, **k: pytest.fail("the suite started without its device"))
    folder = tmp_path / "out" / "gpu"
    assert main(["bench", "table1", "--preset", "fmnist-gpu", "--runs", "1", "--output", str(folder)]) == 2
    assert "device 'cuda' was asked for but CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_suite_starts_on_the_gpu(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    seen = []
    real = torch.nn.Module.to

    def spy(self, *args, **kwargs):
        seen.extend(str(a) for a in args if isinstance(a, (str, torch.device)))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    assert main(["bench", str(suite_file(tmp_path)), "--no-tune", "--device", "cuda", "--output", "out"]) == 0
    assert any(device.startswith("cuda") for device in seen)
    assert json.loads((tmp_path / "out" / "env.json").read_text())["invocations"][-1]["device"] == "cuda"


def test_report_rerenders_a_folder_from_its_records_and_writes_nothing_else(tmp_path: Path, monkeypatch,
                                                                            capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", str(suite_file(tmp_path)), "--no-tune", "--output", "run"]) == 0
    folder = tmp_path / "run"
    table = (folder / "table.md").read_text()
    others = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".png" and p.name != "table.md"}
    (folder / "table.md").unlink()
    monkeypatch.setattr("amun_plugin.bench.runner.Workspace", lambda *a, **k: pytest.fail("report computed"))
    assert main(["report", str(folder)]) == 0
    assert (folder / "table.md").read_text() == table
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".png" and p.name != "table.md"} == others
    assert main(["report", str(tmp_path)]) == 2
    assert "not a benchmark run folder" in capsys.readouterr().err
