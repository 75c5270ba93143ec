"""Shared look of bayesrb figures: rc settings, colours per kind and split, a "no data" mark, atomic saving.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, so no global figure state); a
figure-building function wrapped in :func:`styled` creates all its artists under :data:`STYLE_RC`.
"""

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesrb.atomic import atomic_path

__all__ = [
    "STYLE_RC",
    "SAVE_DPI",
    "KIND_ORDER",
    "KIND_COLOURS",
    "SPLIT_ORDER",
    "SPLIT_COLOURS",
    "FALLBACK_COLOUR",
    "SEQUENTIAL_CMAP",
    "DIVERGING_CMAP",
    "NO_DATA_TEXT",
    "figure_style",
    "styled",
    "kind_colour",
    "split_colour",
    "in_canonical_order",
    "mark_no_data",
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

#: Order in which kinds appear in every figure: training real, training bogus, human-labelled, evaluation.
KIND_ORDER: tuple[str, ...] = (
    "mp",
    "syntransient",
    "randjunk",
    "glxresid",
    "human",
    "injected_sn",
    "injected_nuclear",
    "injected_hostless",
)

#: One colour per kind, the same in every figure (Okabe-Ito colour-blind-safe hues; bogus kinds in greys).
KIND_COLOURS: dict[str, str] = {
    "mp": "#0072B2",
    "syntransient": "#009E73",
    "randjunk": "#999999",
    "glxresid": "#555555",
    "human": "#56B4E9",
    "injected_sn": "#D55E00",
    "injected_nuclear": "#CC79A7",
    "injected_hostless": "#E69F00",
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

#: Colour of a kind or split that has no colour of its own.
FALLBACK_COLOUR: str = "#333333"

#: Colour map of stamps that are non-negative or have a sky background (science, template, sub-frame spread).
SEQUENTIAL_CMAP: str = "gray"

#: Colour map of signed stamps (difference), always drawn with limits symmetric about zero.
DIVERGING_CMAP: str = "RdBu_r"

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


def mark_no_data(ax: Axes) -> None:
    """Write :data:`NO_DATA_TEXT` in the middle of ``ax``."""
    ax.text(0.5, 0.5, NO_DATA_TEXT, transform=ax.transAxes, ha="center", va="center", color="0.4")


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
