"""Figures of the context classifier: confusion matrices, catalogue censoring, feature importance, reliability, cards.

Each function takes counts, curves, gains, bins or per-candidate explanations already computed (by the ``context``
and ``evaluation`` packages, which this package never imports) and returns a :class:`matplotlib.figure.Figure`; save
it with :func:`bayesrb.figures.style.save_figure`. The classes are those of
:data:`bayesrb.vocabulary.CONTEXT_CLASSES`, shown by their display names
(:data:`~bayesrb.vocabulary.CONTEXT_CLASS_NAMES`) and drawn in one colour each (:data:`CONTEXT_CLASS_COLOURS`) in
every figure. Probabilities and rates are given as fractions in [0, 1] and drawn in per cent.
"""

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from bayesrb.figures.style import (
    DIVERGING_CHANNELS,
    EXPERIMENT_MARKERS,
    FALLBACK_COLOUR,
    PAGE_INCHES,
    STAMP_INCHES,
    experiment_colour,
    in_canonical_order,
    mark_no_data,
    no_data_figure,
    show_stamp,
    styled,
)
from bayesrb.vocabulary import CONTEXT_CLASS_NAMES, CONTEXT_CLASSES

__all__ = [
    "CONTEXT_CLASS_COLOURS",
    "METRIC_LABELS",
    "RELIABILITY_COLUMNS",
    "CARD_KEYS",
    "N_CONTRIBUTIONS",
    "CONTRIBUTION_COLOURS",
    "MATRIX_CMAP",
    "EMPTY_ROW_COLOUR",
    "class_colour",
    "class_name",
    "confusion_matrices",
    "censoring_curves",
    "feature_importance",
    "class_reliability",
    "explanation_cards",
]

#: One colour per context class, the same in every figure (Okabe-Ito colour-blind-safe hues; bogus in grey). The
#: transient classes share the hue of the injected kind they stand for in :data:`~bayesrb.figures.style.KIND_COLOURS`.
CONTEXT_CLASS_COLOURS: dict[str, str] = dict(zip(CONTEXT_CLASSES, ("#999999", "#009E73", "#CC79A7", "#D55E00",
                                                                    "#E69F00", "#0072B2"), strict=True))
#: Axis label of each metric of :func:`censoring_curves` (other metric names are shown with spaces for underscores).
METRIC_LABELS: dict[str, str] = {"accuracy": "accuracy", "sn_recall": "supernova recall"}
#: Columns each table of :func:`class_reliability` needs (those of ``evaluation.metrics.reliability_bins``).
RELIABILITY_COLUMNS: tuple[str, ...] = ("lower", "upper", "count", "mean_prob", "frac_real")
#: Keys each card of :func:`explanation_cards` needs.
CARD_KEYS: tuple[str, ...] = ("stamps", "channels", "title", "classes", "p_mean", "p_std", "contributions")
#: Contributions shown per card: those of largest magnitude.
N_CONTRIBUTIONS: int = 6
#: Colours of contributions that raise and lower the predicted class's log-odds (the ends of the diverging map
#: that signed stamps are drawn with: positive red, negative blue).
CONTRIBUTION_COLOURS: dict[str, str] = {"positive": "#B2182B", "negative": "#2166AC"}
#: Colour map of the confusion matrices (sequential, colour-blind safe).
MATRIX_CMAP: str = "Blues"
#: Colour of the cells of a true class without candidates in the row-normalised matrix.
EMPTY_ROW_COLOUR: str = "0.85"

_DARK_CELL = 0.6  # cells shaded darker than this fraction of the colour map get white text
_PROBABILITY_INCHES = 2.2
_CONTRIBUTION_INCHES = 2.6
_CARD_ROW_INCHES = 1.75
_DODGE_POINTS = 3.0  # horizontal step between the error bars of successive scenarios


def class_colour(code: str) -> str:
    """Colour of a context class (see :data:`CONTEXT_CLASS_COLOURS`), the fallback colour for unknown codes."""
    return CONTEXT_CLASS_COLOURS.get(code, FALLBACK_COLOUR)


def class_name(code: str) -> str:
    """Display name of a context class (:data:`~bayesrb.vocabulary.CONTEXT_CLASS_NAMES`), the code if unknown."""
    return CONTEXT_CLASS_NAMES.get(code, code)


# ----------------------------------------------------------------------------------------------- confusion matrices


@styled
def confusion_matrices(counts: np.ndarray, classes: Sequence[str]) -> Figure:
    """Confusion matrix of the context classifier as counts and as percentages of each true class, side by side.

    Rows are the true class, columns the predicted class, both in the order of ``classes``. The left panel gives
    the counts, shaded on a log scale (empty cells white); the right panel each row's percentages (a row sums to
    100 %, written to one decimal), shaded from 0 to 100 % (the colour bar), with the rows of true classes that
    have no candidates grey and blank. The row labels give each true class's number of candidates (its support);
    the title the total and the accuracy.

    Parameters
    ----------
    counts : array_like of int
        ``(K, K)`` = ``[true class, predicted class]`` numbers of candidates, non-negative.
    classes : sequence of str
        The ``K`` distinct class codes (e.g. :data:`~bayesrb.vocabulary.CONTEXT_CLASSES`) of the rows and columns.

    Returns
    -------
    matplotlib.figure.Figure
        Two matrix axes (counts on the left, annotated ``"{count}"``; percentages on the right, annotated
        ``"{percent:.1f}"``) and the percentages' colour bar, or one "no data" axes when all counts are zero.

    Raises
    ------
    ValueError
        If ``counts`` is not a square matrix of non-negative whole numbers with one row per class, or the classes
        repeat.
    """
    cells = _checked_counts(counts, classes)
    if cells.sum() == 0:
        return no_data_figure("confusion matrices")
    support = cells.sum(axis=1)
    percentages = _row_percentages(cells)
    size = len(classes)
    fig = Figure(figsize=(PAGE_INCHES, 1.6 + 0.35 * size), layout="constrained")
    count_ax, percent_ax = fig.subplots(1, 2, sharey=True)
    count_norm = LogNorm(vmin=1.0, vmax=max(float(cells.max()), 2.0))
    font = "x-small" if len(f"{cells.max():d}") > 4 else "small"
    _draw_matrix(count_ax, np.ma.masked_equal(cells, 0), count_norm, "white",
                 [[f"{count:d}" for count in row] for row in cells], font)
    percent_labels = [["" if np.isnan(value) else f"{value:.1f}" for value in row] for row in percentages]
    image = _draw_matrix(percent_ax, np.ma.masked_invalid(percentages), Normalize(0.0, 100.0), EMPTY_ROW_COLOUR,
                         percent_labels, "small")
    fig.colorbar(image, ax=percent_ax, label="% of the true class", shrink=0.75, aspect=15)
    names = [class_name(code) for code in classes]
    for ax in (count_ax, percent_ax):
        ax.set_xticks(np.arange(size), names, rotation=35, ha="right", rotation_mode="anchor")
        ax.set_xlabel("predicted class")
    count_ax.set_yticks(np.arange(size), [f"{name} (n = {n:d})" for name, n in zip(names, support, strict=True)])
    count_ax.set_ylabel("true class (candidates)")
    count_ax.set_title("counts (shading: log scale)")
    percent_ax.set_title("row percentages")
    percent_ax.tick_params(axis="y", labelleft=False)
    fig.suptitle(f"context classifier: n = {cells.sum():d}, accuracy {100 * np.trace(cells) / cells.sum():.1f} %")
    return fig


def _checked_counts(counts: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """``counts`` as an int64 matrix, checked against ``classes``."""
    cells = np.asarray(counts)
    if cells.ndim != 2 or cells.shape[0] != cells.shape[1]:
        raise ValueError(f"counts must be a square (K, K) matrix, got shape {cells.shape}")
    _check_classes(classes, cells.shape[0], "rows and columns of counts")
    if not (np.issubdtype(cells.dtype, np.integer) or np.issubdtype(cells.dtype, np.floating)):
        raise ValueError(f"counts must be numbers, got dtype {cells.dtype}")
    if not np.all(np.isfinite(cells)) or np.any(cells != np.round(cells)) or np.any(cells < 0):
        raise ValueError("counts must be non-negative whole numbers")
    return cells.astype(np.int64)


def _check_classes(classes: Sequence[str], size: int, what: str) -> None:
    if len(classes) != size:
        raise ValueError(f"{len(classes)} classes for {size} {what}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {list(classes)}")


def _row_percentages(cells: np.ndarray) -> np.ndarray:
    """Each row as percentages of its total; NaN in rows without candidates."""
    totals = cells.sum(axis=1, keepdims=True).astype(float)
    return np.divide(100.0 * cells, totals, out=np.full(cells.shape, np.nan), where=totals > 0)


def _draw_matrix(ax: Axes, values: np.ma.MaskedArray, norm: Normalize, bad_colour: str, labels: list[list[str]],
                 fontsize: str) -> AxesImage:
    """Shade the matrix (masked cells in ``bad_colour``) and write each cell's label; return the image."""
    image = ax.imshow(values, cmap=matplotlib.colormaps[MATRIX_CMAP].with_extremes(bad=bad_colour), norm=norm)
    for (row, col), label in np.ndenumerate(np.array(labels, dtype=object)):
        if not label:
            continue
        dark = not np.ma.is_masked(values[row, col]) and norm(values[row, col]) > _DARK_CELL
        ax.text(col, row, label, ha="center", va="center", fontsize=fontsize, color="white" if dark else "black")
    return image


# ----------------------------------------------------------------------------------------------- catalogue censoring


@styled
def censoring_curves(loss: np.ndarray, metrics: Mapping[str, Mapping[str, np.ndarray]], *,
                     intervals: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                     interval_level: float = 0.95) -> Figure:
    """Metrics of the context classifier against the fraction of the context catalogues lost, per scenario.

    One panel per metric (in the order they first appear), one line with markers per scenario (the catalogue
    family or families that lose sources; one colour and marker per scenario, the same in every panel). Where
    ``intervals`` are given they are drawn as error bars from their lower to their upper end; the scenarios are
    then spread a few points apart horizontally so that the bars do not hide one another (the lines' data stay
    the given losses). NaN values are left out.

    Parameters
    ----------
    loss : array_like of float
        ``(L,)`` catalogue-loss fractions, increasing, in [0, 1] (e.g. ``[0, 0.25, 0.5, 1]``).
    metrics : mapping of str to mapping of str to array_like
        Scenario (e.g. ``"all catalogues"``, ``"stars"``, ``"galaxies"``) -> metric name (e.g. ``"accuracy"``,
        ``"sn_recall"``, see :data:`METRIC_LABELS`) -> ``(L,)`` values, fractions in [0, 1], at each ``loss``.
    intervals : mapping of str to mapping of str to array_like, optional
        Scenario -> metric -> ``(L, 2)`` lower and upper end of an interval of the metric (e.g. 95 %), fractions
        in [0, 1]; only scenarios and metrics that ``metrics`` has.
    interval_level : float, optional
        Probability content of the intervals, for the title (0.95: "95 % intervals").

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric, x (catalogue loss) and y in per cent; the line of scenario ``name``
        carries the label ``name``. One "no data" axes without metrics.

    Raises
    ------
    ValueError
        If ``loss`` is not increasing within [0, 1], a metric or interval does not have one value (pair) per loss
        or is not a fraction, an interval's lower end exceeds its upper end, or ``intervals`` names a scenario or
        metric that ``metrics`` lacks.
    """
    loss = _checked_loss(loss)
    values = {scenario: {metric: _checked_curve(curve, loss.size, f"metrics[{scenario!r}][{metric!r}]")
                         for metric, curve in curves.items()} for scenario, curves in metrics.items()}
    bars = _checked_intervals(intervals or {}, values, loss.size)
    names = list(dict.fromkeys(metric for curves in values.values() for metric in curves))
    if not names:
        return no_data_figure("metrics against catalogue loss")
    fig = Figure(figsize=(max(PAGE_INCHES / 2, 3.4 * len(names)), 3.4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, metric in zip(axes, names, strict=True):
        for index, (scenario, curves) in enumerate(values.items()):
            if metric in curves:
                dodge = (index - (len(values) - 1) / 2) * _DODGE_POINTS if bars else 0.0
                _draw_censoring(ax, 100 * loss, curves[metric], bars.get(scenario, {}).get(metric), index, scenario,
                                dodge)
        _format_censoring_axes(ax, 100 * loss, metric)
    fig.legend(handles=_scenario_handles(axes), loc="outside lower center", ncols=min(len(values), 5))
    bar_note = f" (error bars: {100 * interval_level:g} % intervals)" if bars else ""
    fig.suptitle(f"context classifier against catalogue loss{bar_note}")
    return fig


def _checked_loss(loss: np.ndarray) -> np.ndarray:
    loss = np.asarray(loss, dtype=float)
    if loss.ndim != 1 or loss.size == 0:
        raise ValueError(f"loss must be a non-empty 1-D array, got shape {loss.shape}")
    if not np.all(np.isfinite(loss)) or loss.min() < 0 or loss.max() > 1 or np.any(np.diff(loss) <= 0):
        raise ValueError(f"loss must be increasing fractions in [0, 1], got {loss.tolist()}")
    return loss


def _checked_curve(values: np.ndarray, size: int, what: str) -> np.ndarray:
    """A metric's values: ``(size,)`` fractions in [0, 1] or NaN."""
    values = np.asarray(values, dtype=float)
    if values.shape != (size,):
        raise ValueError(f"{what} must have shape ({size},) like loss, got {values.shape}")
    _check_fractions(values, what)
    return values


def _check_fractions(values: np.ndarray, what: str) -> None:
    if np.any(np.isinf(values)) or np.any(values[np.isfinite(values)] < 0) or np.any(values[np.isfinite(values)] > 1):
        raise ValueError(f"{what} must be fractions in [0, 1] (or NaN), got {values.tolist()}")


def _checked_intervals(intervals: Mapping[str, Mapping[str, np.ndarray]],
                       values: Mapping[str, Mapping[str, np.ndarray]], size: int) -> dict[str, dict[str, np.ndarray]]:
    """Each interval as an ``(size, 2)`` array of lower and upper ends, for a scenario and metric that exist."""
    checked: dict[str, dict[str, np.ndarray]] = {}
    for scenario, curves in intervals.items():
        for metric, pairs in curves.items():
            what = f"intervals[{scenario!r}][{metric!r}]"
            if metric not in values.get(scenario, {}):
                raise ValueError(f"{what} has no metric to go with it in metrics")
            pairs = np.asarray(pairs, dtype=float)
            if pairs.shape != (size, 2):
                raise ValueError(f"{what} must have shape ({size}, 2), got {pairs.shape}")
            _check_fractions(pairs, what)
            if np.any(pairs[:, 0] > pairs[:, 1]):
                raise ValueError(f"{what}: a lower end exceeds its upper end")
            checked.setdefault(scenario, {})[metric] = pairs
    return checked


def _draw_censoring(ax: Axes, loss_percent: np.ndarray, values: np.ndarray, interval: np.ndarray | None, index: int,
                    scenario: str, dodge_points: float) -> None:
    """One scenario's curve (and error bars), shifted ``dodge_points`` to the right on the page."""
    shifted = ax.transData + ScaledTranslation(dodge_points / 72, 0.0, ax.figure.dpi_scale_trans)
    colour = experiment_colour(index)
    ax.plot(loss_percent, 100 * values, color=colour, marker=EXPERIMENT_MARKERS[index % len(EXPERIMENT_MARKERS)],
            ms=4, lw=1.4, label=scenario, transform=shifted)
    drawn = [100 * values]
    if interval is not None:
        low, high = 100 * interval[:, 0], 100 * interval[:, 1]
        ax.errorbar(loss_percent, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor=colour, elinewidth=1,
                    capsize=2, transform=shifted)
        drawn += [low, high]
    points = np.column_stack([np.tile(loss_percent, len(drawn)), np.concatenate(drawn)])
    ax.update_datalim(points[np.isfinite(points[:, 1])])  # artists with a shifted transform do not autoscale
    ax.autoscale_view()


def _format_censoring_axes(ax: Axes, loss_percent: np.ndarray, metric: str) -> None:
    span = float(loss_percent[-1] - loss_percent[0]) or 10.0
    ax.set_xlim(loss_percent[0] - 0.06 * span, loss_percent[-1] + 0.06 * span)
    if loss_percent.size <= 8:
        ax.set_xticks(loss_percent, [f"{value:g}" for value in loss_percent])
    label = METRIC_LABELS.get(metric, metric.replace("_", " "))
    ax.set_xlabel("catalogue loss (%)")
    ax.set_ylabel(f"{label} (%)")
    ax.set_title(label)
    ax.grid(axis="y", color="0.9", lw=0.6)


def _scenario_handles(axes: Sequence[Axes]) -> list:
    """One legend handle per scenario, from the first panel that draws it."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    return list(handles.values())


# ----------------------------------------------------------------------------------------------- feature importance


@styled
def feature_importance(names: Sequence[str], gain: np.ndarray, *, top: int = 20) -> Figure:
    """The ``top`` features of largest total gain, as horizontal bars, the largest at the top.

    Gains are shown as percentages of the total gain of all features (so the bars of a model read the same
    whatever the units of its gain); each bar is labelled with its percentage and the title says which share of
    the total the bars shown carry. Equal gains keep the order of ``names``.

    Parameters
    ----------
    names : sequence of str
        ``(N,)`` distinct feature names.
    gain : array_like of float
        ``(N,)`` total gain of each feature (e.g. XGBoost's ``total_gain``), finite and non-negative.
    top : int, optional
        Largest number of features shown.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with ``min(top, N)`` bars (widths: percentages of the total gain, top bar the largest), or one
        "no data" axes when there are no features or all gains are zero.

    Raises
    ------
    ValueError
        If ``gain`` is not 1-D of one value per name, has negative or non-finite values, names repeat, or
        ``top < 1``.
    """
    gain = _checked_gain(names, gain, top)
    total = float(gain.sum())
    if total == 0:
        return no_data_figure("feature importance")
    order = np.argsort(-gain, kind="stable")[:top]
    shares = 100 * gain[order] / total
    fig = Figure(figsize=(PAGE_INCHES / 2 + 1.0, 0.9 + 0.19 * order.size), layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(order.size)
    bars = ax.barh(positions, shares, height=0.7, color="#0072B2")
    ax.bar_label(bars, labels=[f"{share:.1f}" for share in shares], padding=2, fontsize="x-small")
    ax.set_yticks(positions, [str(names[index]) for index in order])
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.15 * shares.max())
    ax.set_xlabel("share of the total gain (%)")
    ax.set_title(f"top {order.size} of {gain.size} features\n({shares.sum():.1f} % of the total gain)")
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    return fig


def _checked_gain(names: Sequence[str], gain: np.ndarray, top: int) -> np.ndarray:
    gain = np.asarray(gain, dtype=float)
    if gain.shape != (len(names),):
        raise ValueError(f"gain must have shape ({len(names)},), one value per name, got {gain.shape}")
    if not np.all(np.isfinite(gain)) or np.any(gain < 0):
        raise ValueError("gains must be finite and non-negative")
    if len(set(names)) != len(names):
        raise ValueError("feature names must be distinct")
    if int(top) != top or top < 1:
        raise ValueError(f"top must be a positive integer, got {top}")
    return gain


# ----------------------------------------------------------------------------------------------- reliability


@styled
def class_reliability(bins: Mapping[str, pd.DataFrame]) -> Figure:
    """One-against-the-rest reliability of each class: observed frequency against mean predicted probability.

    One small panel per class (in the order of :data:`~bayesrb.vocabulary.CONTEXT_CLASSES`, unknown codes after
    them; three to a row), in the class's colour: the non-empty bins' observed frequency of the class against the
    mean predicted probability of the class, with the diagonal of perfect calibration and, where the tables have
    the interval columns ``low`` and ``high``, error bars; beneath it the candidates per bin on a log axis.

    Parameters
    ----------
    bins : mapping of str to pandas.DataFrame
        Class code -> one row per probability bin with the columns of ``evaluation.metrics.reliability_bins``:
        ``lower``, ``upper`` (bin edges in [0, 1]), ``count`` (candidates in the bin), ``mean_prob`` (their mean
        predicted probability of the class) and ``frac_real`` (the fraction of them that are of the class); the
        means are NaN in empty bins. Optional ``low`` and ``high``: an interval of ``frac_real``.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes per class, the reliability axes (titled with the class's display name and candidate count) above
        its count axes; or one "no data" axes without classes.

    Raises
    ------
    ValueError
        If a table lacks a column or has no rows, counts are negative or not whole, the bins are not contiguous
        and increasing within [0, 1], probabilities are not in [0, 1] or an interval's lower end exceeds its
        upper end.
    """
    for code, table in bins.items():
        _check_bins(code, table)
    codes = in_canonical_order(list(bins), CONTEXT_CLASSES)
    if not codes:
        return no_data_figure("reliability per class")
    n_cols = min(3, len(codes))
    n_rows = -(-len(codes) // n_cols)
    fig = Figure(figsize=(2.3 * n_cols + 0.5, 2.6 * n_rows + 0.4), layout="constrained")
    axes = fig.subplots(2 * n_rows, n_cols, squeeze=False, height_ratios=[3, 1] * n_rows)
    for index, code in enumerate(codes):
        curve_ax, count_ax = _panel_pair(axes, index)
        _draw_class_reliability(curve_ax, count_ax, bins[code], code)
        if index % n_cols == 0:
            curve_ax.set_ylabel("observed frequency")
            count_ax.set_ylabel("candidates")
    for index in range(len(codes), n_rows * n_cols):
        for ax in _panel_pair(axes, index):
            fig.delaxes(ax)
    fig.supxlabel("mean predicted probability of the class", fontsize="medium")
    fig.suptitle("reliability per class (one against the rest)")
    return fig


def _panel_pair(axes: np.ndarray, index: int) -> tuple[Axes, Axes]:
    """The reliability and count axes of the ``index``-th class in a grid of alternating curve and count rows."""
    row, col = divmod(index, axes.shape[1])
    return axes[2 * row, col], axes[2 * row + 1, col]


def _check_bins(code: str, table: pd.DataFrame) -> None:
    missing = [column for column in RELIABILITY_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"reliability bins of {code!r} lack the column(s) {missing}")
    if table.empty:
        raise ValueError(f"reliability bins of {code!r} have no rows")
    count = table["count"].to_numpy(dtype=float)
    if np.any(~np.isfinite(count)) or np.any(count < 0) or np.any(count != np.round(count)):
        raise ValueError(f"counts of the reliability bins of {code!r} must be non-negative whole numbers")
    lower, upper = table["lower"].to_numpy(dtype=float), table["upper"].to_numpy(dtype=float)
    if lower.min() < 0 or upper.max() > 1 or np.any(upper <= lower) or not np.allclose(lower[1:], upper[:-1]):
        raise ValueError(f"bins of {code!r} must be contiguous and increase within [0, 1]")
    for column in ("mean_prob", "frac_real", "low", "high"):
        if column in table.columns:
            _check_fractions(table[column].to_numpy(dtype=float), f"{column} of the reliability bins of {code!r}")
    if {"low", "high"} <= set(table.columns) and np.any(table["low"].to_numpy(float) > table["high"].to_numpy(float)):
        raise ValueError(f"reliability bins of {code!r}: a lower end (low) exceeds its upper end (high)")


def _draw_class_reliability(curve_ax: Axes, count_ax: Axes, table: pd.DataFrame, code: str) -> None:
    """One class's reliability curve over its count histogram."""
    colour = class_colour(code)
    count = table["count"].to_numpy(dtype=float)
    curve_ax.plot([0, 1], [0, 1], color="black", linestyle=":", lw=0.8)  # not grey: bogus is drawn in grey
    curve_ax.set(xlim=(0.0, 1.0), ylim=(0.0, 1.0), title=f"{class_name(code)} (n = {int(count.sum()):d})")
    curve_ax.tick_params(axis="x", labelbottom=False)
    count_ax.sharex(curve_ax)
    if not count.any():
        mark_no_data(curve_ax)
        mark_no_data(count_ax)
        return
    filled = table[count > 0]
    mean, fraction = filled["mean_prob"].to_numpy(dtype=float), filled["frac_real"].to_numpy(dtype=float)
    curve_ax.plot(mean, fraction, color=colour, marker="o", ms=3, lw=1.2)
    if {"low", "high"} <= set(table.columns):
        low, high = filled["low"].to_numpy(dtype=float), filled["high"].to_numpy(dtype=float)
        curve_ax.errorbar(mean, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor=colour, elinewidth=1,
                          capsize=2)
    edges = np.append(table["lower"].to_numpy(dtype=float), float(table["upper"].iloc[-1]))
    count_ax.stairs(count, edges, color=colour, fill=True, alpha=0.6)
    count_ax.set_yscale("log")
    count_ax.set_ylim(bottom=0.5)


# ----------------------------------------------------------------------------------------------- explanation cards


@styled
def explanation_cards(cards: Sequence[Mapping[str, object]]) -> Figure:
    """One row per candidate: its stamps, its class probabilities and what drove its predicted class.

    Each row shows the stamp channels, drawn as in :func:`bayesrb.figures.dataset.stamp_gallery` (array
    ``[row, col]`` = pixel ``(y, x)``, row 0 at the bottom, signed channels with a diverging map symmetric about
    zero), then the posterior mean probability of each class as a horizontal bar in the class's colour with an
    error bar of plus and minus its spread, then the :data:`N_CONTRIBUTIONS` contributions of largest magnitude to
    the log-odds of the predicted class (the class of largest mean probability), the largest at the top, positive
    and negative ones in the two :data:`CONTRIBUTION_COLOURS`. The row is titled with the card's title and the
    predicted class; the channel names title the stamps of the first row and of every row whose channels differ
    from the row above.

    Parameters
    ----------
    cards : sequence of mapping
        One mapping per candidate with the keys of :data:`CARD_KEYS`: ``stamps`` ``(H, W, C)`` =
        ``[row, col, channel]``; ``channels`` the ``C`` channel names (e.g. ``science``, ``template``,
        ``difference``, ``subframe_ptp``); ``title`` (str, e.g. the candidate id and true class); ``classes`` the
        ``K`` distinct class codes; ``p_mean`` ``(K,)`` posterior mean probability of each class (fractions summing
        to 1); ``p_std`` ``(K,)`` their spreads (non-negative); ``contributions`` a mapping of feature name to its
        signed contribution to the predicted class's log-odds.

    Returns
    -------
    matplotlib.figure.Figure
        ``C + 2`` axes per card (in one sub-figure per card): the ``C`` stamps, the probability bars, the
        contribution bars; or one "no data" axes without cards.

    Raises
    ------
    ValueError
        If a card lacks a key, its stamps are not ``(H, W, C)`` with one channel name each, its probabilities and
        spreads are not one per class, the probabilities are not fractions summing to 1, a spread is negative or
        not finite, or a contribution is not finite.
    """
    checked = [_checked_card(index, card) for index, card in enumerate(cards)]
    if not checked:
        return no_data_figure("explanation cards")
    most_channels = max(len(card["channels"]) for card in checked)
    width = STAMP_INCHES * most_channels + _PROBABILITY_INCHES + _CONTRIBUTION_INCHES + 1.2
    fig = Figure(figsize=(width, _CARD_ROW_INCHES * len(checked) + 0.4), layout="constrained")
    rows = fig.subfigures(len(checked), 1, squeeze=False)[:, 0]
    for index, (row, card) in enumerate(zip(rows, checked, strict=True)):
        new_channels = index == 0 or card["channels"] != checked[index - 1]["channels"]
        _draw_card(row, card, most_channels, new_channels)
    fig.legend(handles=_contribution_handles(), loc="outside lower center", ncols=2)
    return fig


def _checked_card(index: int, card: Mapping[str, object]) -> dict[str, object]:
    """The ``index``-th card's values as arrays and lists, checked (errors name the card by its index)."""
    what = f"card {index}"
    missing = [key for key in CARD_KEYS if key not in card]
    if missing:
        raise ValueError(f"{what} lacks the key(s) {missing}")
    stamps, channels = np.asarray(card["stamps"], dtype=float), [str(name) for name in card["channels"]]
    if stamps.ndim != 3 or stamps.shape[2] != len(channels):
        raise ValueError(f"{what}: stamps must be (H, W, {len(channels)}), one channel per name, got {stamps.shape}")
    classes = [str(code) for code in card["classes"]]
    p_mean, p_std = np.asarray(card["p_mean"], dtype=float), np.asarray(card["p_std"], dtype=float)
    if p_mean.shape != (len(classes),) or p_std.shape != (len(classes),):
        raise ValueError(f"{what}: p_mean and p_std must have shape ({len(classes)},), one value per class, "
                         f"got {p_mean.shape} and {p_std.shape}")
    _check_classes(classes, len(classes), "probabilities")
    if not np.all(np.isfinite(p_mean)) or np.any(p_mean < 0) or np.any(p_mean > 1) or abs(p_mean.sum() - 1) > 1e-3:
        raise ValueError(f"{what}: p_mean must be probabilities summing to 1, got {p_mean.tolist()}")
    if not np.all(np.isfinite(p_std)) or np.any(p_std < 0):
        raise ValueError(f"{what}: p_std must be finite and non-negative, got {p_std.tolist()}")
    contributions = {str(name): float(value) for name, value in dict(card["contributions"]).items()}
    if not all(np.isfinite(value) for value in contributions.values()):
        raise ValueError(f"{what}: contributions must be finite")
    return {"stamps": stamps, "channels": channels, "title": str(card["title"]), "classes": classes,
            "p_mean": p_mean, "p_std": p_std, "contributions": contributions}


def _draw_card(row: SubFigure, card: Mapping[str, object], most_channels: int, title_channels: bool) -> None:
    channels = card["channels"]
    axes = row.subplots(1, len(channels) + 2, width_ratios=[STAMP_INCHES] * len(channels)
                        + [_PROBABILITY_INCHES + STAMP_INCHES * (most_channels - len(channels)), _CONTRIBUTION_INCHES])
    for channel, (ax, name) in enumerate(zip(axes[:-2], channels, strict=True)):
        show_stamp(ax, card["stamps"][:, :, channel], diverging=name in DIVERGING_CHANNELS)
        if title_channels:
            ax.set_title(name, fontsize="small")
    predicted = int(np.argmax(card["p_mean"]))
    _draw_probabilities(axes[-2], card["classes"], card["p_mean"], card["p_std"], predicted)
    _draw_contributions(axes[-1], card["contributions"], class_name(card["classes"][predicted]))
    p_mean, p_std = card["p_mean"][predicted], card["p_std"][predicted]
    row.suptitle(f"{card['title']} — predicted {class_name(card['classes'][predicted])} "
                 f"(P = {p_mean:.2f} ± {p_std:.2f})", fontsize="medium")


def _draw_probabilities(ax: Axes, classes: Sequence[str], p_mean: np.ndarray, p_std: np.ndarray,
                        predicted: int) -> None:
    """Horizontal bars of the class probabilities with ± spread error bars, the predicted class's label bold."""
    positions = np.arange(len(classes))
    ax.barh(positions, p_mean, xerr=p_std, height=0.7, color=[class_colour(code) for code in classes],
            error_kw={"ecolor": "black", "elinewidth": 1, "capsize": 2})
    ax.set_yticks(positions, [class_name(code) for code in classes], fontsize="small")
    ax.get_yticklabels()[predicted].set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("P(class): mean ± std")


def _draw_contributions(ax: Axes, contributions: Mapping[str, float], predicted_name: str) -> None:
    """The largest-magnitude contributions as horizontal bars about zero, the largest at the top."""
    ax.set_xlabel(f"contribution to log-odds\nof {predicted_name}")
    ax.axvline(0.0, color="0.3", lw=0.8)
    if not contributions:
        mark_no_data(ax)
        ax.set_yticks([])
        return
    names = sorted(contributions, key=lambda name: -abs(contributions[name]))[:N_CONTRIBUTIONS]
    values = np.array([contributions[name] for name in names])
    colours = [CONTRIBUTION_COLOURS["positive" if value > 0 else "negative"] for value in values]
    ax.barh(np.arange(values.size), values, height=0.7, color=colours)
    ax.set_yticks(np.arange(values.size), names, fontsize="x-small")
    ax.invert_yaxis()
    reach = float(np.abs(values).max()) or 1.0
    ax.set_xlim(-1.1 * reach, 1.1 * reach)


def _contribution_handles() -> list[Patch]:
    return [Patch(color=CONTRIBUTION_COLOURS["positive"], label="raises the predicted class's log-odds"),
            Patch(color=CONTRIBUTION_COLOURS["negative"], label="lowers the predicted class's log-odds")]
