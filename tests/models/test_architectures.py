"""Built-in architectures: shapes, features/head consistency, normalisation inside the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amun_plugin.config import make_config
from amun_plugin.errors import InvalidInputError
from amun_plugin.models import (
    BUILTIN_ARCHITECTURES,
    CNN,
    MLP,
    CNNConfig,
    Normalize,
    ResNet18,
    SmallResNet,
    build_model,
    penultimate_features,
)

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
SMALL = {"cnn": {"width": 4, "hidden": 16}, "small_resnet": {"width": 4}, "mlp": {"hidden": (16,)}, "resnet18": {}}
FAMILIES = [cls for cls in BUILTIN_ARCHITECTURES if cls.name != "import"]  # "import" builds the user's own model


def _arch(cls: type, **extra: object):
    return cls({**SMALL[cls.name], **extra})


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda c: c.name)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_shapes_and_features_head_consistency(cls: type, shape: tuple[int, ...]) -> None:
    model = build_model(_arch(cls), 7, shape, seed=0).eval()
    x = torch.rand(3, *shape)
    logits = model(x)
    assert logits.shape == (3, 7)
    feats = model.features(x)
    assert feats.ndim == 2 and feats.shape[0] == 3
    assert isinstance(model.head, nn.Linear) and model.head.out_features == 7
    assert model.head.in_features == feats.shape[1]
    torch.testing.assert_close(model.head(feats), logits)
    torch.testing.assert_close(penultimate_features(model, x), feats)


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda c: c.name)
def test_normalisation_lives_inside_the_model(cls: type) -> None:
    mean, std = (0.2, 0.4, 0.6), (0.5, 0.25, 0.1)
    plain = build_model(_arch(cls), 4, (3, 8, 8), seed=1).eval()
    normed = build_model(_arch(cls, mean=mean, std=std), 4, (3, 8, 8), seed=1).eval()
    assert isinstance(normed.normalize, Normalize)
    assert not isinstance(plain.normalize, Normalize)
    x = torch.rand(2, 3, 8, 8)
    shifted = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    # same init seed, so the normalising model on x equals the plain model on normalised x
    torch.testing.assert_close(normed(x), plain(shifted))
    assert "normalize.mean" in normed.state_dict()


def test_single_mean_value_broadcasts_to_all_channels() -> None:
    model = build_model(CNN({"width": 2, "hidden": 4, "mean": [0.5], "std": [0.5]}), 3, (3, 8, 8), seed=0)
    assert model.normalize.mean.tolist() == [0.5, 0.5, 0.5]


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build_model(_arch(SmallResNet), 10, (3, 8, 8), seed=5)
    b = build_model(_arch(SmallResNet), 10, (3, 8, 8), seed=5)
    c = build_model(_arch(SmallResNet), 10, (3, 8, 8), seed=6)
    torch.testing.assert_close(torch.rand(3), expected_next)
    state_b = b.state_dict()
    for name, value in a.state_dict().items():
        assert torch.equal(value, state_b[name]), name
    assert not torch.equal(a.stem[0].weight, c.stem[0].weight)


def test_resnet18_is_the_cifar_variant() -> None:
    model = build_model(ResNet18(), 10, (3, 32, 32), seed=0)
    stem = model.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert [len(stage) for stage in model.stages] == [2, 2, 2, 2]
    assert model.head.in_features == 512
    assert sum(p.numel() for p in model.parameters()) == 11_173_962


def test_small_resnet_stages_and_widths() -> None:
    model = build_model(SmallResNet({"width": 4, "blocks_per_stage": 2}), 10, (1, 28, 28), seed=0)
    assert [len(stage) for stage in model.stages] == [2, 2, 2]
    assert model.head.in_features == 16


def test_cnn_structure_and_any_channel_count() -> None:
    model = build_model(CNN({"width": 3, "hidden": 5}), 2, (5, 9, 13), seed=0).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [3, 3, 6, 6]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2
    assert model(torch.rand(2, 5, 9, 13)).shape == (2, 2)
    assert model.features(torch.rand(2, 5, 9, 13)).shape == (2, 5)


def test_mlp_accepts_tabular_inputs_and_empty_hidden() -> None:
    model = build_model(MLP({"hidden": []}), 3, (6,), seed=0)
    assert model(torch.rand(4, 6)).shape == (4, 3)
    assert model.features(torch.rand(4, 6)).shape == (4, 6)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match="at least 8x8"):
        CNN().build(10, (1, 7, 7))
    with pytest.raises(InvalidInputError, match=r"\(C, H, W\)"):
        SmallResNet().build(10, (784,))
    with pytest.raises(InvalidInputError, match="channels"):
        CNN({"mean": (0.1, 0.2), "std": (1.0, 1.0)}).build(10, (3, 8, 8))
    with pytest.raises(InvalidInputError, match="std"):
        make_config(CNNConfig, {"mean": [0.5], "std": [0.0]})
    with pytest.raises(InvalidInputError, match="positive"):
        CNN({"width": 0})
    with pytest.raises(InvalidInputError, match="unknown option"):
        MLP({"depth": 3})
    with pytest.raises(InvalidInputError, match="num_classes"):
        MLP().build(1, (4,))
