"""The built-in evaluators, in the order ``amun plugins`` lists them."""

from __future__ import annotations

from amun_plugin.evaluate.base import Evaluator

__all__ = ["builtin_evaluators"]


def builtin_evaluators() -> list[type[Evaluator]]:
    from amun_plugin.evaluate.accuracy import AccuracyEvaluator
    from amun_plugin.evaluate.art_attacks import ArtBlackBoxEvaluator, ArtLabelOnlyEvaluator, ArtRuleBasedEvaluator
    from amun_plugin.evaluate.confidence_mia import ConfidenceMIA
    from amun_plugin.evaluate.forgetting_evaluator import ForgettingQualityEvaluator
    from amun_plugin.evaluate.mis import MISEvaluator
    from amun_plugin.evaluate.rmia_evaluator import RMIAEvaluator

    return [AccuracyEvaluator, ConfidenceMIA, RMIAEvaluator, MISEvaluator, ArtBlackBoxEvaluator,
            ArtRuleBasedEvaluator, ArtLabelOnlyEvaluator, ForgettingQualityEvaluator]
