"""``amun demo``: AMUN on the embedded scikit-learn digits, end to end, in a few CPU minutes.

Trains an original model that memorises its training set (no weight decay, many epochs, half
of digits held out as the test pool), a model retrained without a random 10% forget set (the
gold standard), and AMUN with and without D_R with its defaults, calibrated on a held-out part of
the test pool (``holdout_size`` images, left out of the audit); audits each with accuracy (UA / RA / TA) and
RMIA with 8 reference models (forget-vs-test AUC FT, retain-vs-test AUC RT, TPR at 1% FPR);
prints a table and writes a report folder (Markdown, JSON, PNG histograms and ROC curves).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from amun_plugin.api import unlearn
from amun_plugin.config import config_to_dict
from amun_plugin.data.base import LabeledData
from amun_plugin.data.splits import SplitConfig, make_split, split_off
from amun_plugin.evaluate.audit import audit_many
from amun_plugin.evaluate.base import AuditData
from amun_plugin.evaluate.labels import label_of, labelled_row
from amun_plugin.evaluate.markdown import markdown_table
from amun_plugin.evaluate.plotting import plot_confidence_histograms
from amun_plugin.evaluate.reference import build_reference_bank, concat_population
from amun_plugin.evaluate.signals import confidence_by_set
from amun_plugin.io import atomic_write_json, atomic_write_text
from amun_plugin.models.base import ModelArchitecture
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.training import Schedule, TrainConfig, train_classifier

__all__ = ["DemoConfig", "run_demo"]

METRICS = ("accuracy.UA", "accuracy.RA", "accuracy.TA", "rmia.FT_AUC", "rmia.RT_AUC", "rmia.FT_TPR@1%FPR")
"""The demo table's metrics (columns labelled by ``evaluate.labels``)."""
COLUMNS = ("model", *map(label_of, METRICS), "avg_gap", "seconds")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """The demo's recipe. No weight decay, 100 epochs and a 50% test pool make the original MLP
    memorise (train accuracy 100%, RMIA RT AUC ~60); ``reference_models`` RMIA reference models
    are trained once and kept in ``<output>/reference_bank`` for later runs. ``threads``: torch
    CPU threads (one is fastest for these small models, and robust on a busy machine).
    ``holdout_size`` test images (class-stratified) are AMUN's held-out data for its calibration
    and leave the audited test set; ``amun_lr`` set (with ``holdout_size`` 0) runs AMUN at a fixed lr
    instead, for ``amun_epochs`` epochs."""

    dataset: str = "digits"
    test_fraction: float = 0.5
    architecture: str = "mlp"
    hidden: tuple[int, ...] = (512, 512)
    forget_fraction: float = 0.1
    seed: int = 0
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.05
    amun_epochs: int = 10
    amun_lr: float | None = None
    holdout_size: int = 200
    reference_models: int = 8
    output: str = "amun-demo-report"
    device: str = "cpu"
    threads: int = 1

    def recipe(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           weight_decay=0.0, schedule=Schedule.COSINE)


def run_demo(
    config: DemoConfig = DemoConfig(),
    *,
    plugins: PluginHost | None = None,
    progress: bool = True,
    echo: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Run the demo and write its report under ``config.output``; returns the table rows by model.
    What it reports goes to ``echo`` (default: this module's logger, at INFO)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, plugins or get_plugin_manager(), progress, echo or _log.info)
    finally:
        torch.set_num_threads(threads)


def _run(config: DemoConfig, host: PluginHost, progress: bool, echo: Callable[[str], Any]) -> dict[str, Any]:
    bundle = host.load_dataset(config.dataset, {"seed": config.seed, "test_fraction": config.test_fraction})
    split = make_split(bundle.train, SplitConfig(fraction=config.forget_fraction, seed=config.seed))
    test, holdout = _split_test(bundle.test, config.holdout_size, config.seed)
    data = AuditData(split.retain(bundle.train), split.forget(bundle.train), test)
    architecture = host.make_architecture(config.architecture, {"hidden": list(config.hidden)})
    echo(f"{bundle.name}: {len(bundle.train)} train ({len(data.forget)} to forget), {len(test)} test"
         + (f", {len(holdout)} held out for AMUN's calibration" if holdout is not None else ""))

    models, seconds = _train_references(config, architecture, bundle.train, data.retain, progress)
    stats = {}
    for label, retain in (("amun_with_retain", data.retain), ("amun_without_retain", None)):
        fixed: dict[str, Any] = {} if config.amun_lr is None else {"epochs": config.amun_epochs, "lr": config.amun_lr}
        result = unlearn(models["original"], data.forget, retain, method="amun", plugins=host, holdout=holdout,
                         device=config.device, seed=config.seed, progress=progress, **fixed)
        models[label], stats[label] = result.model.eval(), result.stats
        seconds[label] = result.stats["seconds_total"]

    start = time.perf_counter()
    population = concat_population(data.retain, data.forget, data.test)
    bank = build_reference_bank(Path(config.output) / "reference_bank", population, architecture, config.recipe(),
                                num_models=config.reference_models, seed=config.seed + 1000,
                                device=config.device, progress=progress)
    echo(f"RMIA reference bank: {bank.num_models} models ({time.perf_counter() - start:.0f} s)")
    audits = audit_many(models, data.retain, data.forget, data.test, ["accuracy", "rmia"],
                        retrained=models["retrain"], original=models["original"],
                        out_dir=Path(config.output) / "models", reference_bank=bank, plugins=host,
                        device=config.device, seed=config.seed, mia_metric="rmia.FT_AUC")
    rows = [_row(name, audits[name], seconds[name]) for name in models]
    table = markdown_table(rows, COLUMNS)
    ratio = {label: seconds[label] / seconds["retrain"] for label in stats}
    echo(table)
    echo("AMUN time / retrain time: " + ", ".join(f"{k} {v:.3f}" for k, v in ratio.items()))
    _write_report(Path(config.output), config, rows, table, ratio, models, data, stats)
    echo(f"report written to {config.output}/ (report.md, metrics.json, confidence_histograms.png, models/)")
    return {row["model"]: row for row in rows}


def _split_test(test: LabeledData, size: int, seed: int) -> tuple[LabeledData, LabeledData | None]:
    """(audited test set, held-out set of ``size`` class-stratified test images or None)."""
    if size <= 0:
        return test, None
    return split_off(test, size, seed, "holdout")


def _train_references(config: DemoConfig, architecture: ModelArchitecture, train: LabeledData,
                      retain: LabeledData, progress: bool) -> tuple[dict[str, nn.Module], dict[str, float]]:
    models: dict[str, nn.Module] = {}
    seconds: dict[str, float] = {}
    for name, data in (("original", train), ("retrain", retain)):
        start = time.perf_counter()
        models[name] = train_classifier(architecture, data, config.recipe(), seed=config.seed,
                                        device=config.device, progress=name if progress else False)
        seconds[name] = time.perf_counter() - start
    return models, seconds


def _row(name: str, audit: dict[str, Any], seconds: float) -> dict[str, Any]:
    return labelled_row(name, audit["metrics"], {"avg_gap": audit.get("avg_gap"), "seconds": seconds}, METRICS)


def _write_report(out: Path, config: DemoConfig, rows: list[dict[str, Any]], table: str, ratio: dict[str, float],
                  models: dict[str, nn.Module], data: AuditData, stats: dict[str, Any]) -> None:
    panels = {name: confidence_by_set(model, data, config.device) for name, model in models.items()}
    plot_confidence_histograms(panels, out / "confidence_histograms.png",
                               title="Logit-scaled confidence before and after unlearning")
    atomic_write_json(out / "metrics.json", {"config": config_to_dict(config), "rows": rows,
                                             "amun_over_retrain_time": ratio, "unlearn_stats": stats})
    text = (
        "# AMUN demo\n\n"
        f"Dataset `{config.dataset}` ({config.test_fraction:.0%} held out as the test pool, of which "
        f"{config.holdout_size} images are AMUN's held-out data for its calibration, not audited), model "
        f"`{config.architecture}` {list(config.hidden)}, forget {config.forget_fraction:.0%} (seed {config.seed}).\n"
        "UA / RA / TA: accuracy (%) on forget / retain / test. FT_AUC: RMIA AUC (%) separating forget from test "
        f"({config.reference_models} reference models; 50 = the forget set looks unseen). RT_AUC: retain vs test, "
        "the memorisation signal. avg_gap: mean |metric - retrain| over UA, RA, TA, FT_AUC.\n\n"
        f"{table}\nAMUN time / retrain time: "
        + ", ".join(f"{k} {v:.3f}" for k, v in ratio.items())
        + "\n\n![confidence histograms](confidence_histograms.png)\n\n"
        "Per-model reports (ROC curves, every metric): `models/<name>/report.md`.\n"
    )
    atomic_write_text(out / "report.md", text)
