"""What ``amun audit --protocol forgetting-quality`` does (the CLI only parses and prints).

Each checkpoint is an *original* model (``amun train``): the ``forgetting_quality`` evaluator runs
``--method`` N = ``--runs`` times on its forget split and retrains N models on D_R with the
checkpoint's own architecture and recipe (cached in ``$AMUN_BENCH_CACHE`` or
``~/.cache/amun_plugin/bench``, so a second method or a rerun reuses them). One folder per
checkpoint: ``forgetting_quality.json`` (metrics, per-example ε and the per-model confidences
F is computed from), ``report.md`` and ``epsilon_histogram.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from amun_plugin.bench.forgetting_tables import epsilon_histograms
from amun_plugin.commands.audits import recorded_split
from amun_plugin.data.splits import SplitConfig
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.forgetting_evaluator import ForgettingQualityEvaluator
from amun_plugin.evaluate.markdown import markdown_table
from amun_plugin.io import atomic_write_text
from amun_plugin.plugins import PluginHost, get_plugin_manager

__all__ = ["FORGETTING_COLUMNS", "forgetting_audit_command"]

FORGETTING_COLUMNS = ("model", "F", "final_score", "RA_ratio", "TA_ratio", "ULiRA_TPR@1%FPR", "ULiRA_TPR@0.1%FPR",
                      "ULiRA_AUC", "runs")


def forgetting_audit_command(*, checkpoints: Sequence[str], split: SplitConfig | None, method: str,
                             method_options: Mapping[str, Any], use_retain: bool, runs: int, seed: int, device: str,
                             out: str, echo: Callable[[str], Any], plots: bool = True,
                             cache_dir: str | None = None,
                             dataset_options: Mapping[str, Any] | None = None,
                             host: PluginHost | None = None) -> dict[str, Any]:
    """Run the protocol from every original checkpoint; returns {stem: {"metrics", "epsilon", "confidence"}}
    ("confidence": {"unlearned": (N, n), "retrained": (N, n)} nested lists)."""
    if not checkpoints:
        raise InvalidInputError("name at least one original checkpoint")
    host = host or get_plugin_manager()
    results: dict[str, Any] = {}
    for path in checkpoints:
        model, metadata = host.load_model(path, device=device)
        if metadata.dataset is None:
            raise InvalidInputError(f"{path} does not record its dataset; train it with `amun train`")
        bundle = host.load_checkpoint_dataset(metadata, dataset_options)
        chosen = recorded_split(bundle.train, split, metadata)
        data = AuditData(chosen.retain(bundle.train), chosen.forget(bundle.train), bundle.test)
        evaluator = ForgettingQualityEvaluator({
            "architecture": metadata.architecture, "architecture_options": metadata.architecture_config,
            "recipe": {k: v for k, v in metadata.recipe.items() if k != "seed"}, "method": method,
            "method_options": dict(method_options), "use_retain": use_retain, "runs": runs, "cache_dir": cache_dir},
            plugins=host)
        result = evaluator.evaluate(model, data, device=device, seed=seed)
        stem = Path(path).stem
        epsilon = [float(e) for e in result.scores["forget"]]
        confidence = {side: result.scores[f"confidence_{side}"].tolist() for side in ("unlearned", "retrained")}
        results[stem] = {"metrics": result.metrics, "epsilon": epsilon, "confidence": confidence}
        _write(Path(out) / stem, stem, method, results[stem], runs, plots)
    rows = [{"model": name, **r["metrics"]} for name, r in results.items()]
    echo(markdown_table(rows, list(FORGETTING_COLUMNS), digits=3))
    echo(f"reports written under {out}/ ({', '.join(results)})")
    return results


def _write(folder: Path, name: str, method: str, result: Mapping[str, Any], runs: int, plots: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    metrics, epsilon = result["metrics"], result["epsilon"]
    atomic_write_text(folder / "forgetting_quality.json",
                      json.dumps({"model": name, "method": method, "metrics": dict(metrics), "epsilon": epsilon,
                                  "confidence": result["confidence"]}, indent=1))
    rows = [{"metric": k, "value": f"{v:.4g}"} for k, v in metrics.items()]
    text = (f"# Forgetting quality of `{method}` from `{name}`\n\nN = {runs} unlearning runs vs N retrained "
            "models; F in [0, 1] (1 = indistinguishable from retraining); U-LiRA in %, intervals 95% bootstrap "
            "over models.\n\n" + markdown_table(rows, ["metric", "value"]))
    if plots:
        epsilon_histograms({method: epsilon}, runs, folder / "epsilon_histogram.png")
        text += "\n![per-example ε](epsilon_histogram.png)\n"
    atomic_write_text(folder / "report.md", text)
