"""Deterministic forget / retain splits of a training set, and seeded stratified sampling.

A split is a pair of sorted, disjoint int64 index arrays that together cover the train set:
``forget_indices`` (D_F) and ``retain_indices`` (D_R = D \\ D_F). The same config and seed
always give the same split.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

import numpy as np
import torch

from amun_plugin.config import make_config
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError

__all__ = [
    "SplitKind",
    "SplitConfig",
    "UnlearningSplit",
    "make_split",
    "split_off",
    "stratified_indices",
    "validate_forget_indices",
    "validate_index_range",
]

_SHOWN = 5  # how many offending values an error message names


class SplitKind(str, Enum):
    """How the forget set is chosen."""

    RANDOM = "random"  # round(fraction * N) samples drawn uniformly without replacement
    INDICES = "indices"  # an explicit list of train-set indices
    CLASSES = "classes"  # every train sample of the listed classes


@dataclass(frozen=True)
class SplitConfig:
    """Which samples to forget.

    Attributes:
        kind: ``random``, ``indices`` or ``classes``.
        fraction: share of the train set to forget for ``random``, in (0, 1).
        indices: train-set indices to forget for ``indices`` (0-based, no duplicates).
        classes: class ids to forget for ``classes``, in [0, num_classes).
        seed: seed of the ``random`` draw.
    """

    kind: SplitKind = SplitKind.RANDOM
    fraction: float = 0.1
    indices: tuple[int, ...] = ()
    classes: tuple[int, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", SplitKind(self.kind))
        except ValueError:
            choices = ", ".join(k.value for k in SplitKind)
            raise InvalidInputError(f"SplitConfig.kind: {self.kind!r} is not one of {choices}") from None
        object.__setattr__(self, "indices", tuple(self.indices))
        object.__setattr__(self, "classes", tuple(self.classes))
        fraction = self.fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 < fraction < 1.0:
            raise InvalidInputError(f"SplitConfig.fraction must be a number strictly between 0 and 1, got {fraction!r}")


@dataclass(frozen=True, eq=False)
class UnlearningSplit:
    """A forget / retain partition of a train set of ``num_samples`` samples.

    Attributes:
        forget_indices: sorted int64 array of shape (N_F,), the forget set D_F.
        retain_indices: sorted int64 array of shape (N - N_F,), the retain set D_R.
    """

    forget_indices: np.ndarray
    retain_indices: np.ndarray

    def __post_init__(self) -> None:
        forget = np.sort(_as_index_array(self.forget_indices, "forget indices", allow_empty=False))
        retain = np.sort(_as_index_array(self.retain_indices, "retain indices", allow_empty=True))
        n = forget.size + retain.size
        both = np.concatenate([forget, retain])
        if both.min() < 0 or both.max() >= n or np.unique(both).size != n:
            raise InvalidInputError(
                f"forget and retain indices must be disjoint and cover 0..{n - 1} exactly "
                f"(got {forget.size} forget and {retain.size} retain indices)"
            )
        forget.setflags(write=False)
        retain.setflags(write=False)
        object.__setattr__(self, "forget_indices", forget)
        object.__setattr__(self, "retain_indices", retain)

    @property
    def num_samples(self) -> int:
        """Size N of the train set the split was made for."""
        return int(self.forget_indices.size + self.retain_indices.size)

    def forget(self, train: LabeledData) -> LabeledData:
        """The forget set D_F of ``train`` (named ``"forget"``)."""
        self._check_train(train)
        return train.subset(self.forget_indices.copy(), name="forget")

    def retain(self, train: LabeledData) -> LabeledData:
        """The retain set D_R of ``train`` (named ``"retain"``)."""
        self._check_train(train)
        return train.subset(self.retain_indices.copy(), name="retain")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (plain ints) that :meth:`from_dict` reads back."""
        return {
            "num_samples": self.num_samples,
            "forget_indices": [int(i) for i in self.forget_indices],
            "retain_indices": [int(i) for i in self.retain_indices],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "UnlearningSplit":
        """Read :meth:`to_dict` output; ``retain_indices`` may be left out when ``num_samples`` is given."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"a split must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - {"num_samples", "forget_indices", "retain_indices"})
        if unknown:
            raise InvalidInputError(
                f"unknown split key(s) {', '.join(map(str, unknown))}; "
                "expected num_samples, forget_indices, retain_indices"
            )
        if "forget_indices" not in data:
            raise InvalidInputError("a split needs 'forget_indices'")
        n_given = data.get("num_samples")
        if n_given is not None and (isinstance(n_given, bool) or not isinstance(n_given, numbers.Integral)):
            raise InvalidInputError(f"split num_samples must be an integer, got {n_given!r}")
        forget = _as_index_array(data["forget_indices"], "forget indices", allow_empty=False)
        if "retain_indices" in data:
            split = cls(forget, _as_index_array(data["retain_indices"], "retain indices", allow_empty=True))
        elif n_given is not None:
            forget = validate_forget_indices(forget, int(n_given))
            split = cls(forget, np.setdiff1d(np.arange(int(n_given), dtype=np.int64), forget))
        else:
            raise InvalidInputError("a split needs 'retain_indices' or 'num_samples'")
        if n_given is not None and int(n_given) != split.num_samples:
            raise InvalidInputError(f"split says num_samples={n_given} but its indices cover {split.num_samples}")
        return split

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnlearningSplit):
            return NotImplemented
        return bool(
            np.array_equal(self.forget_indices, other.forget_indices)
            and np.array_equal(self.retain_indices, other.retain_indices)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"UnlearningSplit(num_samples={self.num_samples}, forget={self.forget_indices.size})"

    def _check_train(self, train: LabeledData) -> None:
        if len(train) != self.num_samples:
            raise InvalidInputError(
                f"this split was made for a train set of {self.num_samples} samples, "
                f"but {train.name!r} has {len(train)}; make the split from this train set"
            )


def make_split(
    train: LabeledData,
    config: SplitConfig | Mapping[str, Any] | None = None,
    exclude: np.ndarray | None = None,
) -> UnlearningSplit:
    """Split ``train`` into forget and retain sets as ``config`` says.

    Args:
        train: the train set D (N samples).
        config: a :class:`SplitConfig` or a mapping of its fields (default: random 10%, seed 0).
        exclude: indices into ``train`` that must not be forgotten (e.g. samples already
            forgotten, or test points of a shared pool). ``random`` draws round(fraction * M)
            samples from the M non-excluded ones; ``indices``/``classes`` refuse any overlap.
            Excluded samples stay in the retain set.

    Raises:
        InvalidInputError: bad fraction, empty forget set, duplicate / out-of-range /
            non-integer indices, unknown classes, overlap with ``exclude``, or a forget set
            that would leave the retain set empty.
    """
    cfg = make_config(SplitConfig, config)
    n = len(train)
    excluded = None if exclude is None else validate_index_range(exclude, n, "excluded indices")
    if cfg.kind is SplitKind.RANDOM:
        forget = _random_forget(n, cfg.fraction, cfg.seed, excluded)
    elif cfg.kind is SplitKind.INDICES:
        if not cfg.indices:
            raise InvalidInputError("split kind 'indices' needs a non-empty 'indices' list")
        forget = np.asarray(cfg.indices)
    else:
        forget = _class_forget(train, cfg.classes)
    forget = validate_forget_indices(forget, n, exclude=excluded)
    retain = np.setdiff1d(np.arange(n, dtype=np.int64), forget)
    return UnlearningSplit(forget, retain)


def validate_forget_indices(indices: Any, n: int, exclude: Any = None) -> np.ndarray:
    """Check forget-set indices into a train set of ``n`` samples; return them sorted as int64.

    Refuses (with :class:`InvalidInputError`) an empty set, non-integer values, negative or
    out-of-range indices, duplicates, overlap with ``exclude`` and a set covering all ``n``
    samples (the retain set would be empty).
    """
    arr = validate_index_range(indices, n, "forget indices")
    unique, counts = np.unique(arr, return_counts=True)
    if unique.size != arr.size:
        raise InvalidInputError(f"forget indices contain duplicates: {_few(unique[counts > 1])}; list each sample once")
    if exclude is not None:
        overlap = np.intersect1d(unique, validate_index_range(exclude, n, "excluded indices"))
        if overlap.size:
            raise InvalidInputError(
                f"forget indices overlap the excluded indices at {_few(overlap)}; "
                "these samples may not be forgotten (already forgotten or held out)"
            )
    if unique.size == n:
        raise InvalidInputError(
            f"the forget set would hold all {n} train samples, leaving the retain set empty; forget fewer samples"
        )
    return unique.astype(np.int64)


def validate_index_range(indices: Any, n: int, what: str = "indices") -> np.ndarray:
    """``indices`` as a non-empty 1-D int64 array with every value in [0, n) (duplicates allowed)."""
    arr = _as_index_array(indices, what, allow_empty=False)
    negative = arr[arr < 0]
    if negative.size:
        raise InvalidInputError(f"{what} must be >= 0, got negative value(s) {_few(negative)}")
    too_big = arr[arr >= n]
    if too_big.size:
        raise InvalidInputError(
            f"{what} out of range: {_few(np.unique(too_big))} (the train set has N={n} samples, "
            f"valid indices are 0..{n - 1})"
        )
    return arr


def stratified_indices(labels: Any, size: int, seed: int = 0) -> np.ndarray:
    """A seeded class-stratified sample of ``size`` positions of ``labels`` (sorted int64).

    Each class gets its proportional share of ``size`` (largest remainders break ties,
    lower class id first); the samples inside a class are drawn with
    ``np.random.default_rng(seed)``. ``labels``: int array of shape (N,); 1 <= size <= N.
    """
    y = np.asarray(labels).reshape(-1)
    n = y.size
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or not 1 <= size <= n:
        raise InvalidInputError(f"sample size must be an integer in [1, {n}], got {size!r}")
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (int(size) / n)
    take = np.floor(quota).astype(np.int64)
    remainder = int(size) - int(take.sum())
    if remainder:
        order = np.lexsort((classes, -(quota - take)))  # largest fraction first, then class id
        take[order[:remainder]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def split_off(data: LabeledData, size: int, seed: int, name: str) -> tuple[LabeledData, LabeledData]:
    """(the rest of ``data``, named "test"; ``size`` class-stratified samples of it, named ``name``):
    a seeded hold-out carved from a test set (a validation set, AMUN's calibration data)."""
    held = stratified_indices(data.y.numpy(), size, seed=seed)
    rest = np.setdiff1d(np.arange(len(data)), held)
    return data.subset(rest, name="test"), data.subset(held, name=name)


def _random_forget(n: int, fraction: float, seed: int, excluded: np.ndarray | None) -> np.ndarray:
    pool = np.arange(n, dtype=np.int64)
    if excluded is not None:
        pool = np.setdiff1d(pool, excluded)
    k = round(fraction * pool.size)
    if k == 0:
        raise InvalidInputError(
            f"fraction={fraction} of {pool.size} available samples rounds to an empty forget set; use a larger fraction"
        )
    return np.random.default_rng(seed).choice(pool, size=k, replace=False)


def _class_forget(train: LabeledData, classes: tuple[int, ...]) -> np.ndarray:
    if not classes:
        raise InvalidInputError("split kind 'classes' needs a non-empty 'classes' list")
    ids = _as_index_array(classes, "forget classes", allow_empty=False)
    bad = ids[(ids < 0) | (ids >= train.num_classes)]
    if bad.size:
        raise InvalidInputError(
            f"forget classes out of range: {_few(np.unique(bad))}; class ids are 0..{train.num_classes - 1}"
        )
    unique, counts = np.unique(ids, return_counts=True)
    if unique.size != ids.size:
        raise InvalidInputError(f"forget classes contain duplicates: {_few(unique[counts > 1])}")
    labels = train.y.detach().cpu().numpy()
    forget = np.flatnonzero(np.isin(labels, unique))
    if forget.size == 0:
        raise InvalidInputError(
            f"{train.name!r} has no samples of class(es) {_few(unique)}; the forget set would be empty"
        )
    return forget


def _as_index_array(values: Any, what: str, allow_empty: bool) -> np.ndarray:
    """``values`` as a 1-D int64 array; refuses booleans, floats and other non-integers."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{what} must be a flat list of integers: {exc}") from None
    if arr.ndim != 1:
        raise InvalidInputError(f"{what} must be a flat (1-D) list of integers, got shape {arr.shape}")
    if arr.size == 0:
        if allow_empty:
            return np.zeros(0, dtype=np.int64)
        raise InvalidInputError(f"{what} are empty; give at least one")
    if arr.dtype == np.bool_:
        raise InvalidInputError(f"{what} must be integers, got a boolean mask; use np.flatnonzero(mask)")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    bad = [v for v in arr.tolist() if isinstance(v, bool) or not isinstance(v, numbers.Integral)]
    if bad:
        raise InvalidInputError(f"{what} must be integers, got {_few(np.asarray(bad, dtype=object))}")
    return arr.astype(np.int64)


def _few(values: np.ndarray) -> str:
    """The first few values as text, e.g. ``'3, 7, 9, ... (12 in total)'``."""
    items = [repr(v) if isinstance(v, (str, float)) else str(v) for v in np.asarray(values).tolist()]
    text = ", ".join(items[:_SHOWN])
    return f"{text}, ... ({len(items)} in total)" if len(items) > _SHOWN else text
