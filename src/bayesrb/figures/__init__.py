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

from bayesrb.figures.evaluation import (  # noqa: E402
    confusion_matrix,
    rates_vs_threshold_figure,
    recovery_vs_host_offset,
    recovery_vs_magnitude,
    reliability,
    roc,
    select_uncertain,
    uncertain_candidates,
    uncertainty_vs_magnitude,
)

__all__ += [
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
