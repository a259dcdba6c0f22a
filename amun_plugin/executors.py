"""Executors run independent jobs (reference models, benchmark cells) locally or on a cluster.

A job is a picklable zero-argument callable; ``run`` returns the results in job order.
``Resources`` declares what one job needs, so a cluster executor can schedule it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Executor", "LocalExecutor", "Resources"]


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
