"""Content-addressed artefact cache (the benchmark runner's, and the forgetting-quality evaluator's).

Every artefact (trained model, adversarial set, audit metrics) is named by the SHA-256 of a
canonical JSON *spec* of everything it depends on, so identical work is done once and reused
across methods, suites and runs, and a changed recipe can never pick up a stale artefact.
Writes are atomic: an artefact file either exists complete or not at all, so a killed run
leaves nothing half-written behind. ``created`` / ``hits`` count what was computed and reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from amun_plugin.attacks.adversarial_set import AdversarialSet
from amun_plugin.errors import CheckpointError
from amun_plugin.io import atomic_write, atomic_write_json
from amun_plugin.models.checkpoint import CheckpointMetadata, save_checkpoint

__all__ = ["CACHE_ENV", "CACHE_VERSION", "ArtifactCache", "content_hash", "default_cache_dir", "load_adversarial",
           "save_adversarial"]

CACHE_VERSION = 1
"""Part of every key: bump it when the computation behind an artefact changes."""
CACHE_ENV = "AMUN_BENCH_CACHE"


def default_cache_dir() -> Path:
    """``$AMUN_BENCH_CACHE`` or ``~/.cache/amun_plugin/bench`` (on a cluster: a shared folder)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "amun_plugin" / "bench")


def weights_fingerprint(model: nn.Module, length: int = 20) -> str:
    """Hex SHA-256 (first ``length`` characters) of ``model``'s state dict, names and bytes: part
    of a cached model's key (taken at initialisation), so a change to an architecture's code or
    initialisation never reuses stale models."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:length]


def content_hash(spec: Any, length: int = 20) -> str:
    """Hex SHA-256 (first ``length`` characters) of ``spec`` as canonical JSON."""
    text = json.dumps({"v": CACHE_VERSION, "spec": spec}, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "value"):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot hash a {type(value).__name__}")


class ArtifactCache:
    """Artefacts under ``root/<kind>/<key>.*`` with get-or-create accessors."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.created: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()

    def path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / f"{key}{suffix}"

    def json(self, kind: str, key: str, create: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The JSON artefact ``key``; ``create()`` computes it when absent."""
        path = self.path(kind, key, ".json")
        if path.exists():
            self.hits[kind] += 1
            return dict(json.loads(path.read_text(encoding="utf-8")))
        value = create()
        atomic_write_json(path, value)
        self.created[kind] += 1
        return value

    def model(
        self, kind: str, key: str, create: Callable[[], tuple[nn.Module, CheckpointMetadata]],
        load: Callable[[Path], nn.Module],
    ) -> tuple[nn.Module, dict[str, Any]]:
        """The model ``key`` and its metadata ``extra``; ``create()`` trains it when absent. The
        returned model is always the one read back from disk, so a first run and a resumed run
        use bit-identical weights."""
        path = self.path(kind, key, ".safetensors")
        if path.exists():
            self.hits[kind] += 1
        else:
            model, metadata = create()
            save_checkpoint(path, model, metadata)
            self.created[kind] += 1
        try:
            return load(path), self.model_info(kind, key)
        except CheckpointError as exc:
            raise CheckpointError(f"cached model {path} is unreadable ({exc}); delete it to recompute") from exc

    def model_info(self, kind: str, key: str) -> dict[str, Any]:
        """The ``extra`` metadata of a cached model (from its JSON sidecar)."""
        sidecar = json.loads(self.path(kind, key, ".json").read_text(encoding="utf-8"))
        return dict(sidecar["metadata"].get("extra", {}))

    def adversarial(self, kind: str, key: str, create: Callable[[], AdversarialSet]) -> AdversarialSet:
        """The adversarial set ``key``; ``create()`` searches it when absent."""
        path = self.path(kind, key, ".safetensors")
        if path.exists():
            self.hits[kind] += 1
        else:
            save_adversarial(path, create())
            self.created[kind] += 1
        return load_adversarial(path)

    def has(self, kind: str, key: str, suffix: str) -> bool:
        return self.path(kind, key, suffix).exists()


_BOOL_FIELDS = ("found", "already_misclassified")


def save_adversarial(path: str | Path, adversarial: AdversarialSet) -> Path:
    """Write an :class:`AdversarialSet` as one safetensors file (tensors + scalar metadata)."""
    from safetensors.torch import save_file

    tensors, scalars = {}, {}
    for f in dataclasses.fields(AdversarialSet):
        value = getattr(adversarial, f.name)
        if isinstance(value, torch.Tensor):
            tensors[f.name] = value.to(torch.uint8) if f.name in _BOOL_FIELDS else value.contiguous()
        else:
            scalars[f.name] = value
    header = {"amun_adversarial": json.dumps(scalars, sort_keys=True)}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))


def load_adversarial(path: str | Path) -> AdversarialSet:
    """Read what :func:`save_adversarial` wrote."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        scalars = json.loads((handle.metadata() or {})["amun_adversarial"])
    values: dict[str, Any] = dict(load_file(str(path)))
    for name in _BOOL_FIELDS:
        values[name] = values[name].bool()
    return AdversarialSet(**values, **scalars)
