"""The Python API: ``unlearn(model, forget=..., retain=None, method="amun", **options)``,
``audit`` / ``audit_many``, ``continuous_session`` and ``save_model`` / ``load_model``, each with the
plugin host (a fresh ``get_plugin_manager()`` unless one is given) standing behind the names it takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from amun_plugin.data.base import LabeledData, labeled_for_model
from amun_plugin.device import resolve_device
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate import audit as _audit
from amun_plugin.evaluate.audit import EvaluatorSpec
from amun_plugin.evaluate.reference import ReferenceBank
from amun_plugin.models.checkpoint import (
    CheckpointMetadata,
    has_metadata,
    load_weights,
    read_checkpoint_metadata,
    save_checkpoint,
)
from amun_plugin.models.inference import infer_num_classes
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.unlearn.base import UnlearnResult
from amun_plugin.unlearn.continuous import ContinuousSession
from amun_plugin.unlearn.estimate import MembershipProbe
from amun_plugin.unlearn.job import UnlearnJob

__all__ = ["audit", "audit_many", "continuous_session", "infer_num_classes", "load_model", "save_model", "unlearn"]


def unlearn(
    model: nn.Module,
    forget: Any,
    retain: Any = None,
    *,
    method: str = "amun",
    validation: Any = None,
    holdout: Any = None,
    adversarial: Any = None,
    membership: MembershipProbe | None = None,
    num_classes: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
    plugins: PluginHost | None = None,
    **options: Any,
) -> UnlearnResult:
    """Unlearn ``forget`` from ``model`` with the registered method ``method`` (an
    :class:`~amun_plugin.unlearn.job.UnlearnJob`, as ``amun unlearn`` runs it).

    Args:
        model: a classifier returning logits (N, num_classes) for inputs in [0, 1]; not modified.
        forget: D_F as ``LabeledData``, an ``(x, y)`` pair (tensors or numpy; y may be one-hot)
            or a torch ``Dataset`` of ``(x, y)``.
        retain: D_R in the same forms, or None for the "without D_R" setting.
        method: a registered unlearner name (``amun plugins`` lists them).
        validation: held-out non-members (methods that need them, e.g. DAU).
        holdout: held-out samples the model never trained on (a validation or test split, same
            forms as ``forget``), for a method whose capabilities say it calibrates (AMUN,
            AMUN+SalUn, AMUN-A: ``amun_plugin.unlearn.calibration``); it then runs its calibrated
            schedule, and options of its fixed schedule (AMUN: lr, epochs, step_size, gamma) are
            refused. Without it they run their fixed schedule (AMUN warns with NoHoldoutWarning
            unless a fixed-schedule option is given). A method that does not calibrate refuses it.
        adversarial: a precomputed ``AdversarialSet`` of ``forget`` for AMUN (reuse / transfer).
        membership: the membership signal of the estimated gap on ``holdout`` (default: the
            confidence); ``RmiaProbe(bank, population)`` uses RMIA with a reference bank built once.
        num_classes: defaults to the width of the model's output.
        device: "cpu", "cuda", "cuda:N" or "auto".  seed: all randomness.  progress: tqdm bars.
        plugins: a plugin host (default: a fresh ``get_plugin_manager()``).
        **options: the method's config fields (e.g. ``epochs=5, lr=0.01``); unknown ones, and
            ones the chosen schedule would not read, are errors.

    Returns:
        ``UnlearnResult`` with ``.model`` (a new model) and ``.stats``; it unpacks as
        ``model, stats = unlearn(...)``.
    """
    host = plugins or get_plugin_manager()
    inferred = num_classes is None
    if inferred:
        num_classes = infer_num_classes(model, forget)

    def labeled(data: Any, name: str) -> Any:
        return None if data is None else labeled_for_model(data, num_classes, name, model_outputs=inferred)

    job = UnlearnJob(method=method, forget=labeled(forget, "forget"), retain=labeled(retain, "retain"),
                     options=options, holdout=labeled(holdout, "holdout"),
                     validation=labeled(validation, "validation"), adversarial=adversarial, membership=membership,
                     device=device,
                     seed=seed, progress=progress)
    return job.run(model, host)


def audit(model: nn.Module, retain: Any, forget: Any, test: Any,
          evaluators: Sequence[EvaluatorSpec] | None = None, *, plugins: PluginHost | None = None,
          **options: Any) -> dict[str, Any]:
    """Audit one model and write its report folder: :func:`amun_plugin.evaluate.audit.audit` (every
    argument is documented there) with ``plugins`` defaulting to a fresh ``get_plugin_manager()``."""
    return _audit.audit(model, retain, forget, test, evaluators, plugins=plugins or get_plugin_manager(), **options)


def audit_many(models: Mapping[str, nn.Module], retain: Any, forget: Any, test: Any,
               evaluators: Sequence[EvaluatorSpec] | None = None, *, plugins: PluginHost | None = None,
               reference_bank: ReferenceBank | str | Path | None = None, **options: Any) -> dict[str, dict[str, Any]]:
    """:func:`audit` for several models (:func:`amun_plugin.evaluate.audit.audit_many`)."""
    return _audit.audit_many(models, retain, forget, test, evaluators, plugins=plugins or get_plugin_manager(),
                             reference_bank=reference_bank, **options)


def continuous_session(model: nn.Module, train: Any, method: str = "amun", *, plugins: PluginHost | None = None,
                       **options: Any) -> ContinuousSession:
    """A :class:`~amun_plugin.unlearn.continuous.ContinuousSession` (a sequence of forget requests
    against one model; every keyword is documented there) with ``plugins`` defaulting to a fresh
    ``get_plugin_manager()``; ``train`` is LabeledData or an ``(x, y)`` pair of arrays."""
    data = train
    if not isinstance(train, LabeledData):
        data = labeled_for_model(train, infer_num_classes(model, train), "train")
    return ContinuousSession(model, data, method, plugins=plugins or get_plugin_manager(), **options)


def save_model(model: nn.Module, path: str | Path, *, architecture: str,
               architecture_options: Mapping[str, Any] | None = None, num_classes: int,
               input_shape: Sequence[int], dataset: str | None = None,
               dataset_options: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
               plugins: PluginHost | None = None) -> Path:
    """Save ``model`` as an amun_plugin checkpoint (``.safetensors`` with its metadata, a JSON
    sidecar beside it), written atomically; the file ``amun unlearn`` / ``amun audit`` read.

    ``architecture`` names a registered architecture (``amun describe mlp``, or one of a plugin)
    with ``architecture_options``, so :func:`load_model` can rebuild it; ``num_classes`` and
    ``input_shape`` (C, H, W) describe its input / output; ``dataset`` (a registered dataset name)
    with ``dataset_options`` lets the CLI reload the training data. The model must be that
    architecture (same tensor names and shapes), else nothing is written. Returns the checkpoint's path."""
    metadata = CheckpointMetadata(
        architecture=architecture, architecture_config=dict(architecture_options or {}), num_classes=int(num_classes),
        input_shape=tuple(int(s) for s in input_shape), dataset=dataset, dataset_config=dict(dataset_options or {}),
        extra=dict(extra or {}))
    _check_architecture(model, metadata, plugins or get_plugin_manager())
    return save_checkpoint(path, model, metadata)


def _check_architecture(model: nn.Module, metadata: CheckpointMetadata, host: PluginHost) -> None:
    """Refuse to save ``model`` under an architecture it is not (``load_model`` would refuse the
    file): the named architecture, built with the metadata's options, classes and input shape,
    must have exactly the model's tensors (names and shapes)."""
    built = host.make_architecture(metadata.architecture, metadata.architecture_config).build(
        metadata.num_classes, metadata.input_shape)
    expected = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if expected == actual:
        return
    missing, unexpected = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    shapes = [f"{k} {actual[k]} (expected {expected[k]})" for k in sorted(set(expected) & set(actual))
              if expected[k] != actual[k]]
    problems = ([f"missing {', '.join(missing[:3])}"] if missing else []) + (
        [f"unexpected {', '.join(unexpected[:3])}"] if unexpected else []) + shapes[:3]
    raise InvalidInputError(
        f"the model is not architecture {metadata.architecture!r} with options {metadata.architecture_config}, "
        f"{metadata.num_classes} classes and input shape {metadata.input_shape}: {'; '.join(problems)}. Name the "
        "architecture and options it was built with (a registered one: amun plugins), or save it with "
        "safetensors and load it into your own module")


def load_model(path: str | Path, model: nn.Module | None = None, *, architecture: str | None = None,
               architecture_options: Mapping[str, Any] | None = None, num_classes: int | None = None,
               input_shape: Sequence[int] | None = None, device: str | torch.device = "cpu",
               plugins: PluginHost | None = None) -> tuple[nn.Module, CheckpointMetadata | None]:
    """A model from a safetensors file, in eval mode, and its metadata (None for a plain state dict).

    - An amun_plugin checkpoint (``amun train``, :func:`save_model`) rebuilds its own architecture.
    - ``model`` (your own ``nn.Module``, any architecture): the file's tensors are loaded into it.
    - A plain state dict (``safetensors.torch.save_file(model.state_dict(), path)``) with a registered
      ``architecture`` (and ``architecture_options``, ``num_classes``, ``input_shape``) builds that.
    Keys, shapes and dtypes are checked strictly; nothing is ever unpickled."""
    host = plugins or get_plugin_manager()
    dev = resolve_device(device)
    if model is not None:
        metadata = read_checkpoint_metadata(path) if has_metadata(path) else None
        return load_weights(path, model).to(dev).eval(), metadata
    if has_metadata(path):
        return host.load_model(path, device=dev)
    if architecture is None or num_classes is None or input_shape is None:
        raise InvalidInputError(
            f"{path} is a plain state dict (no amun_plugin metadata): give the model to load it into, or "
            "architecture=NAME, num_classes=K and input_shape=(C, H, W) to build a registered architecture")
    built = host.make_architecture(architecture, dict(architecture_options or {})).build(
        int(num_classes), tuple(int(s) for s in input_shape))
    return load_weights(path, built).to(dev).eval(), None
