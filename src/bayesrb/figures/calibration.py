"""Figure of a classifier's calibration: the reliability diagram of one or several experiments.

The function takes reliability bins and calibration errors already computed from evaluation tables (by
``evaluation.curves``) and returns a :class:`matplotlib.figure.Figure`; save it with
:func:`bayesrb.figures.style.save_figure`.
"""

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesrb.figures.style import COLUMN_INCHES, experiment_colour, mark_no_data, styled

__all__ = ["reliability"]


@styled
def reliability(bins: Mapping[str, pd.DataFrame], ece: Mapping[str, float]) -> Figure:
    """Reliability diagram: the fraction of real candidates against the mean predicted probability, per bin.

    The upper panel shows each experiment's non-empty bins of ``score_mean`` with error bars (the interval of the
    fraction real) and the diagonal of perfect calibration; the legend gives each experiment's expected
    calibration error. The lower panel shows the candidates per bin on a log axis. Experiments without candidates
    are left out (their colour stays unused).

    Parameters
    ----------
    bins : mapping of str to pandas.DataFrame
        Experiment name -> one row per bin with ``lower``, ``upper``, ``count``, ``mean_prob``, ``frac_real`` and the
        interval ``low``, ``high`` of ``frac_real``, as given by ``evaluation.curves.reliability_curves``.
    ece : mapping of str to float
        Experiment name -> expected calibration error (``evaluation.curves.calibration_errors``);
        needed for every experiment with candidates.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing the probability axis, the reliability curves on top (labelled ``"name (ECE = ...)"``).
    """
    fig = Figure(figsize=(COLUMN_INCHES, 4.6), layout="constrained")
    curves, counts = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    drawn = [_draw_reliability(curves, counts, table, name, ece, experiment_colour(index))
             for index, (name, table) in enumerate(bins.items())]
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


def _draw_reliability(curves: Axes, counts: Axes, bins: pd.DataFrame, name: str, ece: Mapping[str, float],
                      colour: str) -> bool:
    """One experiment's reliability curve with error bars and its counts per bin; False if it has no candidates."""
    if not bins["count"].any():
        return False
    filled = bins[bins["count"] > 0]
    fraction, low, high = (filled[column].to_numpy() for column in ("frac_real", "low", "high"))
    curves.errorbar(filled["mean_prob"].to_numpy(), fraction, yerr=(fraction - low, high - fraction), color=colour,
                    marker="o", ms=3, lw=1.2, capsize=2, label=f"{name} (ECE = {ece[name]:.3f})")
    edges = np.append(bins["lower"].to_numpy(), bins["upper"].iloc[-1])
    counts.stairs(bins["count"].to_numpy(), edges, color=colour, lw=1.2, label=name)
    return True
