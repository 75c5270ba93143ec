"""Figures of recovery: the fraction of each real kind classified real against magnitude and host offset.

Each function takes recovery curves already computed from evaluation tables (by
``evaluation.curves.recovery_curves``: per experiment and kind, the recovered fraction per bin with its
Clopper-Pearson interval) and returns a :class:`matplotlib.figure.Figure`; save it with
:func:`bayesrb.figures.style.save_figure`. One experiment gives the per-experiment figure, several the comparison.
Panels without a recovered fraction to show say "no data".
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesrb.figures.style import (
    OFFSET_PANELS,
    PAGE_INCHES,
    OffsetPanel,
    experiment_colour,
    experiment_linestyle,
    kind_colour,
    mark_no_data,
    percent,
    styled,
)
from bayesrb.vocabulary import INJECTED_KINDS, INJECTED_NUCLEAR, INJECTED_SN, SYNTHETIC_TRANSIENT, TRAINING_REAL_KINDS

__all__ = ["MAGNITUDE_KINDS", "HOST_OFFSET_KINDS", "RecoveryCurves", "recovery_vs_magnitude",
           "recovery_vs_host_offset"]

#: Kinds shown against magnitude: the training-like real kinds and the evaluation-only injections.
MAGNITUDE_KINDS: tuple[str, ...] = (*TRAINING_REAL_KINDS, *INJECTED_KINDS)
#: Kinds shown against host offset: the real kinds with a host.
HOST_OFFSET_KINDS: tuple[str, ...] = (SYNTHETIC_TRANSIENT, INJECTED_SN, INJECTED_NUCLEAR)

#: Experiment name -> kind -> recovery curve: one row per bin with ``lower``, ``upper``, ``centre``, ``n``
#: (candidates), ``fraction`` (recovered) and its interval ``low``, ``high`` (NaN in empty bins).
RecoveryCurves = Mapping[str, Mapping[str, pd.DataFrame]]

_BAND_ALPHA = 0.2
_KIND_GROUPS = (("training-like real kinds", TRAINING_REAL_KINDS), ("evaluation-only injections", INJECTED_KINDS))


@styled
def recovery_vs_magnitude(curves: RecoveryCurves, kinds: Sequence[str] = MAGNITUDE_KINDS, threshold: float = 0.5,
                          confidence: float = 0.68) -> Figure:
    """Fraction of each kind classified real against detected magnitude, with Clopper-Pearson bands.

    One panel per kind group: the training-like real kinds (``mp``, ``syntransient``), the evaluation-only
    injections, and any other requested kinds; groups without a requested kind are left out. All curves share
    magnitude bins; each line joins the recovered fraction of the non-empty bins and its band is the interval of
    each bin. With one experiment the line colour shows the kind; with several it shows the experiment and the line
    style the kind.

    Parameters
    ----------
    curves : RecoveryCurves
        Experiment name -> kind -> recovery curve against ``mag``; a kind without candidates (all ``n`` zero, or
        missing) is not drawn.
    kinds : sequence of str, optional
        The kinds shown (normally real ones).
    threshold : float, optional
        The threshold on ``score_mean`` above which a candidate counted as recovered (shown in the axis label).
    confidence : float, optional
        Coverage of the intervals (shown in the title).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per kind group, sharing the magnitude and fraction axes. Each line is labelled
        ``"kind (n=...)"`` with one experiment, ``"name: kind (n=...)"`` with several.
    """
    groups = _kind_groups(kinds)
    fig = Figure(figsize=(PAGE_INCHES, 3.3), layout="constrained")
    axes = fig.subplots(1, len(groups), sharex=True, sharey=True, squeeze=False)[0]
    for ax, (title, group_kinds) in zip(axes, groups, strict=True):
        _draw_recovery_panel(ax, curves, group_kinds)
        ax.set_xlabel("detected magnitude (mag)")
        ax.set_title(title)
    axes[0].set_ylabel(_recovered_label(threshold))
    fig.suptitle(f"recovery against magnitude ({percent(confidence)} Clopper-Pearson bands)")
    return fig


@styled
def recovery_vs_host_offset(curves: Mapping[str, RecoveryCurves], kinds: Sequence[str] = HOST_OFFSET_KINDS,
                            threshold: float = 0.5, confidence: float = 0.68) -> Figure:
    """Fraction of each hosted kind classified real against the offset from the host centre.

    Two panels (:data:`bayesrb.figures.style.OFFSET_PANELS`), the offset in arcsec and in host half-light radii,
    each with the nuclear region shaded and its offset axis spanning the bins. Lines, bands and styles as in
    :func:`recovery_vs_magnitude`.

    Parameters
    ----------
    curves : mapping of str to RecoveryCurves
        Offset column (``host_offset_arcsec``, ``host_offset_hlr``) -> experiment name -> kind -> recovery curve
        against that offset, all on the same bins (first bin the nuclear region, see
        ``evaluation.curves.offset_bins``).
    kinds : sequence of str, optional
        The kinds shown (kinds with a host).
    threshold : float, optional
        The threshold on ``score_mean`` above which a candidate counted as recovered (shown in the axis label).
    confidence : float, optional
        Coverage of the intervals (shown in the title).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing the fraction axis, arcsec on the left.
    """
    fig = Figure(figsize=(PAGE_INCHES, 3.3), layout="constrained")
    axes = fig.subplots(1, len(OFFSET_PANELS), sharey=True)
    for ax, panel in zip(axes, OFFSET_PANELS, strict=True):
        _draw_offset_recovery(ax, curves[panel.column], kinds, panel)
    axes[0].set_ylabel(_recovered_label(threshold))
    fig.suptitle(f"recovery against host offset ({percent(confidence)} Clopper-Pearson bands)")
    return fig


def _draw_offset_recovery(ax: Axes, curves: RecoveryCurves, kinds: Sequence[str], panel: OffsetPanel) -> None:
    ax.axvspan(0.0, panel.nuclear_limit, color="0.88", lw=0, zorder=0,
               label=f"nuclear (< {panel.nuclear_limit:g} {panel.unit})")
    _draw_recovery_panel(ax, curves, kinds)
    outer = max((curve["upper"].iloc[-1] for by_kind in curves.values() for curve in by_kind.values()), default=None)
    ax.set_xlim(0.0, outer)
    ax.set_xlabel(panel.axis_label)
    ax.set_title(panel.title)


def _draw_recovery_panel(ax: Axes, curves: RecoveryCurves, kinds: Sequence[str]) -> None:
    """Recovery curves of each experiment and kind; "no data" if none has a candidate."""
    drawn = False
    for index, (name, by_kind) in enumerate(curves.items()):
        for position, kind in enumerate(kinds):
            curve = by_kind.get(kind)
            if curve is None or not curve["n"].any():
                continue
            colour, linestyle = _recovery_style(index, len(curves), kind, position)
            label = kind if len(curves) == 1 else f"{name}: {kind}"
            _draw_recovery_curve(ax, curve, colour, linestyle, f"{label} (n={curve['n'].sum()})")
            drawn = True
    ax.set_ylim(-0.02, 1.02)
    if drawn:
        ax.legend(loc="lower left")
    else:
        mark_no_data(ax)


def _draw_recovery_curve(ax: Axes, curve: pd.DataFrame, colour: str, linestyle: str, label: str) -> None:
    """Recovered fraction per non-empty bin (line, markers at the centres) over its Clopper-Pearson band.

    The band is one box per bin, spanning the bin and broken at empty bins (their NaN limits).
    """
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
    return experiment_colour(experiment_index), experiment_linestyle(kind_position)


def _kind_groups(kinds: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``(title, kinds)`` of each panel of :func:`recovery_vs_magnitude` that has a requested kind."""
    known = set(TRAINING_REAL_KINDS + INJECTED_KINDS)
    groups = [(title, [kind for kind in kinds if kind in members]) for title, members in _KIND_GROUPS]
    groups.append(("other kinds", [kind for kind in kinds if kind not in known]))
    present = [(title, members) for title, members in groups if members]
    return present or [("no kinds requested", [])]


def _recovered_label(threshold: float) -> str:
    return f"fraction recovered (score_mean ≥ {threshold:g})"
