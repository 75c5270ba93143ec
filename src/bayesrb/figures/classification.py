"""Figures of a classifier's decisions: the confusion matrix, ROC curves and error rates against the threshold.

Each function takes counts, curves and rates already computed from evaluation tables (by
``evaluation.metrics`` and ``evaluation.curves``) and returns a
:class:`matplotlib.figure.Figure`; save it with :func:`bayesrb.figures.style.save_figure`. A candidate is classified
real when ``score_mean >= threshold``. Empty input gives panels that say "no data".
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bayesrb.figures.style import (
    COLUMN_INCHES,
    PAGE_INCHES,
    experiment_colour,
    mark_no_data,
    no_data_figure,
    percent,
    styled,
)
from bayesrb.vocabulary import CLASS_NAMES

__all__ = ["ZOOM_MAX_FPR", "confusion_matrix", "roc", "rates_vs_threshold_figure"]

#: Largest false positive rate of the zoomed ROC panel.
ZOOM_MAX_FPR: float = 0.05

_RATE_COLOURS = {"FPR": "#555555", "FNR": "#0072B2"}


@styled
def confusion_matrix(counts: Mapping[str, int], threshold: float = 0.5) -> Figure:
    """The 2x2 confusion matrix: rows the true class, columns the predicted class (bogus first).

    Each cell gives its count and its percentage of the row (the true class); cells are shaded by that
    percentage. The title gives the number of candidates, the threshold and the accuracy.

    Parameters
    ----------
    counts : mapping of str to int
        ``tn``, ``fp``, ``fn`` and ``tp`` at ``threshold``, as given by
        ``evaluation.metrics.confusion_counts``.
    threshold : float, optional
        The threshold the counts were taken at (shown in the title).

    Returns
    -------
    matplotlib.figure.Figure
        One axes (a "no data" axes when all counts are zero).
    """
    cells = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    if cells.sum() == 0:
        return no_data_figure("confusion matrix")
    row_totals = cells.sum(axis=1, keepdims=True)
    row_fractions = np.divide(cells, row_totals, out=np.zeros(cells.shape), where=row_totals > 0)
    fig = Figure(figsize=(COLUMN_INCHES, 3.1), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(row_fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, col), count in np.ndenumerate(cells):
        percentage = f"{100 * row_fractions[row, col]:.1f} %" if row_totals[row, 0] else "–"
        colour = "white" if row_fractions[row, col] > 0.6 else "black"
        ax.text(col, row, f"{count:d}\n{percentage}", ha="center", va="center", color=colour)
    ax.set_xticks([0, 1], CLASS_NAMES)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(cells) / cells.sum()
    ax.set_title(f"n = {cells.sum()}, threshold {threshold:g}: accuracy {100 * accuracy:.1f} %")
    return fig


@styled
def rates_vs_threshold_figure(rates: pd.DataFrame, operating: Mapping[str, float], target_fpr: float = 0.01) -> Figure:
    """False positive and false negative rates against the decision threshold, on a log rate axis.

    The threshold at which the false positive rate falls to ``target_fpr`` is marked, with the false negative rate
    there annotated; the target rate is a dotted horizontal line. Rates of zero fall below the axis.

    Parameters
    ----------
    rates : pandas.DataFrame
        One row per threshold: ``threshold``, ``fpr`` and ``fnr``, as given by
        ``evaluation.curves.threshold_rates``.
    operating : mapping of str to float
        The experiment's operating point (``evaluation.curves.operating_points``): ``n_real`` and
        ``n_bogus``, and ``threshold`` and ``fnr`` at ``target_fpr``.
    target_fpr : float, optional
        The false positive rate aimed at (0.01 = 1 %).

    Returns
    -------
    matplotlib.figure.Figure
        One axes; "no data" unless there are both real and bogus candidates.
    """
    fig = Figure(figsize=(COLUMN_INCHES + 0.5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel("threshold on score_mean (P(real))")
    ax.set_ylabel("rate")
    ax.set_xlim(0.0, 1.0)
    n_real, n_bogus = int(operating["n_real"]), int(operating["n_bogus"])
    ax.set_title(f"error rates ({n_real} real, {n_bogus} bogus)")
    if not (n_real and n_bogus):
        mark_no_data(ax)
        return fig
    thresholds = rates["threshold"].to_numpy()
    ax.plot(thresholds, rates["fpr"].to_numpy(), color=_RATE_COLOURS["FPR"], label="FPR (bogus classified real)")
    ax.plot(thresholds, rates["fnr"].to_numpy(), color=_RATE_COLOURS["FNR"], label="FNR (real classified bogus)")
    ax.set_yscale("log")
    bottom = 0.5 / max(n_real, n_bogus)
    ax.set_ylim(bottom, 1.5)
    _mark_target_threshold(ax, operating["threshold"], operating["fnr"], target_fpr, bottom)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2)
    return fig


def _mark_target_threshold(ax: Axes, threshold: float, fnr: float, target_fpr: float, bottom: float) -> None:
    """Mark the threshold at ``target_fpr`` and annotate the false negative rate there."""
    ax.axhline(target_fpr, color="0.5", linestyle=":", lw=1, label=f"target FPR {percent(target_fpr)}")
    ax.axvline(threshold, color="0.3", linestyle="--", lw=1, label=f"threshold at target: {threshold:.3f}")
    shown_fnr = max(fnr, bottom)
    ax.plot(threshold, shown_fnr, marker="o", color=_RATE_COLOURS["FNR"], linestyle="none")
    right_half = threshold > 0.5  # annotate towards the middle, so the text stays inside the axes
    ax.annotate(f"FNR = {percent(fnr)}", xy=(threshold, shown_fnr), xytext=(-6 if right_half else 6, 6),
                textcoords="offset points", ha="right" if right_half else "left", color=_RATE_COLOURS["FNR"])


@styled
def roc(curves: Mapping[str, pd.DataFrame], operating: Mapping[str, Mapping[str, float]],
        target_fpr: float = 0.01) -> Figure:
    """Receiver operating characteristic of each experiment: the full curve and a zoom on low false positive rates.

    The right panel shows false positive rates up to :data:`ZOOM_MAX_FPR` on a log axis. The legend gives each
    experiment's area under the curve; ``target_fpr`` is a vertical line and each experiment's operating point
    there a dot.

    Parameters
    ----------
    curves : mapping of str to pandas.DataFrame
        Experiment name -> its ROC curve, with columns ``fpr`` and ``tpr``
        (``evaluation.curves.roc_curves``: only experiments with both real and bogus candidates).
    operating : mapping of str to mapping
        Experiment name -> its operating point (``evaluation.curves.operating_points``): ``auc``,
        ``fpr`` and ``tpr`` at ``target_fpr``, and ``n_bogus``; needed for every experiment in ``curves``.
    target_fpr : float, optional
        The false positive rate aimed at (0.01 = 1 %).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, the full curve on the left; the ROC line of experiment ``name`` carries the label
        ``"name (AUC = ...)"`` in both.
    """
    fig = Figure(figsize=(PAGE_INCHES, 3.3), layout="constrained")
    full, zoom = fig.subplots(1, 2)
    for index, (name, curve) in enumerate(curves.items()):
        _draw_roc(full, zoom, curve, operating[name], experiment_colour(index), name)
    full.plot([0, 1], [0, 1], color="0.6", linestyle=":", lw=1, label="chance")
    full.set(xlim=(0.0, 1.0), ylim=(0.0, 1.005), title="ROC curve")
    zoom.set_xscale("log")
    zoom.set_title(f"zoom: FPR ≤ {percent(ZOOM_MAX_FPR)}")
    for ax in (full, zoom):
        ax.axvline(target_fpr, color="0.3", linestyle="--", lw=1, label=f"target FPR {percent(target_fpr)}")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        if not curves:
            mark_no_data(ax)
    most_bogus = max((int(operating[name]["n_bogus"]) for name in curves), default=1)
    _set_zoom_limits(zoom, list(curves.values()), most_bogus, target_fpr)
    if curves:
        full.legend(loc="lower right")
    return fig


def _draw_roc(full: Axes, zoom: Axes, curve: pd.DataFrame, point: Mapping[str, float], colour: str,
              name: str) -> None:
    label = f"{name} (AUC = {point['auc']:.4f})"
    for ax in (full, zoom):
        ax.plot(curve["fpr"].to_numpy(), curve["tpr"].to_numpy(), color=colour, lw=1.4, label=label)
        ax.plot(point["fpr"], point["tpr"], marker="o", ms=4, color=colour, linestyle="none")


def _set_zoom_limits(zoom: Axes, curves: Sequence[pd.DataFrame], most_bogus: int, target_fpr: float) -> None:
    """FPR from one bogus candidate (1-2 decades below the target) to ZOOM_MAX_FPR; the TPR range shown there."""
    left = float(np.clip(1.0 / most_bogus, target_fpr / 100, target_fpr / 10))
    lowest_tpr = min((float(np.interp(left, curve["fpr"].to_numpy(), curve["tpr"].to_numpy())) for curve in curves),
                     default=0.02)
    zoom.set_xlim(left, ZOOM_MAX_FPR)
    ticks = [tick for tick in (1e-4, 1e-3, 1e-2, ZOOM_MAX_FPR) if tick >= left]
    zoom.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    zoom.xaxis.set_minor_formatter(NullFormatter())
    zoom.set_ylim(max(0.0, lowest_tpr - 0.02), 1.005)
