"""The one plotting module: the matplotlib set-up (headless ``Agg``, PNGs written atomically) and
the audit's plots a person reads at a glance, confidence histograms (paper Fig. 3-5) and membership
ROC curves. The benchmark's figures (``bench/suite_plots.py``) draw through :func:`pyplot` and
:func:`save_figure` too. matplotlib is imported on first use (it is slow to start)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from amun_plugin.evaluate.roc import roc_auc, roc_curve
from amun_plugin.io import atomic_write

__all__ = ["plot_confidence_histograms", "plot_roc_curves", "pyplot", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    pyplot().close(fig)
    return Path(path)


_SET_STYLE = {"retain": ("D_R (retain)", "tab:blue"), "forget": ("D_F (forget)", "tab:red"),
              "test": ("D_T (test)", "tab:green")}


def plot_confidence_histograms(
    panels: Mapping[str, Mapping[str, np.ndarray]], path: str | Path, title: str = ""
) -> Path:
    """One panel per model: density histograms of the logit-scaled confidence log(p_y/(1-p_y))
    of D_R, D_F and D_T. ``panels``: model name -> {"retain"|"forget"|"test": (N,) scores}.
    Written atomically as a PNG."""
    plt = pyplot()
    everything = np.concatenate([np.asarray(v) for sets in panels.values() for v in sets.values()])
    low, high = np.percentile(everything, [0.5, 99.5])
    bins = np.linspace(low, high, 50)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (model_name, sets) in zip(axes[0], panels.items()):
        for set_name, scores in sets.items():
            label, color = _SET_STYLE.get(set_name, (set_name, None))
            ax.hist(np.clip(scores, low, high), bins=bins, density=True, alpha=0.45, label=label, color=color)
        ax.set_title(model_name)
        ax.set_xlabel("log(p_y / (1 - p_y))")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(loc="upper left", fontsize=8)
    _suptitle(fig, title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_roc_curves(
    panels: Mapping[str, Mapping[str, Sequence[Any]]], path: str | Path, title: str = ""
) -> Path:
    """One panel per attack: ROC curves on log-log axes (the low-FPR regime the MIA literature
    reports) with the random-guess diagonal. ``panels``: attack name -> {curve label: (member
    scores (P,), non-member scores (Q,)[, AUC %])}, higher = member. The legend shows the AUC given
    (the value the report's tables print, :func:`~amun_plugin.evaluate.report.roc_panels`), else
    the AUC of the scores drawn. Written atomically as a PNG."""
    plt = pyplot()
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.4 * max(1, len(panels)), 4.0), squeeze=False)
    for ax, (attack, curves) in zip(axes[0], panels.items()):
        sizes = [min(len(curve[0]), len(curve[1])) for curve in curves.values()] or [100]
        low = 1.0 / max(sizes)
        owners = list(dict.fromkeys(label.split(":")[0] for label in curves))
        for label, curve in curves.items():
            pos, neg = curve[0], curve[1]
            auc = curve[2] if len(curve) > 2 and curve[2] is not None else roc_auc(pos, neg)
            fpr, tpr = roc_curve(pos, neg)
            style = _roc_style(label, owners.index(label.split(":")[0]))
            ax.plot(np.maximum(fpr, low / 2), np.maximum(tpr, low / 2), label=f"{label} ({auc:.1f})", **style)
        ax.plot([low / 2, 1], [low / 2, 1], color="grey", linestyle=":", linewidth=1, label="random guess")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(low / 2, 1)
        ax.set_ylim(low / 2, 1)
        ax.set_xlabel("false positive rate")
        ax.set_title(attack)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower right", fontsize=7, title="curve (AUC %)", title_fontsize=7)
    axes[0][0].set_ylabel("true positive rate")
    _suptitle(fig, title)
    fig.tight_layout()
    return save_figure(fig, path)


def _suptitle(fig: Any, title: str) -> None:
    """``title`` above the panels, wrapped to the figure's width (about 10 characters per inch at
    the default 12 pt) so that no part of it is cut off."""
    if title:
        width = max(20, int(fig.get_figwidth() * 10))
        fig.suptitle(textwrap.fill(title, width=width))


_CURVE_COLORS: Sequence[str] = ("tab:red", "tab:blue", "tab:purple", "tab:orange", "tab:green", "tab:brown")


def _roc_style(label: str, owner: int) -> dict[str, object]:
    """A colour per model (the part of ``label`` before ":"); curves whose label ends in "RT"
    (retain vs test) dashed, the others solid; the first model's curves drawn thicker."""
    dashed = label.split(":")[-1].strip().startswith("RT")
    return {"color": _CURVE_COLORS[owner % len(_CURVE_COLORS)], "linestyle": "--" if dashed else "-",
            "linewidth": 1.8 if owner == 0 else 1.1}
