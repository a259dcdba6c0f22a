"""Issue 16, item 4: a report never contradicts itself — the ROC legends print the AUCs of the
tables (the evaluators' metrics), not a second computation; the ROC title is not cut off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from amun_plugin.evaluate import plotting
from amun_plugin.evaluate.report import ModelAudit, write_report
from amun_plugin.evaluate.roc import roc_auc


def _capture(monkeypatch) -> list[Any]:
    """Figures as saved, each with ``title_box`` (the suptitle's extent in pixels, or None) and
    ``size`` (width, height in pixels) measured before the figure is closed."""
    figures: list[Any] = []
    real = plotting.save_figure

    def keep(fig: Any, path: Any, dpi: int = 110) -> Path:
        fig.canvas.draw()
        title = fig._suptitle
        fig.title_box = None if title is None else title.get_window_extent(fig.canvas.get_renderer())
        fig.size = fig.canvas.get_width_height()
        figures.append(fig)
        return real(fig, path, dpi)

    monkeypatch.setattr(plotting, "save_figure", keep)
    return figures


def _audit(name: str, ft: float, rt: float, seed: int) -> ModelAudit:
    rng = np.random.default_rng(seed)
    scores = {"retain": rng.normal(0.6, 1, 400), "forget": rng.normal(0.3, 1, 60), "test": rng.normal(0, 1, 300)}
    return ModelAudit(name, {"rmia.FT_AUC": ft, "rmia.RT_AUC": rt}, scores={"rmia": scores})


def test_roc_legends_show_the_tables_aucs(tmp_path: Path, monkeypatch) -> None:
    figures = _capture(monkeypatch)
    audited, retrained = _audit("amun", 56.34, 61.94, 0), _audit("retrain", 50.12, 59.05, 1)
    assert abs(roc_auc(audited.scores["rmia"]["forget"], audited.scores["rmia"]["test"]) - 56.34) > 0.5
    write_report(tmp_path, audited, retrained=retrained)
    legend = [t.get_text() for t in figures[-1].axes[0].get_legend().get_texts()]
    assert legend[:3] == ["amun: FT (56.3)", "amun: RT (61.9)", "retrain: FT (50.1)"]


def test_the_roc_title_is_not_clipped(tmp_path: Path, monkeypatch) -> None:
    figures = _capture(monkeypatch)
    write_report(tmp_path, _audit("amun", 56.34, 61.94, 0))
    box, (width, height) = figures[-1].title_box, figures[-1].size
    assert box.x0 >= 0 and box.x1 <= width and box.y1 <= height
