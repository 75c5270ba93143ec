"""Figures of posterior uncertainty: uncertain candidates, uncertainty against magnitude, and risk-coverage.

The risk-coverage figure shows whether the uncertainty finds the classifier's mistakes. Each function takes rows
of evaluation tables (one row per scored candidate, see ``evaluation.table``) and what the ``evaluation`` package
computed from them (the picked candidates of ``evaluation.selection.select_uncertain``, the running medians of
``evaluation.curves.running_medians``, the risk-coverage curves of ``evaluation.referral``) and returns a
:class:`matplotlib.figure.Figure`; save it with
:func:`bayesrb.figures.style.save_figure`. Empty input gives panels that say "no data".
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from bayesrb.figures.style import (
    DIVERGING_CHANNELS,
    EXPERIMENT_MARKERS,
    PAGE_INCHES,
    STAMP_INCHES,
    as_text,
    experiment_colour,
    experiment_linestyle,
    in_canonical_order,
    kind_colour,
    mark_no_data,
    no_data_figure,
    show_stamp,
    styled,
)
from bayesrb.vocabulary import CLASS_NAMES, KIND_ORDER

__all__ = ["UNCERTAINTY_PANELS", "MAX_REFERRED", "uncertain_candidates", "uncertainty_vs_magnitude", "risk_coverage"]

#: Panels of :func:`uncertainty_vs_magnitude`: evaluation-table column and axis label.
UNCERTAINTY_PANELS: tuple[tuple[str, str], ...] = (("score_std", "posterior std of P(real)"), ("bald", "BALD (nats)"))

#: Largest fraction of candidates referred that :func:`risk_coverage` shows: a human's realistic share.
MAX_REFERRED: float = 0.2

_SCORE_PANEL_INCHES = 2.6
_LEGEND_HEADROOM = 1.7


@styled
def uncertain_candidates(picked: pd.DataFrame, stamps: Mapping[str, np.ndarray], channels: Sequence[str],
                         threshold: float = 0.5) -> Figure:
    """Stamps and posterior score distributions of picked candidates, one row per candidate.

    Each row shows the candidate's stamp channels, drawn as in :func:`bayesrb.figures.dataset.stamp_gallery` (array
    ``[row, col]`` = pixel ``(y, x)``, row 0 at the bottom), and beside them its posterior score distribution on
    ``[0, 1]``: whisker from ``score_p05`` to ``score_p95``, box from ``score_p16`` to ``score_p84``, a line at
    ``score_p50``, a diamond at ``score_mean`` and the threshold dashed. The score panel is titled with the row's
    ``title`` where the table has that column, else with kind, true class and candidate id; the row's reason labels
    its first stamp.

    Parameters
    ----------
    picked : pandas.DataFrame
        The candidates in row order, e.g. from ``evaluation.selection.select_uncertain``; needs
        ``candidate_id``, ``kind`` (it colours the distribution), ``reason``, the score columns ``score_mean``,
        ``score_p05`` ... ``score_p95``, and ``label`` unless it has ``title``.
    stamps : mapping of str to numpy.ndarray
        Candidate id -> stamp ``(H, W, C)`` = ``[row, col, channel]``, for at least the picked candidates.
    channels : sequence of str
        The ``C`` channel names; they title the stamp columns.
    threshold : float, optional
        A candidate is classified real when ``score_mean >= threshold`` (drawn dashed).

    Returns
    -------
    matplotlib.figure.Figure
        ``rows x (C + 1)`` axes, or one "no data" axes.

    Raises
    ------
    ValueError
        If a picked candidate has no stamp or its stamp does not have ``C`` channels.
    """
    if picked.empty or not channels:
        return no_data_figure("least confident and misclassified candidates")
    n_channels = len(channels)
    fig = Figure(figsize=(STAMP_INCHES * n_channels + _SCORE_PANEL_INCHES + 0.4, STAMP_INCHES * len(picked) + 0.8),
                 layout="constrained")
    axes = fig.subplots(len(picked), n_channels + 1, squeeze=False,
                        width_ratios=[STAMP_INCHES] * n_channels + [_SCORE_PANEL_INCHES])
    for row_axes, candidate in zip(axes, picked.itertuples(index=False), strict=True):
        stamp = _stamp_of(stamps, str(candidate.candidate_id), n_channels)
        for channel, (ax, name) in enumerate(zip(row_axes[:-1], channels, strict=True)):
            show_stamp(ax, stamp[:, :, channel], diverging=name in DIVERGING_CHANNELS)
        row_axes[0].set_ylabel(candidate.reason.replace(" ", "\n"))
        _draw_score_distribution(row_axes[-1], candidate, threshold)
    for ax, name in zip(axes[0, :-1], channels, strict=True):
        ax.set_title(name)
    axes[-1, -1].set_xlabel("P(real), posterior")
    fig.legend(handles=_score_legend_handles(), loc="outside lower center", ncols=5)
    return fig


def _stamp_of(stamps: Mapping[str, np.ndarray], candidate_id: str, n_channels: int) -> np.ndarray:
    if candidate_id not in stamps:
        raise ValueError(f"no stamp given for candidate {candidate_id!r}")
    stamp = np.asarray(stamps[candidate_id])
    if stamp.ndim != 3 or stamp.shape[2] != n_channels:
        raise ValueError(f"stamp of {candidate_id!r} must be (H, W, {n_channels}), got shape {stamp.shape}")
    return stamp


def _draw_score_distribution(ax: Axes, candidate: tuple, threshold: float) -> None:
    """Whisker p05-p95, box p16-p84, median line and mean diamond of one candidate's posterior score."""
    colour = kind_colour(str(candidate.kind))
    ax.hlines(0.0, candidate.score_p05, candidate.score_p95, color=colour, lw=1.2)
    ax.vlines([candidate.score_p05, candidate.score_p95], -0.15, 0.15, color=colour, lw=1.2)
    ax.add_patch(Rectangle((candidate.score_p16, -0.3), candidate.score_p84 - candidate.score_p16, 0.6,
                           facecolor=colour, alpha=0.5, edgecolor=colour))
    ax.vlines(candidate.score_p50, -0.3, 0.3, color="black", lw=1.4)
    ax.plot(candidate.score_mean, 0.0, marker="D", ms=4, color="black", linestyle="none")
    ax.axvline(threshold, color="0.5", linestyle="--", lw=1)
    ax.set(xlim=(0.0, 1.0), ylim=(-1.0, 1.0), yticks=[])
    ax.set_title(_score_title(candidate), fontsize="small")


def _score_title(candidate: tuple) -> str:
    """The row's own ``title`` if the table has one, else its kind, true class and candidate id."""
    if hasattr(candidate, "title"):
        return str(candidate.title)
    return f"{candidate.kind}, {CLASS_NAMES[int(candidate.label)]}, {candidate.candidate_id}"


def _score_legend_handles() -> list:
    return [
        Line2D([], [], color="0.4", lw=1.2, label="5–95 %"),
        Patch(facecolor="0.4", alpha=0.5, edgecolor="0.4", label="16–84 %"),
        Line2D([], [], color="black", lw=1.4, label="median"),
        Line2D([], [], color="black", marker="D", ms=4, linestyle="none", label="mean"),
        Line2D([], [], color="0.5", linestyle="--", lw=1, label="threshold"),
    ]


@styled
def uncertainty_vs_magnitude(tables: Mapping[str, pd.DataFrame],
                             medians: Mapping[str, Mapping[str, pd.DataFrame]]) -> Figure:
    """Posterior spread (``score_std``) and epistemic uncertainty (``bald``) against detected magnitude.

    One panel per :data:`UNCERTAINTY_PANELS` column; in each, every candidate is a point coloured by kind (one
    marker per experiment, rasterised in vector output) and each experiment's running median is a black line, one
    line style per experiment. Candidates with a NaN magnitude or value are left out.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``kind``, ``mag``, ``score_std`` and ``bald``.
    medians : mapping of str to mapping of str to pandas.DataFrame
        Column (``score_std``, ``bald``) -> experiment name -> running median, with columns ``centre`` (mag) and
        ``median`` (``evaluation.curves.running_medians``).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing the magnitude axis, ``score_std`` on the left; one scatter collection per experiment and
        kind, one median line per experiment labelled ``"name: running median"``; a figure legend.
    """
    fig = Figure(figsize=(PAGE_INCHES, 3.3), layout="constrained")
    axes = fig.subplots(1, len(UNCERTAINTY_PANELS), sharex=True)
    kinds = in_canonical_order(np.concatenate([np.empty(0, dtype=str),
                                               *(as_text(table["kind"]) for table in tables.values())]), KIND_ORDER)
    drawn = False
    for ax, (column, ylabel) in zip(axes, UNCERTAINTY_PANELS, strict=True):
        panel_drawn = [_draw_uncertainty(ax, table, column, medians[column][name], index, name)
                       for index, (name, table) in enumerate(tables.items())]
        ax.set_xlabel("detected magnitude (mag)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0.0)
        if not any(panel_drawn):
            mark_no_data(ax)
        drawn |= any(panel_drawn)
    if drawn:
        fig.legend(handles=_uncertainty_legend_handles(kinds, list(tables)), loc="outside lower center", ncols=4)
    fig.suptitle("score uncertainty against magnitude")
    return fig


def _draw_uncertainty(ax: Axes, table: pd.DataFrame, column: str, medians: pd.DataFrame, index: int,
                      name: str) -> bool:
    """One experiment's points per kind and running median of ``column``; False if it has no finite magnitude."""
    mags = table["mag"].to_numpy(dtype=float)
    values = table[column].to_numpy(dtype=float)
    usable = np.isfinite(mags) & np.isfinite(values)
    if not usable.any():
        return False
    kinds = as_text(table["kind"])
    marker = EXPERIMENT_MARKERS[index % len(EXPERIMENT_MARKERS)]
    for kind in in_canonical_order(kinds[usable], KIND_ORDER):
        chosen = usable & (kinds == kind)
        ax.scatter(mags[chosen], values[chosen], s=5, marker=marker, color=kind_colour(kind), alpha=0.5, lw=0,
                   rasterized=True, label=f"{name}: {kind}")
    ax.plot(medians["centre"].to_numpy(), medians["median"].to_numpy(), color="black", lw=1.4,
            linestyle=experiment_linestyle(index), label=f"{name}: running median")
    return True


def _uncertainty_legend_handles(kinds: Sequence[str], names: Sequence[str]) -> list[Line2D]:
    kind_handles = [Line2D([], [], marker="o", color=kind_colour(kind), linestyle="none", label=kind)
                    for kind in kinds]
    experiment_handles = [Line2D([], [], color="black", marker=EXPERIMENT_MARKERS[i % len(EXPERIMENT_MARKERS)],
                                 ms=4, linestyle=experiment_linestyle(i), label=f"{name}: running median")
                          for i, name in enumerate(names)]
    return kind_handles + experiment_handles


@styled
def risk_coverage(curves: Mapping[str, Mapping[str, pd.DataFrame]], aurocs: Mapping[str, Mapping[str, float]],
                  measures: Mapping[str, str]) -> Figure:
    """Error rate of the candidates kept against the fraction referred, most uncertain first, per measure.

    One panel per uncertainty measure; in each, one solid line per experiment (its error-detection AUROC in the
    legend) and, dotted in the same colour, the best any measure could do (the errors referred first). A measure
    that finds errors falls fast from the error rate of random referral, where every curve starts.

    Parameters
    ----------
    curves : mapping of str to mapping of str to pandas.DataFrame
        Experiment name -> measure column -> ``referred``, ``accuracy`` and ``oracle``
        (``evaluation.referral.risk_coverage``); an empty table is left out.
    aurocs : mapping of str to mapping of str to float
        Experiment name -> measure column -> error-detection AUROC (``evaluation.referral.error_detection_auroc``).
    measures : mapping of str to str
        Measure column -> panel title, in panel order.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per measure sharing both axes, referred fraction from 0 to :data:`MAX_REFERRED`, in %.
    """
    fig = Figure(figsize=(PAGE_INCHES, 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(measures), sharex=True, sharey=True))
    for ax, (column, title) in zip(axes, measures.items(), strict=True):
        drawn = [_draw_risk(ax, experiment_curves[column], f"{name} (AUROC {aurocs[name][column]:.3f})",
                            experiment_colour(index))
                 for index, (name, experiment_curves) in enumerate(curves.items())]
        ax.set(xlim=(0, 100 * MAX_REFERRED), title=title)
        if any(drawn):
            ax.legend(loc="upper right", fontsize="small")
        else:
            mark_no_data(ax)
    axes[0].set_ylabel("error rate of the rest (%)")
    axes[0].set_ylim(0.0, _LEGEND_HEADROOM * axes[0].get_ylim()[1])  # shared: the legends sit above the curves
    fig.supxlabel("candidates referred, most uncertain first (%)")
    fig.suptitle("referral: does the uncertainty find the mistakes? (dotted: the errors referred first)")
    return fig


def _draw_risk(ax: Axes, curve: pd.DataFrame, label: str, colour: str) -> bool:
    """One experiment's risk-coverage line and its oracle; False if the curve is empty."""
    if curve.empty:
        return False
    shown = curve["referred"] <= MAX_REFERRED
    referred = 100 * curve["referred"][shown]
    ax.plot(referred, 100 * (1 - curve["accuracy"][shown]), color=colour, lw=1.4, label=label)
    ax.plot(referred, 100 * (1 - curve["oracle"][shown]), color=colour, lw=0.8, linestyle=":")
    return True
