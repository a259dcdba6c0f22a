"""LabeledData / DatasetBundle validation and as_labeled_data conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amun_plugin.data import DatasetBundle, LabeledData, as_labeled_data
from amun_plugin.errors import InvalidInputError


def _x(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 1, 3, 3)


@pytest.mark.parametrize(
    ("x", "y", "num_classes", "message"),
    [
        (_x(), torch.tensor([0, 1, 2]), 3, "4 inputs but 3 labels"),
        (_x(), torch.zeros(4, 1, dtype=torch.long), 3, r"y must have shape \(N,\)"),
        (torch.rand(4), torch.zeros(4, dtype=torch.long), 3, r"x must have shape \(N, \.\.\.\)"),
        (_x(), torch.tensor([0, 1, 2, 3]), 3, r"labels must lie in \[0, 2\], found values in \[0, 3\]"),
        (_x(), torch.tensor([0, -1, 2, 1]), 3, r"labels must lie in \[0, 2\]"),
        (_x() * 255, torch.zeros(4, dtype=torch.long), 3, r"pixels must lie in \[0, 1\]"),
        (_x() - 0.5, torch.zeros(4, dtype=torch.long), 3, r"pixels must lie in \[0, 1\]"),
        (torch.full((4, 1, 3, 3), float("nan")), torch.zeros(4, dtype=torch.long), 3, "NaN"),
        (torch.zeros(0, 1, 3, 3), torch.zeros(0, dtype=torch.long), 3, "is empty"),
        (torch.zeros(4, 1, 3, 3, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), 3, "float tensor"),
        (_x(), torch.zeros(4), 3, "integer class labels"),
        (_x(), torch.zeros(4, dtype=torch.long), 1, "at least 2"),
    ],
)
def test_invalid_data_is_refused(x: torch.Tensor, y: torch.Tensor, num_classes: int, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        LabeledData(x, y, num_classes)


def test_valid_data_is_normalised_to_float32_and_int64() -> None:
    data = LabeledData(_x().double(), torch.tensor([0, 1, 2, 1], dtype=torch.int32), 3, "d")
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    assert len(data) == 4 and data.input_shape == (1, 3, 3)
    sub = data.subset(np.array([3, 0]), name="s")
    assert sub.name == "s" and sub.y.tolist() == [1, 0]


def test_one_hot_labels_via_as_labeled_data() -> None:
    y = np.eye(5, dtype=np.float32)[[4, 0, 2]]
    data = as_labeled_data((np.random.default_rng(0).random((3, 1, 2, 2)), y))
    assert data.num_classes == 5 and data.y.tolist() == [4, 0, 2] and data.x.dtype == torch.float32


def test_as_labeled_data_from_torch_dataset_and_errors() -> None:
    dataset = torch.utils.data.TensorDataset(_x(3), torch.tensor([0, 1, 0]))
    data = as_labeled_data(dataset, num_classes=2, name="ds")
    assert len(data) == 3 and data.num_classes == 2 and data.name == "ds"
    with pytest.raises(InvalidInputError, match="has 2 classes, expected 3"):
        as_labeled_data(data, num_classes=3)
    with pytest.raises(InvalidInputError, match="expected LabeledData"):
        as_labeled_data("not data")
    with pytest.raises(InvalidInputError, match=r"pixels must lie in \[0, 1\]"):
        as_labeled_data((np.full((2, 1, 2, 2), 255.0), np.array([0, 1])))


def test_bundle_checks_consistency() -> None:
    train = LabeledData(_x(), torch.tensor([0, 1, 0, 1]), 2)
    with pytest.raises(InvalidInputError, match="input shapes differ"):
        DatasetBundle("b", train, LabeledData(torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), 2), ("a", "b"))
    with pytest.raises(InvalidInputError, match="class counts"):
        DatasetBundle("b", train, train, ("a", "b", "c"))
