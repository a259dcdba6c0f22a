"""``amun demo``: AMUN on the embedded scikit-learn digits, end to end, in a few CPU minutes.

Trains an original model that memorises its training set, a model retrained without the
forget set (the gold standard), and AMUN with and without D_R; prints UA / RA / TA and the
forget-vs-test membership AUC of each, and writes a report folder (JSON, Markdown, PNG).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from amun_plugin.api import unlearn
from amun_plugin.config import config_to_dict
from amun_plugin.data.splits import SplitConfig, make_split
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.plots import plot_confidence_histograms
from amun_plugin.evaluate.tables import markdown_table
from amun_plugin.io import atomic_write_json, atomic_write_text
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.training import Schedule, TrainConfig
from amun_plugin.workflow import audit_models, load_dataset, make_architecture, train_classifier

__all__ = ["DemoConfig", "run_demo"]

COLUMNS = ("model", "UA", "RA", "TA", "FT_AUC", "RT_AUC", "seconds")


@dataclass(frozen=True)
class DemoConfig:
    """The demo's recipe: no weight decay and many epochs, so the original model memorises."""

    dataset: str = "digits"
    architecture: str = "mlp"
    forget_fraction: float = 0.1
    seed: int = 0
    epochs: int = 60
    batch_size: int = 32
    lr: float = 0.05
    amun_epochs: int = 10
    amun_lr: float = 0.01
    output: str = "amun-demo-report"
    device: str = "cpu"

    def recipe(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           weight_decay=0.0, schedule=Schedule.COSINE)


def run_demo(
    config: DemoConfig = DemoConfig(),
    *,
    plugins: PluginHost | None = None,
    progress: bool = True,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the demo and write its report under ``config.output``; returns the metrics by model."""
    host = plugins or get_plugin_manager()
    bundle = load_dataset(host, config.dataset, {"seed": config.seed})
    split = make_split(bundle.train, SplitConfig(fraction=config.forget_fraction, seed=config.seed))
    forget, retain = split.forget(bundle.train), split.retain(bundle.train)
    architecture = make_architecture(host, config.architecture)
    echo(f"{bundle.name}: {len(bundle.train)} train ({len(forget)} to forget), {len(bundle.test)} test")

    models, seconds, stats = {}, {}, {}
    start = time.perf_counter()
    models["original"] = train_classifier(architecture, bundle.train, config.recipe(), seed=config.seed,
                                          device=config.device, progress="original" if progress else False)
    seconds["original"] = time.perf_counter() - start
    start = time.perf_counter()
    models["retrain"] = train_classifier(architecture, retain, config.recipe(), seed=config.seed,
                                         device=config.device, progress="retrain" if progress else False)
    seconds["retrain"] = time.perf_counter() - start
    for label, retain_set in (("amun (with D_R)", retain), ("amun (without D_R)", None)):
        result = unlearn(models["original"], forget, retain_set, method="amun", plugins=host,
                         device=config.device, seed=config.seed, progress=progress,
                         epochs=config.amun_epochs, lr=config.amun_lr)
        models[label], stats[label] = result.model.eval(), result.stats
        seconds[label] = result.stats["seconds_total"]

    audit = AuditData(retain=retain, forget=forget, test=bundle.test)
    results = audit_models(models, audit, plugins=host, device=config.device, seed=config.seed)
    rows = [{"model": name, **results[name].metrics, "seconds": seconds[name]} for name in models]
    table = markdown_table(rows, COLUMNS)
    echo(table)
    _write_report(Path(config.output), config, rows, table, results, stats)
    echo(f"report written to {config.output}/ (report.md, metrics.json, confidence_histograms.png)")
    return {row["model"]: row for row in rows}


def _write_report(out: Path, config: DemoConfig, rows: list[dict[str, Any]], table: str,
                  results: dict[str, Any], stats: dict[str, Any]) -> None:
    panels = {name: result.scores for name, result in results.items()}
    plot_confidence_histograms(panels, out / "confidence_histograms.png",
                               title="Logit-scaled confidence before and after unlearning")
    atomic_write_json(out / "metrics.json", {"config": config_to_dict(config), "rows": rows, "unlearn_stats": stats})
    text = (
        "# AMUN demo\n\n"
        f"Dataset `{config.dataset}`, model `{config.architecture}`, forget {config.forget_fraction:.0%} "
        f"(seed {config.seed}). UA/RA/TA: accuracy (%) on forget/retain/test. FT_AUC: AUC (%) of the "
        "logit-scaled confidence separating forget from test (50 = indistinguishable); RT_AUC: retain vs "
        "test, the original model's memorisation signal.\n\n"
        f"{table}\n![confidence histograms](confidence_histograms.png)\n"
    )
    atomic_write_text(out / "report.md", text)
