"""Shared look of bayesrb figures: rc settings, sizes, colours, kind groups, offset panels, stamps, atomic saving.

Colours are fixed per kind, split and experiment; host-offset panels shade the same nuclear region; stamps are
stretched the same way everywhere; empty panels say "no data".

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, so no global figure state); a
figure-building function wrapped in :func:`styled` creates all its artists under :data:`STYLE_RC`.
"""

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, ParamSpec

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesrb.atomic import atomic_path
from bayesrb.vocabulary import (
    GALAXY_RESIDUAL,
    HUMAN,
    INJECTED_HOSTLESS,
    INJECTED_NUCLEAR,
    INJECTED_SN,
    MINOR_PLANET,
    RANDOM_BOGUS,
    SYNTHETIC_TRANSIENT,
    SYNTHETIC_VARIABLE,
)

__all__ = [
    "STYLE_RC",
    "SAVE_DPI",
    "COLUMN_INCHES",
    "PAGE_INCHES",
    "STAMP_INCHES",
    "KIND_COLOURS",
    "SPLIT_ORDER",
    "SPLIT_COLOURS",
    "EXPERIMENT_COLOURS",
    "EXPERIMENT_LINESTYLES",
    "EXPERIMENT_MARKERS",
    "FALLBACK_COLOUR",
    "SEQUENTIAL_CMAP",
    "DIVERGING_CMAP",
    "DIVERGING_CHANNELS",
    "STRETCH_PERCENTILES",
    "NUCLEAR_OFFSET_ARCSEC",
    "NUCLEAR_OFFSET_HLR",
    "OffsetPanel",
    "OFFSET_PANELS",
    "NO_DATA_TEXT",
    "figure_style",
    "styled",
    "kind_colour",
    "split_colour",
    "experiment_colour",
    "experiment_linestyle",
    "in_canonical_order",
    "as_text",
    "percent",
    "show_stamp",
    "mark_no_data",
    "no_data_figure",
    "save_figure",
]

#: rc settings of every bayesrb figure: journal-sized fonts, frameless legends, TrueType fonts in PDF.
STYLE_RC: dict[str, object] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "image.interpolation": "nearest",
    "pdf.fonttype": 42,
}

#: Resolution of raster output (PNG) in dots per inch.
SAVE_DPI: int = 150

#: Width of a one-column figure (inches).
COLUMN_INCHES: float = 3.5
#: Width of a full-page figure (inches).
PAGE_INCHES: float = 7.0
#: Side of one stamp in a stamp grid (inches).
STAMP_INCHES: float = 1.0

#: One colour per kind, the same in every figure (Okabe-Ito colour-blind-safe hues; bogus kinds in greys).
KIND_COLOURS: dict[str, str] = {
    MINOR_PLANET: "#0072B2",
    SYNTHETIC_TRANSIENT: "#009E73",
    SYNTHETIC_VARIABLE: "#882255",
    RANDOM_BOGUS: "#999999",
    GALAXY_RESIDUAL: "#555555",
    HUMAN: "#56B4E9",
    INJECTED_SN: "#D55E00",
    INJECTED_NUCLEAR: "#CC79A7",
    INJECTED_HOSTLESS: "#E69F00",
}

#: Order of the data-set splits.
SPLIT_ORDER: tuple[str, ...] = ("train", "val", "test", "eval")

#: One colour per split (Paul Tol's muted scheme), distinct from the kind colours.
SPLIT_COLOURS: dict[str, str] = {
    "train": "#332288",
    "val": "#88CCEE",
    "test": "#44AA99",
    "eval": "#AA4499",
}

#: One colour per experiment, in the order a figure is given them (Paul Tol's bright scheme; cycles).
EXPERIMENT_COLOURS: tuple[str, ...] = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377")
#: Line style per experiment where colour shows the kind (cycles); also the kind's style where colour shows the
#: experiment in recovery panels with several kinds.
EXPERIMENT_LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
#: Scatter marker per experiment (cycles).
EXPERIMENT_MARKERS: tuple[str, ...] = ("o", "s", "^", "v", "D")

#: Colour of a kind or split that has no colour of its own.
FALLBACK_COLOUR: str = "#333333"

#: Colour map of stamps that are non-negative or have a sky background (science, template, sub-frame spread).
SEQUENTIAL_CMAP: str = "gray"

#: Colour map of signed stamps (difference), always drawn with limits symmetric about zero.
DIVERGING_CMAP: str = "RdBu_r"

#: Signed channels, drawn with a diverging map and limits symmetric about zero.
DIVERGING_CHANNELS: frozenset[str] = frozenset({"difference"})
#: Lower and upper percentile of a stamp's finite pixels that set its grey-scale limits.
STRETCH_PERCENTILES: tuple[float, float] = (0.5, 99.5)

#: A transient closer than this to its host centre (arcsec) counts as nuclear.
NUCLEAR_OFFSET_ARCSEC: float = 0.5
#: A transient closer than this to its host centre (in host half-light radii) counts as nuclear.
NUCLEAR_OFFSET_HLR: float = 0.2


class OffsetPanel(NamedTuple):
    """A host-offset axis: the table column, panel title, axis label, unit and the nuclear region's upper limit."""

    column: str
    title: str
    axis_label: str
    unit: str
    nuclear_limit: float


#: The two host-offset panels of the data-set and recovery figures: in arcsec, then in host half-light radii.
OFFSET_PANELS: tuple[OffsetPanel, ...] = (
    OffsetPanel("host_offset_arcsec", "in arcsec", "host offset (arcsec)", "arcsec", NUCLEAR_OFFSET_ARCSEC),
    OffsetPanel("host_offset_hlr", "in host half-light radii", "host offset (half-light radii)", "hlr",
                NUCLEAR_OFFSET_HLR),
)

#: Text written on a panel that has nothing to show.
NO_DATA_TEXT: str = "no data"

#: Metadata that would otherwise carry the time of writing, per output format (keeps files byte-reproducible).
_TIMELESS_METADATA: dict[str, dict[str, None]] = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}

_Params = ParamSpec("_Params")


@contextmanager
def figure_style() -> Iterator[None]:
    """Apply :data:`STYLE_RC` for the duration of the block.

    Artists take their rc-dependent properties (font sizes, ...) when they are created, so build the
    whole figure inside the block.

    Yields
    ------
    None
    """
    with matplotlib.rc_context(STYLE_RC):
        yield


def styled(build: Callable[_Params, Figure]) -> Callable[_Params, Figure]:
    """Decorate a figure-building function so that it runs under :func:`figure_style`.

    Parameters
    ----------
    build : callable
        A function returning a :class:`matplotlib.figure.Figure`.

    Returns
    -------
    callable
        The same function, building its figure in the bayesrb style.
    """

    @functools.wraps(build)
    def build_styled(*args: _Params.args, **kwargs: _Params.kwargs) -> Figure:
        with figure_style():
            return build(*args, **kwargs)

    return build_styled


def kind_colour(kind: str) -> str:
    """Colour of a candidate kind (see :data:`KIND_COLOURS`), :data:`FALLBACK_COLOUR` for unknown kinds."""
    return KIND_COLOURS.get(kind, FALLBACK_COLOUR)


def split_colour(split: str) -> str:
    """Colour of a data-set split (see :data:`SPLIT_COLOURS`), :data:`FALLBACK_COLOUR` for unknown splits."""
    return SPLIT_COLOURS.get(split, FALLBACK_COLOUR)


def experiment_colour(index: int) -> str:
    """Colour of the ``index``-th experiment of a figure (:data:`EXPERIMENT_COLOURS`, cycling)."""
    return EXPERIMENT_COLOURS[index % len(EXPERIMENT_COLOURS)]


def experiment_linestyle(index: int) -> str:
    """Line style of the ``index``-th experiment (or kind) of a figure (:data:`EXPERIMENT_LINESTYLES`, cycling)."""
    return EXPERIMENT_LINESTYLES[index % len(EXPERIMENT_LINESTYLES)]


def in_canonical_order(values: np.ndarray | Sequence[str], order: Iterable[str]) -> list[str]:
    """The distinct values, those named in ``order`` first and in that order, then the others sorted.

    Parameters
    ----------
    values : array_like of str
        E.g. a ``kind`` column.
    order : iterable of str
        The preferred order, e.g. :data:`KIND_ORDER`.

    Returns
    -------
    list of str
    """
    present = {str(value) for value in np.unique(np.asarray(values)).tolist()}
    known = [name for name in order if name in present]
    return known + sorted(present.difference(known))


def as_text(values: np.ndarray | Sequence[str]) -> np.ndarray:
    """A string column (unicode, object or StringDType) as a fixed-width unicode array."""
    return np.asarray(values).astype(object).astype(str)


def percent(fraction: float) -> str:
    """A fraction as a percentage to three significant digits: ``0.01`` -> ``"1 %"``, ``0.0123`` -> ``"1.23 %"``."""
    return f"{100 * fraction:.3g} %"


def show_stamp(ax: Axes, image: np.ndarray, diverging: bool) -> None:
    """Draw one stamp channel without ticks, array ``[row, col]`` = pixel ``(y, x)`` with row 0 at the bottom.

    The limits are the :data:`STRETCH_PERCENTILES` of its finite pixels, or if ``diverging`` a
    :data:`DIVERGING_CMAP` symmetric about zero out to the upper percentile of ``|pixel|``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    image : numpy.ndarray
        ``(H, W)`` = ``[row, col]``.
    diverging : bool
        Whether the channel is signed (see :data:`DIVERGING_CHANNELS`).
    """
    vmin, vmax = _stamp_limits(image, diverging)
    cmap = DIVERGING_CMAP if diverging else SEQUENTIAL_CMAP
    ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower")
    ax.set_xticks([])
    ax.set_yticks([])


def _stamp_limits(image: np.ndarray, diverging: bool) -> tuple[float, float]:
    """Display limits of one stamp: a percentile stretch, symmetric about zero if ``diverging``."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return (-1.0, 1.0) if diverging else (0.0, 1.0)
    if diverging:
        half_range = float(np.percentile(np.abs(finite), STRETCH_PERCENTILES[1]))
        half_range = half_range if half_range > 0 else 1.0
        return -half_range, half_range
    low, high = (float(value) for value in np.percentile(finite, STRETCH_PERCENTILES))
    return low, (high if high > low else low + 1.0)


def mark_no_data(ax: Axes) -> None:
    """Write :data:`NO_DATA_TEXT` in the middle of ``ax``."""
    ax.text(0.5, 0.5, NO_DATA_TEXT, transform=ax.transAxes, ha="center", va="center", color="0.4")


def no_data_figure(title: str) -> Figure:
    """A one-axes figure titled ``title``, without ticks, that says :data:`NO_DATA_TEXT`."""
    fig = Figure(figsize=(4.0, 3.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    mark_no_data(ax)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` to ``path`` atomically, in the format named by the file extension.

    The figure is rendered to a temporary sibling (:func:`bayesrb.atomic.atomic_path`) and renamed onto
    ``path`` only when complete. Raster formats (PNG) are written at :data:`SAVE_DPI`; PDF and SVG carry no
    creation date, so the same figure gives the same bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
        Output file; its extension (``.png``, ``.pdf``, ...) picks the format. The directory is created if needed.

    Raises
    ------
    ValueError
        If matplotlib cannot write the format named by the extension.
    """
    path = Path(path)
    file_format = path.suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    if file_format not in supported:
        raise ValueError(f"{path}: cannot write a figure as {path.suffix!r}; use one of {sorted(supported)}")
    with figure_style(), atomic_path(path) as tmp:
        fig.savefig(tmp, format=file_format, dpi=SAVE_DPI, metadata=_TIMELESS_METADATA.get(file_format))
