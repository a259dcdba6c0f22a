"""The ART adapter: tensor <-> numpy conversion and PyTorchClassifier wrapping."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from amun_plugin import art_interop
from amun_plugin.art_interop import from_numpy, one_hot, to_numpy, wrap_pytorch_classifier
from amun_plugin.device import preserved_mode
from amun_plugin.errors import BackendUnavailableError, InvalidInputError


def _model() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)).eval()


def test_to_numpy_and_back():
    t = torch.rand(3, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    a = to_numpy(t)
    assert a.dtype == np.float32 and a.shape == (3, 1, 4, 4) and a.flags["C_CONTIGUOUS"]
    like = torch.zeros(1, dtype=torch.float32)
    back = from_numpy(a, like=like)
    assert back.dtype == torch.float32 and back.device == like.device and not back.requires_grad
    assert torch.allclose(back.double(), t.detach(), atol=1e-7)
    with pytest.raises(InvalidInputError):
        to_numpy(a)
    with pytest.raises(InvalidInputError):
        from_numpy(t, like=like)


def test_one_hot():
    out = one_hot(torch.tensor([2, 0, 1]), 4)
    assert out.dtype == np.float32
    assert np.array_equal(out, np.eye(4, dtype=np.float32)[[2, 0, 1]])
    assert np.array_equal(one_hot(np.array([3]), 4), [[0, 0, 0, 1]])
    with pytest.raises(InvalidInputError):
        one_hot(torch.tensor([4]), 4)


def test_wrapped_classifier_matches_the_model():
    model = _model()
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    classifier = wrap_pytorch_classifier(model, (1, 4, 4), 4, "cpu")
    assert classifier.nb_classes == 4 and tuple(classifier.input_shape) == (1, 4, 4)
    assert tuple(classifier.clip_values) == (0.0, 1.0)
    with torch.no_grad():
        expected = model(x).numpy()
    with preserved_mode(model):
        predicted = classifier.predict(to_numpy(x))
    assert np.allclose(predicted, expected, atol=1e-6)
    grad = classifier.loss_gradient(to_numpy(x), one_hot(torch.tensor([0, 1, 2, 3, 0]), 4))
    assert grad.shape == (5, 1, 4, 4) and np.abs(grad).sum() > 0


def test_invalid_class_count():
    with pytest.raises(InvalidInputError):
        wrap_pytorch_classifier(_model(), (1, 4, 4), 1, "cpu")


def test_missing_art_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "art.estimators.classification", None)  # import now fails
    with pytest.raises(BackendUnavailableError, match="pip install adversarial-robustness-toolbox"):
        wrap_pytorch_classifier(_model(), (1, 4, 4), 4, "cpu")
    with pytest.raises(ImportError):
        art_interop.import_art("art.estimators.classification")
