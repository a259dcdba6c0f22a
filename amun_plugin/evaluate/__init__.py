"""Evaluation: the :class:`Evaluator` interface, every built-in evaluator (accuracy, membership
attacks, MIS, forgetting quality), the shared ROC maths (:mod:`.roc`), the one audit path
(:mod:`.audit`) and its report folder (:mod:`.report`, :mod:`.plotting`)."""

from amun_plugin.evaluate.accuracy import AccuracyEvaluator
from amun_plugin.evaluate.art_attacks import ArtBlackBoxEvaluator, ArtLabelOnlyEvaluator, ArtRuleBasedEvaluator
from amun_plugin.evaluate.base import AuditData, EvaluationResult, Evaluator
from amun_plugin.evaluate.confidence_mia import ConfidenceMIA
from amun_plugin.evaluate.forgetting_evaluator import ForgettingQualityEvaluator
from amun_plugin.evaluate.mis import MISEvaluator
from amun_plugin.evaluate.retrain_free import RetrainFreeAudit, RetrainFreeResult
from amun_plugin.evaluate.rmia_evaluator import RMIAEvaluator
from amun_plugin.evaluate.rmia_probe import RmiaProbe

BUILTIN_EVALUATORS: tuple[type[Evaluator], ...] = (
    AccuracyEvaluator, ConfidenceMIA, RMIAEvaluator, MISEvaluator, ArtBlackBoxEvaluator, ArtRuleBasedEvaluator,
    ArtLabelOnlyEvaluator, ForgettingQualityEvaluator,
)
"""The evaluators amun_plugin registers through its own ``amun_register_evaluators`` hook."""

__all__ = [
    "BUILTIN_EVALUATORS",
    "AccuracyEvaluator",
    "ArtBlackBoxEvaluator",
    "ArtLabelOnlyEvaluator",
    "ArtRuleBasedEvaluator",
    "AuditData",
    "ConfidenceMIA",
    "EvaluationResult",
    "Evaluator",
    "ForgettingQualityEvaluator",
    "MISEvaluator",
    "RMIAEvaluator",
    "RetrainFreeAudit",
    "RetrainFreeResult",
    "RmiaProbe",
]
