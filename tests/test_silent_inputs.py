"""Inputs that used to pass silently: overlapping sets, an already-forgotten forget set, and a
model with fewer outputs than the labels."""

from __future__ import annotations

import warnings

import pytest
import torch
from tiny_fixtures import TinyNet

import amun_plugin
from amun_plugin.data.base import LabeledData
from amun_plugin.data.overlap import shared_samples
from amun_plugin.errors import InvalidInputError
from amun_plugin.unlearn.base import ForgetRequest


def test_shared_samples_finds_exact_copies_only(tiny_data):
    x = tiny_data.x
    other = torch.cat([x[10:20], x[:5] + 1e-3, x[40:41]])
    found = shared_samples(x, other)
    assert found.nonzero(as_tuple=True)[0].tolist() == list(range(10, 20)) + [40]


def test_retain_containing_the_forget_set_is_refused_and_partial_overlap_warned(tiny_data):
    forget = tiny_data.subset(range(6), "forget")
    with pytest.raises(InvalidInputError, match="retain contains every one of the 6 forget samples"):
        ForgetRequest(forget, tiny_data.subset(range(90), "retain"))
    with pytest.warns(UserWarning, match="retain contains 2 of the 6 forget samples"):
        ForgetRequest(forget, tiny_data.subset(range(4, 90), "retain"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ForgetRequest(forget, tiny_data.subset(range(6, 90), "retain"))  # disjoint: silent


def test_audit_refuses_a_test_set_holding_the_forget_set(tiny_model, tiny_data):
    forget, retain = tiny_data.subset(range(6), "forget"), tiny_data.subset(range(6, 60), "retain")
    with pytest.raises(InvalidInputError, match="test contains every one of the 6 forget samples"):
        amun_plugin.audit(tiny_model, retain, forget, tiny_data.subset(range(0, 90), "test"),
                          evaluators=["accuracy"], plots=False)


def test_a_forget_set_the_model_already_misclassifies_is_warned(tiny_model, tiny_data):
    forget = tiny_data.subset(range(6), "forget")
    with torch.no_grad():
        wrong = (tiny_model(forget.x).argmax(dim=1) + 1) % 3
    mislabelled = LabeledData(forget.x, wrong, 3, "forget")
    with pytest.warns(UserWarning, match="already misclassifies all 6 forget samples"):
        amun_plugin.unlearn(tiny_model, mislabelled, method="ga", epochs=1)


def test_fewer_model_outputs_than_labels_says_how_many_outputs(tiny_data):
    x, y = tiny_data.x[:6], torch.tensor([0, 1, 2, 3, 4, 3])
    with pytest.raises(InvalidInputError, match="the model has 3 outputs"):
        amun_plugin.unlearn(TinyNet(), (x, y), method="ga", epochs=1)
