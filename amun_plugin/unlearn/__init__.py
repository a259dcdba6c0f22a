"""Unlearning methods: the :class:`Unlearner` interface, every built-in method (one module each),
continuous-unlearning sessions and the conformance check for plugin authors.

Names are imported on first use (``from amun_plugin.unlearn import SalUn`` loads only what SalUn
needs), which keeps ``import amun_plugin`` light and free of import cycles.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Amun",
    "AmunA",
    "AmunConfig",
    "AmunSalUn",
    "AmunSalUnConfig",
    "BoundaryShrink",
    "BoundaryShrinkConfig",
    "ConformanceReport",
    "ContinuousSession",
    "Dau",
    "DauConfig",
    "Finetune",
    "FinetuneConfig",
    "ForgetRequest",
    "GradientAscent",
    "GradientAscentConfig",
    "L1Sparse",
    "L1SparseConfig",
    "MembershipAttacker",
    "RandomLabel",
    "RandomLabelConfig",
    "RequestRecord",
    "Retrain",
    "RetrainConfig",
    "SalUn",
    "SalUnConfig",
    "UnlearnContext",
    "UnlearnResult",
    "Unlearner",
    "barlow_twins_loss",
    "builtin_unlearners",
    "check_unlearner",
    "random_other_labels",
    "saliency_mask",
]

_MODULES = {
    "Amun": "amun", "AmunConfig": "amun",
    "AmunA": "continuous", "ContinuousSession": "continuous", "RequestRecord": "continuous",
    "AmunSalUn": "amun_salun", "AmunSalUnConfig": "amun_salun",
    "BoundaryShrink": "boundary_shrink", "BoundaryShrinkConfig": "boundary_shrink",
    "ConformanceReport": "conformance", "check_unlearner": "conformance",
    "Dau": "dau", "DauConfig": "dau",
    "MembershipAttacker": "dau_attacker", "barlow_twins_loss": "dau_attacker",
    "Finetune": "finetune", "FinetuneConfig": "finetune",
    "ForgetRequest": "base", "UnlearnContext": "base", "UnlearnResult": "base", "Unlearner": "base",
    "GradientAscent": "gradient_ascent", "GradientAscentConfig": "gradient_ascent",
    "L1Sparse": "l1_sparse", "L1SparseConfig": "l1_sparse",
    "RandomLabel": "random_label", "RandomLabelConfig": "random_label", "random_other_labels": "random_label",
    "Retrain": "retrain", "RetrainConfig": "retrain",
    "SalUn": "salun", "SalUnConfig": "salun",
    "saliency_mask": "saliency",
    "builtin_unlearners": "catalog",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'amun_plugin.unlearn' has no attribute {name!r}")
    return getattr(importlib.import_module(f"amun_plugin.unlearn.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
