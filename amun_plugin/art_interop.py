"""The adapter to the Adversarial Robustness Toolbox (ART): the only place that converts tensors
to numpy arrays and back, and wraps torch models as ART estimators.

ART (https://github.com/Trusted-AI/adversarial-robustness-toolbox) works on numpy arrays and
``PyTorchClassifier`` estimators. Every ART-based component of amun_plugin (the ART attack backend,
ART's membership-inference attacks, the ART bridge) goes through these functions, so conversions
(dtype, device, one-hot labels) are written once. ART is imported lazily: amun_plugin works without
it, and a missing ART raises :class:`BackendUnavailableError` naming the pip package.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.device import model_device, preserved_mode, resolve_device
from amun_plugin.errors import BackendUnavailableError, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from art.estimators.classification import PyTorchClassifier

__all__ = [
    "ART_PIP_NAME",
    "art_session",
    "from_numpy",
    "import_art",
    "labeled_to_art",
    "one_hot",
    "to_numpy",
    "wrap_pytorch_classifier",
]

ART_PIP_NAME = "adversarial-robustness-toolbox"


def import_art(submodule: str = "art") -> Any:
    """Import ``submodule`` of ART (e.g. ``"art.attacks.evasion"``); raise
    :class:`BackendUnavailableError` with the pip command when ART is missing or broken."""
    import importlib

    try:
        return importlib.import_module(submodule)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"this feature needs the Adversarial Robustness Toolbox ({submodule} failed to import: {exc}); "
            f"pip install {ART_PIP_NAME}"
        ) from exc


def to_numpy(t: Tensor) -> np.ndarray:
    """A tensor (any device, any float dtype, with or without grad) as a float32 numpy array."""
    if not isinstance(t, Tensor):
        raise InvalidInputError(f"to_numpy expects a torch.Tensor, got {type(t).__name__}")
    return np.ascontiguousarray(t.detach().cpu().float().numpy(), dtype=np.float32)


def from_numpy(a: np.ndarray, like: Tensor) -> Tensor:
    """A numpy array as a tensor with the dtype and device of ``like``."""
    if not isinstance(a, np.ndarray):
        raise InvalidInputError(f"from_numpy expects a numpy array, got {type(a).__name__}")
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=like.device, dtype=like.dtype)


def one_hot(y: Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels (N,) as a float32 one-hot array (N, num_classes), ART's label format."""
    labels = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if labels.ndim != 1:
        raise InvalidInputError(f"labels must have shape (N,), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise InvalidInputError(f"labels must lie in [0, {num_classes - 1}], found [{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.shape[0], int(num_classes)), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1.0
    return out


def wrap_pytorch_classifier(
    model: nn.Module,
    input_shape: tuple[int, ...],
    num_classes: int,
    device: str | torch.device = "cpu",
    clip_values: tuple[float, float] = (0.0, 1.0),
) -> "PyTorchClassifier":
    """``model`` (inputs (N, *input_shape) in ``clip_values``, returns logits (N, num_classes)) as an
    ART ``PyTorchClassifier`` with a cross-entropy loss and no optimizer, running on ``device``.

    ART moves the model to its device when it is built: the model should already be on ``device``
    (this function does not copy it). ART switches the model's train/eval mode in its calls; callers
    that care wrap their use in :func:`amun_plugin.device.preserved_mode`.
    """
    classification = import_art("art.estimators.classification")
    target = resolve_device(device)
    if int(num_classes) < 2:
        raise InvalidInputError(f"num_classes must be at least 2, got {num_classes}")
    with _current_cuda_device(target):
        return classification.PyTorchClassifier(
            model=model,
            loss=nn.CrossEntropyLoss(),
            input_shape=tuple(int(s) for s in input_shape),
            nb_classes=int(num_classes),
            clip_values=(float(clip_values[0]), float(clip_values[1])),
            device_type="gpu" if target.type == "cuda" else "cpu",
        )


def labeled_to_art(data: LabeledData) -> tuple[np.ndarray, np.ndarray]:
    """``LabeledData`` as ART wants it: x (N, ...) float32 and one-hot labels (N, num_classes)."""
    if not isinstance(data, LabeledData):
        raise InvalidInputError(f"expected LabeledData, got {type(data).__name__}")
    return to_numpy(data.x), one_hot(data.y, data.num_classes)


@contextlib.contextmanager
def art_session(
    model: nn.Module,
    input_shape: tuple[int, ...],
    num_classes: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> Iterator["PyTorchClassifier"]:
    """``model`` wrapped as a ``PyTorchClassifier`` on ``device`` for the duration of the block.

    Inside, torch's CPU RNG and numpy's global RNG are seeded with ``seed`` (ART and the
    scikit-learn models it trains draw from them); on exit both RNG states, the model's device and
    every submodule's train/eval flag are restored, whatever ART did.
    """
    original = model_device(model)
    target = resolve_device(device)
    numpy_state = np.random.get_state()
    try:
        with preserved_mode(model), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            np.random.seed(int(seed) % 2**32)
            model.to(target)
            yield wrap_pytorch_classifier(_Float32Inputs(model), input_shape, num_classes, target)
    finally:
        np.random.set_state(numpy_state)
        model.to(original)


class _Float32Inputs(nn.Module):
    """Casts inputs to float32 before ``model``: ART attacks such as HopSkipJump hand float64
    numpy arrays to ``predict``, which ART turns into float64 tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.float())


@contextlib.contextmanager
def _current_cuda_device(target: torch.device) -> Iterator[None]:
    """ART puts a "gpu" estimator on the *current* CUDA device: make that ``target``."""
    if target.type == "cuda" and target.index is not None:
        with torch.cuda.device(target.index):
            yield
    else:
        yield
