"""The ART bridge: unlearn a ``PyTorchClassifier`` the ART way (numpy in, a new classifier out).

    from amun_plugin.art import unlearn_classifier
    new_classifier = unlearn_classifier(classifier, x_forget, y_forget, x_retain, y_retain, method="amun", epochs=5)

(``amun_plugin.art.unlearn`` is the same function under its first name, kept working; the new
name does not shadow :func:`amun_plugin.unlearn` in ``from ... import`` lines.)

How ART's conventions map onto amun_plugin's (inputs in [0, 1], normalisation inside the model):
  * clip_values (lo, hi) (scalars): inputs are mapped to [0, 1] by (x - lo) / (hi - lo), and the
    torch model handed to :func:`amun_plugin.unlearn` starts with the inverse map. Inputs outside
    [lo, hi] are refused. Per-feature clip arrays are refused. Without clip_values the inputs must
    already lie in [0, 1].
  * ART preprocessing: mean/std standardisation (``preprocessing=(mean, std)``, applied at fit and
    predict time) becomes a layer of that torch model. Any other preprocessing or preprocessing
    defence is refused with :class:`UnsupportedSettingError`. Postprocessing defences are kept.
  * labels: integer (N,) or one-hot (N, nb_classes) arrays.
The input classifier is untouched (its model is deep-copied). The result is a new classifier of
the same class with the same loss, input shape, classes, clip values, preprocessing, defences,
channel order and device type, and a fresh optimizer of the input's type and settings.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from amun_plugin.api import unlearn as _unlearn
from amun_plugin.art_interop import import_art
from amun_plugin.data.base import LabeledData, as_labeled_data
from amun_plugin.device import model_device
from amun_plugin.errors import InvalidInputError, UnsupportedSettingError

if TYPE_CHECKING:  # pragma: no cover
    from art.estimators.classification import PyTorchClassifier

__all__ = ["ArtInputPipeline", "unit_model", "unlearn", "unlearn_classifier"]

_TOLERANCE = 1e-6


class ArtInputPipeline(nn.Module):
    """x in [0, 1] -> lo + (hi - lo) x -> (x - mean) / std -> ``model``: the classifier's input
    pipeline in front of its model, so amun_plugin sees a model of [0, 1] inputs."""

    mean: Tensor
    std: Tensor

    def __init__(self, model: nn.Module, low: float, high: float, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.model: nn.Module = model
        self.low, self.high = float(low), float(high)
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    def forward(self, x: Tensor) -> Tensor:
        """x (N, *input_shape) in [0, 1], on any device (moved to the pipeline's) -> logits (N, C)."""
        x = x.to(self.mean.device)
        return self.model((self.low + (self.high - self.low) * x - self.mean) / self.std)


def unlearn_classifier(classifier: "PyTorchClassifier", x_forget: np.ndarray, y_forget: np.ndarray,
                       x_retain: np.ndarray | None = None, y_retain: np.ndarray | None = None,
                       method: str = "amun", *, holdout: tuple[np.ndarray, np.ndarray] | None = None,
                       seed: int = 0, device: str | torch.device | None = None, progress: bool = False,
                       **options: Any) -> "PyTorchClassifier":
    """Unlearn (x_forget, y_forget) from ``classifier`` with the registered ``method``.

    Args:
        classifier: an ART ``PyTorchClassifier`` (not modified), on any device.
        x_forget, y_forget: D_F in the classifier's input space, labels (N,) or one-hot.
        x_retain, y_retain: D_R, both or neither (None: the "without D_R" setting).
        method: a registered unlearner; seed, progress: as :func:`amun_plugin.unlearn`.
        holdout: (x, y) of samples the model never trained on, in the classifier's input space,
            converted like the forget set and passed as ``holdout=`` to :func:`amun_plugin.unlearn`.
        device: default the classifier's device (ART's: the GPU when there is one).
        **options: the method's config fields.

    Returns:
        A new ``PyTorchClassifier`` around the unlearned model.
    """
    pipeline = unit_model(classifier)
    if (x_retain is None) != (y_retain is None):
        raise InvalidInputError("give both x_retain and y_retain, or neither (the setting without D_R)")
    forget = _to_unit_data(classifier, x_forget, y_forget, pipeline.low, pipeline.high, "forget")
    retain = None if x_retain is None else _to_unit_data(classifier, x_retain, y_retain, pipeline.low,
                                                         pipeline.high, "retain")
    held = None
    if holdout is not None:
        if not (isinstance(holdout, tuple) and len(holdout) == 2):
            raise InvalidInputError("holdout must be an (x, y) pair of numpy arrays")
        held = _to_unit_data(classifier, holdout[0], holdout[1], pipeline.low, pipeline.high, "holdout")
    target = device if device is not None else getattr(classifier, "_device", model_device(pipeline))
    result = _unlearn(pipeline, forget, retain, method=method, num_classes=classifier.nb_classes, device=target,
                      seed=seed, progress=progress, holdout=held, **options)
    unlearned = result.model
    if not isinstance(unlearned, ArtInputPipeline):
        raise InvalidInputError(f"method {method!r} returned a {type(unlearned).__name__}, not the model it was given")
    return _rebuild(classifier, unlearned.model)


unlearn = unlearn_classifier  # the bridge's first name, kept working


def unit_model(classifier: "PyTorchClassifier") -> ArtInputPipeline:
    """The torch model amun_plugin sees: a deep copy of the classifier's model behind its clip-range
    map and standardisation, taking inputs in [0, 1]. Unsupported settings raise
    :class:`UnsupportedSettingError`."""
    classification = import_art("art.estimators.classification")
    if not isinstance(classifier, classification.PyTorchClassifier):
        raise InvalidInputError(f"expected an ART PyTorchClassifier, got {type(classifier).__name__}")
    low, high = _clip_range(classifier)
    mean, std = _standardisation(classifier)
    model = copy.deepcopy(classifier.model)
    # ART's PyTorchClassifier puts its model on its own device (the GPU when there is one): the
    # pipeline's buffers follow the model, wherever it is.
    return ArtInputPipeline(model, low, high, mean, std).to(model_device(model))


def _clip_range(classifier: Any) -> tuple[float, float]:
    """The scalar clip range (lo, hi); (0, 1) when the classifier has none."""
    clip = classifier.clip_values
    if clip is None:
        return 0.0, 1.0
    low, high = np.asarray(clip[0]), np.asarray(clip[1])
    if low.size != 1 or high.size != 1:
        raise UnsupportedSettingError("per-feature clip_values are not supported by the ART bridge; use scalar "
                                      "(min, max) clip values")
    if not float(high) > float(low):
        raise InvalidInputError(f"clip_values must have max > min, got {tuple(clip)}")
    return float(low), float(high)


def _standardisation(classifier: Any) -> tuple[Tensor, Tensor]:
    """ART's mean/std preprocessing as broadcastable (1, ...) tensors; other preprocessing refused."""
    utils = import_art("art.preprocessing.standardisation_mean_std.utils")
    standardisation = import_art("art.preprocessing.standardisation_mean_std")
    kinds = (standardisation.StandardisationMeanStd, standardisation.StandardisationMeanStdPyTorch)
    dummy = np.zeros((1, *classifier.input_shape), dtype=np.float32)
    mean, std = np.zeros(()), np.ones(())
    for op in classifier.preprocessing_operations or []:
        if not isinstance(op, kinds):
            raise UnsupportedSettingError(
                f"the ART bridge supports only mean/std standardisation as preprocessing, not {type(op).__name__}; "
                "put other preprocessing inside the torch model or remove it from the classifier")
        if not (op.apply_fit and op.apply_predict):
            raise UnsupportedSettingError("the ART bridge needs standardisation applied at both fit and predict time")
        op_mean, op_std = utils.broadcastable_mean_std(dummy, np.asarray(op.mean), np.asarray(op.std))
        mean, std = _compose(mean, std, np.asarray(op_mean, dtype=np.float64), np.asarray(op_std, dtype=np.float64))
    return torch.as_tensor(np.asarray(mean, dtype=np.float32)), torch.as_tensor(np.asarray(std, dtype=np.float32))


def _compose(mean: np.ndarray, std: np.ndarray, next_mean: np.ndarray, next_std: np.ndarray) -> tuple[Any, Any]:
    """((x - m1)/s1 - m2)/s2 = (x - (m1 + m2 s1)) / (s1 s2): two standardisations as one."""
    return mean + next_mean * std, std * next_std


def _to_unit_data(classifier: Any, x: Any, y: Any, low: float, high: float, name: str) -> LabeledData:
    """Validate an (x, y) pair in the classifier's input space and map x to [0, 1]."""
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise InvalidInputError(f"x_{name} and y_{name} must be numpy arrays (the ART convention)")
    if x.shape[1:] != tuple(classifier.input_shape):
        raise InvalidInputError(f"x_{name} has sample shape {x.shape[1:]}, the classifier expects "
                                f"{tuple(classifier.input_shape)}")
    if y.ndim == 2 and y.shape[1] != classifier.nb_classes:
        raise InvalidInputError(f"one-hot y_{name} has {y.shape[1]} columns, the classifier has "
                                f"{classifier.nb_classes} classes")
    values = x.astype(np.float32)
    if values.size and (values.min() < low - _TOLERANCE or values.max() > high + _TOLERANCE):
        raise InvalidInputError(f"x_{name} has values in [{values.min():.4g}, {values.max():.4g}], outside the "
                                f"classifier's clip range [{low:g}, {high:g}]")
    unit = np.clip((values - low) / (high - low), 0.0, 1.0)
    return as_labeled_data((unit, y), classifier.nb_classes, name)


def _rebuild(classifier: Any, model: nn.Module) -> "PyTorchClassifier":
    """A classifier of the input's class and settings around ``model``, with a fresh optimizer."""
    params = classifier.get_params()
    old_optimizer = params.get("optimizer")
    params["model"] = model
    if old_optimizer is not None:
        params["optimizer"] = type(old_optimizer)(model.parameters(), **old_optimizer.defaults)
    return type(classifier)(**params)
