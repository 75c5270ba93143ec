"""Training curves of an experiment: training loss, validation loss and validation accuracy per epoch, per network."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
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
def training_curves(histories: Sequence[Sequence[Mapping[str, float]]], title: str = "") -> Figure:
    """Plot the training curves of a model, or of each member of an ensemble, with each kept epoch marked.

    Parameters
    ----------
    histories : sequence of sequence of mapping
        One history per trained network (one for a single model, one per member of an ensemble), each one entry
        per epoch with ``epoch`` and the keys of :data:`PANELS` (as written to ``history.json`` by
        :func:`bayesrb.model.train.train`).
    title : str, optional
        Figure title (e.g. the experiment's name).

    Returns
    -------
    matplotlib.figure.Figure
        Three panels side by side sharing the epoch axis: one line per network, in its own colour, and a dashed
        line at its kept (lowest validation loss) epoch.
    """
    fig = Figure(figsize=(10, 3.0), layout="constrained")
    axes = fig.subplots(1, len(PANELS), sharex=True)
    drawn = [history for history in histories if len(history)]
    for ax, (key, ylabel, panel_title) in zip(axes, PANELS, strict=True):
        ax.set(title=panel_title, xlabel="epoch", ylabel=ylabel)
        for index, history in enumerate(drawn):
            _draw_history(ax, history, key, f"C{index % 10}", f"member {index + 1}: " if len(drawn) > 1 else "")
        if not drawn:
            mark_no_data(ax)
    if drawn:
        axes[1].legend(fontsize="small" if len(drawn) > 1 else None)
    if title:
        fig.suptitle(title)
    return fig


def _draw_history(ax: Axes, history: Sequence[Mapping[str, float]], key: str, colour: str, prefix: str) -> None:
    """One network's curve of ``key`` and its kept epoch."""
    epochs = np.array([entry["epoch"] for entry in history])
    best = int(np.argmin([entry["val_loss"] for entry in history]))
    ax.plot(epochs, [entry[key] for entry in history], marker="o", markersize=3, color=colour)
    ax.axvline(epochs[best], color=colour, linestyle="--", linewidth=1, alpha=0.6,
               label=f"{prefix}kept epoch {epochs[best]}")


def write_training_curves(history_path: str | Path, out_path: str | Path, title: str = "") -> None:
    """Read a ``history.json`` and save its :func:`training_curves` figure.

    The file is a list of epochs (one model) or ``{"members": [list of epochs, ...]}`` (an ensemble).
    """
    history = json.loads(Path(history_path).read_text())
    histories = history["members"] if isinstance(history, dict) else [history]
    save_figure(training_curves(histories, title=title), out_path)
