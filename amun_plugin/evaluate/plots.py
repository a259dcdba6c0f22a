"""Plots a person reads at a glance: confidence histograms (paper Fig. 3-5)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from amun_plugin.io import atomic_write

__all__ = ["plot_confidence_histograms"]

_SET_STYLE = {"retain": ("D_R (retain)", "tab:blue"), "forget": ("D_F (forget)", "tab:red"),
              "test": ("D_T (test)", "tab:green")}


def plot_confidence_histograms(
    panels: Mapping[str, Mapping[str, np.ndarray]], path: str | Path, title: str = ""
) -> Path:
    """One panel per model: density histograms of the logit-scaled confidence log(p_y/(1-p_y))
    of D_R, D_F and D_T. ``panels``: model name -> {"retain"|"forget"|"test": (N,) scores}.
    Written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)
