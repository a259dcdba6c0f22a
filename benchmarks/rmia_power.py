"""Benchmark: how many RMIA reference models give TPR at 1% / 0.1% FPR any power (digits MLP).

The original model and one retrained model of the ``forgetting_quality`` suite's ``digits-mlp``
preset (read from / added to the bench cache), audited by RMIA (online) with reference banks of
K = 8, 16 and 64 models on the population train ∪ test. Reported per K: FT AUC, RT AUC and the
TPR at 1% and 0.1% FPR (forget vs test, retain vs test) with 95% Clopper–Pearson intervals, and
the banks' training time. Writes ``results.json``, ``results.md`` and ``env.json`` under ``--out``.

    python benchmarks/rmia_power.py      # ~90 MLP trainings of ~1-3 s each on one core
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import torch

from amun_plugin.bench import load_suite
from amun_plugin.evaluate import AuditData, RMIAEvaluator
from amun_plugin.harness import (
    ArtifactCache,
    ComponentSpec,
    Workspace,
    atomic_write_json,
    atomic_write_text,
    default_cache_dir,
    markdown_table,
    record_invocation,
    reference_train_seconds,
)

KEYS = ("FT_TPR@1%FPR", "FT_TPR@0.1%FPR", "RT_TPR@1%FPR", "RT_TPR@0.1%FPR")


def _workspace(k: int, cache: ArtifactCache, preset: str = "digits-mlp") -> Workspace:
    config = load_suite("forgetting_quality", preset)
    evaluation = dataclasses.replace(config.evaluation, evaluators=(
        *config.evaluation.evaluators, ComponentSpec("rmia")),
        reference={"num_models": k, "seed": 0})
    return Workspace(dataclasses.replace(config, evaluation=evaluation), cache)


def _row(model_name: str, k: int, metrics: dict[str, float], seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model_name, "K": k, "FT AUC": f"{metrics['FT_AUC']:.1f}",
                           "RT AUC": f"{metrics['RT_AUC']:.1f}", "bank s": f"{seconds:.0f}"}
    for key in KEYS:
        row[key] = f"{metrics[key]:.1f} [{metrics[key + '_lo']:.1f}, {metrics[key + '_hi']:.1f}]"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/rmia_power-digits")
    parser.add_argument("--k", type=int, nargs="+", default=[8, 16, 64])
    parser.add_argument("--preset", default="digits-mlp", help="a preset of the forgetting_quality suite")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache = ArtifactCache(default_cache_dir())
    rows, raw = [], []
    for k in args.k:
        ws = _workspace(k, cache, args.preset)
        bank = ws.bank()
        seconds = float(sum(reference_train_seconds(bank.directory)))
        split = ws.split(0.1, 0)
        data = AuditData(split.retain(ws.train), split.forget(ws.train), ws.test)
        models = {"original": ws.original(0)[0], "retrained (seed 1000)": ws.retrained(1000, split)[0]}
        for name, model in models.items():
            metrics = RMIAEvaluator(bank=bank).evaluate(model, data).metrics
            rows.append(_row(name, k, metrics, seconds))
            raw.append({"model": name, "K": k, "bank_seconds": seconds, "metrics": metrics,
                        "n": {"retain": len(data.retain), "forget": len(data.forget), "test": len(data.test)}})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", raw)
    record_invocation(out, "local", "cpu")
    n = raw[0]["n"]
    text = (f"# RMIA power at low FPR vs the number of reference models K ({args.preset})\n\n"
            f"Online RMIA; |D_R| = {n['retain']}, |D_F| = {n['forget']}, |D_T| = {n['test']} (negatives). TPR in %, "
            "95% Clopper–Pearson interval over the positives; \"bank s\": total training time (s) of the K "
            "reference models.\n\n"
            + markdown_table(rows, ["model", "K", "FT AUC", "RT AUC", *KEYS, "bank s"]))
    atomic_write_text(out / "results.md", text)
    print(text)


if __name__ == "__main__":
    main()
