"""A run folder: ``config.yaml``, ``env.json``, ``results.jsonl`` (append-only, one record per
finished cell), ``tuning.jsonl`` / ``tuning.json``, ``table.md`` and PNG plots. A run writes only
into a new or empty folder or one of its own (:func:`check_run_folder`), and holds the folder's
lock while it runs (:func:`run_lock`)."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch

from amun_plugin.bench.suite_config import SuiteConfig
from amun_plugin.config import load_yaml, make_config
from amun_plugin.errors import AmunError, InvalidInputError
from amun_plugin.io import atomic_write_json, atomic_write_text

__all__ = ["LOCK_FILE", "ResultLog", "Invocation", "check_resumable", "check_run_folder", "current_commit",
           "environment", "record_invocation", "run_lock", "run_script", "write_config"]

LOCK_FILE = ".amun-lock"
"""Held (``flock``) by the run writing the folder; it says who that is, and goes when the run ends."""


class ResultLog:
    """Append-only JSON-lines records keyed by ``record["id"]``. A line cut short by a kill is
    dropped when the log is opened (the cell is simply recomputed)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        good = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.records[record["id"]] = record
            good.append(line)
        if len(good) != len(lines):
            atomic_write_text(self.path, "".join(f"{line}\n" for line in good))

    def __contains__(self, cell_id: str) -> bool:
        return cell_id in self.records

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record durably (flush + fsync) before it counts as done."""
        line = json.dumps(record, sort_keys=True, default=_json_default)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[record["id"]] = json.loads(line)

    def values(self) -> list[dict[str, Any]]:
        return list(self.records.values())


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "value"):
        return value.value
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config without its number of runs, forget fractions and methods (more of each may be
    added to a folder later: every record carries its own; methods are compared one by one) and
    its description."""
    out = json.loads(json.dumps(config, default=_json_default))
    out.get("grid", {}).pop("forget_seeds", None)
    out.get("grid", {}).pop("fractions", None)
    out.pop("description", None)
    out.pop("methods", None)
    return out


def _methods_by_label(config: Mapping[str, Any]) -> dict[str, Any]:
    methods = json.loads(json.dumps(config.get("methods", []), default=_json_default))
    return {m.get("label") or m.get("name"): m for m in methods}


def _normalised(stored: Any) -> Any:
    """A stored suite config read back through SuiteConfig, so that a field added to the config
    classes since (with its default) does not make an old folder look different."""
    try:
        return make_config(SuiteConfig, stored).to_dict()
    except (AmunError, TypeError, ValueError):
        return stored


def write_config(folder: Path, config_dict: Mapping[str, Any]) -> None:
    """Write ``config.yaml``; a folder already holding another suite config is refused (results of
    different configs never mix in one results.jsonl). Only the number of runs, the fractions and
    the set of methods may change (``--methods`` runs a subset): a method present in both must be
    configured identically, and ``config.yaml`` keeps every method the folder has seen, in the order
    it first saw them (the tables' order does not depend on which subset ran last)."""
    import yaml

    config = json.loads(json.dumps(config_dict, default=_json_default))
    path = folder / "config.yaml"
    if path.exists():
        stored = _normalised(yaml.safe_load(path.read_text(encoding="utf-8")))
        old, new = _methods_by_label(stored), _methods_by_label(config)
        changed = sorted(label for label in old.keys() & new.keys() if old[label] != new[label])
        if _comparable(stored) != _comparable(config) or changed:
            what = f"method(s) {', '.join(changed)} configured differently" if changed else "config.yaml differs"
            raise InvalidInputError(
                f"{folder} holds results of a different suite configuration ({what}); "
                "use another --output folder, or delete this one to start afresh")
        config["methods"] = [*old.values(), *(m for label, m in new.items() if label not in old)]
    atomic_write_text(path, yaml.safe_dump(config, sort_keys=True))


def _command(args: list[str]) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=Path(__file__).parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


RESULTS_PREFIX = "benchmarks/results/"


def _code_changes(porcelain: str | None) -> str | None:
    """``git status --porcelain`` without the lines under benchmarks/results/: a run writing its
    own results folder (or resuming a committed one) does not make the code dirty."""
    if porcelain is None:
        return None
    # line[2:].lstrip(): the path, also on a first line whose leading space _command stripped
    lines = [line for line in porcelain.splitlines()
             if not line[2:].lstrip().strip('"').split(" -> ")[-1].startswith(RESULTS_PREFIX)]
    return "\n".join(lines)


def environment(executor: str, device: str) -> dict[str, Any]:
    """Versions, CPU / GPU, threads, the git commit the run used and ``git_dirty``: whether the
    working tree had uncommitted changes outside benchmarks/results/ (None without git)."""
    lscpu = _command(["lscpu"]) or ""
    cpu = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")),
               platform.processor() or "unknown")
    commit = _command(["git", "rev-parse", "HEAD"])
    status = _code_changes(_command(["git", "status", "--porcelain"])) if commit else None
    packages = ("amun_plugin", "torch", "torchvision", "numpy", "torchattacks", "adversarial-robustness-toolbox",
                "scikit-learn", "ray")
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "device": device, "executor": executor,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": {name: _version(name) for name in packages},
        "git_commit": commit, "git_dirty": bool(status) if status is not None else None,
    }


def current_commit() -> str | None:
    """The git commit of the code that runs (None outside a git checkout, e.g. an installed wheel)."""
    return _command(["git", "rev-parse", "HEAD"])


def check_run_folder(folder: str | Path) -> None:
    """Refuse a run folder that is neither new, nor empty, nor a run folder (one whose
    ``config.yaml`` is a suite config): a run never writes into a folder of someone's own files."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is a file, not a folder; give a new folder with --output")
    if any(p.name != LOCK_FILE for p in folder.iterdir()) and not _is_run_folder(folder):
        raise InvalidInputError(
            f"{folder} is not empty and holds no benchmark results (no suite config.yaml); a run never writes "
            "into such a folder: give a new or empty --output folder")


def _is_run_folder(folder: Path) -> bool:
    try:
        make_config(SuiteConfig, load_yaml(folder / "config.yaml"))
    except (AmunError, OSError, TypeError, ValueError):
        return False
    return True


@contextmanager
def run_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s :data:`LOCK_FILE` while the block runs; a second run on the folder is
    refused in one line naming the holder. The lock is the OS's (``flock``): a killed run does not
    leave the folder locked. Without ``fcntl`` (Windows) the folder is not locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(folder) / LOCK_FILE
    while True:
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise InvalidInputError(f"{folder} is in use by another run ({holder}); wait for it to end, "
                                    "or give another --output folder") from None
        try:
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(path)):
                break  # (else the holder removed the file as this run opened it: open the new one)
        except FileNotFoundError:
            pass
        handle.close()
    try:
        handle.truncate(0)
        command = " ".join(sys.argv)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}: {command}\n")
        handle.flush()
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


def check_resumable(folder: str | Path, resume: bool) -> None:
    """Refuse to add to ``folder`` when it holds results of another commit (the latest invocation
    in its ``env.json``), unless ``resume``: committed results are regenerated only on purpose."""
    path = Path(folder) / "env.json"
    if resume or not path.is_file():
        return
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        env = {}
    stored = (env.get("invocations") or [env])[-1].get("git_commit") if isinstance(env, dict) else None
    here = current_commit()
    if stored != here:
        raise InvalidInputError(
            f"{folder} holds results of commit {str(stored)[:12]} and this code is commit {str(here)[:12]}: "
            "pass --resume to add to them on purpose, or give another --output folder")


@dataclass(frozen=True)
class Invocation:
    """One invocation of a benchmark: its run id (stamped on every record it writes), the git
    commit of the code and whether the tree had uncommitted changes (``git_dirty``; None when
    git is unavailable)."""

    run_id: str
    git_commit: str | None
    git_dirty: bool | None

    def stamp(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with ``run_id``, ``git_commit`` and ``git_dirty`` added."""
        return {**record, "run_id": self.run_id, "git_commit": self.git_commit, "git_dirty": self.git_dirty}


def record_invocation(folder: str | Path, executor: str, device: str, argv: list[str] | None = None,
                      notes: Mapping[str, Any] | None = None) -> Invocation:
    """Append this invocation (UTC time, command line, run id, commit, dirty flag, environment)
    to ``folder/env.json`` and return it. ``env.json`` keeps the latest environment at its top
    level (as before) and every invocation so far under ``"invocations"``; an older single-entry
    file becomes the first invocation. ``notes`` are added to this invocation's entry."""
    path = Path(folder) / "env.json"
    env = environment(executor, device)
    previous: list[dict[str, Any]] = []
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = {}
        if isinstance(old, dict):
            previous = list(old.get("invocations") or ([{k: v for k, v in old.items()}] if old else []))
    run = Invocation(f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}",
                     env["git_commit"], env["git_dirty"])
    entry = {"run_id": run.run_id, "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "command": list(sys.argv if argv is None else argv), **env, **dict(notes or {})}
    atomic_write_json(path, {**env, "invocations": previous + [entry]})
    return run


def run_script(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a benchmark script's ``main(argv)``; an :class:`AmunError` (e.g. an original model that
    does not memorise) becomes one line on stderr and exit status 2."""
    try:
        return main(argv)
    except AmunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
