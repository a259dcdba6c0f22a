"""penultimate_features on models with and without a features() method."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amun_plugin.errors import InvalidInputError
from amun_plugin.models import MLP, build_model, penultimate_features


def _plain_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 5), nn.ReLU(), nn.Linear(5, 3)
    )


def test_hooked_layer_output_is_flattened() -> None:
    net = _plain_net()
    x = torch.rand(4, 1, 8, 8)
    feats = penultimate_features(net, x, layer="4")
    assert feats.shape == (4, 5)
    torch.testing.assert_close(net[5](feats), net(x))
    assert penultimate_features(net, x, layer="0").shape == (4, 2 * 6 * 6)
    assert not net[4]._forward_hooks  # the hook is removed again


def test_layer_argument_also_works_on_builtin_models() -> None:
    model = build_model(MLP({"hidden": (8, 6)}), 3, (1, 8, 8), seed=0)
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(penultimate_features(model, x, layer="body.4"), model.features(x))


@pytest.mark.parametrize("layer", [None, "body.2"])
def test_gradients_flow_through_features(layer) -> None:
    """The features keep the graph: d(sum of features)/d(weights) is the one through ``model.features``."""
    model = build_model(MLP({"hidden": (4,)}), 3, (1, 8, 8), seed=0)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    model.features(x).sum().backward()
    expected = model.body[1].weight.grad.clone()
    assert expected.abs().sum() > 0
    model.zero_grad()
    penultimate_features(model, x, layer=layer).sum().backward()
    torch.testing.assert_close(model.body[1].weight.grad, expected)


def test_missing_features_and_bad_layer_name_are_clear_errors() -> None:
    net = _plain_net()
    with pytest.raises(InvalidInputError, match="layer=") as info:
        penultimate_features(net, torch.rand(1, 1, 8, 8))
    assert "'4'" in str(info.value)
    with pytest.raises(InvalidInputError, match="no submodule named 'fc'") as info:
        penultimate_features(net, torch.rand(1, 1, 8, 8), layer="fc")
    assert "'5'" in str(info.value)
