"""Options of the ``forgetting_quality`` suite kind (kept out of config.py, which only holds the field)."""

from __future__ import annotations

from dataclasses import dataclass

from amun_plugin.errors import InvalidInputError

__all__ = ["ForgettingSpec"]


@dataclass(frozen=True)
class ForgettingSpec:
    """runs: N, the unlearner runs (seeds 0 .. N − 1) and retrained models per forget set (the
    competition used 512; the score's buckets end at ceil(ln(N − 1))); retrain_seed: the retrained
    models' seeds are retrain_seed .. + N − 1; control_seed: the "Retrain (other seed)" control's
    models are retrained with seeds control_seed .. + N − 1; holdout_methods: method labels run
    with ``holdout`` = the validation hold-out (AMUN's calibrated mode); bootstrap: resamples of
    the U-LiRA intervals."""

    runs: int = 64
    retrain_seed: int = 1000
    control_seed: int = 5000
    holdout_methods: tuple[str, ...] = ()
    bootstrap: int = 200

    def __post_init__(self) -> None:
        if self.runs < 3:
            raise InvalidInputError(f"forgetting.runs must be >= 3, got {self.runs}")
        overlap = set(range(self.retrain_seed, self.retrain_seed + self.runs)) & set(
            range(self.control_seed, self.control_seed + self.runs))
        if overlap:
            raise InvalidInputError("forgetting: retrain_seed and control_seed ranges overlap")
