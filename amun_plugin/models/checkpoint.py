"""Safe model checkpoints: one ``.safetensors`` file (weights + metadata) and a JSON sidecar.

Nothing here ever unpickles: pickled checkpoints (``torch.save`` files: ``.pt``, ``.pth``,
``.pkl``, ``.ckpt``) are refused, because loading a pickle runs whatever code it contains.
Writes are atomic (temporary file in the same directory, fsync, ``os.replace``), so an existing
checkpoint is either fully replaced or left as it was. This module imports no plugin code: the
caller passes a ``build`` callback that turns the metadata into a fresh model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from amun_plugin.device import resolve_device
from amun_plugin.errors import AmunError, CheckpointError
from amun_plugin.io import atomic_write

__all__ = [
    "CheckpointMetadata",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "has_metadata",
    "load_checkpoint",
    "load_weights",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "sidecar_path",
]

FORMAT_VERSION = 1
METADATA_KEY = "amun_plugin"
SUFFIX = ".safetensors"
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"}
_MAX_HEADER_BYTES = 100 * 1024 * 1024
# Bounds on what an (untrusted) header may ask for, checked before anything is built.
MAX_CLASSES = 100_000
MAX_INPUT_DIMS = 4
MAX_INPUT_ELEMENTS = 3 * 2048 * 2048  # per sample: a 2048x2048 RGB image


@dataclass(frozen=True)
class CheckpointMetadata:
    """What is needed to rebuild a model and to know where it came from.

    Attributes:
        architecture: registered architecture name, e.g. "resnet18".
        architecture_config: the architecture's config as a plain mapping.
        num_classes: number of output logits.
        input_shape: shape of one input sample, e.g. (3, 32, 32).
        classes: class names (optional).
        dataset, dataset_config: the training data's source and its config (optional).
        recipe: the training recipe (e.g. a TrainConfig as a mapping, seed).
        extra: anything else JSON-serialisable (unlearning method, forget-set hash, ...).
        format_version: version of this metadata layout.
    """

    architecture: str
    architecture_config: dict[str, Any]
    num_classes: int
    input_shape: tuple[int, ...]
    classes: tuple[str, ...] = ()
    dataset: str | None = None
    dataset_config: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (tuples become lists)."""
        return json.loads(self.to_json())

    def to_json(self, indent: int | None = None) -> str:
        """The metadata as JSON; :class:`CheckpointError` if a field is not JSON-serialisable."""
        try:
            return json.dumps(dataclasses.asdict(self), indent=indent, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint metadata must be JSON-serialisable (plain dicts, lists, str, numbers): {exc}"
            ) from exc

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "CheckpointMetadata":
        """Validate a mapping read from a checkpoint; :class:`CheckpointError` if malformed."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        required = ("architecture", "architecture_config", "num_classes", "input_shape")
        missing = sorted(n for n in required if n not in values)
        if unknown or missing:
            raise CheckpointError(f"invalid checkpoint metadata: unknown keys {unknown}, missing keys {missing}")
        version = values.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint format version {version!r} is newer than this amun_plugin understands "
                f"({FORMAT_VERSION}); upgrade amun_plugin"
            )
        try:
            meta = cls(
                architecture=str(values["architecture"]),
                architecture_config=dict(values["architecture_config"]),
                num_classes=int(values["num_classes"]),
                input_shape=tuple(int(s) for s in values["input_shape"]),
                classes=tuple(str(c) for c in values.get("classes", ())),
                dataset=None if values.get("dataset") is None else str(values["dataset"]),
                dataset_config=dict(values.get("dataset_config") or {}),
                recipe=dict(values.get("recipe") or {}),
                extra=dict(values.get("extra") or {}),
                format_version=version,
            )
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid checkpoint metadata: {exc}") from exc
        meta.validate()
        return meta

    def validate(self) -> None:
        """:class:`CheckpointError` unless the fields describe a usable model."""
        if not self.architecture:
            raise CheckpointError("checkpoint metadata: architecture name is empty")
        if self.num_classes < 2:
            raise CheckpointError(f"checkpoint metadata: num_classes must be >= 2, got {self.num_classes}")
        if self.num_classes > MAX_CLASSES:
            raise CheckpointError(f"checkpoint metadata: num_classes {self.num_classes} exceeds {MAX_CLASSES}")
        if not self.input_shape or any(s <= 0 for s in self.input_shape):
            raise CheckpointError(f"checkpoint metadata: bad input_shape {self.input_shape}")
        if len(self.input_shape) > MAX_INPUT_DIMS or math.prod(self.input_shape) > MAX_INPUT_ELEMENTS:
            raise CheckpointError(
                f"checkpoint metadata: input_shape {self.input_shape} is too large (at most {MAX_INPUT_DIMS} "
                f"dimensions and {MAX_INPUT_ELEMENTS} values per sample)"
            )
        if self.classes and len(self.classes) != self.num_classes:
            raise CheckpointError(
                f"checkpoint metadata: {len(self.classes)} class names for {self.num_classes} classes"
            )


def sidecar_path(path: str | Path) -> Path:
    """The human-readable JSON written next to a checkpoint: ``<stem>.json``."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | Path, model: nn.Module, metadata: CheckpointMetadata) -> Path:
    """Write ``model``'s state_dict and ``metadata`` to ``path`` (``.safetensors`` is appended to a
    path without suffix) and a JSON sidecar; return the checkpoint's path.

    Tensors are copied to contiguous CPU tensors (the model itself is not touched). Both files
    are written atomically; parent directories are created.
    """
    target = _checkpoint_target(Path(path))
    metadata.validate()
    header_json = metadata.to_json()
    tensors = _state_tensors(model)
    sidecar = {
        "checkpoint": target.name,
        "metadata": json.loads(header_json),
        "tensors": {name: [str(t.dtype).replace("torch.", ""), list(t.shape)] for name, t in tensors.items()},
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
    }
    sidecar_text = json.dumps(sidecar, indent=2, sort_keys=True) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)

    from safetensors.torch import save_file

    _atomic_write(target, lambda tmp: save_file(tensors, str(tmp), metadata={METADATA_KEY: header_json}))
    _atomic_write(sidecar_path(target), lambda tmp: tmp.write_text(sidecar_text, encoding="utf-8"))
    return target


def read_checkpoint_metadata(path: str | Path) -> CheckpointMetadata:
    """The metadata of a checkpoint, read from the safetensors header only (no weights)."""
    source = _check_readable(Path(path))
    from safetensors import safe_open

    try:
        with safe_open(str(source), framework="pt") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(
            f"{source} is not a readable safetensors checkpoint (corrupt or truncated?): {exc}"
        ) from exc
    raw = header.get(METADATA_KEY)
    if raw is None:
        raise CheckpointError(
            f"{source} is a safetensors file without amun_plugin metadata (header key {METADATA_KEY!r}); "
            "load its weights yourself with safetensors.torch.load_file and re-save with save_checkpoint"
        )
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{source}: the amun_plugin metadata is not valid JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise CheckpointError(f"{source}: the amun_plugin metadata must be a JSON object")
    return CheckpointMetadata.from_dict(values)


def load_checkpoint(
    path: str | Path,
    build: Callable[[CheckpointMetadata], nn.Module],
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, CheckpointMetadata]:
    """Rebuild the model with ``build(metadata)``, load the weights with strict key and shape
    checks, move it to ``device`` and return ``(model, metadata)``. Never unpickles."""
    metadata = read_checkpoint_metadata(path)
    source = Path(path)
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(source), device="cpu")
    except Exception as exc:  # corrupt or truncated tensor data
        raise CheckpointError(f"cannot read the weights of {source} (corrupt or truncated?): {exc}") from exc
    shapes_only = _build(build, metadata, meta_device=True)
    if shapes_only is not None:
        _check_state(source, shapes_only, tensors)  # what the header asks for, checked before any allocation
    model = _build(build, metadata, meta_device=False)
    assert model is not None
    _check_state(source, model, tensors)
    model.load_state_dict(tensors, strict=True)
    return model.to(resolve_device(device)), metadata


def load_weights(path: str | Path, model: nn.Module) -> nn.Module:
    """Load the tensors of a safetensors file (an amun_plugin checkpoint or a plain state dict
    saved with ``safetensors.torch.save_file(model.state_dict(), path)``) into ``model``, with
    strict key, shape and dtype checks; returns ``model``. Never unpickles."""
    source = _check_readable(Path(path))
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(source), device="cpu")
    except Exception as exc:  # corrupt, truncated or not a safetensors file
        raise CheckpointError(f"cannot read the weights of {source} (not a safetensors file, or corrupt?): "
                              f"{exc}") from exc
    _check_state(source, model, tensors)
    model.load_state_dict(tensors, strict=True)
    return model


def has_metadata(path: str | Path) -> bool:
    """Whether a safetensors file carries amun_plugin metadata (False: a plain state dict)."""
    source = _check_readable(Path(path))
    from safetensors import safe_open

    try:
        with safe_open(str(source), framework="pt") as handle:
            return METADATA_KEY in (handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{source} is not a readable safetensors file (corrupt or truncated?): {exc}") from exc


def _build(build: Callable[[CheckpointMetadata], nn.Module], metadata: CheckpointMetadata,
           meta_device: bool) -> nn.Module | None:
    """``build(metadata)``, on torch's ``meta`` device when ``meta_device`` (shapes and dtypes
    only, no memory: what the header asks for is compared with the stored tensors before anything
    is allocated; None if the architecture cannot be built there). A build that refuses the
    header's values becomes a CheckpointError."""
    try:
        if meta_device:
            with torch.device("meta"):
                model = build(metadata)
        else:
            model = build(metadata)
    except AmunError as exc:
        raise CheckpointError(f"the checkpoint's metadata does not build a model: {exc}") from exc
    except (NotImplementedError, RuntimeError):
        if not meta_device:
            raise
        return None  # an architecture that cannot be built on 'meta': the header bounds must do
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"the build callback returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _checkpoint_target(path: Path) -> Path:
    if path.suffix == "":
        return path.with_name(path.name + SUFFIX)
    if path.suffix != SUFFIX:
        raise CheckpointError(
            f"checkpoints are written as {SUFFIX} files; got {path} (use e.g. {path.with_suffix(SUFFIX)})"
        )
    return path


def _state_tensors(model: nn.Module) -> dict[str, Tensor]:
    """Independent, contiguous CPU copies of the model's state_dict tensors."""
    tensors: dict[str, Tensor] = {}
    for name, value in model.state_dict().items():
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"state_dict entry {name!r} is a {type(value).__name__}, not a tensor; cannot save it"
            )
        tensors[name] = value.detach().to("cpu", copy=True).contiguous()
    return tensors


def _atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """:func:`amun_plugin.io.atomic_write`, then fsync the directory so the rename survives a crash."""
    atomic_write(target, write)
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows opening directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_readable(path: Path) -> Path:
    """:class:`CheckpointError` unless ``path`` exists and starts like a safetensors file."""
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    with open(path, "rb") as handle:
        head = handle.read(9)
    size = path.stat().st_size
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    looks_safetensors = len(head) == 9 and head[8:9] == b"{" and 0 < header_len <= min(size - 8, _MAX_HEADER_BYTES)
    if path.suffix.lower() in _PICKLE_SUFFIXES or (not looks_safetensors and _looks_pickled(head)):
        raise CheckpointError(_pickle_refusal(path))
    if not looks_safetensors:
        raise CheckpointError(
            f"{path} is not a safetensors checkpoint (bad or truncated header); "
            f"amun_plugin only reads {SUFFIX} files written by save_checkpoint"
        )
    return path


def _looks_pickled(head: bytes) -> bool:
    """torch.save writes a zip archive (PK..) or, in the legacy format, a raw pickle (0x80 ..)."""
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _pickle_refusal(path: Path) -> str:
    return (
        f"refusing to load {path}: it is (or is named like) a pickled torch checkpoint, and unpickling "
        "runs arbitrary code. If you trust the file, convert it once: "
        "state = torch.load(path, weights_only=True); model.load_state_dict(state); "
        f"then amun_plugin.models.save_checkpoint('model{SUFFIX}', model, metadata)"
    )


def _check_state(source: Path, model: nn.Module, tensors: Mapping[str, Tensor]) -> None:
    """Strict key, shape and dtype-kind comparison between the built model and the stored tensors
    (a float tensor stored as an integer one, or the reverse, is refused: its bits would be
    reinterpreted as other numbers)."""
    expected = dict(model.state_dict().items())
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{name}: stored {tuple(tensors[name].shape)}, model {tuple(t.shape)}"
        for name, t in expected.items()
        if name in tensors and tuple(tensors[name].shape) != tuple(t.shape)
    ]
    dtypes = [
        f"{name}: stored {_dtype(tensors[name])}, model {_dtype(t)}"
        for name, t in expected.items()
        if name in tensors and _kind(tensors[name]) != _kind(t)
    ]
    if missing or unexpected or wrong or dtypes:
        raise CheckpointError(
            f"{source} does not match the model built from its metadata: missing {_few(missing)}, "
            f"unexpected {_few(unexpected)}, shape mismatches {_few(wrong)}, dtype mismatches {_few(dtypes)}"
        )


def _kind(tensor: Tensor) -> str:
    """"float", "complex", "bool" or "int": the dtypes a load may convert between only within a kind."""
    if tensor.dtype.is_floating_point:
        return "float"
    if tensor.dtype.is_complex:
        return "complex"
    return "bool" if tensor.dtype == torch.bool else "int"


def _dtype(tensor: Tensor) -> str:
    return str(tensor.dtype).replace("torch.", "")


def _few(items: list[str], limit: int = 5) -> str:
    if not items:
        return "none"
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "[" + ", ".join(items[:limit]) + "]" + more
