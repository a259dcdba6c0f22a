"""Avg Gap: how far an unlearned model is from the model retrained without D_F (pure functions).

Avg Gap = mean over {UA, RA, TA, MIA} of |method - retrain| (percentage points), computed per run
(each run against its own retrained model), then summarised as mean ± std over runs. The MIA
metric is the audit's membership score (RMIA FT AUC in the AMUN paper).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from amun_plugin.errors import InvalidInputError

__all__ = ["DEFAULT_GAP_KEYS", "MIA_CANDIDATES", "avg_gap", "choose_mia_key", "gap_keys", "mean_std"]

DEFAULT_GAP_KEYS: tuple[str, ...] = ("accuracy.UA", "accuracy.RA", "accuracy.TA")
# The first of these present in an audit is the MIA term of Avg Gap, unless the caller names one.
MIA_CANDIDATES: tuple[str, ...] = ("rmia.FT_AUC", "confidence_mia.FT_AUC", "mis.MIS", "art_blackbox.FT_AUC")


def avg_gap(method: Mapping[str, float], retrain: Mapping[str, float], keys: Sequence[str]) -> float:
    """Mean of |method[k] - retrain[k]| over ``keys`` (one run). Missing keys are an error."""
    if not keys:
        raise InvalidInputError("Avg Gap needs at least one metric")
    missing = sorted({k for k in keys if k not in method} | {k for k in keys if k not in retrain})
    if missing:
        raise InvalidInputError(f"Avg Gap: metric(s) {', '.join(missing)} missing from the method or the retrained "
                                "model's results")
    return float(np.mean([abs(float(method[k]) - float(retrain[k])) for k in keys]))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation) over runs; the std of a single run is 0."""
    array = np.asarray([float(v) for v in values], dtype=np.float64)
    if array.size == 0 or not np.isfinite(array).all():
        raise InvalidInputError("mean ± std needs at least one finite value")
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def choose_mia_key(available: Sequence[str] | Mapping[str, float], preferred: str | None = None) -> str | None:
    """``preferred`` if given (an error if absent), else the first of MIA_CANDIDATES available."""
    if preferred is not None:
        if preferred not in available:
            raise InvalidInputError(f"the MIA metric {preferred!r} for Avg Gap was not computed; "
                                    f"available: {', '.join(sorted(available))}")
        return preferred
    return next((key for key in MIA_CANDIDATES if key in available), None)


def gap_keys(available: Sequence[str] | Mapping[str, float], mia: str | None = None) -> tuple[str, ...] | None:
    """The Avg Gap metrics {UA, RA, TA, MIA} for an audit with these metric names, or None when
    the accuracy metrics or an MIA metric are missing."""
    key = choose_mia_key(available, mia)
    if key is None or any(k not in available for k in DEFAULT_GAP_KEYS):
        return None
    return DEFAULT_GAP_KEYS + (key,)
