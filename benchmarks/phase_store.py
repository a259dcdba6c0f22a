"""The finished phases of ``amun_cost.py``, kept on disk so that a killed run resumes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch

from amun_plugin.attacks.search import AdversarialSet
from amun_plugin.io import atomic_write, atomic_write_json


class PhaseStore:
    """Finished phases of this benchmark, kept under the cache dir so that a run killed half-way
    (the machine is shared) resumes where it stopped: JSON rows and adversarial sets (tensors
    only, loaded with ``weights_only``). Each row records when and under which load it ran."""

    def __init__(self, directory: Path, enabled: bool) -> None:
        self.directory, self.enabled = directory, enabled
        directory.mkdir(parents=True, exist_ok=True)

    def row(self, key: str) -> dict[str, Any] | None:
        path = self.directory / f"{key}.json"
        return json.loads(path.read_text()) if self.enabled and path.exists() else None

    def save_row(self, key: str, row: dict[str, Any]) -> None:
        row.setdefault("finished_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
        atomic_write_json(self.directory / f"{key}.json", row)

    def adversarial(self, key: str) -> AdversarialSet | None:
        path = self.directory / f"{key}.pt"
        if not (self.enabled and path.exists()):
            return None
        return AdversarialSet(**torch.load(path, weights_only=True))

    def save_adversarial(self, key: str, adv: AdversarialSet) -> None:
        tensors = {f.name: getattr(adv, f.name) for f in dataclasses.fields(adv)}
        atomic_write(self.directory / f"{key}.pt", lambda tmp: torch.save(tensors, tmp))


def config_digest(value: Any) -> str:
    """6 hex digits naming a configuration, so a finished phase is reused only for the same one."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:6]
