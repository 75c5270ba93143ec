"""What the evaluation figures draw, computed from evaluation tables: curves, bins, rates and running medians.

The input is one experiment's evaluation table (:func:`bayesrb.evaluation.table.evaluation_table`: one row per
scored candidate) or, for functions taking ``tables``, a mapping experiment name -> table, answered with one entry
per experiment in the same order. Every row given is used: pass the rows to evaluate (e.g. those of
:func:`~bayesrb.evaluation.table.held_out`). A candidate is classified real when ``score_mean >= threshold``. The
metrics themselves are those of :mod:`bayesrb.evaluation.metrics`; the figures of :mod:`bayesrb.figures` draw the
results.
"""

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayesrb.evaluation.metrics import (
    binomial_interval,
    expected_calibration_error,
    rates_at_threshold,
    rates_vs_threshold,
    recovery_curve,
    reliability_bins,
    roc_auc,
    roc_curve,
    threshold_at_fpr,
)
from bayesrb.evaluation.table import require_columns

__all__ = [
    "N_THRESHOLDS",
    "RECOVERY_CONFIDENCE",
    "MAG_BIN_WIDTH",
    "OFFSET_BINS",
    "MIN_MEDIAN_COUNT",
    "CLASSIFICATION_COLUMNS",
    "labels_and_scores",
    "operating_points",
    "roc_curves",
    "threshold_rates",
    "reliability_curves",
    "calibration_errors",
    "finite_values",
    "magnitude_bins",
    "offset_bins",
    "recovery_curves",
    "running_medians",
]

#: Thresholds evaluated between 0 and 1 (inclusive) for the error-rate curves.
N_THRESHOLDS: int = 501
#: Confidence of the Clopper-Pearson intervals of recovery fractions and of the fraction real per calibration bin.
RECOVERY_CONFIDENCE: float = 0.68
#: Width of the magnitude bins of recovery curves and running medians (mag).
MAG_BIN_WIDTH: float = 0.5
#: Host-offset bins beyond the nuclear bin (the first bin is exactly the nuclear region).
OFFSET_BINS: int = 8
#: Fewest candidates in a magnitude bin for its running median to be given.
MIN_MEDIAN_COUNT: int = 5
#: Columns of the evaluation table that the classification curves read.
CLASSIFICATION_COLUMNS: tuple[str, ...] = ("label", "score_mean")

_POINT_RATES = ("auc", "threshold", "fpr", "tpr", "fnr")


def labels_and_scores(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The labels (int, 1 real, 0 bogus) and ``score_mean`` (float) of one evaluation table.

    Raises
    ------
    ValueError
        If the table lacks a column of :data:`CLASSIFICATION_COLUMNS`.
    """
    require_columns(table, CLASSIFICATION_COLUMNS)
    return table["label"].to_numpy(dtype=int), table["score_mean"].to_numpy(dtype=float)


# --- classification ------------------------------------------------------------------------------------------


def operating_points(tables: Mapping[str, pd.DataFrame], target_fpr: float = 0.01) -> dict[str, dict[str, float]]:
    """Each experiment's class counts, area under the ROC curve and rates at the threshold meeting ``target_fpr``.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``label`` and ``score_mean``.
    target_fpr : float, optional
        The false positive rate aimed at (0.01 = 1 %).

    Returns
    -------
    dict of str to dict
        Experiment name -> ``n_real`` and ``n_bogus`` (ints), ``auc`` (:func:`~bayesrb.evaluation.metrics.roc_auc`),
        ``threshold`` (:func:`~bayesrb.evaluation.metrics.threshold_at_fpr`) and the ``fpr``, ``tpr`` and ``fnr`` at
        that threshold; all but the counts NaN unless the experiment has both real and bogus candidates.

    Raises
    ------
    ValueError
        If ``tables`` is one table rather than a mapping, or a table lacks a column.
    """
    tables = _checked_tables(tables, CLASSIFICATION_COLUMNS)
    return {name: _operating_point(*labels_and_scores(table), target_fpr) for name, table in tables.items()}


def _operating_point(labels: np.ndarray, scores: np.ndarray, target_fpr: float) -> dict[str, float]:
    counts = {"n_real": int(np.sum(labels == 1)), "n_bogus": int(np.sum(labels == 0))}
    if not _has_both_classes(labels):
        return counts | dict.fromkeys(_POINT_RATES, math.nan)
    threshold = threshold_at_fpr(labels, scores, target_fpr=target_fpr)
    rates = rates_at_threshold(labels, scores, threshold)
    return counts | {"auc": roc_auc(labels, scores), "threshold": threshold, "fpr": rates["fpr"], "tpr": rates["tpr"],
                     "fnr": rates["fnr"]}


def roc_curves(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The ROC curve (:func:`~bayesrb.evaluation.metrics.roc_curve`) of each experiment with both classes.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``label`` and ``score_mean``.

    Returns
    -------
    dict of str to pandas.DataFrame
        Experiment name -> one row per curve point: ``threshold``, ``fpr`` and ``tpr``. Experiments without both
        real and bogus candidates are left out.

    Raises
    ------
    ValueError
        If ``tables`` is one table rather than a mapping, or a table lacks a column.
    """
    tables = _checked_tables(tables, CLASSIFICATION_COLUMNS)
    pairs = {name: labels_and_scores(table) for name, table in tables.items()}
    return {name: _roc_table(labels, scores) for name, (labels, scores) in pairs.items() if _has_both_classes(labels)}


def _roc_table(labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return pd.DataFrame({"threshold": thresholds, "fpr": fpr, "tpr": tpr})


def threshold_rates(table: pd.DataFrame, n_thresholds: int = N_THRESHOLDS) -> pd.DataFrame:
    """False positive and false negative rates at thresholds evenly spaced from 0 to 1.

    Parameters
    ----------
    table : pandas.DataFrame
        One experiment's evaluation table; needs ``label`` and ``score_mean``.
    n_thresholds : int, optional
        Thresholds evaluated, 0 and 1 included.

    Returns
    -------
    pandas.DataFrame
        One row per threshold: ``threshold``, ``fpr`` and ``fnr``
        (:func:`~bayesrb.evaluation.metrics.rates_vs_threshold`); no rows unless the table has both real and bogus
        candidates.
    """
    labels, scores = labels_and_scores(table)
    if not _has_both_classes(labels):
        return pd.DataFrame({"threshold": [], "fpr": [], "fnr": []}, dtype=float)
    thresholds = np.linspace(0.0, 1.0, n_thresholds)
    fpr, fnr = rates_vs_threshold(labels, scores, thresholds)
    return pd.DataFrame({"threshold": thresholds, "fpr": fpr, "fnr": fnr})


# --- calibration ---------------------------------------------------------------------------------------------


def reliability_curves(tables: Mapping[str, pd.DataFrame], n_bins: int = 15,
                       confidence: float = RECOVERY_CONFIDENCE) -> dict[str, pd.DataFrame]:
    """Each experiment's reliability bins of ``score_mean`` with a Clopper-Pearson interval of the fraction real.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``label`` and ``score_mean``.
    n_bins : int, optional
        Equal-width probability bins between 0 and 1.
    confidence : float, optional
        Coverage of the intervals.

    Returns
    -------
    dict of str to pandas.DataFrame
        Experiment name -> one row per bin: the columns of :func:`~bayesrb.evaluation.metrics.reliability_bins`
        (``lower``, ``upper``, ``count``, ``mean_prob``, ``frac_real``) and ``low``, ``high``, the interval of
        ``frac_real`` (NaN in empty bins). An experiment without candidates has only empty bins.

    Raises
    ------
    ValueError
        If ``tables`` is one table rather than a mapping, or a table lacks a column.
    """
    tables = _checked_tables(tables, CLASSIFICATION_COLUMNS)
    return {name: _reliability_curve(*labels_and_scores(table), n_bins, confidence) for name, table in tables.items()}


def _reliability_curve(labels: np.ndarray, probs: np.ndarray, n_bins: int, confidence: float) -> pd.DataFrame:
    bins = reliability_bins(labels, probs, n_bins=n_bins)
    count = bins["count"].to_numpy()
    n_real = np.rint(np.nan_to_num(bins["frac_real"].to_numpy()) * count)
    low, high = binomial_interval(n_real, count, confidence=confidence)
    return bins.assign(low=low, high=high)


def calibration_errors(tables: Mapping[str, pd.DataFrame], n_bins: int = 15) -> dict[str, float]:
    """Each experiment's expected calibration error of ``score_mean``.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``label`` and ``score_mean``.
    n_bins : int, optional
        Equal-width probability bins between 0 and 1.

    Returns
    -------
    dict of str to float
        Experiment name -> :func:`~bayesrb.evaluation.metrics.expected_calibration_error`; NaN without candidates.
    """
    tables = _checked_tables(tables, CLASSIFICATION_COLUMNS)
    pairs = {name: labels_and_scores(table) for name, table in tables.items()}
    return {name: expected_calibration_error(labels, probs, n_bins=n_bins) if labels.size else math.nan
            for name, (labels, probs) in pairs.items()}


# --- recovery ------------------------------------------------------------------------------------------------


def finite_values(tables: Mapping[str, pd.DataFrame], column: str, kinds: Sequence[str] | None = None) -> np.ndarray:
    """The finite values of ``column`` pooled over all experiments, of the given kinds.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``kind`` and ``column``.
    column : str
        E.g. ``mag`` or ``host_offset_arcsec``.
    kinds : sequence of str, optional
        The kinds pooled; all kinds if not given.

    Returns
    -------
    numpy.ndarray of float
        1-D, experiments in order, each in table order.

    Raises
    ------
    ValueError
        If ``tables`` is one table rather than a mapping, or a table lacks a column.
    """
    tables = _checked_tables(tables, ("kind", column))
    values = [table.loc[_of_kinds(table, kinds), column].to_numpy(dtype=float) for table in tables.values()]
    pooled = np.concatenate([np.empty(0), *values])
    return pooled[np.isfinite(pooled)]


def magnitude_bins(mags: np.ndarray, width: float = MAG_BIN_WIDTH) -> np.ndarray:
    """Bin edges every ``width`` magnitudes, on multiples of it, covering ``mags`` (one bin from 0 when empty)."""
    if mags.size == 0:
        return np.array([0.0, width])
    low = np.floor(mags.min() / width)
    high = max(np.floor(mags.max() / width) + 1, low + 1)
    return np.arange(low, high + 1) * width


def offset_bins(offsets: np.ndarray, nuclear_limit: float, n_bins: int = OFFSET_BINS) -> np.ndarray:
    """Host-offset bin edges: ``0, nuclear_limit``, then ``n_bins`` equal bins out to the largest offset.

    The first bin is exactly the nuclear region; the outer edge is at least twice ``nuclear_limit``.
    """
    outer = max(2 * nuclear_limit, float(offsets.max()) if offsets.size else 0.0)
    return np.concatenate([[0.0], np.linspace(nuclear_limit, outer, n_bins + 1)])


def recovery_curves(tables: Mapping[str, pd.DataFrame], kinds: Sequence[str], column: str, bins: np.ndarray,
                    threshold: float = 0.5,
                    confidence: float = RECOVERY_CONFIDENCE) -> dict[str, dict[str, pd.DataFrame]]:
    """The fraction of each kind recovered (classified real) in bins of ``column``, per experiment.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``kind``, ``score_mean`` and ``column``.
    kinds : sequence of str
        The kinds (normally real ones).
    column : str
        The binned quantity, e.g. ``mag``; NaN values are left out.
    bins : numpy.ndarray
        Bin edges shared by all experiments and kinds (:func:`magnitude_bins`, :func:`offset_bins`).
    threshold : float, optional
        A candidate is recovered when ``score_mean >= threshold``.
    confidence : float, optional
        Coverage of the Clopper-Pearson intervals.

    Returns
    -------
    dict of str to dict of str to pandas.DataFrame
        Experiment name -> kind -> :func:`~bayesrb.evaluation.metrics.recovery_curve` (``lower``, ``upper``,
        ``centre``, ``n``, ``k``, ``fraction``, ``low``, ``high`` per bin); every kind is there, with only empty
        bins if the experiment has no candidate of it with a finite ``column``.

    Raises
    ------
    ValueError
        If ``tables`` is one table rather than a mapping, or a table lacks a column.
    """
    tables = _checked_tables(tables, ("kind", "score_mean", column))
    return {name: {kind: _kind_recovery(table, kind, column, bins, threshold, confidence) for kind in kinds}
            for name, table in tables.items()}


def _kind_recovery(table: pd.DataFrame, kind: str, column: str, bins: np.ndarray, threshold: float,
                   confidence: float) -> pd.DataFrame:
    rows = table[_of_kinds(table, [kind])]
    recovered = rows["score_mean"].to_numpy(dtype=float) >= threshold
    return recovery_curve(rows[column].to_numpy(dtype=float), recovered, bins, confidence=confidence)


# --- uncertainty ---------------------------------------------------------------------------------------------


def running_medians(tables: Mapping[str, pd.DataFrame], column: str, bins: np.ndarray,
                    min_count: int = MIN_MEDIAN_COUNT) -> dict[str, pd.DataFrame]:
    """Each experiment's median of ``column`` per magnitude bin.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table; each needs ``mag`` and ``column``.
    column : str
        E.g. ``score_std`` or ``bald``.
    bins : numpy.ndarray
        Magnitude bin edges (:func:`magnitude_bins`); magnitudes beyond the outer edges count in the outer bins.
    min_count : int, optional
        Fewest candidates in a bin for its median to be given.

    Returns
    -------
    dict of str to pandas.DataFrame
        Experiment name -> one row per bin of at least ``min_count`` candidates with finite ``mag`` and ``column``:
        ``centre`` (mag) and ``median``.

    Raises
    ------
    ValueError
        If ``tables`` is one table rather than a mapping, or a table lacks a column.
    """
    tables = _checked_tables(tables, ("mag", column))
    return {name: _binned_medians(table["mag"].to_numpy(dtype=float), table[column].to_numpy(dtype=float), bins,
                                  min_count) for name, table in tables.items()}


def _binned_medians(x: np.ndarray, y: np.ndarray, bins: np.ndarray, min_count: int) -> pd.DataFrame:
    usable = np.isfinite(x) & np.isfinite(y)
    x, y = x[usable], y[usable]
    which = np.digitize(x, bins[1:-1])
    kept = np.flatnonzero(np.bincount(which, minlength=bins.size - 1) >= min_count)
    medians = np.array([np.median(y[which == b]) for b in kept], dtype=float)
    return pd.DataFrame({"centre": 0.5 * (bins[kept] + bins[kept + 1]), "median": medians})


# --- shared helpers ------------------------------------------------------------------------------------------


def _checked_tables(tables: Mapping[str, pd.DataFrame], names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """``tables`` as a dict after checking that it is a mapping of tables that all have the named columns."""
    if isinstance(tables, pd.DataFrame):
        raise ValueError("tables must map experiment names to evaluation tables; wrap one table as {name: table}")
    for name, table in tables.items():
        require_columns(table, names, f"evaluation table of {name!r}")
    return dict(tables)


def _of_kinds(table: pd.DataFrame, kinds: Sequence[str] | None) -> np.ndarray:
    """Boolean mask of the rows of the given kinds (every row if ``kinds`` is None)."""
    if kinds is None:
        return np.ones(len(table), dtype=bool)
    return np.isin(np.asarray(table["kind"]).astype(object).astype(str), list(kinds))


def _has_both_classes(labels: np.ndarray) -> bool:
    return bool(np.any(labels == 1) and np.any(labels == 0))
