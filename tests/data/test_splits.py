"""Forget / retain splits: determinism, the three kinds, and every refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from amun_plugin.data import LabeledData, SplitConfig, SplitKind, UnlearningSplit, make_split
from amun_plugin.data.splits import stratified_indices, validate_forget_indices
from amun_plugin.errors import InvalidInputError


@pytest.fixture
def train() -> LabeledData:
    y = torch.arange(40) % 4  # 10 samples per class, 4 classes
    x = torch.linspace(0, 1, 40).view(40, 1, 1, 1).expand(40, 1, 2, 2).contiguous()
    return LabeledData(x, y, num_classes=5, name="train")  # class 4 has no samples


def _check_partition(split: UnlearningSplit, n: int) -> None:
    both = np.concatenate([split.forget_indices, split.retain_indices])
    assert np.array_equal(np.sort(both), np.arange(n))
    assert split.forget_indices.dtype == np.int64 and split.retain_indices.dtype == np.int64
    assert np.all(np.diff(split.forget_indices) > 0) and np.all(np.diff(split.retain_indices) > 0)


def test_random_split_size_determinism_and_seed(train: LabeledData) -> None:
    split = make_split(train, SplitConfig(fraction=0.25, seed=3))
    _check_partition(split, 40)
    assert split.forget_indices.size == 10
    assert split == make_split(train, {"kind": "random", "fraction": 0.25, "seed": 3})
    assert split != make_split(train, SplitConfig(fraction=0.25, seed=4))


def test_forget_and_retain_views(train: LabeledData) -> None:
    split = make_split(train, SplitConfig(kind=SplitKind.INDICES, indices=(5, 1, 30)))
    forget, retain = split.forget(train), split.retain(train)
    assert forget.name == "forget" and retain.name == "retain"
    assert forget.y.tolist() == [1, 1, 2]
    assert torch.equal(forget.x, train.x[[1, 5, 30]])
    assert len(retain) == 37 and retain.num_classes == 5


def test_class_split_takes_every_sample_of_the_classes(train: LabeledData) -> None:
    split = make_split(train, SplitConfig(kind="classes", classes=(1, 3)))
    _check_partition(split, 40)
    assert set(split.forget(train).y.tolist()) == {1, 3}
    assert set(split.retain(train).y.tolist()) == {0, 2}


def test_random_split_respects_exclude(train: LabeledData) -> None:
    exclude = np.arange(0, 20)
    split = make_split(train, SplitConfig(fraction=0.5, seed=0), exclude=exclude)
    assert split.forget_indices.size == 10
    assert split.forget_indices.min() >= 20
    assert np.isin(exclude, split.retain_indices).all()


def test_dict_round_trip_is_json_friendly(train: LabeledData) -> None:
    split = make_split(train, SplitConfig(fraction=0.1, seed=1))
    data = json.loads(json.dumps(split.to_dict()))
    assert data["num_samples"] == 40
    assert UnlearningSplit.from_dict(data) == split
    compact = {"num_samples": 40, "forget_indices": data["forget_indices"]}
    assert UnlearningSplit.from_dict(compact) == split


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"fraction": 0.0}, "strictly between 0 and 1"),
        ({"fraction": 1.0}, "strictly between 0 and 1"),
        ({"fraction": 0.001}, "rounds to an empty forget set"),
        ({"kind": "everything"}, "not one of random, indices, classes"),
        ({"kind": "indices"}, "needs a non-empty 'indices'"),
        ({"kind": "indices", "indices": [3, 7, 3, 7, 9]}, "duplicates: 3, 7"),
        ({"kind": "indices", "indices": [1, 40, 99]}, r"out of range: 40, 99 \(the train set has N=40"),
        ({"kind": "indices", "indices": [1, -2]}, "negative value"),
        ({"kind": "indices", "indices": [1, 2.5]}, "expected int"),
        ({"kind": "indices", "indices": list(range(40))}, "leaving the retain set empty"),
        ({"kind": "classes"}, "needs a non-empty 'classes'"),
        ({"kind": "classes", "classes": [1, 5]}, r"classes out of range: 5; class ids are 0\.\.4"),
        ({"kind": "classes", "classes": [4]}, "no samples of class"),
        ({"kind": "classes", "classes": [0, 1, 2, 3]}, "retain set empty"),
        ({"frac": 0.1}, "unknown option"),
    ],
)
def test_bad_configs_are_refused(train: LabeledData, config: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        make_split(train, config)


def test_overlap_with_exclude_names_the_indices(train: LabeledData) -> None:
    config = SplitConfig(kind=SplitKind.INDICES, indices=(2, 4, 6))
    with pytest.raises(InvalidInputError, match="overlap the excluded indices at 4, 6"):
        make_split(train, config, exclude=np.array([4, 6, 8]))
    with pytest.raises(InvalidInputError, match="excluded indices out of range: 77"):
        make_split(train, config, exclude=np.array([77]))


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([], "empty"),
        (np.array([0.0, 1.0]), "must be integers"),
        (np.array([True, False]), "boolean mask"),
        ([[1, 2]], "1-D"),
        (["a"], "must be integers, got 'a'"),
        (list(range(20)) + list(range(20)), r"duplicates: 0, 1, 2, 3, 4, \.\.\. \(20 in total\)"),
    ],
)
def test_validate_forget_indices_refusals(indices: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_forget_indices(indices, 50)


def test_validate_forget_indices_sorts_and_accepts_tensors() -> None:
    out = validate_forget_indices(torch.tensor([9, 2, 5]), 10)
    assert out.dtype == np.int64 and out.tolist() == [2, 5, 9]


def test_split_of_another_train_set_is_refused(train: LabeledData) -> None:
    split = make_split(train, SplitConfig(fraction=0.5))
    with pytest.raises(InvalidInputError, match="made for a train set of 40 samples"):
        split.forget(train.subset(range(30)))


def test_inconsistent_split_construction_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="disjoint and cover"):
        UnlearningSplit(np.array([0, 1]), np.array([1, 2]))
    with pytest.raises(InvalidInputError, match="num_samples=9"):
        UnlearningSplit.from_dict({"num_samples": 9, "forget_indices": [0], "retain_indices": [1, 2]})
    with pytest.raises(InvalidInputError, match="unknown split key"):
        UnlearningSplit.from_dict({"forget": [0]})


def test_stratified_indices_are_proportional_and_seeded() -> None:
    labels = np.repeat(np.arange(3), [50, 30, 20])
    picked = stratified_indices(labels, 10, seed=0)
    assert np.bincount(labels[picked]).tolist() == [5, 3, 2]
    assert np.array_equal(picked, stratified_indices(labels, 10, seed=0))
    assert not np.array_equal(picked, stratified_indices(labels, 10, seed=1))
    assert stratified_indices(labels, 100).tolist() == list(range(100))
    with pytest.raises(InvalidInputError, match=r"in \[1, 100\]"):
        stratified_indices(labels, 101)
