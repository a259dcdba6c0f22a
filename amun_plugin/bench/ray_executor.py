"""Run executor jobs as Ray tasks, on a local Ray instance or an existing cluster.

    executor = RayExecutor()                       # starts (or joins) a local Ray instance
    executor = RayExecutor(address="ray://head:10001")   # or "auto" inside a cluster
    run_suite(config, executor=executor)

Each job becomes one task declaring ``Resources.cpus`` CPUs and ``Resources.gpus`` GPUs, so Ray
runs as many at once as the cluster has room for. Results are returned in job order and
``on_result`` is called in this process as each task finishes (progress bars, resumable logs).
Jobs must be picklable and everything they read (the benchmark cache, the datasets) must be
reachable from every node: on a multi-node cluster point ``AMUN_BENCH_CACHE`` at a shared
filesystem and install amun_plugin on every node (or pass a ``runtime_env``).
Ray is imported lazily; without it, :class:`BackendUnavailableError` says how to install it.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Mapping, Sequence

from amun_plugin.errors import BackendUnavailableError
from amun_plugin.executors import Executor, Resources, call_job

__all__ = ["RayExecutor", "import_ray"]


def import_ray() -> Any:
    """The ``ray`` module, or :class:`BackendUnavailableError` with the install command."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(
            "the Ray executor needs Ray, which is not installed: pip install 'amun_plugin[ray]'") from exc
    return ray


PROBE_SECONDS = 5.0
"""How long a plain ``host:port`` address may take to accept a TCP connection before it counts as down."""


def _no_cluster(address: str | None, reason: str) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"no Ray cluster reachable at address {address!r} ({reason}); start one with `ray start --head` "
        "or use --executor local")


def _probe(address: str | None) -> None:
    """Refuse a plain ``host:port`` address (a GCS server) that accepts no TCP connection: there
    ``ray.init`` retries for many minutes instead of failing (``auto`` and ``ray://`` fail fast)."""
    host, sep, port = (address or "").rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in (address or ""):
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        raise _no_cluster(address, f"nothing listens there: {exc.strerror or exc}") from None


class RayExecutor(Executor):
    """Jobs as Ray tasks. ``address``: None starts a local instance unless Ray is already
    initialised; "auto" or "ray://host:port" joins a cluster. ``init_options`` go to ``ray.init``
    (e.g. ``num_cpus``, ``runtime_env``); ``shutdown()`` stops what this executor started."""

    name = "ray"

    def __init__(self, address: str | None = None, init_options: Mapping[str, Any] | None = None) -> None:
        self.ray = import_ray()
        self.address = address
        self.init_options = dict(init_options or {})
        self._started = False

    def connect(self) -> None:
        """Start or join Ray now (``run`` does it on first use); no cluster at ``address`` is one
        :class:`BackendUnavailableError` line, not Ray's traceback."""
        if self.ray.is_initialized():
            return
        options = {"include_dashboard": False, "log_to_driver": False, **self.init_options}
        _probe(self.address)
        try:
            self.ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _no_cluster(self.address, first) from None
        self._started = True

    def run(self, jobs: Sequence[Callable[[], Any]], resources: Resources = Resources(),
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        if not jobs:
            return []
        self.connect()
        task = self.ray.remote(call_job).options(num_cpus=resources.cpus, num_gpus=resources.gpus, max_retries=0)
        refs = [task.remote(job) for job in jobs]
        position = {ref: index for index, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        try:
            while pending:
                done, pending = self.ray.wait(pending, num_returns=1)
                for ref in done:
                    index = position[ref]
                    results[index] = self.ray.get(ref)
                    if on_result is not None:
                        on_result(index, results[index])
        except BaseException:
            for ref in pending:
                self.ray.cancel(ref)
            raise
        return results

    def shutdown(self) -> None:
        """Stop the local Ray instance if this executor started it."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False
