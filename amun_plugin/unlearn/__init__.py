"""Unlearning methods: the :class:`Unlearner` interface, every built-in method (one module each),
continuous-unlearning sessions and the conformance check for plugin authors."""

from amun_plugin.unlearn.amun import PAPER_SETTINGS, Amun, AmunConfig
from amun_plugin.unlearn.amun_salun import AmunSalUn, AmunSalUnConfig
from amun_plugin.unlearn.auto import Auto, AutoConfig
from amun_plugin.unlearn.base import Capabilities, ForgetRequest, UnlearnContext, Unlearner, UnlearnResult
from amun_plugin.unlearn.boundary_shrink import BoundaryShrink, BoundaryShrinkConfig
from amun_plugin.unlearn.conformance import ConformanceReport, check_unlearner
from amun_plugin.unlearn.continuous import AmunA, ContinuousSession, RequestRecord
from amun_plugin.unlearn.dau import Dau, DauConfig
from amun_plugin.unlearn.dau_attacker import MembershipAttacker, barlow_twins_loss
from amun_plugin.unlearn.finetune import Finetune, FinetuneConfig
from amun_plugin.unlearn.gradient_ascent import GradientAscent, GradientAscentConfig
from amun_plugin.unlearn.job import UnlearnJob
from amun_plugin.unlearn.l1_sparse import L1Sparse, L1SparseConfig
from amun_plugin.unlearn.random_label import RandomLabel, RandomLabelConfig, random_other_labels
from amun_plugin.unlearn.retrain import Retrain, RetrainConfig
from amun_plugin.unlearn.saliency import saliency_mask
from amun_plugin.unlearn.salun import SalUn, SalUnConfig

BUILTIN_UNLEARNERS: tuple[type[Unlearner], ...] = (
    Amun, AmunA, AmunSalUn, Retrain, Finetune, RandomLabel, GradientAscent, BoundaryShrink, L1Sparse, SalUn, Dau, Auto,
)
"""The unlearners amun_plugin registers through its own ``amun_register_unlearners`` hook."""

__all__ = [
    "BUILTIN_UNLEARNERS",
    "PAPER_SETTINGS",
    "Amun",
    "AmunA",
    "AmunConfig",
    "AmunSalUn",
    "AmunSalUnConfig",
    "Auto",
    "AutoConfig",
    "BoundaryShrink",
    "BoundaryShrinkConfig",
    "Capabilities",
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
    "UnlearnJob",
    "UnlearnResult",
    "Unlearner",
    "barlow_twins_loss",
    "check_unlearner",
    "random_other_labels",
    "saliency_mask",
]
