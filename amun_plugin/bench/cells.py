"""The records of the table suites' cells: the retrained model's audit, the original model's,
one unlearning run (a table cell or a tuning grid point), and the helpers other cell kinds share
(the forget split a :class:`~amun_plugin.bench.records.SplitRef` names, a method's D_A, the
retrained model's metrics). The cell types are in ``records``; the jobs that run them in ``jobs``.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from amun_plugin.api import unlearn
from amun_plugin.artifacts import content_hash
from amun_plugin.bench.chains import cumulative_split
from amun_plugin.bench.original_check import saturated_fraction
from amun_plugin.bench.records import Cell, SplitRef
from amun_plugin.bench.suite_config import AdversarialSource, MethodSpec, gaps_by_table, method_spec
from amun_plugin.bench.workspace import Workspace, split_key
from amun_plugin.config import cache_key
from amun_plugin.data.base import LabeledData
from amun_plugin.data.splits import UnlearningSplit
from amun_plugin.errors import InvalidInputError, UnlearningDivergedError
from amun_plugin.evaluate.retrain_free import RetrainFreeConfig, measure_samples, summarise
from amun_plugin.evaluate.rmia_probe import RmiaProbe
from amun_plugin.unlearn.amun import uncalibrated_on_purpose
from amun_plugin.unlearn.calibration import CALIBRATION_REVISION, retain_probe
from amun_plugin.unlearn.estimate import MembershipProbe

__all__ = ["adversarial_for", "original_record", "resolve_split", "resolved_hash", "retrain_record",
           "retrained_metrics", "unlearn_record"]


def resolved_hash(ws: Workspace, name: str, options: Mapping[str, Any], calibrated: bool = False,
                  membership: str = "confidence") -> str:
    """Content hash of the cache key of unlearner ``name``'s full config for ``options`` (defaults
    included; see :func:`~amun_plugin.config.cache_key`); a run that calibrates also hashes
    ``CALIBRATION_REVISION`` (so a change of the calibrated schedule's behaviour moves only the
    calibrated cells), a membership signal other than the confidence and the unlearner's
    ``revision`` when it is not 0."""
    unlearner = ws.plugins.unlearners.get(name)(dict(options))
    key = cache_key(unlearner.config)
    if unlearner.revision:
        key = {**key, "revision": unlearner.revision}
    if calibrated:
        key = {**key, "calibration_revision": CALIBRATION_REVISION,
               **({"membership": membership} if membership != "confidence" else {})}
    return content_hash(key)


def resolve_split(ws: Workspace, ref: SplitRef) -> UnlearningSplit:
    """The forget split ``ref`` names."""
    if ref.requests is not None:
        return cumulative_split(ws, ref.forget_seed, ref.requests)
    assert ref.fraction is not None
    return ws.split(ref.fraction, ref.forget_seed)


def adversarial_for(ws: Workspace, spec: MethodSpec, variant: str, seed: int, split: UnlearningSplit) -> Any:
    """D_A of ``spec`` for ``split``: searched on the original model of ``seed`` (``own``) or of
    ``seed + transfer_seed_offset`` (``transfer``); None when the method uses none."""
    if spec.adversarial is AdversarialSource.NONE:
        return None
    source = seed if spec.adversarial is AdversarialSource.OWN else seed + ws.config.transfer_seed_offset
    model, _ = ws.original(source, variant)
    return ws.adversarial(model, ws.model_key("original", source, variant), split, spec)


def retrained_metrics(ws: Workspace, cell: Cell, split: UnlearningSplit) -> tuple[dict[str, float], dict]:
    """Audit metrics of the retrained model of ``cell``'s split (cached) and its training info."""
    model, info = ws.retrained(cell.original_seed, split, cell.variant)
    key = ws.model_key("retrain", cell.original_seed, cell.variant, split)
    metrics = ws.audit(model, split.retain(ws.train), split.forget(ws.train),
                       cache_spec={"model": key, "forget": split_key(split)})
    return metrics, info


def retrain_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """The Retrain row: the gold standard's metrics (Avg Gap 0 by definition) and training time."""
    split = ws.split(cell.fraction, cell.forget_seed)
    metrics, info = retrained_metrics(ws, cell, split)
    _, original = ws.original(cell.original_seed, cell.variant)
    return {**cell.coords(), "metrics": metrics, "gaps": {t.title: 0.0 for t in ws.config.evaluation.tables},
            "seconds": info["train_seconds"], "retrain_seconds": info["train_seconds"],
            "original": {k: original[k] for k in ("train_accuracy", "test_accuracy", "train_seconds")}}


def original_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """The Original row: the model before unlearning, audited on the cell's split (what doing
    nothing scores), with its train / test accuracy (%), saturated fraction (% of training samples
    with p_y == 1.0 in float32) and RMIA RT AUC (%, None without RMIA)."""
    split = ws.split(cell.fraction, cell.forget_seed)
    model, info = ws.original(cell.original_seed, cell.variant)
    key = ws.model_key("original", cell.original_seed, cell.variant)
    metrics = ws.audit(model, split.retain(ws.train), split.forget(ws.train),
                       cache_spec={"model": key, "forget": split_key(split)})
    retrain, _ = retrained_metrics(ws, cell, split)
    summary = {k: info[k] for k in ("train_accuracy", "test_accuracy", "train_seconds")}
    summary["saturated_fraction"] = saturated_fraction(model, ws.train, device=ws.config.device)
    summary["rt_auc"] = metrics.get("rmia.RT_AUC")
    return {**cell.coords(), "metrics": metrics, "gaps": gaps_by_table(ws.config, metrics, retrain), "seconds": 0.0,
            "original": summary}


def unlearn_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """One unlearning run of the cell's method with its options, audited against its retrain."""
    spec = method_spec(ws.config, cell.method)
    split = ws.split(cell.fraction, cell.forget_seed)
    model, _ = ws.original(cell.original_seed, cell.variant)
    adversarial = adversarial_for(ws, spec, cell.variant, cell.original_seed, split)
    forget, retain = split.forget(ws.train), split.retain(ws.train)
    mode = cell.extra.get("tuning_mode", "oracle")
    unlearner = ws.plugins.unlearners.get(spec.name)(dict(cell.options))
    calibrated = mode == "retrain_free" and unlearner.calibrates_with(holdout=True)
    holdout = ws.validation if calibrated else None  # retrain-free: calibrating methods calibrate on it
    bank_probe = rmia_probe(ws) if ws.config.evaluation.reference.get("include_validation") else None
    # rmia_probe refuses a suite whose bank lacks the hold-out
    membership = (bank_probe or rmia_probe(ws)) if calibrated and spec.membership == "rmia" else None
    options = unlearner.schedule_options(cell.options, calibrated)  # the suite's fixed options stay coordinates
    with_retain = cell.with_retain
    start = time.perf_counter()
    search = float(adversarial.seconds) if adversarial is not None else 0.0
    with uncalibrated_on_purpose():  # oracle mode runs fixed options on purpose
        try:
            result = unlearn(model, forget, retain if with_retain else None, method=spec.name,
                             validation=ws.validation, holdout=holdout, adversarial=adversarial, membership=membership,
                             device=ws.config.device, seed=cell.unlearn_seed, plugins=ws.plugins,
                             progress=ws.progress, **options)
        except UnlearningDivergedError as exc:  # a grid point too aggressive for this model: a record, not a crash
            return {**cell.coords(), "unlearner": spec.name, "tuning_mode": mode, "diverged": str(exc),
                    "metrics": {}, "gaps": {}, "seconds": time.perf_counter() - start + search,
                    "seconds_search": search}
    wall = time.perf_counter() - start
    metrics = ws.audit(result.model, retain, forget)
    retrain, info = retrained_metrics(ws, cell, split)
    record = {**cell.coords(), "unlearner": spec.name, "tuning_mode": mode, "metrics": metrics,
              "gaps": gaps_by_table(ws.config, metrics, retrain), "seconds": wall + search,
              "seconds_search": search, "retrain_seconds": info["train_seconds"], "stats": _scalars(result.stats)}
    if ws.validation is not None:
        record["proxy"] = retrain_free_estimate(ws.validation, model, result.model, forget,
                                                retain if with_retain else None, ws.config.device)
        if bank_probe is not None:
            record["proxy_rmia"] = retrain_free_estimate(ws.validation, model, result.model, forget,
                                                         retain if with_retain else None, ws.config.device,
                                                         bank_probe)
    return record


def rmia_probe(ws: Workspace) -> RmiaProbe:
    """The RMIA membership probe of the suite's reference bank (which must hold the validation
    hold-out: ``evaluation.reference.include_validation``)."""
    if not ws.config.evaluation.reference.get("include_validation"):
        raise InvalidInputError("membership: rmia needs evaluation.reference.include_validation: true (the bank "
                                "must hold the validation hold-out it scores)")
    bank = ws.bank()
    if bank is None:
        raise InvalidInputError("membership: rmia needs the rmia evaluator (a reference bank)")
    rmia = next((e for e in ws.config.evaluation.evaluators if e.name == "rmia"), None)
    return RmiaProbe(bank, ws.bank_population, dict(rmia.options) if rmia is not None else None)


def retrain_free_estimate(holdout: LabeledData, original: Any, unlearned: Any, forget: LabeledData,
                          retain: LabeledData | None, device: str,
                          membership: MembershipProbe | None = None) -> dict[str, Any]:
    """The estimated Avg Gap of ``unlearned`` on ``holdout`` (what the retrain-free tuning mode
    minimises; no retrained model is read), with ``membership`` as its membership signal: the point
    estimate, its terms and measure, and the retrain-free audit's 95% percentile bootstrap interval
    of the estimate (``interval``) and of each term (``intervals``), so a reader can check how often
    the interval holds the true Avg Gap."""
    # RetrainFreeAudit's steps without its check_holdout, which drops held-out duplicates of training
    # images: the bench never did, so this estimate stays the one its earlier records hold
    probe = retain_probe(retain, len(holdout), 0)
    before = measure_samples(original, forget, holdout, probe, membership, device=device, with_scores=False)
    after = measure_samples(unlearned, forget, holdout, probe, membership, device=device)
    result = summarise(after, before, RetrainFreeConfig())
    return {"estimated_gap": result.estimated_gap, "terms": result.terms, "measure": result.current.as_dict(),
            "interval": list(result.interval),
            "intervals": {name: list(span) for name, span in result.intervals.items()}}


def _scalars(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-friendly scalar statistics of an unlearning run."""
    return {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool)) or v is None}
