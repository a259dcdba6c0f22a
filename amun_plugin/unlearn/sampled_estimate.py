"""The estimated Avg Gap from per-sample measurements: its bootstrap, and the paired chance that
one model's estimate is below another's.

A model is measured once (:class:`SampleMeasure`: per-sample correctness on D_F, H and D_R' and
membership scores of D_F and H); every resample of D_F, H and D_R' then recomputes the estimate
(:func:`~amun_plugin.unlearn.estimate.estimated_gap`) without running the model again. Resamples are
paired: the same positions for every model compared. The retrain-free audit reads the intervals
(``evaluate/retrain_free.py``); ``method="auto"`` reads :func:`chance_lower` to keep its first
candidate unless another is better with confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError
from amun_plugin.models.inference import predict_logits
from amun_plugin.unlearn.estimate import ConfidenceProbe, MembershipProbe, ProxyMeasure, estimated_gap, scores_auc

__all__ = ["SampleMeasure", "bootstrap_estimates", "chance_lower", "measure_samples", "percentile_interval",
           "resample_positions"]


@dataclass(frozen=True)
class SampleMeasure:
    """One model measured once: per-sample correctness (bool) on D_F, H and D_R' (None without
    D_R) and membership scores (higher = member) of D_F and H (None: the probe gives no per-sample
    scores; ``auc`` is then its AUC, else the AUC of the scores)."""

    forget_correct: np.ndarray
    holdout_correct: np.ndarray
    retain_correct: np.ndarray | None = None
    forget_scores: np.ndarray | None = None
    holdout_scores: np.ndarray | None = None
    auc: float | None = None

    def __post_init__(self) -> None:
        if self.forget_correct.size == 0 or self.holdout_correct.size == 0:
            raise InvalidInputError("the retrain-free estimate needs at least one forget and one held-out sample")
        if (self.forget_scores is None) != (self.holdout_scores is None):
            raise InvalidInputError("give membership scores for both D_F and H, or for neither")
        if self.auc is None and self.forget_scores is None:
            raise InvalidInputError("a SampleMeasure needs membership scores or an AUC")

    @property
    def has_scores(self) -> bool:
        return self.forget_scores is not None

    def proxy(self, forget: np.ndarray | None = None, holdout: np.ndarray | None = None,
              retain: np.ndarray | None = None) -> ProxyMeasure:
        """The :class:`ProxyMeasure` on the samples at these positions (None: all of them)."""
        auc = self.auc
        if self.forget_scores is not None and self.holdout_scores is not None:
            auc = scores_auc(_at(self.forget_scores, forget), _at(self.holdout_scores, holdout))
        kept = None if self.retain_correct is None else _percent(_at(self.retain_correct, retain))
        return ProxyMeasure(_percent(_at(self.forget_correct, forget)), _percent(_at(self.holdout_correct, holdout)),
                            float(auc or 0.0), kept)


def _at(values: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
    return values if positions is None else values[positions]


def _percent(correct: np.ndarray) -> float:
    return 100.0 * float(np.mean(correct))


def measure_samples(model: nn.Module, forget: LabeledData, holdout: LabeledData, retain: LabeledData | None = None,
                    membership: MembershipProbe | None = None, *, device: str | torch.device = "cpu",
                    with_scores: bool = True) -> SampleMeasure:
    """Per-sample correctness of ``model`` on D_F, H, D_R' and the membership scores of ``membership``
    (default :class:`ConfidenceProbe`; its ``auc`` alone when it has no ``scores`` method);
    ``with_scores`` False keeps only the AUC (a reference model whose scores are never resampled)."""
    probe = membership if membership is not None else ConfidenceProbe()
    correct = [None if part is None else _correct(model, part, device) for part in (forget, holdout, retain)]
    scoring = getattr(probe, "scores", None)
    if scoring is None or not with_scores:
        return SampleMeasure(correct[0], correct[1], correct[2],  # type: ignore[arg-type]
                             auc=float(probe.auc(model, forget, holdout, device=device)))
    forget_scores, holdout_scores = (np.asarray(s, dtype=np.float64) for s in scoring(model, forget, holdout, device))
    return SampleMeasure(correct[0], correct[1], correct[2], forget_scores, holdout_scores)  # type: ignore[arg-type]


def _correct(model: nn.Module, data: LabeledData, device: str | torch.device) -> np.ndarray:
    return (predict_logits(model, data.x, device=device).argmax(dim=1) == data.y.cpu()).numpy()


def bootstrap_estimates(current: SampleMeasure, original: SampleMeasure, resamples: int = 200,
                        seed: int = 0) -> dict[str, np.ndarray]:
    """The estimated gap, its terms and the D_F-vs-H AUC of ``current`` against ``original`` on
    ``resamples`` bootstrap resamples of D_F, H and D_R' (the same positions for both models),
    seeded: name -> (resamples,) array ("estimated_gap", "UA", "TA", "MIA", ["RA"], "AUC")."""
    rows: list[dict[str, float]] = []
    for f, h, r in resample_positions(current, original, resamples, seed):
        mine = current.proxy(f, h, r)
        gap, terms = estimated_gap(mine, original.proxy(f, h, r))
        rows.append({"estimated_gap": gap, **terms, "AUC": mine.forget_holdout_auc})
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def resample_positions(current: SampleMeasure, original: SampleMeasure, resamples: int,
                       seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """``resamples`` seeded bootstrap draws (positions in D_F, H, D_R' or None) for measures of the same samples."""
    if resamples < 1:
        raise InvalidInputError(f"resamples must be >= 1, got {resamples}")
    if len(original.forget_correct) != len(current.forget_correct) or \
            len(original.holdout_correct) != len(current.holdout_correct):
        raise InvalidInputError("the two models must be measured on the same D_F and H")
    rng = np.random.default_rng(seed)
    sizes = (len(current.forget_correct), len(current.holdout_correct),
             0 if current.retain_correct is None else len(current.retain_correct))
    draws = []
    for _ in range(resamples):
        f, h = rng.integers(0, sizes[0], sizes[0]), rng.integers(0, sizes[1], sizes[1])
        draws.append((f, h, rng.integers(0, sizes[2], sizes[2]) if sizes[2] else None))
    return draws


def chance_lower(candidate: SampleMeasure, incumbent: SampleMeasure, original: SampleMeasure,
                 resamples: int = 200, seed: int = 0) -> float:
    """The bootstrap chance that ``candidate``'s estimated gap is below ``incumbent``'s: the share of
    ``resamples`` paired resamples of D_F, H and D_R' (the same positions for the three models) in
    which it is lower, ties counted half. 0.5: no evidence either way."""
    draws = resample_positions(candidate, original, resamples, seed)
    mine, theirs = _resampled_gaps(candidate, original, draws), _resampled_gaps(incumbent, original, draws)
    return float(np.mean(mine < theirs) + 0.5 * np.mean(mine == theirs))


def _resampled_gaps(current: SampleMeasure, original: SampleMeasure,
                    draws: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> np.ndarray:
    """The estimated gap of ``current`` on every draw, computed for all draws at once
    (:func:`~amun_plugin.unlearn.estimate.estimated_gap`'s terms, the AUC by ranks)."""
    f = np.stack([d[0] for d in draws])
    h = np.stack([d[1] for d in draws])
    reference = 100.0 * original.holdout_correct[h].mean(axis=1)
    terms = [np.abs(100.0 * current.forget_correct[f].mean(axis=1) - reference),
             np.abs(100.0 * current.holdout_correct[h].mean(axis=1) - reference)]
    if current.forget_scores is not None and current.holdout_scores is not None:
        terms.append(np.abs(_ranked_auc(current.forget_scores[f], current.holdout_scores[h]) - 50.0))
    else:
        terms.append(np.full(len(draws), abs(float(current.auc or 0.0) - 50.0)))
    if current.retain_correct is not None and original.retain_correct is not None:
        r = np.stack([d[2] for d in draws if d[2] is not None])
        terms.append(np.abs(100.0 * (current.retain_correct[r].mean(axis=1) - original.retain_correct[r].mean(axis=1))))
    return np.mean(np.stack(terms), axis=0)


def _ranked_auc(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """Row-wise ROC AUC (%) of (B, P) positive against (B, Q) negative scores, ties counted half."""
    ranks = rankdata(np.concatenate([positives, negatives], axis=1), axis=1)
    count = positives.shape[1]
    return 100.0 * (ranks[:, :count].sum(axis=1) - count * (count + 1) / 2.0) / (count * negatives.shape[1])


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of ``values`` covering ``level`` (e.g. the 2.5th and 97.5th percentiles)."""
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [tail, 100.0 - tail])
    return float(low), float(high)
