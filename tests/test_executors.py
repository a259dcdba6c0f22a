"""ProcessExecutor: results in job order, each reported once, a failing job raises, bad sizes refused."""

from __future__ import annotations

import functools
import operator

import pytest

from amun_plugin.errors import InvalidInputError
from amun_plugin.executors import ProcessExecutor


def _fail() -> None:
    raise ValueError("job 2 broke")


def test_results_come_back_in_job_order_and_each_is_reported_once() -> None:
    jobs = [functools.partial(operator.mul, index, 10) for index in range(5)]
    seen: list[tuple[int, int]] = []
    assert ProcessExecutor(2).run(jobs, on_result=lambda i, r: seen.append((i, r))) == [0, 10, 20, 30, 40]
    assert sorted(seen) == [(i, 10 * i) for i in range(5)]
    assert ProcessExecutor(2).run([]) == []


def test_a_failing_job_raises_in_the_caller() -> None:
    with pytest.raises(ValueError, match="job 2 broke"):
        ProcessExecutor(2).run([functools.partial(abs, -1), _fail])


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_integer(workers: object) -> None:
    with pytest.raises(InvalidInputError, match="workers"):
        ProcessExecutor(workers)  # type: ignore[arg-type]


def test_workers_without_the_processes_executor_is_one_line(tmp_path, capsys) -> None:
    from amun_plugin.cli import main

    assert main(["bench", "table1", "--workers", "2", "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--workers is only used with --executor processes" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_workers_use_the_caller_s_torch_threads() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert ProcessExecutor(2).run([torch.get_num_threads] * 2) == [1, 1]
    finally:
        torch.set_num_threads(before)
    assert ProcessExecutor(1, threads=3).run([torch.get_num_threads]) == [3]
