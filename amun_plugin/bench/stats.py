"""Statistics of the result tables: t-intervals over runs and paired differences between methods.

Every cell of a table is ``mean ± h`` where h is the half-width of the two-sided 95% Student-t
confidence interval of the mean over the runs (h = t_{0.975, n-1} * s / sqrt(n), s the sample
standard deviation; undefined for one run). Two methods are compared on the same forget sets: their
records are paired by (original seed, forget seed, unlearn seed) and the interval is the paired-t
interval of the per-pair differences. A difference is *significant* when its interval excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np
from scipy import stats

from amun_plugin.bench.records import CellKind
from amun_plugin.errors import InvalidInputError

__all__ = ["CONFIDENCE", "Interval", "format_interval", "paired_difference", "pairing_key", "ratio_to_best",
           "runs_for_half_width", "t_interval"]

CONFIDENCE = 0.95
R = TypeVar("R")


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values and the half-width of its 95% t-interval (NaN for n == 1)."""

    mean: float
    half_width: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval [mean - h, mean + h] does not contain 0 (False when h is NaN)."""
        return bool(np.isfinite(self.half_width) and abs(self.mean) > self.half_width)

    def as_dict(self) -> dict[str, Any]:
        """``{"mean", "n", "half_width"}`` as plain JSON data (half-width None for one value)."""
        return {"mean": self.mean, "n": self.n,
                "half_width": self.half_width if np.isfinite(self.half_width) else None}


def t_interval(values: Sequence[float]) -> Interval:
    """The 95% Student-t interval of the mean of ``values`` (at least one finite value)."""
    array = np.asarray([float(v) for v in values], dtype=np.float64)
    if array.size == 0 or not np.isfinite(array).all():
        raise InvalidInputError("a confidence interval needs at least one value, all finite")
    if array.size == 1:
        return Interval(float(array[0]), float("nan"), 1)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, array.size - 1) * array.std(ddof=1) / np.sqrt(array.size))
    return Interval(float(array.mean()), half, int(array.size))


def format_interval(interval: Interval, digits: int = 2, *, signed: bool = False, mark: bool = False,
                    bold: bool = False) -> str:
    """``"m ± h"`` (``"m ± n/a"`` for one run); ``signed`` writes "+" on positive means, ``mark``
    appends ``*`` when the interval excludes 0, ``bold`` wraps the text in Markdown bold."""
    sign = "+" if signed else ""
    half = f"{interval.half_width:.{digits}f}" if np.isfinite(interval.half_width) else "n/a"
    text = f"{interval.mean:{sign}.{digits}f} ± {half}"
    if mark and interval.excludes_zero:
        text += " *"
    return f"**{text}**" if bold else text


def pairing_key(record: Any) -> tuple[int, int, int | None]:
    """(original seed, forget seed, unlearn seed) of a record (a typed record or its JSON line);
    Retrain and Original records (no unlearning run) have no unlearn seed."""
    if not isinstance(record, Mapping):
        cell = record.cell
        ran = cell.kind not in (CellKind.RETRAIN, CellKind.ORIGINAL)
        return int(cell.original_seed), int(cell.forget_seed), int(cell.unlearn_seed) if ran else None
    ran = record.get("kind") not in (CellKind.RETRAIN, CellKind.ORIGINAL)
    unlearn = int(record.get("unlearn_seed", 0)) if ran else None
    return int(record.get("original_seed", 0)), int(record.get("forget_seed", 0)), unlearn


def _index(records: Sequence[Any]) -> dict[tuple, Any]:
    out: dict[tuple, Any] = {}
    for record in records:
        key = pairing_key(record)
        if key in out:
            method = record.get("method") if isinstance(record, Mapping) else record.method
            raise InvalidInputError(f"two records of method {method!r} share the coordinates {key}")
        out[key] = record
    return out


def paired_difference(records: Sequence[R], reference: Sequence[R], value: Callable[[R], float]) -> Interval | None:
    """Paired-t interval of ``value(record) - value(reference record)`` over the pairs that share
    (original seed, forget seed, unlearn seed); a record without unlearn seed (Retrain, Original)
    pairs with every record of its (original seed, forget seed). None when no pair exists."""
    mine, theirs = _index(records), _index(reference)
    differences = [value(record) - value(other)
                   for key, record in sorted(mine.items(), key=lambda item: repr(item[0]))
                   for other_key, other in sorted(theirs.items(), key=lambda item: repr(item[0]))
                   if key[:2] == other_key[:2] and (key[2] == other_key[2] or None in (key[2], other_key[2]))]
    return t_interval(differences) if differences else None


def runs_for_half_width(values: Sequence[float], target: float, max_runs: int = 1000) -> int:
    """The smallest number of runs n whose 95% t-interval half-width t_{0.975, n-1} * s / sqrt(n)
    is at most ``target``, with s the sample standard deviation of ``values`` (at least two runs
    already done): how many forget sets a table needs for a ``± target`` interval."""
    array = np.asarray([float(v) for v in values], dtype=np.float64)
    if array.size < 2 or not np.isfinite(array).all() or not target > 0:
        raise InvalidInputError("runs_for_half_width needs at least two finite values and a positive target")
    s = float(array.std(ddof=1))
    for n in range(2, max_runs + 1):
        if stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * s / np.sqrt(n) <= target:
            return n
    raise InvalidInputError(f"more than {max_runs} runs would be needed for a half-width of {target}")


def ratio_to_best(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Each method's per-sample value over the smallest any method reached on that sample.

    values (methods, n) (e.g. L2 distances of the adversarial examples found), keep (n,) bool:
    the samples to compare (e.g. those the model classified correctly) -> (methods, keep.sum())."""
    values = np.asarray(values, dtype=float)
    keep = np.asarray(keep, dtype=bool)
    if values.ndim != 2 or keep.shape != values.shape[1:]:
        raise InvalidInputError(f"ratio_to_best needs values (methods, n) and keep (n,); got {values.shape}, "
                                f"{keep.shape}")
    kept = values[:, keep]
    return kept / kept.min(axis=0)
