"""The ``continuous`` suite's cells (AMUN paper §6.3): a chain of forget requests handled by
:class:`~amun_plugin.unlearn.continuous.ContinuousSession`, audited after every request.

Requests: a seeded permutation of the train set cut into ``requests`` consecutive chunks of
``round(fraction * N)`` samples. After request r the audit uses D_F = every sample forgotten so
far (requests 1..r), D_R = the rest of D, and D_T — the RMIA reference bank is trained on the
population D ∪ D_T, so the audited sets must cover it exactly; the paper's Figure 2 quantity is
FR AUC - FT AUC of the first table's MIA (higher = the forgotten samples look like test data).
Methods that reuse D_A (``amun``) get it computed once on the original model for all requests
up front (the paper's batched computation); ``amun_a`` recomputes it at each request. A method
with ``holdout: true`` is calibrated on the validation hold-out at every request (retrain-free),
against the current model's accuracies or, with ``calibrate_against: original``, the original's.
The Retrain chain retrains from scratch on each cumulative D_R (``retrain: each``), only for the
last request (``last``) or never (``none``); Avg Gap is reported where a retrained model exists.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from amun_plugin.bench.records import Cell
from amun_plugin.bench.suite_config import gaps_by_table, method_spec
from amun_plugin.bench.workspace import Workspace, split_key
from amun_plugin.data.splits import UnlearningSplit
from amun_plugin.errors import InvalidInputError
from amun_plugin.unlearn.amun import uncalibrated_on_purpose
from amun_plugin.unlearn.continuous import ContinuousSession

__all__ = ["auc_keys", "chain_record", "cumulative_split", "request_chunks", "retrained_requests"]


def request_chunks(ws: Workspace, forget_seed: int) -> list[np.ndarray]:
    """The train indices of every request (sorted int64 arrays, disjoint)."""
    spec, n = ws.config.continuous, len(ws.train)
    size = round(spec.fraction * n)
    if size < 1:
        raise InvalidInputError(f"continuous.fraction {spec.fraction} of {n} samples is an empty request")
    order = np.random.default_rng(forget_seed).permutation(n)
    return [np.sort(order[r * size:(r + 1) * size]).astype(np.int64) for r in range(spec.requests)]


def cumulative_split(ws: Workspace, forget_seed: int, upto: int) -> UnlearningSplit:
    """D_F = the first ``upto`` requests together, D_R = the rest of the train set."""
    forgotten = np.sort(np.concatenate(request_chunks(ws, forget_seed)[:upto]))
    return UnlearningSplit(forgotten, np.setdiff1d(np.arange(len(ws.train), dtype=np.int64), forgotten))


def retrained_requests(ws: Workspace) -> list[int]:
    """The request numbers (1-based) that get a retrained reference model."""
    spec = ws.config.continuous
    return {"each": list(range(1, spec.requests + 1)), "last": [spec.requests], "none": []}[spec.retrain]


def auc_keys(ws: Workspace) -> tuple[str, str]:
    """(FR AUC key, FT AUC key) of the evaluator behind the first table's MIA metric."""
    evaluator = ws.config.evaluation.tables[0].mia.split(".")[0]
    return f"{evaluator}.FR_AUC", f"{evaluator}.FT_AUC"


def _request_row(ws: Workspace, cell: Cell, number: int, model: Any) -> dict[str, Any]:
    """Audit after request ``number`` (1-based), with Avg Gap where a retrained model exists."""
    split = cumulative_split(ws, cell.forget_seed, number)
    retain, forget = split.retain(ws.train), split.forget(ws.train)
    fr, ft = auc_keys(ws)
    row: dict[str, Any] = {"request": number}
    retrain = None
    if number in retrained_requests(ws):
        reference, info = ws.retrained(cell.original_seed, split, cell.variant)
        key = ws.model_key("retrain", cell.original_seed, cell.variant, split)
        retrain = ws.audit(reference, retain, forget, {"model": key, "forget": split_key(split)})
        row["retrain_seconds"] = info["train_seconds"]
    metrics = retrain if model is None else ws.audit(model, retain, forget)
    if metrics is None:
        return row
    row.update(metrics=metrics, fr_minus_ft=metrics[fr] - metrics[ft])
    if retrain is not None:
        row["gaps"] = gaps_by_table(ws.config, metrics, retrain)
    return row


def chain_record(ws: Workspace, cell: Cell) -> dict[str, Any]:
    """Run the cell's method over every request (or the Retrain chain) and audit each step."""
    chunks = request_chunks(ws, cell.forget_seed)
    if cell.method == "Retrain":
        rows = [_request_row(ws, cell, r + 1, None) for r in range(len(chunks))]
        return {**cell.coords(), "requests": rows, "seconds": 0.0}
    spec = method_spec(ws.config, cell.method)
    original, _ = ws.original(cell.original_seed, cell.variant)
    unlearner = ws.plugins.unlearners.get(spec.name)(dict(cell.options))
    options = unlearner.schedule_options(cell.options, unlearner.calibrates_with(holdout=spec.holdout))
    session = ContinuousSession(original, ws.train, spec.name, options=options,
                                use_retain=cell.with_retain, validation=ws.validation,
                                holdout=ws.validation if spec.holdout else None,
                                calibrate_against=spec.calibrate_against,
                                plugins=ws.plugins, device=ws.config.device, seed=cell.unlearn_seed,
                                progress=ws.progress)
    start = time.perf_counter()
    if session.unlearner.capabilities.reuses_adversarial:
        session.precompute_adversarial(np.concatenate(chunks))
    precompute = time.perf_counter() - start
    rows = []
    for r, chunk in enumerate(chunks):
        begin = time.perf_counter()
        with uncalibrated_on_purpose():  # a method without holdout: true runs fixed options on purpose
            record = session.request(chunk)
        seconds = time.perf_counter() - begin
        row = {**_request_row(ws, cell, r + 1, session.model), "seconds": seconds}
        if record is not None and "calibrated_lr" in record.stats:
            row["calibrated_lr"] = float(record.stats["calibrated_lr"])
        rows.append(row)
    return {**cell.coords(), "unlearner": spec.name, "holdout": spec.holdout,
            "calibrate_against": spec.calibrate_against, "requests": rows,
            "seconds_precompute": precompute,
            "seconds": precompute + sum(row["seconds"] for row in rows)}
