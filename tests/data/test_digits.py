"""The bundled scikit-learn digits."""

from __future__ import annotations

import pytest
import torch

from amun_plugin.data import DigitsConfig, DigitsSource
from amun_plugin.errors import InvalidInputError

pytest.importorskip("sklearn")


def test_digits_shapes_range_and_classes() -> None:
    bundle = DigitsSource().load()
    assert bundle.name == "digits" and bundle.classes == tuple("0123456789")
    assert bundle.input_shape == (1, 8, 8) and bundle.train.x.dtype == torch.float32
    assert len(bundle.train) + len(bundle.test) == 1797
    assert len(bundle.test) == round(0.3 * 1797)
    x = torch.cat([bundle.train.x, bundle.test.x])
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    counts = torch.bincount(bundle.test.y, minlength=10)
    assert int(counts.max() - counts.min()) <= 3  # stratified: about 54 of each digit


def test_digits_split_is_seeded_and_disjoint() -> None:
    a = DigitsSource({"seed": 0, "test_fraction": 0.2}).load()
    b = DigitsSource(DigitsConfig(seed=0, test_fraction=0.2)).load()
    c = DigitsSource({"seed": 1, "test_fraction": 0.2}).load()
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.test.x, c.test.x)
    train_rows = {tuple(r) for r in a.train.x.flatten(1).tolist()}
    test_rows = [tuple(r) for r in a.test.x.flatten(1).tolist()]
    # the digits contain a few exact duplicate images; nearly all test rows must be unseen
    assert sum(r in train_rows for r in test_rows) < 10


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, "half"])
def test_bad_test_fraction_is_refused(fraction: object) -> None:
    with pytest.raises(InvalidInputError, match="test_fraction"):
        DigitsSource({"test_fraction": fraction})


def test_unknown_option_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown option"):
        DigitsSource({"train_size": 10})
