"""Figures of the labelled data set: a stamp gallery, label counts, magnitude and host-offset distributions.

Every function takes arrays (the ``stamps`` array and/or the ``meta`` columns of a data set, see
:mod:`bayesrb.stamps.shard`) and returns a :class:`matplotlib.figure.Figure`; save it with
:func:`bayesrb.figures.style.save_figure`. Empty input gives a figure that says "no data".

The ``meta`` columns used here: ``kind`` (str), ``label`` (1 real, 0 bogus, -1 unlabelled), ``split``
(``train``/``val``/``test``/``eval``), ``mag`` (detection magnitude), ``host_offset_arcsec`` and
``host_offset_hlr`` (distance to the host centre in arcsec and in host half-light radii). NaN marks a value
that does not apply and is left out of the distributions.
"""

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bayesrb.figures.style import (
    DIVERGING_CHANNELS,
    OFFSET_PANELS,
    SPLIT_ORDER,
    STAMP_INCHES,
    OffsetPanel,
    as_text,
    in_canonical_order,
    kind_colour,
    mark_no_data,
    no_data_figure,
    show_stamp,
    split_colour,
    styled,
)
from bayesrb.vocabulary import (
    INJECTED_KINDS,
    INJECTED_NUCLEAR,
    INJECTED_SN,
    KIND_ORDER,
    SYNTHETIC_TRANSIENT,
    TRAINING_REAL_KINDS,
)

__all__ = [
    "TRAINING_HOSTED_KINDS",
    "EVALUATION_HOSTED_KINDS",
    "LOG_COUNT_RANGE",
    "MAX_BINS",
    "BOGUS_HATCH",
    "stamp_gallery",
    "label_counts",
    "magnitude_distributions",
    "host_offset_distributions",
]

#: Training kinds that have a host galaxy, hence a host offset.
TRAINING_HOSTED_KINDS: tuple[str, ...] = (SYNTHETIC_TRANSIENT,)
#: Evaluation kinds that have a host galaxy (hostless transients have none).
EVALUATION_HOSTED_KINDS: tuple[str, ...] = (INJECTED_SN, INJECTED_NUCLEAR)

#: Counts spanning more than this ratio (largest / smallest non-zero) are drawn on a log axis.
LOG_COUNT_RANGE: float = 100.0
#: Largest number of histogram bins.
MAX_BINS: int = 60
#: Hatch of the bogus part of a count bar (the real part is solid).
BOGUS_HATCH: str = "////"

_GROUP_WIDTH = 0.8
_PROVENANCE = {kind: "training" for kind in TRAINING_REAL_KINDS} | {kind: "evaluation" for kind in INJECTED_KINDS}
_LINESTYLES = {"training": "-", "evaluation": "--"}


@styled
def stamp_gallery(
    stamps: np.ndarray,
    channels: Sequence[str],
    kinds: np.ndarray | Sequence[str],
    rows_per_kind: int = 4,
    rng: np.random.Generator | None = None,
) -> Figure:
    """Example stamps of each kind: one row per example, one column per channel.

    Each stamp is drawn with its own limits (:func:`bayesrb.figures.style.show_stamp`): the
    :data:`~bayesrb.figures.style.STRETCH_PERCENTILES` of its finite pixels, or for
    :data:`~bayesrb.figures.style.DIVERGING_CHANNELS` a diverging map symmetric about zero out to the upper
    percentile of ``|pixel|``. Array ``[row, col]`` = pixel ``(y, x)`` is drawn with row 0 at the bottom
    (``origin="lower"``).

    Parameters
    ----------
    stamps : numpy.ndarray
        ``(N, H, W, C)`` = ``[candidate, row, col, channel]``.
    channels : sequence of str
        The ``C`` channel names; they title the columns.
    kinds : array_like of str
        ``(N,)`` kind of each candidate; it labels the rows. Kinds appear in :data:`KIND_ORDER`.
    rows_per_kind : int, optional
        Examples per kind (fewer if a kind has fewer candidates).
    rng : numpy.random.Generator, optional
        Picks the examples at random (shown in data-set order). Without it the first examples of each kind
        are shown.

    Returns
    -------
    matplotlib.figure.Figure
        ``sum(min(rows_per_kind, n_kind))`` x ``C`` image axes, or one "no data" axes.

    Raises
    ------
    ValueError
        If ``stamps`` is not 4-D, or ``channels`` or ``kinds`` do not match its shape, or ``rows_per_kind < 1``.
    """
    stamps = np.asarray(stamps)
    kinds = as_text(kinds)
    _check_gallery_input(stamps, channels, kinds, rows_per_kind)
    picks = _gallery_picks(kinds, rows_per_kind, rng)
    if not picks or not channels:
        return no_data_figure("stamp gallery")
    fig = Figure(figsize=(STAMP_INCHES * len(channels) + 1.4, STAMP_INCHES * len(picks) + 0.3), layout="constrained")
    axes = fig.subplots(len(picks), len(channels), squeeze=False)
    for row_axes, (kind, index) in zip(axes, picks, strict=True):
        for channel, (ax, name) in enumerate(zip(row_axes, channels, strict=True)):
            show_stamp(ax, stamps[index, :, :, channel], diverging=name in DIVERGING_CHANNELS)
        row_axes[0].set_ylabel(kind, rotation=0, ha="right", va="center")
    for ax, name in zip(axes[0], channels, strict=True):
        ax.set_title(name)
    return fig


@styled
def label_counts(meta: Mapping[str, np.ndarray]) -> Figure:
    """Candidates per kind and split, as grouped bars with the real part solid and the bogus part hatched.

    One group of bars per kind (in :data:`KIND_ORDER`), one bar per split (in :data:`SPLIT_ORDER`, coloured by
    split), each topped by its total. Candidates that are not real (label 0 or -1) make the hatched part. The
    count axis is logarithmic when the non-zero counts span more than :data:`LOG_COUNT_RANGE`.

    Parameters
    ----------
    meta : mapping of str to numpy.ndarray
        Needs the columns ``kind``, ``label`` and ``split``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; the legend (splits, real, bogus) is a figure legend.
    """
    kinds, labels, splits = _columns(meta, ("kind", "label", "split"))
    kinds, splits = as_text(kinds), as_text(splits)
    if kinds.size == 0:
        return no_data_figure("candidates per kind and split")
    kind_names = in_canonical_order(kinds, KIND_ORDER)
    split_names = in_canonical_order(splits, SPLIT_ORDER)
    totals = _count_table(kinds, splits, np.ones(kinds.size, dtype=bool), kind_names, split_names)
    reals = _count_table(kinds, splits, labels == 1, kind_names, split_names)
    fig = Figure(figsize=(max(4.0, 0.8 * len(kind_names) + 2.0), 3.5), layout="constrained")
    ax = fig.add_subplot()
    width = _GROUP_WIDTH / len(split_names)
    centres = np.arange(len(kind_names), dtype=float)
    for column, split in enumerate(split_names):
        offset = (column - (len(split_names) - 1) / 2) * width
        _draw_count_bars(ax, centres + offset, width, totals[:, column], reals[:, column], split_colour(split))
    ax.set_xticks(centres, kind_names, rotation=30, ha="right")
    _set_count_scale(ax, totals)
    ax.set_xlabel("kind")
    ax.set_ylabel("candidates")
    ax.set_title("candidates per kind and split")
    fig.legend(handles=_count_legend_handles(split_names), loc="outside right upper")
    return fig


@styled
def magnitude_distributions(meta: Mapping[str, np.ndarray], density: bool = True) -> Figure:
    """Detection magnitudes of the training set's real kinds against those of the evaluation set.

    Step histograms on shared bins, one per kind present among
    :data:`~bayesrb.figures.style.TRAINING_REAL_KINDS` (solid) and :data:`~bayesrb.figures.style.INJECTED_KINDS`
    (dashed); NaN magnitudes are left out and the legend gives each kind's count.

    Parameters
    ----------
    meta : mapping of str to numpy.ndarray
        Needs the columns ``kind`` and ``mag``.
    density : bool, optional
        Normalise each histogram to unit area (default), else plot counts per bin.

    Returns
    -------
    matplotlib.figure.Figure
        One axes.
    """
    kinds, mags = _columns(meta, ("kind", "mag"))
    samples = _finite_samples_by_kind(as_text(kinds), mags, TRAINING_REAL_KINDS + INJECTED_KINDS)
    fig = Figure(figsize=(7.0, 3.5), layout="constrained")
    ax = fig.add_subplot()
    _draw_distributions(ax, samples, _shared_bins(samples.values()), density)
    if samples:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set_xlabel("magnitude")
    ax.set_ylabel(_frequency_label(density, "mag"))
    ax.set_title("detection magnitude: training real vs evaluation")
    return fig


@styled
def host_offset_distributions(meta: Mapping[str, np.ndarray], density: bool = True) -> Figure:
    """Host offsets of training synthetic transients against the evaluation set's hosted injections.

    Two panels, offsets in arcsec and in host half-light radii, each with step histograms on shared bins
    starting at zero (training solid, evaluation dashed) and the nuclear region (below
    :data:`~bayesrb.figures.style.NUCLEAR_OFFSET_ARCSEC` or ``NUCLEAR_OFFSET_HLR``) shaded. Hostless injections
    have no host and are not shown; NaN offsets are left out.

    Parameters
    ----------
    meta : mapping of str to numpy.ndarray
        Needs the columns ``kind``, ``host_offset_arcsec`` and ``host_offset_hlr``.
    density : bool, optional
        Normalise each histogram to unit area (default), else plot counts per bin.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, arcsec on the left.
    """
    kinds, *offsets = _columns(meta, ("kind",) + tuple(panel.column for panel in OFFSET_PANELS))
    kinds = as_text(kinds)
    fig = Figure(figsize=(8.0, 3.5), layout="constrained")
    for ax, panel, values in zip(fig.subplots(1, len(OFFSET_PANELS)), OFFSET_PANELS, offsets, strict=True):
        _draw_offset_panel(ax, panel, kinds, values, density)
    fig.suptitle("host offset: training synthetic transients vs evaluation injections")
    return fig


def _columns(meta: Mapping[str, np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    """The named meta columns as 1-D arrays of one common length."""
    missing = [name for name in names if name not in meta]
    if missing:
        raise ValueError(f"meta lacks the column(s) {missing}; it has {sorted(meta)}")
    columns = [np.asarray(meta[name]) for name in names]
    shapes = {name: column.shape for name, column in zip(names, columns, strict=True)}
    if len(set(shapes.values())) > 1 or any(len(shape) != 1 for shape in shapes.values()):
        raise ValueError(f"meta columns must be 1-D and of one length, got shapes {shapes}")
    return columns


def _check_gallery_input(stamps: np.ndarray, channels: Sequence[str], kinds: np.ndarray, rows_per_kind: int) -> None:
    if stamps.ndim != 4:
        raise ValueError(f"stamps must be (N, H, W, C), got shape {stamps.shape}")
    if len(channels) != stamps.shape[3]:
        raise ValueError(f"{len(channels)} channel names for {stamps.shape[3]} stamp channels")
    if kinds.shape != (stamps.shape[0],):
        raise ValueError(f"kinds must have shape ({stamps.shape[0]},) like the stamps, got {kinds.shape}")
    if rows_per_kind < 1:
        raise ValueError(f"rows_per_kind must be at least 1, got {rows_per_kind}")


def _gallery_picks(kinds: np.ndarray, rows_per_kind: int, rng: np.random.Generator | None) -> list[tuple[str, int]]:
    """``(kind, candidate index)`` of each gallery row, kinds in canonical order, indices ascending per kind."""
    picks = []
    for kind in in_canonical_order(kinds, KIND_ORDER):
        members = np.flatnonzero(kinds == kind)
        n_rows = min(rows_per_kind, members.size)
        chosen = members[:n_rows] if rng is None else np.sort(rng.choice(members, size=n_rows, replace=False))
        picks.extend((kind, int(index)) for index in chosen)
    return picks


def _count_table(
    kinds: np.ndarray, splits: np.ndarray, selected: np.ndarray, kind_names: list[str], split_names: list[str]
) -> np.ndarray:
    """``(n_kinds, n_splits)`` number of ``selected`` candidates per kind and split."""
    table = np.zeros((len(kind_names), len(split_names)), dtype=np.int64)
    np.add.at(table, (_positions(kinds, kind_names), _positions(splits, split_names)), selected)
    return table


def _positions(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Index in ``names`` of each value (every value must be one of the names)."""
    sorter = np.argsort(names)
    return sorter[np.searchsorted(names, values, sorter=sorter)]


def _draw_count_bars(
    ax: Axes, positions: np.ndarray, width: float, totals: np.ndarray, reals: np.ndarray, colour: str
) -> None:
    """One split's bars: the total hatched (bogus), the real part solid over it, the total written on top."""
    everything = ax.bar(positions, totals, width, facecolor="white", edgecolor=colour, hatch=BOGUS_HATCH, lw=0.8)
    ax.bar(positions, reals, width, facecolor=colour, edgecolor=colour, lw=0.8)
    ax.bar_label(everything, labels=[f"{n:d}" if n else "" for n in totals], rotation=90, padding=2,
                 fontsize="x-small")


def _set_count_scale(ax: Axes, totals: np.ndarray) -> None:
    """Log count axis if the non-zero counts span more than LOG_COUNT_RANGE; headroom for the bar labels."""
    positive = totals[totals > 0]
    if positive.max() / positive.min() > LOG_COUNT_RANGE:
        ax.set_yscale("log")
        ax.set_ylim(0.5, positive.max() * 20)
    else:
        ax.set_ylim(0, positive.max() * 1.3)


def _count_legend_handles(split_names: list[str]) -> list[Patch]:
    splits = [Patch(facecolor=split_colour(split), label=split) for split in split_names]
    return splits + [
        Patch(facecolor="0.5", edgecolor="0.5", label="real"),
        Patch(facecolor="white", edgecolor="0.5", hatch=BOGUS_HATCH, label="bogus"),
    ]


def _finite_samples_by_kind(kinds: np.ndarray, values: np.ndarray, wanted: Sequence[str]) -> dict[str, np.ndarray]:
    """The finite ``values`` of each kind in ``wanted`` that has any, in the order of ``wanted``."""
    values = np.asarray(values, dtype=float)
    samples = {kind: values[(kinds == kind) & np.isfinite(values)] for kind in wanted}
    return {kind: sample for kind, sample in samples.items() if sample.size}


def _shared_bins(samples: Iterable[np.ndarray], lower: float | None = None) -> np.ndarray:
    """Bin edges common to all samples (numpy's "auto" rule, at most MAX_BINS), starting at ``lower`` if given."""
    values = np.concatenate([np.empty(0), *samples])
    if values.size == 0:
        return np.linspace(0.0, 1.0, 11)
    value_range = None if lower is None else (lower, max(lower, values.max()))
    edges = np.histogram_bin_edges(values, bins="auto", range=value_range)
    return edges if edges.size <= MAX_BINS + 1 else np.histogram_bin_edges(values, MAX_BINS, range=value_range)


def _draw_distributions(ax: Axes, samples: Mapping[str, np.ndarray], bins: np.ndarray, density: bool) -> None:
    """Step histograms per kind, coloured by kind, solid for training and dashed for evaluation kinds."""
    if not samples:
        mark_no_data(ax)
        return
    for kind, sample in samples.items():
        provenance = _PROVENANCE[kind]
        ax.hist(sample, bins=bins, density=density, histtype="step", color=kind_colour(kind), lw=1.4,
                linestyle=_LINESTYLES[provenance], label=f"{kind} ({provenance}, n={sample.size})")


def _frequency_label(density: bool, unit: str) -> str:
    return f"probability density (1/{unit})" if density else "candidates per bin"


def _draw_offset_panel(ax: Axes, panel: OffsetPanel, kinds: np.ndarray, offsets: np.ndarray, density: bool) -> None:
    ax.axvspan(0.0, panel.nuclear_limit, color="0.88", lw=0, zorder=0,
               label=f"nuclear (< {panel.nuclear_limit:g} {panel.unit})")
    samples = _finite_samples_by_kind(kinds, offsets, TRAINING_HOSTED_KINDS + EVALUATION_HOSTED_KINDS)
    _draw_distributions(ax, samples, _shared_bins(samples.values(), lower=0.0), density)
    if samples:
        ax.legend(loc="upper right")
    ax.set_xlim(left=0.0)
    ax.set_xlabel(panel.axis_label)
    ax.set_ylabel(_frequency_label(density, panel.unit))
    ax.set_title(panel.title)
