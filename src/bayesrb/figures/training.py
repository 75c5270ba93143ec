"""Training curves of one experiment: training loss, validation loss and validation accuracy per epoch."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bayesrb.figures.style import mark_no_data, save_figure, styled

__all__ = ["training_curves", "write_training_curves"]

#: Panels of :func:`training_curves`: history key, y-axis label, title.
PANELS: tuple[tuple[str, str, str], ...] = (
    ("train_loss", "loss per stamp", "training loss (negative ELBO for SVI)"),
    ("val_loss", "class-weighted NLL per stamp", "validation loss"),
    ("val_accuracy", "accuracy", "validation accuracy"),
)


@styled
def training_curves(history: Sequence[Mapping[str, float]], title: str = "") -> Figure:
    """Plot one training run's curves, with the kept (lowest validation loss) epoch marked.

    Parameters
    ----------
    history : sequence of mapping
        One entry per epoch with ``epoch`` and the keys of :data:`PANELS` (as written to ``history.json`` by
        :func:`bayesrb.model.train.train`).
    title : str, optional
        Figure title (e.g. the experiment's name).

    Returns
    -------
    matplotlib.figure.Figure
        Three panels side by side sharing the epoch axis.
    """
    fig = Figure(figsize=(10, 3.0), layout="constrained")
    axes = fig.subplots(1, len(PANELS), sharex=True)
    epochs = np.array([entry["epoch"] for entry in history])
    best = int(np.argmin([entry["val_loss"] for entry in history])) if len(history) else None
    for ax, (key, ylabel, panel_title) in zip(axes, PANELS, strict=True):
        ax.set_title(panel_title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if best is None:
            mark_no_data(ax)
            continue
        values = np.array([entry[key] for entry in history])
        ax.plot(epochs, values, marker="o", markersize=3, color="C0")
        ax.axvline(epochs[best], color="0.6", linestyle="--", linewidth=1, label=f"kept: epoch {epochs[best]}")
    if best is not None:
        axes[1].legend()
    if title:
        fig.suptitle(title)
    return fig


def write_training_curves(history_path: str | Path, out_path: str | Path, title: str = "") -> None:
    """Read a training history (JSON list of epochs) and save its :func:`training_curves` figure."""
    save_figure(training_curves(json.loads(Path(history_path).read_text()), title=title), out_path)
