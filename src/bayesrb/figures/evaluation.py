"""Figures of a classifier's evaluation: confusion matrix, ROC, error rates, recovery, calibration, uncertainty.

Every function takes evaluation tables (see :mod:`bayesrb.evaluation.table`: one row per scored candidate, the
data-set meta joined with the experiment's posterior score summaries) and returns a
:class:`matplotlib.figure.Figure`; save it with :func:`bayesrb.figures.style.save_figure`. Functions named for one
``table`` draw one experiment; those taking ``tables``, a mapping experiment name -> table, draw one line per
experiment, so a one-entry mapping gives the per-experiment figure and several entries the comparison. The
figures draw every row they are given: pass the rows to evaluate (e.g. the test and eval splits). Empty input
gives panels that say "no data".

A candidate is classified real when ``score_mean >= threshold``. The columns used: ``candidate_id``, ``kind``,
``label`` (1 real, 0 bogus), ``mag`` (detected magnitude), ``host_offset_arcsec`` and ``host_offset_hlr`` (NaN
without a host), ``score_mean``, ``score_std``, ``score_p05`` ... ``score_p95``, ``entropy`` and ``bald`` (nats).
Each function names the columns it needs.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import NullFormatter

from bayesrb.evaluation.metrics import (
    binomial_interval,
    confusion_counts,
    expected_calibration_error,
    rates_at_threshold,
    rates_vs_threshold,
    recovery_curve,
    reliability_bins,
    roc_auc,
    roc_curve,
    threshold_at_fpr,
)
from bayesrb.figures.dataset import (
    _OFFSET_PANELS,
    DIVERGING_CHANNELS,
    EVALUATION_KINDS,
    TRAINING_REAL_KINDS,
    _as_text,
    _no_data_figure,
    _OffsetPanel,
    _show_stamp,
)
from bayesrb.figures.style import KIND_ORDER, in_canonical_order, kind_colour, mark_no_data, styled

__all__ = [
    "EXPERIMENT_COLOURS",
    "EXPERIMENT_LINESTYLES",
    "EXPERIMENT_MARKERS",
    "ZOOM_MAX_FPR",
    "N_THRESHOLDS",
    "RECOVERY_CONFIDENCE",
    "MAG_BIN_WIDTH",
    "OFFSET_BINS",
    "MIN_MEDIAN_COUNT",
    "LEAST_CONFIDENT",
    "MISCLASSIFIED",
    "experiment_colour",
    "confusion_matrix",
    "roc",
    "rates_vs_threshold_figure",
    "recovery_vs_magnitude",
    "recovery_vs_host_offset",
    "reliability",
    "select_uncertain",
    "uncertain_candidates",
    "uncertainty_vs_magnitude",
]

#: One colour per experiment, in the order of the ``tables`` mapping (Paul Tol's bright scheme; cycles).
EXPERIMENT_COLOURS: tuple[str, ...] = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377")
#: Line style per experiment where colour shows the kind (cycles); also the kind's style where colour shows the
#: experiment in recovery panels with several kinds.
EXPERIMENT_LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
#: Scatter marker per experiment (cycles).
EXPERIMENT_MARKERS: tuple[str, ...] = ("o", "s", "^", "v", "D")
#: Largest false positive rate of the zoomed ROC panel.
ZOOM_MAX_FPR: float = 0.05
#: Thresholds evaluated between 0 and 1 (inclusive) for the error-rate curves.
N_THRESHOLDS: int = 501
#: Confidence of the Clopper-Pearson bands of recovery fractions and calibration error bars.
RECOVERY_CONFIDENCE: float = 0.68
#: Width of the magnitude bins of recovery curves and running medians (mag).
MAG_BIN_WIDTH: float = 0.5
#: Host-offset bins beyond the nuclear bin (the first bin is exactly the nuclear region).
OFFSET_BINS: int = 8
#: Fewest candidates in a magnitude bin for its running median to be drawn.
MIN_MEDIAN_COUNT: int = 5
#: ``reason`` of the candidates :func:`select_uncertain` picks for the highest predictive entropy.
LEAST_CONFIDENT: str = "least confident"
#: ``reason`` of the candidates :func:`select_uncertain` picks for being on the wrong side of the threshold.
MISCLASSIFIED: str = "misclassified"

_COLUMN_INCHES = 3.5
_PAGE_INCHES = 7.0
_STAMP_INCHES = 1.0
_SCORE_PANEL_INCHES = 2.6
_BAND_ALPHA = 0.2
_CLASS_NAMES = ("bogus", "real")
_RATE_COLOURS = {"FPR": "#555555", "FNR": "#0072B2"}
_KIND_GROUPS = (("training-like real kinds", TRAINING_REAL_KINDS), ("evaluation-only injections", EVALUATION_KINDS))
_CLASSIFICATION_COLUMNS = ("label", "score_mean")


# --- one experiment: confusion matrix, error rates ----------------------------------------------------------


@styled
def confusion_matrix(table: pd.DataFrame, threshold: float = 0.5) -> Figure:
    """The 2x2 confusion matrix: rows the true class, columns the predicted class (bogus first).

    Each cell gives its count and its percentage of the row (the true class); cells are shaded by that
    percentage. The title gives the number of candidates, the threshold and the accuracy.

    Parameters
    ----------
    table : pandas.DataFrame
        One experiment's evaluation table; needs ``label`` and ``score_mean``.
    threshold : float, optional
        A candidate is classified real when ``score_mean >= threshold``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes (a "no data" axes for an empty table).
    """
    labels, scores = _labels_and_scores(table)
    if labels.size == 0:
        return _no_data_figure("confusion matrix")
    counts = confusion_counts(labels, scores, threshold=threshold)
    cells = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    row_totals = cells.sum(axis=1, keepdims=True)
    row_fractions = np.divide(cells, row_totals, out=np.zeros(cells.shape), where=row_totals > 0)
    fig = Figure(figsize=(_COLUMN_INCHES, 3.1), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(row_fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, col), count in np.ndenumerate(cells):
        percentage = f"{100 * row_fractions[row, col]:.1f} %" if row_totals[row, 0] else "–"
        colour = "white" if row_fractions[row, col] > 0.6 else "black"
        ax.text(col, row, f"{count:d}\n{percentage}", ha="center", va="center", color=colour)
    ax.set_xticks([0, 1], _CLASS_NAMES)
    ax.set_yticks([0, 1], _CLASS_NAMES)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(cells) / cells.sum()
    ax.set_title(f"n = {labels.size}, threshold {threshold:g}: accuracy {100 * accuracy:.1f} %")
    return fig


@styled
def rates_vs_threshold_figure(table: pd.DataFrame, target_fpr: float = 0.01) -> Figure:
    """False positive and false negative rates against the decision threshold, on a log rate axis.

    The threshold at which the false positive rate falls to ``target_fpr`` (from
    :func:`bayesrb.evaluation.metrics.threshold_at_fpr`) is marked, with the false negative rate there
    annotated; the target rate is a dotted horizontal line. Rates of zero fall below the axis.

    Parameters
    ----------
    table : pandas.DataFrame
        One experiment's evaluation table; needs ``label`` and ``score_mean``.
    target_fpr : float, optional
        The false positive rate aimed at (0.01 = 1 %).

    Returns
    -------
    matplotlib.figure.Figure
        One axes; "no data" unless the table has both real and bogus candidates.
    """
    labels, scores = _labels_and_scores(table)
    fig = Figure(figsize=(_COLUMN_INCHES + 0.5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel("threshold on score_mean (P(real))")
    ax.set_ylabel("rate")
    ax.set_xlim(0.0, 1.0)
    n_real, n_bogus = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    ax.set_title(f"error rates ({n_real} real, {n_bogus} bogus)")
    if not (n_real and n_bogus):
        mark_no_data(ax)
        return fig
    thresholds = np.linspace(0.0, 1.0, N_THRESHOLDS)
    fpr, fnr = rates_vs_threshold(labels, scores, thresholds)
    ax.plot(thresholds, fpr, color=_RATE_COLOURS["FPR"], label="FPR (bogus classified real)")
    ax.plot(thresholds, fnr, color=_RATE_COLOURS["FNR"], label="FNR (real classified bogus)")
    ax.set_yscale("log")
    bottom = 0.5 / max(n_real, n_bogus)
    ax.set_ylim(bottom, 1.5)
    _mark_target_threshold(ax, labels, scores, target_fpr, bottom)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2)
    return fig


def _mark_target_threshold(ax: Axes, labels: np.ndarray, scores: np.ndarray, target_fpr: float, bottom: float) -> None:
    """Mark the threshold at ``target_fpr`` and annotate the false negative rate there."""
    threshold = threshold_at_fpr(labels, scores, target_fpr=target_fpr)
    fnr = rates_at_threshold(labels, scores, threshold)["fnr"]
    ax.axhline(target_fpr, color="0.5", linestyle=":", lw=1, label=f"target FPR {_percent(target_fpr)}")
    ax.axvline(threshold, color="0.3", linestyle="--", lw=1, label=f"threshold at target: {threshold:.3f}")
    shown_fnr = max(fnr, bottom)
    ax.plot(threshold, shown_fnr, marker="o", color=_RATE_COLOURS["FNR"], linestyle="none")
    right_half = threshold > 0.5  # annotate towards the middle, so the text stays inside the axes
    ax.annotate(f"FNR = {_percent(fnr)}", xy=(threshold, shown_fnr), xytext=(-6 if right_half else 6, 6),
                textcoords="offset points", ha="right" if right_half else "left", color=_RATE_COLOURS["FNR"])


# --- several experiments: ROC, calibration ------------------------------------------------------------------


@styled
def roc(tables: Mapping[str, pd.DataFrame], target_fpr: float = 0.01) -> Figure:
    """Receiver operating characteristic of each experiment: the full curve and a zoom on low false positive rates.

    The right panel shows false positive rates up to :data:`ZOOM_MAX_FPR` on a log axis. The legend gives each
    experiment's area under the curve; ``target_fpr`` is a vertical line and each experiment's operating point
    there (the threshold of :func:`bayesrb.evaluation.metrics.threshold_at_fpr`) a dot. Experiments without
    both real and bogus candidates are left out.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``label`` and ``score_mean``.
    target_fpr : float, optional
        The false positive rate aimed at (0.01 = 1 %).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, the full curve on the left; the ROC line of experiment ``name`` carries the label
        ``"name (AUC = ...)"`` in both.
    """
    tables = _checked_tables(tables, _CLASSIFICATION_COLUMNS)
    fig = Figure(figsize=(_PAGE_INCHES, 3.3), layout="constrained")
    full, zoom = fig.subplots(1, 2)
    curves = {name: _labels_and_scores(table) for name, table in tables.items()}
    drawable = {name: (labels, scores) for name, (labels, scores) in curves.items() if _has_both_classes(labels)}
    for index, (name, (labels, scores)) in enumerate(drawable.items()):
        _draw_roc(full, zoom, labels, scores, target_fpr, experiment_colour(index), name)
    full.plot([0, 1], [0, 1], color="0.6", linestyle=":", lw=1, label="chance")
    full.set(xlim=(0.0, 1.0), ylim=(0.0, 1.005), title="ROC curve")
    zoom.set_xscale("log")
    zoom.set_title(f"zoom: FPR ≤ {_percent(ZOOM_MAX_FPR)}")
    for ax in (full, zoom):
        ax.axvline(target_fpr, color="0.3", linestyle="--", lw=1, label=f"target FPR {_percent(target_fpr)}")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        if not drawable:
            mark_no_data(ax)
    _set_zoom_limits(zoom, list(drawable.values()), target_fpr)
    if drawable:
        full.legend(loc="lower right")
    return fig


def _draw_roc(full: Axes, zoom: Axes, labels: np.ndarray, scores: np.ndarray, target_fpr: float, colour: str,
              name: str) -> None:
    fpr, tpr, _ = roc_curve(labels, scores)
    operating = rates_at_threshold(labels, scores, threshold_at_fpr(labels, scores, target_fpr=target_fpr))
    label = f"{name} (AUC = {roc_auc(labels, scores):.4f})"
    for ax in (full, zoom):
        ax.plot(fpr, tpr, color=colour, lw=1.4, label=label)
        ax.plot(operating["fpr"], operating["tpr"], marker="o", ms=4, color=colour, linestyle="none")


def _set_zoom_limits(zoom: Axes, curves: Sequence[tuple[np.ndarray, np.ndarray]], target_fpr: float) -> None:
    """FPR from one bogus candidate (1-2 decades below the target) to ZOOM_MAX_FPR; the TPR range shown there."""
    most_bogus = max((int(np.sum(labels == 0)) for labels, _ in curves), default=1)
    left = float(np.clip(1.0 / most_bogus, target_fpr / 100, target_fpr / 10))
    lowest_tpr = min((float(np.interp(left, *roc_curve(labels, scores)[:2])) for labels, scores in curves),
                     default=0.02)
    zoom.set_xlim(left, ZOOM_MAX_FPR)
    ticks = [tick for tick in (1e-4, 1e-3, 1e-2, ZOOM_MAX_FPR) if tick >= left]
    zoom.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    zoom.xaxis.set_minor_formatter(NullFormatter())
    zoom.set_ylim(max(0.0, lowest_tpr - 0.02), 1.005)


@styled
def reliability(tables: Mapping[str, pd.DataFrame], n_bins: int = 15) -> Figure:
    """Reliability diagram: the fraction of real candidates against the mean predicted probability, per bin.

    The upper panel shows each experiment's non-empty bins of ``score_mean`` (from
    :func:`bayesrb.evaluation.metrics.reliability_bins`) with :data:`RECOVERY_CONFIDENCE` Clopper-Pearson error
    bars and the diagonal of perfect calibration; the legend gives each experiment's expected calibration error.
    The lower panel shows the candidates per bin on a log axis.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``label`` and ``score_mean``.
    n_bins : int, optional
        Equal-width probability bins between 0 and 1.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing the probability axis, the reliability curves on top (labelled ``"name (ECE = ...)"``).
    """
    tables = _checked_tables(tables, _CLASSIFICATION_COLUMNS)
    fig = Figure(figsize=(_COLUMN_INCHES, 4.6), layout="constrained")
    curves, counts = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    drawn = [_draw_reliability(curves, counts, *_labels_and_scores(table), n_bins, experiment_colour(index), name)
             for index, (name, table) in enumerate(tables.items())]
    curves.plot([0, 1], [0, 1], color="0.6", linestyle=":", lw=1, label="perfect calibration")
    curves.set(xlim=(0.0, 1.0), ylim=(0.0, 1.0), ylabel="fraction real", title="reliability")
    counts.set(xlabel="mean predicted P(real) (score_mean)", ylabel="candidates per bin")
    if any(drawn):
        counts.set_yscale("log")
        counts.set_ylim(bottom=0.5)
        curves.legend(loc="upper left")
    else:
        mark_no_data(curves)
        mark_no_data(counts)
    return fig


def _draw_reliability(curves: Axes, counts: Axes, labels: np.ndarray, probs: np.ndarray, n_bins: int, colour: str,
                      name: str) -> bool:
    """One experiment's reliability curve with error bars and its counts per bin; False if it has no candidates."""
    if labels.size == 0:
        return False
    bins = reliability_bins(labels, probs, n_bins=n_bins)
    filled = bins[bins["count"] > 0]
    fraction, count = filled["frac_real"].to_numpy(), filled["count"].to_numpy()
    low, high = binomial_interval(np.rint(fraction * count), count, confidence=RECOVERY_CONFIDENCE)
    ece = expected_calibration_error(labels, probs, n_bins=n_bins)
    curves.errorbar(filled["mean_prob"].to_numpy(), fraction, yerr=(fraction - low, high - fraction), color=colour,
                    marker="o", ms=3, lw=1.2, capsize=2, label=f"{name} (ECE = {ece:.3f})")
    edges = np.append(bins["lower"].to_numpy(), bins["upper"].iloc[-1])
    counts.stairs(bins["count"].to_numpy(), edges, color=colour, lw=1.2, label=name)
    return True


# --- recovery fractions -------------------------------------------------------------------------------------


@styled
def recovery_vs_magnitude(
    tables: Mapping[str, pd.DataFrame],
    kinds: Sequence[str] = ("mp", "syntransient", "injected_sn", "injected_nuclear", "injected_hostless"),
    threshold: float = 0.5,
) -> Figure:
    """Fraction of each kind classified real against detected magnitude, with Clopper-Pearson bands.

    One panel per kind group: the training-like real kinds (``mp``, ``syntransient``), the evaluation-only
    injections, and any other requested kinds; groups without a requested kind are left out. Magnitudes are
    binned in :data:`MAG_BIN_WIDTH` bins shared by all panels; each line joins the recovered fraction of the
    non-empty bins and its band is the :data:`RECOVERY_CONFIDENCE` Clopper-Pearson interval. With one experiment
    the line colour shows the kind; with several it shows the experiment and the line style the kind. NaN
    magnitudes are left out.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``kind``, ``mag`` and ``score_mean``.
    kinds : sequence of str, optional
        The kinds shown (normally real ones).
    threshold : float, optional
        A candidate is recovered when ``score_mean >= threshold``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per kind group, sharing the magnitude and fraction axes. Each line is labelled
        ``"kind (n=...)"`` with one experiment, ``"name: kind (n=...)"`` with several.
    """
    tables = _checked_tables(tables, ("kind", "mag", "score_mean"))
    groups = _kind_groups(kinds)
    bins = _magnitude_bins(_pooled_values(tables, kinds, "mag"))
    fig = Figure(figsize=(_PAGE_INCHES, 3.3), layout="constrained")
    axes = fig.subplots(1, len(groups), sharex=True, sharey=True, squeeze=False)[0]
    for ax, (title, group_kinds) in zip(axes, groups, strict=True):
        _draw_recovery_panel(ax, tables, group_kinds, "mag", bins, threshold)
        ax.set_xlabel("detected magnitude (mag)")
        ax.set_title(title)
    axes[0].set_ylabel(_recovered_label(threshold))
    fig.suptitle(f"recovery against magnitude ({_percent(RECOVERY_CONFIDENCE)} Clopper-Pearson bands)")
    return fig


@styled
def recovery_vs_host_offset(
    tables: Mapping[str, pd.DataFrame],
    kinds: Sequence[str] = ("syntransient", "injected_sn", "injected_nuclear"),
    threshold: float = 0.5,
) -> Figure:
    """Fraction of each hosted kind classified real against the offset from the host centre.

    Two panels, the offset in arcsec and in host half-light radii, each with the nuclear region (below
    :data:`bayesrb.figures.dataset.NUCLEAR_OFFSET_ARCSEC` or ``NUCLEAR_OFFSET_HLR``) shaded. The first bin is
    exactly the nuclear region, then :data:`OFFSET_BINS` equal bins out to the largest offset. Lines, bands and
    styles as in :func:`recovery_vs_magnitude`; NaN offsets (no host) are left out.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``kind``, ``host_offset_arcsec``, ``host_offset_hlr`` and
        ``score_mean``.
    kinds : sequence of str, optional
        The kinds shown (kinds with a host).
    threshold : float, optional
        A candidate is recovered when ``score_mean >= threshold``.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing the fraction axis, arcsec on the left.
    """
    tables = _checked_tables(tables, ("kind", "score_mean") + tuple(panel.column for panel in _OFFSET_PANELS))
    fig = Figure(figsize=(_PAGE_INCHES, 3.3), layout="constrained")
    axes = fig.subplots(1, len(_OFFSET_PANELS), sharey=True)
    for ax, panel in zip(axes, _OFFSET_PANELS, strict=True):
        _draw_offset_recovery(ax, tables, kinds, panel, threshold)
    axes[0].set_ylabel(_recovered_label(threshold))
    fig.suptitle(f"recovery against host offset ({_percent(RECOVERY_CONFIDENCE)} Clopper-Pearson bands)")
    return fig


def _draw_offset_recovery(ax: Axes, tables: Mapping[str, pd.DataFrame], kinds: Sequence[str], panel: _OffsetPanel,
                          threshold: float) -> None:
    ax.axvspan(0.0, panel.nuclear_limit, color="0.88", lw=0, zorder=0,
               label=f"nuclear (< {panel.nuclear_limit:g} {panel.unit})")
    bins = _offset_bins(_pooled_values(tables, kinds, panel.column), panel.nuclear_limit)
    _draw_recovery_panel(ax, tables, kinds, panel.column, bins, threshold)
    ax.set_xlim(0.0, bins[-1])
    ax.set_xlabel(panel.axis_label)
    ax.set_title(panel.title)


def _draw_recovery_panel(ax: Axes, tables: Mapping[str, pd.DataFrame], kinds: Sequence[str], column: str,
                         bins: np.ndarray, threshold: float) -> None:
    """Recovery curves of each experiment and kind against ``column``; "no data" if none has a finite value."""
    drawn = False
    for index, (name, table) in enumerate(tables.items()):
        for position, kind in enumerate(kinds):
            rows = table[_as_text(table["kind"]) == kind]
            values = rows[column].to_numpy(dtype=float)
            finite = np.isfinite(values)
            if not finite.any():
                continue
            recovered = rows["score_mean"].to_numpy(dtype=float)[finite] >= threshold
            colour, linestyle = _recovery_style(index, len(tables), kind, position)
            label = kind if len(tables) == 1 else f"{name}: {kind}"
            _draw_recovery_curve(ax, values[finite], recovered, bins, colour, linestyle, f"{label} (n={finite.sum()})")
            drawn = True
    ax.set_ylim(-0.02, 1.02)
    if drawn:
        ax.legend(loc="lower left")
    else:
        mark_no_data(ax)


def _draw_recovery_curve(ax: Axes, values: np.ndarray, recovered: np.ndarray, bins: np.ndarray, colour: str,
                         linestyle: str, label: str) -> None:
    """Recovered fraction per non-empty bin (line, markers at the centres) over its Clopper-Pearson band.

    The band is one box per bin, spanning the bin and broken at empty bins (their NaN limits).
    """
    curve = recovery_curve(values, recovered, bins, confidence=RECOVERY_CONFIDENCE)
    edges = curve[["lower", "upper"]].to_numpy().ravel()
    ax.fill_between(edges, np.repeat(curve["low"].to_numpy(), 2), np.repeat(curve["high"].to_numpy(), 2),
                    color=colour, alpha=_BAND_ALPHA, lw=0)
    filled = curve[curve["n"] > 0]
    ax.plot(filled["centre"].to_numpy(), filled["fraction"].to_numpy(), color=colour, linestyle=linestyle,
            marker="o", ms=3, lw=1.2, label=label)


def _recovery_style(experiment_index: int, n_experiments: int, kind: str, kind_position: int) -> tuple[str, str]:
    """``(colour, linestyle)``: the kind's colour with one experiment; else experiment colour, kind line style."""
    if n_experiments == 1:
        return kind_colour(kind), "-"
    return experiment_colour(experiment_index), EXPERIMENT_LINESTYLES[kind_position % len(EXPERIMENT_LINESTYLES)]


def _kind_groups(kinds: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``(title, kinds)`` of each panel of :func:`recovery_vs_magnitude` that has a requested kind."""
    known = set(TRAINING_REAL_KINDS + EVALUATION_KINDS)
    groups = [(title, [kind for kind in kinds if kind in members]) for title, members in _KIND_GROUPS]
    groups.append(("other kinds", [kind for kind in kinds if kind not in known]))
    present = [(title, members) for title, members in groups if members]
    return present or [("no kinds requested", [])]


def _pooled_values(tables: Mapping[str, pd.DataFrame], kinds: Sequence[str], column: str) -> np.ndarray:
    """The finite ``column`` values of the given kinds over all experiments."""
    values = [table.loc[np.isin(_as_text(table["kind"]), list(kinds)), column].to_numpy(dtype=float)
              for table in tables.values()]
    pooled = np.concatenate([np.empty(0), *values])
    return pooled[np.isfinite(pooled)]


def _magnitude_bins(mags: np.ndarray) -> np.ndarray:
    """Edges every MAG_BIN_WIDTH, on multiples of it, covering ``mags`` (a single bin at 0 when empty)."""
    if mags.size == 0:
        return np.array([0.0, MAG_BIN_WIDTH])
    low = np.floor(mags.min() / MAG_BIN_WIDTH)
    high = max(np.floor(mags.max() / MAG_BIN_WIDTH) + 1, low + 1)
    return np.arange(low, high + 1) * MAG_BIN_WIDTH


def _offset_bins(offsets: np.ndarray, nuclear_limit: float) -> np.ndarray:
    """Edges ``0, nuclear_limit`` then OFFSET_BINS equal bins out to the largest offset (at least 2x the limit)."""
    outer = max(2 * nuclear_limit, float(offsets.max()) if offsets.size else 0.0)
    return np.concatenate([[0.0], np.linspace(nuclear_limit, outer, OFFSET_BINS + 1)])


def _recovered_label(threshold: float) -> str:
    return f"fraction recovered (score_mean ≥ {threshold:g})"


# --- uncertainty --------------------------------------------------------------------------------------------


def select_uncertain(table: pd.DataFrame, n: int = 6, threshold: float = 0.5) -> pd.DataFrame:
    """The least confident and the most confidently misclassified candidates of one experiment.

    First the ``n`` candidates of highest predictive ``entropy`` (:data:`LEAST_CONFIDENT`), then of the others
    up to ``n`` on the wrong side of ``threshold`` (:data:`MISCLASSIFIED`), the one giving the wrong class the
    highest probability first (``score_mean`` for bogus, ``1 - score_mean`` for real candidates). Ties keep
    table order.

    Parameters
    ----------
    table : pandas.DataFrame
        One experiment's evaluation table; needs ``candidate_id``, ``label``, ``score_mean`` and ``entropy``.
    n : int, optional
        Candidates picked for each reason (at least 1).
    threshold : float, optional
        A candidate is classified real when ``score_mean >= threshold``.

    Returns
    -------
    pandas.DataFrame
        The picked rows, all columns of ``table`` plus ``reason``, with a fresh index.

    Raises
    ------
    ValueError
        If ``n < 1`` or a column is missing.
    """
    _require_columns(table, ("candidate_id", "label", "score_mean", "entropy"), "evaluation table")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    table = table.reset_index(drop=True)
    least_confident = table.sort_values("entropy", ascending=False, kind="stable").head(n)
    others = table.drop(index=least_confident.index)
    wrong = others[(others["score_mean"] >= threshold) != (others["label"] == 1)]
    wrong_class_probability = np.where(wrong["label"] == 1, 1.0 - wrong["score_mean"], wrong["score_mean"])
    misclassified = wrong.iloc[np.argsort(-wrong_class_probability, kind="stable")].head(n)
    return pd.concat([least_confident.assign(reason=LEAST_CONFIDENT), misclassified.assign(reason=MISCLASSIFIED)],
                     ignore_index=True)


@styled
def uncertain_candidates(
    table: pd.DataFrame,
    stamps: Mapping[str, np.ndarray],
    channels: Sequence[str],
    n: int = 6,
    threshold: float = 0.5,
) -> Figure:
    """Stamps and posterior score distributions of the candidates picked by :func:`select_uncertain`.

    One row per candidate (least confident first, then misclassified): its stamp channels, drawn as in
    :func:`bayesrb.figures.dataset.stamp_gallery` (array ``[row, col]`` = pixel ``(y, x)``, row 0 at the
    bottom), and beside them its posterior score distribution on ``[0, 1]``: whisker from ``score_p05`` to
    ``score_p95``, box from ``score_p16`` to ``score_p84``, a line at ``score_p50``, a diamond at ``score_mean``
    and the threshold dashed. The score panel is titled with kind, true class and candidate id; the row's
    reason labels its first stamp.

    Parameters
    ----------
    table : pandas.DataFrame
        One experiment's evaluation table; needs ``candidate_id``, ``kind``, ``label``, ``entropy`` and the score
        columns ``score_mean``, ``score_p05`` ... ``score_p95``.
    stamps : mapping of str to numpy.ndarray
        Candidate id -> stamp ``(H, W, C)`` = ``[row, col, channel]``, for at least the picked candidates.
    channels : sequence of str
        The ``C`` channel names; they title the stamp columns.
    n : int, optional
        Candidates picked for each reason.
    threshold : float, optional
        A candidate is classified real when ``score_mean >= threshold``.

    Returns
    -------
    matplotlib.figure.Figure
        ``rows x (C + 1)`` axes, or one "no data" axes.

    Raises
    ------
    ValueError
        If a picked candidate has no stamp or its stamp does not have ``C`` channels.
    """
    _require_columns(table, ("kind", "score_p05", "score_p16", "score_p50", "score_p84", "score_p95"),
                     "evaluation table")
    picked = select_uncertain(table, n=n, threshold=threshold)
    if picked.empty or not channels:
        return _no_data_figure("least confident and misclassified candidates")
    n_channels = len(channels)
    fig = Figure(figsize=(_STAMP_INCHES * n_channels + _SCORE_PANEL_INCHES + 0.4, _STAMP_INCHES * len(picked) + 0.8),
                 layout="constrained")
    axes = fig.subplots(len(picked), n_channels + 1, squeeze=False,
                        width_ratios=[_STAMP_INCHES] * n_channels + [_SCORE_PANEL_INCHES])
    for row_axes, candidate in zip(axes, picked.itertuples(index=False), strict=True):
        stamp = _stamp_of(stamps, str(candidate.candidate_id), n_channels)
        for channel, (ax, name) in enumerate(zip(row_axes[:-1], channels, strict=True)):
            _show_stamp(ax, stamp[:, :, channel], diverging=name in DIVERGING_CHANNELS)
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
    ax.set_title(f"{candidate.kind}, {_CLASS_NAMES[int(candidate.label)]}, {candidate.candidate_id}",
                 fontsize="small")


def _score_legend_handles() -> list:
    return [
        Line2D([], [], color="0.4", lw=1.2, label="5–95 %"),
        Patch(facecolor="0.4", alpha=0.5, edgecolor="0.4", label="16–84 %"),
        Line2D([], [], color="black", lw=1.4, label="median"),
        Line2D([], [], color="black", marker="D", ms=4, linestyle="none", label="mean"),
        Line2D([], [], color="0.5", linestyle="--", lw=1, label="threshold"),
    ]


@styled
def uncertainty_vs_magnitude(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """Posterior spread (``score_std``) and epistemic uncertainty (``bald``) against detected magnitude.

    Two panels; in each, every candidate is a point coloured by kind (one marker per experiment, rasterised in
    vector output) and each experiment's running median (the median per :data:`MAG_BIN_WIDTH` magnitude bin
    with at least :data:`MIN_MEDIAN_COUNT` candidates) is a black line, one line style per experiment. NaN
    magnitudes are left out.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``kind``, ``mag``, ``score_std`` and ``bald``.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing the magnitude axis, ``score_std`` on the left; one scatter collection per experiment and
        kind, one median line per experiment labelled ``"name: running median"``; a figure legend.
    """
    tables = _checked_tables(tables, ("kind", "mag", "score_std", "bald"))
    fig = Figure(figsize=(_PAGE_INCHES, 3.3), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    kinds = in_canonical_order(np.concatenate([np.empty(0, dtype=str),
                                               *(_as_text(table["kind"]) for table in tables.values())]), KIND_ORDER)
    bins = _magnitude_bins(_pooled_values(tables, kinds, "mag"))
    drawn = False
    for ax, column, ylabel in zip(axes, ("score_std", "bald"), ("posterior std of P(real)", "BALD (nats)"),
                                  strict=True):
        panel_drawn = [_draw_uncertainty(ax, table, column, bins, index, name)
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


def _draw_uncertainty(ax: Axes, table: pd.DataFrame, column: str, bins: np.ndarray, index: int, name: str) -> bool:
    """One experiment's points per kind and running median of ``column``; False if it has no finite magnitude."""
    mags = table["mag"].to_numpy(dtype=float)
    values = table[column].to_numpy(dtype=float)
    usable = np.isfinite(mags) & np.isfinite(values)
    if not usable.any():
        return False
    kinds = _as_text(table["kind"])
    marker = EXPERIMENT_MARKERS[index % len(EXPERIMENT_MARKERS)]
    for kind in in_canonical_order(kinds[usable], KIND_ORDER):
        chosen = usable & (kinds == kind)
        ax.scatter(mags[chosen], values[chosen], s=5, marker=marker, color=kind_colour(kind), alpha=0.5, lw=0,
                   rasterized=True, label=f"{name}: {kind}")
    centres, medians = _binned_medians(mags[usable], values[usable], bins)
    ax.plot(centres, medians, color="black", lw=1.4, linestyle=_experiment_linestyle(index),
            label=f"{name}: running median")
    return True


def _binned_medians(x: np.ndarray, y: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and medians of ``y`` per bin of ``x`` holding at least MIN_MEDIAN_COUNT points."""
    which = np.digitize(x, bins[1:-1])
    kept = np.flatnonzero(np.bincount(which, minlength=bins.size - 1) >= MIN_MEDIAN_COUNT)
    medians = np.array([np.median(y[which == b]) for b in kept])
    return 0.5 * (bins[kept] + bins[kept + 1]), medians


def _uncertainty_legend_handles(kinds: Sequence[str], names: Sequence[str]) -> list[Line2D]:
    kind_handles = [Line2D([], [], marker="o", color=kind_colour(kind), linestyle="none", label=kind)
                    for kind in kinds]
    experiment_handles = [Line2D([], [], color="black", marker=EXPERIMENT_MARKERS[i % len(EXPERIMENT_MARKERS)],
                                 ms=4, linestyle=_experiment_linestyle(i), label=f"{name}: running median")
                          for i, name in enumerate(names)]
    return kind_handles + experiment_handles


# --- shared helpers -----------------------------------------------------------------------------------------


def experiment_colour(index: int) -> str:
    """Colour of the ``index``-th experiment of a figure (:data:`EXPERIMENT_COLOURS`, cycling)."""
    return EXPERIMENT_COLOURS[index % len(EXPERIMENT_COLOURS)]


def _experiment_linestyle(index: int) -> str:
    return EXPERIMENT_LINESTYLES[index % len(EXPERIMENT_LINESTYLES)]


def _require_columns(table: pd.DataFrame, names: Sequence[str], what: str) -> None:
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {missing}; it has {sorted(table.columns)}")


def _checked_tables(tables: Mapping[str, pd.DataFrame], names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """``tables`` as a dict after checking that it is a mapping of tables that all have the named columns."""
    if isinstance(tables, pd.DataFrame):
        raise ValueError("tables must map experiment names to evaluation tables; wrap one table as {name: table}")
    for name, table in tables.items():
        _require_columns(table, names, f"evaluation table of {name!r}")
    return dict(tables)


def _labels_and_scores(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    _require_columns(table, _CLASSIFICATION_COLUMNS, "evaluation table")
    return table["label"].to_numpy(dtype=int), table["score_mean"].to_numpy(dtype=float)


def _has_both_classes(labels: np.ndarray) -> bool:
    return bool(np.any(labels == 1) and np.any(labels == 0))


def _percent(fraction: float) -> str:
    """E.g. ``0.01`` -> ``"1 %"``, ``0.0123`` -> ``"1.23 %"``."""
    return f"{100 * fraction:.3g} %"
