"""``rmia``: the RMIA membership attack (Zarifzadeh et al., ICML 2024) with a reference bank.

How the evaluator gets its reference models: through a :class:`ReferenceBank`, either
  * ``RMIAEvaluator({"bank_dir": "path/to/bank"})`` — the bank is opened from disk (this is how
    the plugin registry, ``amun_plugin.audit`` and ``amun audit --bank-dir`` use it), or
  * ``RMIAEvaluator(config, bank=bank)`` — an already opened / just built bank object.
Build the bank once per population with
``build_reference_bank(dir, population=D_R ∪ D_F ∪ D_T, architecture, recipe, num_models=K)``
(:mod:`amun_plugin.evaluate.reference`); every model audited on that population reuses it. The
audited D_R ∪ D_F ∪ D_T must be exactly the bank's population (any order, any forget split),
otherwise :class:`PopulationMismatchError` is raised.

Per audited model: Pr(x|target) on every population point, Pr(x) from the bank (online: all K
models; offline: the K/2 OUT models and the ``a`` correction, ``a`` optionally tuned by attacking
reference model 0 with the others), r(x), and score(x) against Z = the whole population
(:mod:`amun_plugin.evaluate.rmia`).

Metrics (percent): FT_AUC (D_F positive vs D_T), FR_AUC (D_R positive vs D_F), RT_AUC (D_R vs
D_T) on equal-size subsamples averaged over ``subsample_seeds`` draws; FT_TPR@0.1%FPR,
FT_TPR@1%FPR, RT_TPR@0.1%FPR, RT_TPR@1%FPR on the full sets, each with a 95% Clopper–Pearson
interval over the positives (``..._lo`` / ``..._hi``, conditional on the threshold set on D_T);
``offline_a`` in offline mode. Scores: the RMIA score in [0, 1] of each point of "retain",
"forget" and "test".

Power at low FPR: an FPR of 0.1% is only resolved with |D_T| >= 1,000 negatives, and the interval
of a TPR over |D_F| positives is wide when D_F is small. More reference models did not help on
digits (``benchmarks/results/rmia_power-digits``: MLP, |D_F| = 90, |D_T| = 798): with K = 8, 16
and 64 the original model's FT TPR@1%FPR was 2.2% [0.3, 7.8] each time and its RT TPR@1%FPR
1.4-2.1% (retain n = 809), i.e. no K in 8-64 gives power at low FPR on that model; the sizes of
D_F and D_T and how much the model memorises limit it. The per-example test of the
``forgetting_quality`` evaluator (U-LiRA, N retrained models) is the low-FPR audit to use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from amun_plugin.errors import InvalidInputError, MissingInputError, UnsupportedSettingError
from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.evaluate.reference import ReferenceBank, concat_population
from amun_plugin.evaluate.rmia import (
    likelihood_ratio,
    offline_reference,
    online_reference,
    rmia_scores,
    taylor_softmax_signal,
)
from amun_plugin.evaluate.roc import balanced_auc, membership_tpr_metrics, roc_auc
from amun_plugin.models.inference import predict_logits

__all__ = ["RMIAConfig", "RMIAEvaluator", "RMIAMode", "tune_offline_a"]


class RMIAMode(str, Enum):
    """online: Pr(x) over all reference models; offline: OUT models only, with the a correction."""

    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class RMIAConfig:
    """Options of :class:`RMIAEvaluator`. Pr(x|theta) is the soft-margin Taylor softmax of the true
    class, taylor(z_y / T - m) / (taylor(z_y / T - m) + sum_{j != y} taylor(z_j / T))
    (:func:`~amun_plugin.evaluate.rmia.taylor_softmax_signal`).

    Attributes:
        bank_dir: folder of the reference bank (built by ``build_reference_bank``); needed unless a bank is given.
            (Default: None)
        mode: "online" (Pr(x) over all K reference models) or "offline" (OUT models and the a correction).
            (Default: "online")
        temperature: T (> 0) dividing the logits in the Taylor signal. (Default: 2.0)
        margin: m, subtracted from the scaled true-class logit in the Taylor signal. (Default: 0.6)
        order: terms of exp's Taylor series in the signal, sum_{i < order} u^i / i! (>= 1). (Default: 4)
        gamma: score(x) = share of population points z with r(x) / r(z) > gamma (> 0). (Default: 2.0)
        offline_a: offline correction a in [0, 1]: Pr(x) = ((1 + a) mean_OUT + (1 - a)) / 2. (Default: 0.3)
        tune_a: offline: choose a in {0, 0.05, ..., 1} by attacking reference model 0 (K >= 4). (Default: False)
        trim: fraction in [0, 0.5) cut from each end before averaging reference signals (RMIA authors: 0.2).
            (Default: 0.0)
        subsample_seeds: seeded equal-size subsample draws averaged into each AUC. (Default: 3)
        floor: probabilities are floored at this value (> 0) before the ratio r = Pr(x|target) / Pr(x).
            (Default: 1e-12)
    """

    bank_dir: str | None = None
    mode: RMIAMode = RMIAMode.ONLINE
    temperature: float = 2.0
    margin: float = 0.6
    order: int = 4
    gamma: float = 2.0
    offline_a: float = 0.3
    tune_a: bool = False
    trim: float = 0.0
    subsample_seeds: int = 3
    floor: float = 1e-12

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", RMIAMode(self.mode))
        checks = [
            (self.temperature > 0, "temperature must be > 0"), (self.gamma > 0, "gamma must be > 0"),
            (int(self.order) == self.order and self.order >= 1, "order must be a positive integer"),
            (0.0 <= self.offline_a <= 1.0, "offline_a must lie in [0, 1]"),
            (0.0 <= self.trim < 0.5, "trim must lie in [0, 0.5)"),
            (self.subsample_seeds >= 1, "subsample_seeds must be >= 1"), (self.floor > 0, "floor must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def signal(self, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Pr(x|theta) of logits (..., N, C) with labels (N,): the configured Taylor signal."""
        return taylor_softmax_signal(logits, y, self.temperature, self.margin, int(self.order))


class RMIAEvaluator(Evaluator):
    name = "rmia"
    config_class: ClassVar[type] = RMIAConfig
    description = "RMIA with reference models: FT / FR / RT AUC and TPR at 0.1% / 1% FPR (needs a reference bank)"

    def __init__(self, config: Mapping[str, Any] | Any | None = None, *, bank: ReferenceBank | None = None) -> None:
        super().__init__(config)
        if bank is not None and not isinstance(bank, ReferenceBank):
            raise InvalidInputError(f"bank must be a ReferenceBank, got {type(bank).__name__}")
        self._bank = bank

    @property
    def bank(self) -> ReferenceBank:
        """The reference bank (opened from ``bank_dir`` on first use)."""
        if self._bank is None:
            if not self.config.bank_dir:
                raise MissingInputError(
                    "the rmia evaluator needs a reference bank: {how}", needs="reference_bank",
                    python="build one with amun_plugin.evaluate.reference.build_reference_bank(dir, population, "
                           "architecture, recipe) and pass bank_dir=dir (or bank=ReferenceBank.open(dir))")
            self._bank = ReferenceBank.open(Path(self.config.bank_dir))
        return self._bank

    def _evaluate(self, model: nn.Module, data: AuditData, device: torch.device,
                  seed: int) -> EvaluationResult:
        config: RMIAConfig = self.config
        bank = self.bank
        population = concat_population(data.retain, data.forget, data.test)
        rows = bank.check_population(population, subset=True)  # z = the audited points, all in the bank
        metrics: dict[str, float] = {}
        a = None
        if config.mode is RMIAMode.OFFLINE:
            a = tune_offline_a(bank, config) if config.tune_a else config.offline_a
            metrics["offline_a"] = float(a)
        reference = reference_likelihood(bank, config, rows, population.y.cpu().numpy(), a)
        scores = rmia_population_scores(config, predict_logits(model, population.x, device=device).numpy(),
                                        population.y.cpu().numpy(), reference)
        sizes = np.cumsum([len(data.retain), len(data.forget)])
        parts = dict(zip(("retain", "forget", "test"), np.split(scores, sizes)))
        metrics.update(_auc_metrics(parts, seed, config.subsample_seeds))
        metrics.update(membership_tpr_metrics(parts))
        return EvaluationResult(metrics, parts)


def reference_likelihood(bank: ReferenceBank, config: RMIAConfig, rows: np.ndarray, y: np.ndarray,
                         offline_a: float | None = None) -> np.ndarray:
    """Pr(x) of the bank rows ``rows`` (labels ``y``): the reference models' mean signal (online), or
    the OUT models' with the ``offline_a`` correction (offline)."""
    references = config.signal(bank.logits[:, rows], y)
    if config.mode is RMIAMode.ONLINE:
        return online_reference(references, config.trim)
    assert offline_a is not None
    return offline_reference(references, ~bank.membership[:, rows], offline_a, config.trim)


def rmia_population_scores(config: RMIAConfig, target_logits: np.ndarray, y: np.ndarray,
                           reference: np.ndarray) -> np.ndarray:
    """RMIA scores of every point against all the others as the population z (in [0, 1])."""
    ratio = likelihood_ratio(config.signal(target_logits, y), reference, config.floor)
    return rmia_scores(ratio, ratio, config.gamma)


def _auc_metrics(parts: dict[str, np.ndarray], seed: int, rounds: int) -> dict[str, float]:
    def auc(pos: str, neg: str) -> float:
        return balanced_auc(parts[pos], parts[neg], sizes_from=parts, seed=seed, rounds=rounds)

    return {"FT_AUC": auc("forget", "test"), "FR_AUC": auc("retain", "forget"), "RT_AUC": auc("retain", "test")}


def tune_offline_a(bank: ReferenceBank, config: RMIAConfig, grid: np.ndarray | None = None) -> float:
    """The offline a (from ``grid``, default 0, 0.05, ..., 1) with the best AUC when reference model 0
    is attacked as the target with models 1..K-1 as its references (members = its training half)."""
    if bank.num_models < 4:
        raise UnsupportedSettingError(
            f"tuning the offline a attacks one reference model with the others and needs >= 4 models; "
            f"this bank has {bank.num_models}: set tune_a=False and give offline_a")
    y = bank.labels
    signals = config.signal(bank.logits, y)
    members = bank.membership[0]
    best_a, best_auc = 0.0, -1.0
    for a in np.linspace(0.0, 1.0, 21) if grid is None else grid:
        reference = offline_reference(signals[1:], ~bank.membership[1:], float(a), config.trim)
        ratio = likelihood_ratio(signals[0], reference, config.floor)
        scores = rmia_scores(ratio, ratio, config.gamma)
        auc = roc_auc(scores[members], scores[~members])
        if auc > best_auc:
            best_a, best_auc = float(a), auc
    return best_a

