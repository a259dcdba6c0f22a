"""The one-call Python API: ``unlearn(model, forget=..., retain=None, method="amun", **options)``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from amun_plugin.data.base import LabeledData, as_labeled_data, labeled_for_model
from amun_plugin.device import preserved_mode, resolve_device
from amun_plugin.errors import InvalidInputError
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.unlearn.base import ForgetRequest, UnlearnResult

__all__ = ["unlearn", "infer_num_classes"]


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


def infer_num_classes(model: nn.Module, data: Any) -> int:
    """The number of logits ``model`` returns on one sample of ``data``."""
    sample = data.x[:1] if isinstance(data, LabeledData) else as_labeled_data(data, None, "forget").x[:1]
    first = next(iter(list(model.parameters()) + list(model.buffers())), None)
    device = first.device if first is not None else resolve_device("cpu")
    with torch.no_grad(), preserved_mode(model, training=False):
        try:
            out = model(sample.to(device))
        except Exception as exc:  # a user's model can fail in any way on a wrong input
            raise InvalidInputError(f"the model failed on an input of shape {tuple(sample.shape)}: {exc}") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise InvalidInputError("the model must return logits of shape (N, num_classes)")
    return int(out.shape[1])
