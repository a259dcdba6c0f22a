"""The RMIA reference bank: K reference models trained once on random halves of a population.

A *population* is every point an audit may ask about: D_R ∪ D_F ∪ D_T (the train set and the
test pool). Reference model k is trained with the target's recipe (architecture + TrainConfig)
on the points whose membership bit is set. Models come in complementary pairs (2j, 2j+1): model
2j gets a seeded random half, model 2j+1 the other half, so every point is IN exactly K/2 models
and every model trains on floor(N/2) or ceil(N/2) points.

On disk (one folder per population)::

    bank.json                    settings, population fingerprint, K, seed, recipe
    membership.safetensors       "membership" (K, N) uint8, "digests" (N, 16) uint8 (row hashes),
                                 "labels" (N,) int64
    model_000.safetensors/.json  each reference model (models/checkpoint.py format)
    logits_000.safetensors       "logits" (N, C) float32: the model's logits on the population

The logits are the cached signal: any RMIA signal (T, margin, order) is computed from them
without running the models again. The population is identified by an order-independent
fingerprint of per-sample hashes of (x bytes, y); a folder made for another population is
refused. Training is resumable: a model whose logits file exists is not trained again. Every
model is one job of an :class:`~amun_plugin.executors.Executor` (LocalExecutor by default), so a
cluster executor can train them in parallel.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from amun_plugin.config import config_to_dict
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import AmunError, InvalidInputError
from amun_plugin.executors import Executor, LocalExecutor, Resources
from amun_plugin.io import atomic_write, atomic_write_json
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.checkpoint import CheckpointMetadata, save_checkpoint
from amun_plugin.models.inference import build_model, predict_logits
from amun_plugin.progress import progress_bar
from amun_plugin.training import TrainConfig, train_model

__all__ = [
    "PopulationMismatchError",
    "ReferenceBank",
    "ReferenceBankError",
    "ReferenceJob",
    "ReferenceModelResult",
    "balanced_membership",
    "build_reference_bank",
    "concat_population",
    "population_fingerprint",
    "reference_train_seconds",
    "sample_digests",
]

FORMAT_VERSION = 1
_MANIFEST = "bank.json"
_MEMBERSHIP = "membership.safetensors"


class ReferenceBankError(AmunError):
    """A reference bank folder is incomplete, corrupt, or was made with other settings."""


class PopulationMismatchError(InvalidInputError):
    """The audited points are not the population a reference bank was trained on."""


def sample_digests(data: LabeledData) -> np.ndarray:
    """A 16-byte BLAKE2b hash of every sample's float32 pixels and label: (N, 16) uint8."""
    x = data.x.detach().cpu().float().contiguous().numpy().reshape(len(data), -1)
    y = data.y.detach().cpu().numpy().astype(np.int64)
    out = np.empty((len(data), 16), dtype=np.uint8)
    for i in range(len(data)):
        h = hashlib.blake2b(x[i].tobytes(), digest_size=16)
        h.update(int(y[i]).to_bytes(8, "little", signed=True))
        out[i] = np.frombuffer(h.digest(), dtype=np.uint8)
    return out


def population_fingerprint(digests: np.ndarray) -> str:
    """An order-independent SHA-256 fingerprint of a population from its (N, 16) row digests."""
    rows = np.ascontiguousarray(digests, dtype=np.uint8)
    ordered = rows[np.lexsort(rows.T[::-1])]
    return hashlib.sha256(len(rows).to_bytes(8, "little") + ordered.tobytes()).hexdigest()


def balanced_membership(num_models: int, num_points: int, seed: int) -> np.ndarray:
    """(K, N) bool: model 2j gets a seeded random half, model 2j+1 its complement; every point is
    IN exactly K/2 models. K must be even and >= 2."""
    if isinstance(num_models, bool) or int(num_models) != num_models or num_models < 2 or num_models % 2:
        raise InvalidInputError(f"the number of reference models must be even and >= 2, got {num_models!r}")
    if num_points < 2:
        raise InvalidInputError(f"a population needs at least 2 points, got {num_points}")
    rng = np.random.default_rng(seed)
    membership = np.zeros((int(num_models), num_points), dtype=bool)
    for pair in range(int(num_models) // 2):
        half = rng.permutation(num_points)[: (num_points + pair % 2) // 2]  # alternate floor / ceil
        membership[2 * pair, half] = True
        membership[2 * pair + 1] = ~membership[2 * pair]
    return membership


@dataclass
class ReferenceModelResult:
    """What one reference job returns: the model (CPU, eval mode), its population logits (N, C)
    float32, and its training time in seconds."""

    index: int
    model: nn.Module
    logits: np.ndarray
    seconds: float


@dataclass
class ReferenceJob:
    """Train reference model ``index`` on ``population.subset(members)``; a picklable callable."""

    index: int
    architecture: ModelArchitecture
    recipe: TrainConfig
    population: LabeledData
    members: np.ndarray
    seed: int
    device: str
    progress: bool = False

    def __call__(self) -> ReferenceModelResult:
        data = self.population.subset(self.members, name=f"reference_{self.index}")
        model = build_model(self.architecture, data.num_classes, data.input_shape, self.seed)
        stats = train_model(model, data, self.recipe, device=self.device, seed=self.seed,
                            progress=f"reference model {self.index}" if self.progress else False)
        logits = predict_logits(model, self.population.x, device=self.device).numpy().astype(np.float32)
        return ReferenceModelResult(self.index, model.cpu().eval(), logits, float(stats.seconds))


class ReferenceBank:
    """An opened, complete bank: ``membership`` (K, N) bool, ``logits`` (K, N, C) float32,
    ``labels`` (N,) int64, ``manifest`` (bank.json) and the per-row ``digests`` (N, 16)."""

    def __init__(self, directory: Path, manifest: dict[str, Any], membership: np.ndarray,
                 digests: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> None:
        self.directory = directory
        self.manifest = manifest
        self.membership = membership
        self.digests = digests
        self.labels = labels
        self.logits = logits
        self._row_of = {row.tobytes(): i for i, row in reversed(list(enumerate(digests)))}

    @property
    def num_models(self) -> int:
        return int(self.membership.shape[0])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["population"]["fingerprint"])

    @classmethod
    def open(cls, directory: str | Path) -> "ReferenceBank":
        """Load a complete bank; :class:`ReferenceBankError` if it is missing or unfinished."""
        folder = Path(directory)
        manifest = _read_manifest(folder)
        if manifest is None:
            raise ReferenceBankError(f"{folder} holds no reference bank ({_MANIFEST} missing); build one first "
                                     "with build_reference_bank(...) or `amun audit --reference-models K`")
        membership, digests, labels = _read_membership(folder)
        missing = [k for k in range(membership.shape[0]) if not _logits_path(folder, k).exists()]
        if missing:
            raise ReferenceBankError(
                f"the reference bank in {folder} is unfinished: {len(missing)} of {membership.shape[0]} models "
                f"are not trained (first: {missing[0]}); run build_reference_bank again to resume")
        logits = np.stack([_read_logits(folder, k, membership.shape[1]) for k in range(membership.shape[0])])
        return cls(folder, manifest, membership, digests, labels, logits)

    def rows_of(self, data: LabeledData) -> np.ndarray:
        """The bank row of every sample of ``data`` (N,) int64; samples outside the bank's
        population are refused (:class:`PopulationMismatchError`)."""
        digests = sample_digests(data)
        missing = sum(row.tobytes() not in self._row_of for row in digests)
        if missing:
            raise PopulationMismatchError(
                f"{missing} of the {len(data)} {data.name} samples are not in the reference bank's population "
                f"({self.directory}): the bank must be built on a population holding them (e.g. train ∪ test)")
        return np.array([self._row_of[row.tobytes()] for row in digests], dtype=np.int64)

    def check_population(self, population: LabeledData, subset: bool = False) -> np.ndarray:
        """The bank row of every point of ``population`` (N,) int64, after checking that
        ``population`` is exactly the bank's population (same points, any order) or, with
        ``subset``, part of it (e.g. a bank that also holds a validation hold-out)."""
        digests = sample_digests(population)
        known = sum(row.tobytes() in self._row_of for row in digests)
        exact = population_fingerprint(digests) == self.fingerprint
        if not exact and not (subset and known == len(population)):
            raise PopulationMismatchError(
                f"the reference bank in {self.directory} was trained on another population "
                f"({self.manifest['population']['size']} points; the audited D_R ∪ D_F ∪ D_T has {len(population)}, "
                f"{known} of them in the bank). RMIA needs a bank of this population: build one with "
                "build_reference_bank(directory, population=D_R ∪ D_F ∪ D_T, ...) in another folder")
        return np.array([self._row_of[row.tobytes()] for row in digests], dtype=np.int64)


def build_reference_bank(
    directory: str | Path,
    population: LabeledData,
    architecture: ModelArchitecture,
    recipe: TrainConfig,
    *,
    num_models: int = 8,
    seed: int = 0,
    executor: Executor | None = None,
    resources: Resources = Resources(),
    device: str = "cpu",
    progress: bool = True,
) -> ReferenceBank:
    """Create (or resume, or just open) the bank of ``population`` in ``directory``.

    Trains the missing ones of ``num_models`` (even) reference models with ``recipe`` through
    ``executor`` (one job per model); reference model k is seeded with ``seed + k``. A folder that
    holds a bank of another population or other settings raises instead of being overwritten.
    """
    folder = Path(directory)
    digests = sample_digests(population)
    settings = _settings(population, digests, architecture, recipe, num_models, seed)
    existing = _read_manifest(folder)
    if existing is None:
        membership = balanced_membership(num_models, len(population), seed)
        _write_membership(folder, membership, digests, population.y.cpu().numpy())
        atomic_write_json(folder / _MANIFEST, settings)
    else:
        _check_same_settings(folder, existing, settings)
        membership = _read_membership(folder)[0]
    pending = [k for k in range(num_models) if not _logits_path(folder, k).exists()]
    if pending:
        jobs = [ReferenceJob(k, architecture, recipe, population, np.flatnonzero(membership[k]), seed + k, device,
                             progress) for k in pending]
        _run_jobs(folder, executor or LocalExecutor(), jobs, resources, settings, progress, len(population))
    return ReferenceBank.open(folder)


def _run_jobs(folder: Path, executor: Executor, jobs: list[ReferenceJob], resources: Resources,
              settings: dict[str, Any], progress: bool, num_points: int) -> None:
    bar = _progress(progress, len(jobs))
    try:
        def save(_position: int, result: ReferenceModelResult) -> None:
            _save_result(folder, result, settings, num_points)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(last=f"model {result.index}: {result.seconds:.0f} s")

        executor.run(jobs, resources, on_result=save)
    finally:
        if bar is not None:
            bar.close()


def _save_result(folder: Path, result: ReferenceModelResult, settings: dict[str, Any], num_points: int) -> None:
    """The checkpoint first, then the logits: a logits file means the model is complete."""
    if result.logits.shape[0] != num_points:
        raise ReferenceBankError(f"reference model {result.index} returned logits for {result.logits.shape[0]} "
                                 f"points, the population has {num_points}")
    metadata = CheckpointMetadata(
        architecture=settings["architecture"], architecture_config=settings["architecture_config"],
        num_classes=settings["population"]["num_classes"], input_shape=tuple(settings["population"]["input_shape"]),
        recipe={**settings["recipe"], "seed": settings["seed"] + result.index},
        extra={"reference_index": result.index, "population_fingerprint": settings["population"]["fingerprint"],
               "train_seconds": round(result.seconds, 3)},
    )
    save_checkpoint(folder / f"model_{result.index:03d}.safetensors", result.model, metadata)
    from safetensors.numpy import save_file

    tensors = {"logits": np.ascontiguousarray(result.logits, dtype=np.float32)}
    atomic_write(_logits_path(folder, result.index),
                 lambda tmp: save_file(tensors, str(tmp), metadata={"train_seconds": f"{result.seconds:.3f}"}))


def reference_train_seconds(directory: str | Path) -> list[float]:
    """Training time (s) of every reference model of a bank, read from the logits files."""
    from safetensors import safe_open

    folder = Path(directory)
    paths = sorted(folder.glob("logits_*.safetensors"))
    out = []
    for path in paths:
        with safe_open(str(path), framework="np") as handle:
            out.append(float((handle.metadata() or {}).get("train_seconds", "nan")))
    return out


def _settings(population: LabeledData, digests: np.ndarray, architecture: ModelArchitecture,
              recipe: TrainConfig, num_models: int, seed: int) -> dict[str, Any]:
    if not isinstance(architecture, ModelArchitecture):
        raise InvalidInputError(f"architecture must be a ModelArchitecture, got {type(architecture).__name__}")
    if not isinstance(recipe, TrainConfig):
        raise InvalidInputError(f"recipe must be a TrainConfig, got {type(recipe).__name__}")
    balanced_membership(num_models, len(population), seed)  # validates K
    return {
        "format_version": FORMAT_VERSION, "num_models": int(num_models), "seed": int(seed),
        "architecture": architecture.name, "architecture_config": config_to_dict(architecture.config),
        "recipe": config_to_dict(recipe),
        "population": {"fingerprint": population_fingerprint(digests), "size": len(population),
                       "num_classes": population.num_classes, "input_shape": list(population.input_shape)},
    }


def _check_same_settings(folder: Path, existing: dict[str, Any], wanted: dict[str, Any]) -> None:
    if existing.get("population", {}).get("fingerprint") != wanted["population"]["fingerprint"]:
        raise PopulationMismatchError(
            f"{folder} holds a reference bank of another population ({existing.get('population', {}).get('size')} "
            f"points, this one has {wanted['population']['size']}); use another folder for this population")
    differing = sorted(k for k in ("num_models", "seed", "architecture", "architecture_config", "recipe")
                       if json.dumps(existing.get(k), sort_keys=True) != json.dumps(wanted[k], sort_keys=True))
    if differing:
        raise ReferenceBankError(
            f"{folder} holds a reference bank of this population made with other settings ({', '.join(differing)} "
            "differ); resume it with the same settings or use another folder")


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / _MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReferenceBankError(f"{path} is not a readable bank manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise ReferenceBankError(f"{path} is not a reference bank manifest of format {FORMAT_VERSION}")
    return manifest


def _write_membership(folder: Path, membership: np.ndarray, digests: np.ndarray, labels: np.ndarray) -> None:
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {
        "membership": membership.astype(np.uint8), "digests": np.ascontiguousarray(digests, dtype=np.uint8),
        "labels": np.ascontiguousarray(labels, dtype=np.int64)}
    atomic_write(folder / _MEMBERSHIP, lambda tmp: save_file(tensors, str(tmp)))


def _read_membership(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(folder / _MEMBERSHIP))
    except Exception as exc:  # missing or corrupt file: safetensors raises its own types
        raise ReferenceBankError(f"cannot read {folder / _MEMBERSHIP}: {exc}") from exc
    if set(tensors) != {"membership", "digests", "labels"}:
        raise ReferenceBankError(f"{folder / _MEMBERSHIP} lacks membership, digests or labels")
    return tensors["membership"].astype(bool), tensors["digests"], tensors["labels"]


def _read_logits(folder: Path, index: int, num_points: int) -> np.ndarray:
    from safetensors.numpy import load_file

    path = _logits_path(folder, index)
    try:
        logits = load_file(str(path))["logits"]
    except Exception as exc:  # corrupt file
        raise ReferenceBankError(f"cannot read {path} (delete it to retrain that model): {exc}") from exc
    if logits.ndim != 2 or logits.shape[0] != num_points:
        raise ReferenceBankError(f"{path} holds logits of shape {logits.shape}, expected ({num_points}, C)")
    return logits


def _logits_path(folder: Path, index: int) -> Path:
    return folder / f"logits_{index:03d}.safetensors"


def _progress(progress: bool, total: int) -> Any:
    return progress_bar(progress, total, "reference models", unit="model")


def concat_population(*parts: LabeledData) -> LabeledData:
    """The population D_R ∪ D_F ∪ D_T as one LabeledData (in the given order)."""
    if not parts:
        raise InvalidInputError("a population needs at least one part")
    out = parts[0]
    for part in parts[1:]:
        out = out.concat(part)
    return LabeledData(out.x, out.y, out.num_classes, "population")

