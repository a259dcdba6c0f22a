"""benchmarks/adversarial_search.py refuses, in one line, a model that does not memorise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from script_loader import load_benchmark
from tiny_fixtures import TinyNet, make_tiny_data


@pytest.fixture(scope="module")
def script():
    return load_benchmark("adversarial_search.py")


@pytest.mark.parametrize("train, test, refused", [
    (100.0, 83.0, None), (92.0, 80.0, "does not memorise"), (100.0, 12.0, "at chance"),
])
def test_memorisation_problem(script, train, test, refused):
    problem = script.memorisation_problem(train, test, 10, 99.0)
    assert (problem is None) if refused is None else (refused in problem)


def test_main_refuses_an_untrained_model_before_attacking(script, monkeypatch, tmp_path, capsys):
    data = make_tiny_data(60)
    monkeypatch.setattr(script, "FashionMNISTSource", lambda cfg: SimpleNamespace(
        load=lambda: SimpleNamespace(train=data, test=make_tiny_data(30, seed=1))))
    monkeypatch.setattr(script, "train_or_load", lambda args, train: (TinyNet(), {}))
    monkeypatch.setattr(script, "run_backend", lambda *a, **k: pytest.fail("an attack ran"))
    code = script.main(["--out", str(tmp_path / "out"), "--forget-size", "6"])
    err = capsys.readouterr()
    assert code == 2
    assert err.err.strip().count("\n") == 0 and err.err.startswith("refusing: the original model")
    assert err.out == "" and not (tmp_path / "out").exists()
