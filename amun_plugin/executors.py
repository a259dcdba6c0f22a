"""Executors run independent jobs (reference models, benchmark cells) locally or on a cluster.

A job is a picklable zero-argument callable; ``run`` returns the results in job order.
``Resources`` declares what one job needs, so a cluster executor can schedule it.
:class:`LocalExecutor` runs them one after another, :class:`ProcessExecutor` in worker processes
of this machine (no Ray needed), :class:`~amun_plugin.bench.ray_executor.RayExecutor` on Ray.
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from amun_plugin.errors import InvalidInputError

__all__ = ["Executor", "LocalExecutor", "ProcessExecutor", "Resources"]


@dataclass(frozen=True)
class Resources:
    """What one job needs: CPU cores and GPUs (fractions allowed on a cluster)."""

    cpus: float = 1.0
    gpus: float = 0.0


class Executor(ABC):
    """Runs jobs and returns their results in order; a failing job raises in the caller."""

    name: str = "executor"

    @abstractmethod
    def run(self, jobs: Sequence[Callable[[], Any]], resources: Resources = Resources(),
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Run every job; ``on_result(index, result)`` is called as each one finishes (for
        progress bars and resumable caches)."""


class LocalExecutor(Executor):
    """Runs jobs one after another in this process (the default)."""

    name = "local"

    def run(self, jobs: Sequence[Callable[[], Any]], resources: Resources = Resources(),
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        results = []
        for index, job in enumerate(jobs):
            result = job()
            if on_result is not None:
                on_result(index, result)
            results.append(result)
        return results


class ProcessExecutor(Executor):
    """Runs jobs in ``workers`` processes of this machine (default: one per CPU core), started with
    ``spawn`` so that neither torch's thread pools nor CUDA are forked. Each worker uses ``threads``
    torch threads (default: the caller's ``torch.get_num_threads()`` when ``run`` starts, so a
    suite's ``threads`` holds in the workers too). Several jobs may share one GPU (each process
    holds its own CUDA context). A failing job raises here, and the jobs not yet started are
    cancelled."""

    name = "processes"

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        workers = (os.cpu_count() or 1) if workers is None else workers
        for name, value in (("workers", workers), ("threads", threads)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        self.workers, self.threads = workers, threads

    def run(self, jobs: Sequence[Callable[[], Any]], resources: Resources = Resources(),
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        if not jobs:
            return []
        results: list[Any] = [None] * len(jobs)
        context = multiprocessing.get_context("spawn")
        threads = self.threads or torch.get_num_threads()
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), mp_context=context,
                                 initializer=torch.set_num_threads, initargs=(threads,)) as pool:
            position: dict[Future, int] = {pool.submit(call_job, job): index for index, job in enumerate(jobs)}
            pending = set(position)
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in sorted(done, key=position.__getitem__):
                        index = position[future]
                        results[index] = future.result()
                        if on_result is not None:
                            on_result(index, results[index])
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return results


def call_job(job: Callable[[], Any]) -> Any:
    """Run one job: the module-level function an executor ships to its workers with the job."""
    return job()
