"""Datasets as labelled tensors in [0, 1], and deterministic forget / retain splits."""

from amun_plugin.data.base import DatasetBundle, LabeledData, as_labeled_data
from amun_plugin.data.cifar import Cifar10Source, Cifar100Source, CifarConfig
from amun_plugin.data.digits import DigitsConfig, DigitsSource
from amun_plugin.data.fashion_mnist import FashionMNISTConfig, FashionMNISTSource
from amun_plugin.data.npz import NpzConfig, NpzSource
from amun_plugin.data.source import DatasetSource
from amun_plugin.data.splits import (
    SplitConfig,
    SplitKind,
    UnlearningSplit,
    make_split,
    stratified_indices,
    validate_forget_indices,
)

BUILTIN_DATASETS: tuple[type[DatasetSource], ...] = (
    DigitsSource, FashionMNISTSource, Cifar10Source, Cifar100Source, NpzSource)
"""The datasets amun_plugin registers through its own ``amun_register_datasets`` hook."""

__all__ = [
    "BUILTIN_DATASETS",
    "LabeledData",
    "DatasetBundle",
    "as_labeled_data",
    "DatasetSource",
    "DigitsConfig",
    "DigitsSource",
    "FashionMNISTConfig",
    "FashionMNISTSource",
    "CifarConfig",
    "Cifar10Source",
    "Cifar100Source",
    "NpzConfig",
    "NpzSource",
    "SplitKind",
    "SplitConfig",
    "UnlearningSplit",
    "make_split",
    "validate_forget_indices",
    "stratified_indices",
]
