"""The one audit path: run evaluators on models (and their retrained / original references) and
write a report folder a person reads at a glance. ``amun_plugin.audit`` / ``amun_plugin.audit_many``
(:mod:`amun_plugin.api`) call it with the plugin host's registries::

    report = amun_plugin.audit(unlearned, retain, forget, test, retrained=retrained, original=original,
                               out_dir="audit/amun", reference_bank="banks/fmnist")

Each audited model gets one folder with ``metrics.json``, ``report.md`` (every metric, the retrained
model beside it, Avg Gap) and PNGs (confidence histograms before / after, ROC curves on log-log
axes). Every model is evaluated once, however many folders show it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from amun_plugin.config import config_to_dict
from amun_plugin.data.base import LabeledData, labeled_for_model
from amun_plugin.data.overlap import check_disjoint
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData, Evaluator
from amun_plugin.evaluate.gap import avg_gap, gap_keys
from amun_plugin.evaluate.reference import ReferenceBank
from amun_plugin.evaluate.report import ModelAudit, write_report
from amun_plugin.evaluate.retrain_free import RetrainFreeConfig, attach_result, make_retrain_free
from amun_plugin.evaluate.rmia_evaluator import RMIAEvaluator
from amun_plugin.evaluate.signals import logit_scaled_confidence
from amun_plugin.models.inference import infer_num_classes, predict_logits
from amun_plugin.registry import Components
from amun_plugin.unlearn.estimate import MembershipProbe

__all__ = ["DEFAULT_AUDIT_EVALUATORS", "audit", "audit_many", "make_evaluators"]

DEFAULT_AUDIT_EVALUATORS: tuple[str, ...] = ("accuracy", "confidence_mia", "mis", "art_blackbox", "art_rule_based")
EvaluatorSpec = str | Evaluator


def audit(model: nn.Module, retain: Any, forget: Any, test: Any,
          evaluators: Sequence[EvaluatorSpec] | None = None, *, retrained: nn.Module | None = None,
          original: nn.Module | None = None, out_dir: str | Path | None = None, name: str = "model",
          reference_bank: ReferenceBank | str | Path | None = None,
          evaluator_options: Mapping[str, Mapping[str, Any]] | None = None, mia_metric: str | None = None,
          num_classes: int | None = None, device: str | torch.device = "cpu", seed: int = 0,
          plugins: Components, plots: bool = True, holdout: Any = None, membership: MembershipProbe | None = None,
          retrain_free: Mapping[str, Any] | RetrainFreeConfig | None = None) -> dict[str, Any]:
    """Audit one model; write its folder to ``out_dir`` when given.

    Args:
        model: the audited classifier (logits for inputs in [0, 1]); not modified.
        retain, forget, test: D_R, D_F, D_T as LabeledData, (x, y) pairs or torch Datasets.
        evaluators: registered names or Evaluator instances; default DEFAULT_AUDIT_EVALUATORS plus
            "rmia" when ``reference_bank`` is given.
        retrained: the model retrained without D_F (shown beside, and the Avg Gap reference).
        original: the model before unlearning ("before" histograms).
        reference_bank: a ReferenceBank or its folder, for "rmia".
        evaluator_options: evaluator name -> config mapping (e.g. {"mis": {"max_shadow": 2000}}).
        mia_metric: the MIA term of Avg Gap (default: the first of gap.MIA_CANDIDATES computed).
        plugins: the registries the named evaluators are found in (the plugin host).
        plots: write the PNGs (matplotlib is slow to start; False skips them).
        holdout: samples no model trained on: runs the retrain-free audit (needs ``original``; see
            :mod:`amun_plugin.evaluate.retrain_free`): the estimated Avg Gap, its terms and bootstrap
            intervals, and its verdicts, as ``retrain_free.*`` keys.
        membership: the retrain-free audit's MembershipProbe (default: the confidence; e.g. an RmiaProbe).
        retrain_free: its options (:class:`~amun_plugin.evaluate.retrain_free.RetrainFreeConfig`:
            resamples=200, level=0.95, budget=5.0, note).

    Returns:
        {"model": name, "metrics": {...}, "avg_gap": float | None, "paths": {...}} (paths when written),
        with "retrain_free": {...} when ``holdout`` is given.
    """
    reports = audit_many({name: model}, retain, forget, test, evaluators, retrained=retrained, original=original,
                         out_dir=out_dir, reference_bank=reference_bank, evaluator_options=evaluator_options,
                         mia_metric=mia_metric, num_classes=num_classes, device=device, seed=seed, plugins=plugins,
                         nested=False, plots=plots, holdout=holdout, membership=membership, retrain_free=retrain_free)
    return reports[name]


def audit_many(models: Mapping[str, nn.Module], retain: Any, forget: Any, test: Any,
               evaluators: Sequence[EvaluatorSpec] | None = None, *, retrained: nn.Module | None = None,
               original: nn.Module | None = None, out_dir: str | Path | None = None,
               reference_bank: ReferenceBank | str | Path | None = None,
               evaluator_options: Mapping[str, Mapping[str, Any]] | None = None, mia_metric: str | None = None,
               num_classes: int | None = None, device: str | torch.device = "cpu", seed: int = 0,
               plugins: Components, nested: bool = True, plots: bool = True, holdout: Any = None,
               membership: MembershipProbe | None = None,
               retrain_free: Mapping[str, Any] | RetrainFreeConfig | None = None,
               ) -> dict[str, dict[str, Any]]:
    """:func:`audit` for several models: folder ``out_dir/<name>`` each (``nested``), every model
    (including ``retrained`` and ``original``) evaluated once. Returns name -> result."""
    if not models:
        raise InvalidInputError("audit needs at least one model")
    data = _audit_data(retain, forget, test, num_classes, next(iter(models.values())))
    free = make_retrain_free(holdout, data, original, membership, retrain_free, device=device, seed=seed)
    instances = make_evaluators(evaluators, reference_bank, evaluator_options, plugins=plugins)
    cache: dict[int, ModelAudit] = {}

    def evaluated(label: str, model: nn.Module) -> ModelAudit:
        if id(model) not in cache:
            cache[id(model)] = _evaluate(label, model, data, instances, device, seed)
        return cache[id(model)]

    settings = {"evaluators": {e.name: config_to_dict(e.config) for e in instances}, "seed": seed,
                "sizes": {"retain": len(data.retain), "forget": len(data.forget), "test": len(data.test)}}
    results = {}
    for label, model in models.items():
        audited = evaluated(label, model)
        ref = None if retrained is None or retrained is model else evaluated("retrained", retrained)
        before = None if original is None or original is model else evaluated("original", original)
        result: dict[str, Any] = {"model": label, "metrics": audited.metrics, "seconds": audited.seconds,
                                  "avg_gap": _avg_gap(audited, ref, mia_metric)}
        if out_dir is not None:
            folder = Path(out_dir) / label if nested else Path(out_dir)
            result.update(write_report(folder, audited, retrained=ref, original=before, mia_metric=mia_metric,
                                       settings=settings, plots=plots))
        if free is not None:
            attach_result(result, free.of(model))
        results[label] = result
    return results


def make_evaluators(specs: Sequence[EvaluatorSpec] | None, reference_bank: ReferenceBank | str | Path | None = None,
                    options: Mapping[str, Mapping[str, Any]] | None = None, *,
                    plugins: Components) -> list[Evaluator]:
    """Evaluator instances from names (looked up in ``plugins.evaluators``, configured from
    ``options[name]``) or instances; RMIA evaluators get ``reference_bank``, evaluators that run
    other components (``needs_components``) get ``plugins``."""
    if specs is None:
        specs = DEFAULT_AUDIT_EVALUATORS + (("rmia",) if reference_bank is not None else ())
    host = plugins
    options = dict(options or {})
    unknown = sorted(set(options) - {s for s in specs if isinstance(s, str)})
    if unknown:
        raise InvalidInputError(f"evaluator_options given for evaluator(s) not run: {', '.join(unknown)}")
    out: list[Evaluator] = []
    for spec in specs:
        if isinstance(spec, Evaluator):
            out.append(spec)
        elif isinstance(spec, str):
            out.append(_named_evaluator(host, spec, dict(options.get(spec, {})), reference_bank))
        else:
            raise InvalidInputError(f"an evaluator must be a registered name or an Evaluator, "
                                    f"got {type(spec).__name__}")
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"each evaluator may run once per audit, got {names}")
    return out


def _named_evaluator(host: Components, name: str, config: dict[str, Any],
                     bank: ReferenceBank | str | Path | None) -> Evaluator:
    cls = host.evaluators.get(name)
    if cls.needs_components:
        return cls(config, plugins=host)
    if bank is None or not issubclass(cls, RMIAEvaluator):
        return cls(config)
    if isinstance(bank, ReferenceBank):
        return cls(config, bank=bank)
    return cls({**config, "bank_dir": str(bank)})


def _avg_gap(audited: ModelAudit, retrained: ModelAudit | None, mia_metric: str | None) -> float | None:
    """Avg Gap to the retrained model; None without one, or without the accuracy and an MIA metric."""
    keys = gap_keys(audited.metrics, mia_metric) if retrained is not None else None
    return avg_gap(audited.metrics, retrained.metrics, keys) if retrained is not None and keys else None


def _audit_data(retain: Any, forget: Any, test: Any, num_classes: int | None, model: nn.Module) -> AuditData:
    inferred = num_classes is None and not isinstance(forget, LabeledData)
    if inferred:
        num_classes = infer_num_classes(model, forget)
    parts = [labeled_for_model(d, num_classes, name, inferred) for d, name in ((retain, "retain"), (forget, "forget"),
                                                                    (test, "test"))]
    check_disjoint(parts[1], parts[2], "the test set must hold samples the model never trained on "
                   "(forget samples there make the membership metrics meaningless)")
    return AuditData(*parts)


def _evaluate(label: str, model: nn.Module, data: AuditData, evaluators: list[Evaluator],
              device: str | torch.device, seed: int) -> ModelAudit:
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"{label}: expected a torch.nn.Module, got {type(model).__name__}")
    audit = ModelAudit(label, {})
    audit.confidence = {name: logit_scaled_confidence(predict_logits(model, part.x, device=device), part.y).numpy()
                        for name, part in (("retain", data.retain), ("forget", data.forget), ("test", data.test))}
    for evaluator in evaluators:
        start = time.perf_counter()
        result = evaluator.evaluate(model, data, device=device, seed=seed)
        audit.seconds[evaluator.name] = time.perf_counter() - start
        audit.metrics.update({f"{evaluator.name}.{k}": float(v) for k, v in result.metrics.items()})
        if result.scores:
            audit.scores[evaluator.name] = result.scores
    return audit
