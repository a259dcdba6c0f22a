"""RMIA as the membership signal of the retrain-free estimate: the AUC of D_F against held-out data.

The true Avg Gap's membership term is the RMIA FT AUC of the unlearned model against the retrained
model's (~50: D_F looks like unseen data). A reference bank is built once per population (e.g. the
training set with the test set) and serves every deletion request: no model retrained without the
forget set is needed. :class:`RmiaProbe` scores D_F and the held-out set H with the same RMIA as
the ``rmia`` evaluator (its config, its reference likelihood), against a fixed sample of the
population as the points z, and returns the ROC AUC of D_F against H (%). Pass it as
``membership=`` to :func:`amun_plugin.unlearn` (AMUN's calibration, ``method="auto"``) or to the
retrain-free audit.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from amun_plugin.config import make_config
from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.reference import ReferenceBank
from amun_plugin.evaluate.rmia_evaluator import (
    RMIAConfig,
    RMIAMode,
    reference_likelihood,
    rmia_population_scores,
    tune_offline_a,
)
from amun_plugin.evaluate.roc import roc_auc
from amun_plugin.models.inference import predict_logits

__all__ = ["RmiaProbe"]


class RmiaProbe:
    """RMIA AUC (%) of D_F against held-out data (see the module docstring).

    Args:
        bank: a reference bank whose population holds D_F, H and ``population``.
        population: samples of the bank's population (x and y) from which ``reference_size`` are
            drawn once, seeded, as the points z every score is compared with.
        config: the rmia evaluator's options (default: its defaults).
    """

    name = "rmia"

    def __init__(self, bank: ReferenceBank, population: LabeledData,
                 config: Mapping[str, Any] | RMIAConfig | None = None, *, reference_size: int = 1000,
                 seed: int = 0) -> None:
        if not isinstance(bank, ReferenceBank):
            raise InvalidInputError(f"bank must be a ReferenceBank, got {type(bank).__name__}")
        if reference_size < 1:
            raise InvalidInputError(f"reference_size must be >= 1, got {reference_size}")
        self.bank, self.config = bank, make_config(RMIAConfig, config)
        chosen = np.sort(np.random.default_rng(seed).permutation(len(population))[:reference_size])
        self.points = population.subset(chosen, name="population sample")
        self._point_rows = bank.rows_of(self.points)
        self._offline_a = None
        if self.config.mode is RMIAMode.OFFLINE:
            self._offline_a = tune_offline_a(bank, self.config) if self.config.tune_a else self.config.offline_a
        self._cache: dict[tuple[int, int], tuple[LabeledData, np.ndarray, np.ndarray]] = {}

    def scores(self, model: nn.Module, forget: LabeledData, holdout: LabeledData,
               device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """Per-sample RMIA scores (higher = member) of ``forget`` and ``holdout``."""
        data, y, reference = self._prepared(forget, holdout)
        scores = rmia_population_scores(self.config, predict_logits(model, data.x, device=device).numpy(), y,
                                        reference)
        return scores[:len(forget)], scores[len(forget):len(forget) + len(holdout)]

    def auc(self, model: nn.Module, forget: LabeledData, holdout: LabeledData,
            device: str | torch.device = "cpu") -> float:
        return roc_auc(*self.scores(model, forget, holdout, device))

    def _prepared(self, forget: LabeledData, holdout: LabeledData) -> tuple[LabeledData, np.ndarray, np.ndarray]:
        """(D_F, H and the points z as one set, their labels, Pr(x) of each), computed once per pair."""
        key = (id(forget), id(holdout))
        if key not in self._cache:
            data = forget.concat(holdout, name="probe").concat(self.points, name="probe")
            rows = np.concatenate([self.bank.rows_of(forget), self.bank.rows_of(holdout), self._point_rows])
            y = data.y.cpu().numpy()
            self._cache = {key: (data, y, reference_likelihood(self.bank, self.config, rows, y, self._offline_a))}
        return self._cache[key]
