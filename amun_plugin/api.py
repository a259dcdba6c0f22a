"""The Python API: ``unlearn(model, forget=..., retain=None, method="amun", **options)`` and
``audit`` / ``audit_many`` and ``continuous_session``, each with the plugin host (a fresh
``get_plugin_manager()`` unless one is given) standing behind the names it takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from amun_plugin.data.base import LabeledData, labeled_for_model
from amun_plugin.evaluate import audit as _audit
from amun_plugin.evaluate.audit import EvaluatorSpec
from amun_plugin.evaluate.reference import ReferenceBank
from amun_plugin.models.inference import infer_num_classes
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.unlearn.base import ForgetRequest, UnlearnResult
from amun_plugin.unlearn.continuous import ContinuousSession

__all__ = ["audit", "audit_many", "continuous_session", "infer_num_classes", "unlearn"]


def unlearn(
    model: nn.Module,
    forget: Any,
    retain: Any = None,
    *,
    method: str = "amun",
    validation: Any = None,
    holdout: Any = None,
    adversarial: Any = None,
    num_classes: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
    plugins: PluginHost | None = None,
    **options: Any,
) -> UnlearnResult:
    """Unlearn ``forget`` from ``model`` with the registered method ``method``.

    Args:
        model: a classifier returning logits (N, num_classes) for inputs in [0, 1]; not modified.
        forget: D_F as ``LabeledData``, an ``(x, y)`` pair (tensors or numpy; y may be one-hot)
            or a torch ``Dataset`` of ``(x, y)``.
        retain: D_R in the same forms, or None for the "without D_R" setting.
        method: a registered unlearner name (``amun plugins`` lists them).
        validation: held-out non-members (methods that need them, e.g. DAU).
        holdout: held-out samples the model never trained on (a validation or test split, same
            forms as ``forget``); AMUN, AMUN+SalUn and AMUN-A calibrate their fine-tuning on them
            (``amun_plugin.unlearn.calibration``). Without it they run their fixed defaults.
        adversarial: a precomputed ``AdversarialSet`` of ``forget`` for AMUN (reuse / transfer).
        num_classes: defaults to the width of the model's output.
        device: "cpu", "cuda", "cuda:N" or "auto".  seed: all randomness.  progress: tqdm bars.
        plugins: a plugin host (default: a fresh ``get_plugin_manager()``).
        **options: the method's config fields (e.g. ``epochs=5, lr=0.01``); unknown ones are errors.

    Returns:
        ``UnlearnResult`` with ``.model`` (a new model) and ``.stats``; it unpacks as
        ``model, stats = unlearn(...)``.
    """
    host = plugins or get_plugin_manager()
    unlearner = host.unlearners.get(method)(options)
    inferred = num_classes is None
    if inferred:
        num_classes = infer_num_classes(model, forget)

    def labeled(data: Any, name: str) -> Any:
        return None if data is None else labeled_for_model(data, num_classes, name, model_outputs=inferred)

    request = ForgetRequest(
        forget=labeled(forget, "forget"),
        retain=labeled(retain, "retain"),
        validation=labeled(validation, "validation"),
        adversarial=adversarial,
        holdout=labeled(holdout, "holdout"),
    )
    return unlearner.run(model, request, plugins=host, device=device, seed=seed, progress=progress)


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
