"""Referee-quality figures: each a function from data to a :class:`matplotlib.figure.Figure`.

Build figures with the functions of the submodules and write them with :func:`save_figure`; the file
extension picks the format (PNG at 150 dpi, PDF, ...).
"""

from bayesrb.figures.dataset import (
    host_offset_distributions,
    label_counts,
    magnitude_distributions,
    stamp_gallery,
)
from bayesrb.figures.style import figure_style, save_figure

__all__ = [
    "figure_style",
    "save_figure",
    "stamp_gallery",
    "label_counts",
    "magnitude_distributions",
    "host_offset_distributions",
]
