"""The ART bridge as an ART user meets it: fit with ART, attack, unlearn, attack again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_fixtures import TinyNet, make_tiny_data
from torch import nn

import amun_plugin.art as art_bridge
from amun_plugin.art import unit_model, unlearn, unlearn_classifier
from amun_plugin.errors import InvalidInputError, MissingInputError, UnsupportedSettingError
from amun_plugin.unlearn.base import UnlearnResult

art_classification = pytest.importorskip("art.estimators.classification")
membership = pytest.importorskip("art.attacks.inference.membership_inference")


def make_classifier(model: nn.Module, clip=(0.0, 1.0), preprocessing=(0.5, 0.25), **kwargs):
    return art_classification.PyTorchClassifier(
        model=model, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5),
        input_shape=(1, 4, 4), nb_classes=3, clip_values=clip, preprocessing=preprocessing, **kwargs)


def numpy_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    data = make_tiny_data(n, seed)
    return data.x.numpy(), np.eye(3, dtype=np.float32)[data.y.numpy()]


def test_real_art_workflow_keeps_the_input_classifier():
    torch.manual_seed(0)
    x, y = numpy_data(90, seed=0)
    x_test, y_test = numpy_data(45, seed=1)
    classifier = make_classifier(TinyNet())
    classifier.fit(x, y, batch_size=16, nb_epochs=30, verbose=False)
    attack = membership.MembershipInferenceBlackBox(classifier, attack_model_type="rf")
    attack.fit(x[15:60], y[15:60], x_test[:22], y_test[:22])
    before = attack.infer(x[:15], y[:15], probabilities=True)
    weights = {k: v.clone() for k, v in classifier.model.state_dict().items()}

    new = unlearn(classifier, x[:15], y[:15], x[15:], y[15:], method="amun", epochs=2, lr=0.05)

    assert all(torch.equal(v, classifier.model.state_dict()[k]) for k, v in weights.items())
    assert type(new) is type(classifier) and new.model is not classifier.model
    assert not all(torch.equal(v, new.model.state_dict()[k]) for k, v in weights.items())
    np.testing.assert_array_equal(new.clip_values, classifier.clip_values)
    assert float(new.preprocessing.mean) == 0.5 and float(new.preprocessing.std) == 0.25
    assert new.nb_classes == 3 and tuple(new.input_shape) == (1, 4, 4)
    after = membership.MembershipInferenceBlackBox(new, attack_model_type="rf")
    after.fit(x[15:60], y[15:60], x_test[:22], y_test[:22])
    scores = after.infer(x[:15], y[:15], probabilities=True)
    assert scores.shape == before.shape == (15, 1)
    new.fit(x[15:], y[15:], batch_size=16, nb_epochs=1, verbose=False)  # the fresh optimizer trains the new model
    assert all(torch.equal(v, classifier.model.state_dict()[k]) for k, v in weights.items())


def test_clip_range_and_standardisation_become_part_of_the_torch_model():
    torch.manual_seed(1)
    classifier = make_classifier(TinyNet(), clip=(0.0, 255.0), preprocessing=(np.float32(100.0), np.float32(50.0)))
    x01 = make_tiny_data(12).x
    pipeline = unit_model(classifier).eval()
    expected = classifier.predict((x01 * 255.0).numpy())
    np.testing.assert_allclose(pipeline(x01).detach().cpu().numpy(), expected, rtol=1e-5, atol=1e-5)
    assert pipeline.model is not classifier.model


def test_unsupported_preprocessing_and_clip_values_are_refused():
    from art.defences.preprocessor import FeatureSqueezing

    defended = make_classifier(TinyNet(), preprocessing_defences=FeatureSqueezing(clip_values=(0.0, 1.0)))
    x, y = numpy_data(6, seed=0)
    with pytest.raises(UnsupportedSettingError, match="standardisation"):
        unlearn(defended, x, y)
    per_feature = make_classifier(TinyNet(), clip=(np.zeros((1, 4, 4)), np.ones((1, 4, 4))))
    with pytest.raises(UnsupportedSettingError, match="per-feature"):
        unlearn(per_feature, x, y)


@pytest.mark.parametrize("case, message", [
    ("outside_clip", "outside the classifier's clip range"),
    ("lengths", "inputs but"),
    ("labels", "labels must lie in"),
    ("empty", "empty"),
    ("retain_half", "both x_retain and y_retain"),
    ("not_art", "PyTorchClassifier"),
    ("shape", "sample shape"),
])
def test_bad_inputs_get_clear_errors(case, message):
    classifier = make_classifier(TinyNet())
    x, y = numpy_data(6, seed=0)
    labels = np.array([0, 1, 2, 0, 1, 2])
    args = {
        "outside_clip": (classifier, x * 3.0, y), "lengths": (classifier, x, y[:4]),
        "labels": (classifier, x, labels + 1), "empty": (classifier, x[:0], labels[:0]),
        "retain_half": (classifier, x, y, x), "not_art": (TinyNet(), x, y), "shape": (classifier, x[:, :, :2], y),
    }[case]
    with pytest.raises(InvalidInputError, match=message):
        unlearn(*args)


def test_the_pipeline_follows_the_classifiers_model_to_its_device():
    """ART may put the model on a GPU; the bridge must follow it. The 'meta' device stands in for
    CUDA here: anything left on the CPU would meet a meta tensor and fail."""
    classifier = make_classifier(TinyNet())
    classifier.model.to("meta")
    pipeline = unit_model(classifier)
    assert pipeline.mean.device.type == "meta" and pipeline.std.device.type == "meta"
    out = pipeline(make_tiny_data(12).x)  # CPU inputs are moved to the pipeline's device
    assert out.device.type == "meta" and out.shape == (12, 3)


def test_the_bridge_unlearns_on_the_classifiers_device_and_forwards_holdout(monkeypatch):
    seen = {}

    def spy(model, forget, retain, **kwargs):
        seen.update(kwargs, model_device=model.mean.device, forget=forget)
        return UnlearnResult(model, "amun", {})

    monkeypatch.setattr(art_bridge, "_unlearn", spy)
    classifier = make_classifier(TinyNet(), clip=(0.0, 255.0))
    classifier._device = torch.device("meta")  # what ART sets on a GPU machine: cuda:N
    x, y = numpy_data(6, seed=0)
    new = unlearn_classifier(classifier, x * 255, y, holdout=(x[:3] * 255, y[:3]))
    assert seen["device"] == torch.device("meta")
    assert torch.allclose(seen["holdout"].x, torch.as_tensor(x[:3]), atol=1e-6)
    assert seen["holdout"].y.tolist() == y[:3].argmax(1).tolist()
    assert type(new) is type(classifier)
    assert unlearn is unlearn_classifier  # the first name keeps working


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_art_user_on_a_gpu_gets_the_two_line_experience():
    torch.manual_seed(0)
    x, y = numpy_data(60, seed=0)
    classifier = make_classifier(TinyNet(), device_type="gpu")
    classifier.fit(x, y, batch_size=16, nb_epochs=5, verbose=False)
    assert next(classifier.model.parameters()).is_cuda
    new = unlearn_classifier(classifier, x[:10], y[:10], x[10:], y[10:], method="amun", epochs=1)
    assert next(new.model.parameters()).is_cuda
    assert new.predict(x[:5]).shape == (5, 3)


def test_method_auto_runs_through_the_art_bridge_with_a_holdout():
    torch.manual_seed(0)
    x, y = numpy_data(90, seed=0)
    x_test, y_test = numpy_data(60, seed=1)
    classifier = make_classifier(TinyNet())
    classifier.fit(x, y, batch_size=16, nb_epochs=20, verbose=False)
    candidates = [{"method": "ft", "options": {"epochs": 2, "lr": 0.05}, "label": "FT"},
                  {"method": "rl", "options": {"epochs": 2, "lr": 0.05}, "label": "RL"}]
    new = unlearn_classifier(classifier, x[:15], y[:15], x[15:], y[15:], method="auto", holdout=(x_test, y_test),
                             candidates=candidates, accuracy_budget=100.0)
    assert type(new) is type(classifier) and new.model is not classifier.model
    with pytest.raises(MissingInputError, match="needs holdout"):
        unlearn_classifier(classifier, x[:15], y[:15], x[15:], y[15:], method="auto", candidates=candidates)
