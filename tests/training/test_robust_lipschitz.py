"""Lipschitz clipping (``amun_plugin.training.robust.LipschitzClipper``): the spectral norm of each
Conv2d / Linear layer, as the linear operator on its actual input shape, measured here exactly from
the dense matrix of that operator (built with the layer's own forward on the standard basis)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from amun_plugin.training.robust import LipschitzClipper, LipschitzConfig

INPUT = (2, 5, 5)


def _dense(layer: nn.Module, input_shape: tuple[int, ...]) -> Tensor:
    """The (out_dim, in_dim) matrix of the layer's linear part: layer(e_i) - layer(0) for each basis e_i."""
    n = math.prod(input_shape)
    with torch.no_grad():
        out = layer(torch.eye(n).view(n, *input_shape)) - layer(torch.zeros(1, *input_shape))
    return out.reshape(n, -1).t()


def _true_norm(layer: nn.Module, input_shape: tuple[int, ...]) -> float:
    return float(torch.linalg.matrix_norm(_dense(layer, input_shape).double(), ord=2))


def _conv_net(padding_mode: str = "zeros", scale: float = 4.0) -> tuple[nn.Sequential, list[tuple[int, ...]]]:
    """conv 3x3 (padding_mode) -> ReLU -> conv 3x3 stride 2 -> ReLU -> linear, on (2, 5, 5); every
    weight scaled by ``scale``; returns the net and each layer's input shape."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, padding_mode=padding_mode), nn.ReLU(),
                        nn.Conv2d(3, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(18, 4))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return net, [INPUT, (3, 5, 5), (18,)]


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("padding_mode", ["zeros", "circular", "reflect"])
def test_every_layer_ends_at_or_below_the_bound_as_an_operator(padding_mode: str) -> None:
    net, shapes = _conv_net(padding_mode)
    layers = _layers(net)
    assert all(_true_norm(layer, shape) > 1.0 for layer, shape in zip(layers, shapes))  # all need clipping
    LipschitzClipper(net, INPUT, LipschitzConfig(max_norm=0.5), seed=0)(200)
    for layer, shape in zip(layers, shapes):
        assert 0.5 * (1 - 1e-3) <= _true_norm(layer, shape) <= 0.5 * (1 + 1e-4)


def test_layers_already_below_the_bound_are_unchanged_and_sigmas_are_reported() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    with torch.no_grad():
        net[0].weight.mul_(0.01)
        net[2].weight.mul_(10.0)
    small, big = net[0].weight.detach().clone(), net[2].weight.detach().clone()
    before = [_true_norm(net[0], (6,)), _true_norm(net[2], (5,))]
    assert before[0] < 1.0 < before[1]
    sigmas = LipschitzClipper(net, (6,), LipschitzConfig(max_norm=1.0), seed=0)(200)
    assert sigmas == pytest.approx(before, rel=1e-4)  # the norms before clipping
    assert torch.equal(net[0].weight, small)
    torch.testing.assert_close(net[2].weight, big / before[1], rtol=1e-4, atol=0)  # W * max_norm / sigma


def test_the_clipped_network_keeps_the_product_bound_on_random_pairs() -> None:
    net, shapes = _conv_net()
    generator = torch.Generator().manual_seed(0)
    x, x2 = torch.rand(500, *INPUT, generator=generator), torch.rand(500, *INPUT, generator=generator)

    def worst_ratio() -> float:
        with torch.no_grad():
            return float(((net(x) - net(x2)).flatten(1).norm(dim=1) / (x - x2).flatten(1).norm(dim=1)).max())

    assert worst_ratio() > 0.5**3  # unclipped, these pairs break the bound the clip will give
    LipschitzClipper(net, INPUT, LipschitzConfig(max_norm=0.5), seed=0)(200)
    bound = math.prod(_true_norm(layer, shape) for layer, shape in zip(_layers(net), shapes))
    assert bound <= 0.5**3 * (1 + 1e-3)  # ReLU is 1-Lipschitz: the product bounds the network
    assert worst_ratio() <= bound * (1 + 1e-5)


def test_power_iteration_vectors_persist_between_calls() -> None:
    net, shapes = _conv_net()
    stepwise = LipschitzClipper(net, INPUT, LipschitzConfig(), seed=3)
    at_once = LipschitzClipper(net, INPUT, LipschitzConfig(), seed=3)
    for layer, shape in zip(_layers(net), shapes):
        assert stepwise.vectors[layer].shape == (1, *shape)
        assert torch.equal(stepwise.vectors[layer], at_once.vectors[layer])  # same seed, same start
        estimates = [stepwise._power_iteration(layer, 1) for _ in range(30)]
        assert estimates[-1] == pytest.approx(at_once._power_iteration(layer, 30), rel=1e-5)  # warm start
        torch.testing.assert_close(stepwise.vectors[layer], at_once.vectors[layer], rtol=0, atol=1e-5)
        assert float(stepwise.vectors[layer].norm()) == pytest.approx(1.0, abs=1e-5)
        true = _true_norm(layer, shape)
        assert all(b >= a - 1e-5 * true for a, b in zip(estimates, estimates[1:]))  # power iteration climbs
        assert max(estimates) <= true * (1 + 1e-5)  # ||A v|| with unit v never overshoots
        assert estimates[-1] >= true * (1 - 1e-2)
    other = LipschitzClipper(net, INPUT, LipschitzConfig(), seed=4)
    assert not torch.equal(other.vectors[_layers(net)[0]], at_once.vectors[_layers(net)[0]])


def test_clipping_works_under_no_grad() -> None:
    net, _ = _conv_net()
    reference, _ = _conv_net()
    with torch.no_grad():
        sigmas = LipschitzClipper(net, INPUT, LipschitzConfig(max_norm=0.5), seed=0)(20)
    assert sigmas == LipschitzClipper(reference, INPUT, LipschitzConfig(max_norm=0.5), seed=0)(20)
    for a, b in zip(net.parameters(), reference.parameters()):
        assert torch.equal(a, b)
