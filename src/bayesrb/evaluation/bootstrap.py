"""Bootstrap intervals of metrics, paired comparisons of two classifiers, and McNemar's exact test.

A *statistic* here is a function from row indices (of one table of candidates) to a mapping of metric name to
value; it is evaluated on the original rows for the estimate and on resamples for the intervals. The resamples draw
candidates with replacement (the candidate is the resampling unit: the held-out splits hold too few fields for a
field bootstrap). Intervals are percentile intervals over the resamples whose value is defined (a resample without
bogus candidates has no false-positive rate); the number of such resamples is not reported separately, because with
the split sizes of a benchmark it is all of them.

A *paired* comparison evaluates two statistics on the same resampled rows, so that what two classifiers share
(the candidates, their difficulty) cancels in the difference. McNemar's exact test asks whether two classifiers'
errors on the same candidates differ more than chance allows.
"""

import math
from collections.abc import Callable, Iterator, Mapping

import numpy as np
from scipy import stats

from bayesrb.seeding import rng_for

__all__ = ["CONFIDENCE", "Statistic", "resamples", "bootstrap_intervals", "percentile_interval", "paired_differences",
           "mcnemar_test"]

#: Coverage of every bootstrap interval.
CONFIDENCE: float = 0.95
#: A function from row indices to named metric values (NaN where the metric is undefined on those rows).
Statistic = Callable[[np.ndarray], Mapping[str, float]]
_CHUNK = 64


def resamples(n_rows: int, n_resamples: int, seed: int, stream: str) -> Iterator[np.ndarray]:
    """The row indices of ``n_resamples`` bootstrap resamples of ``n_rows`` rows, with replacement.

    Parameters
    ----------
    n_rows : int
        Rows of the table resampled; positive.
    n_resamples : int
        Resamples drawn; positive.
    seed : int
        Seed of the draws.
    stream : str
        Name of the random stream (with ``seed``, :func:`bayesrb.seeding.rng_for`): the same seed and stream give
        the same resamples, so two statistics resampled under one stream are paired.

    Yields
    ------
    numpy.ndarray of int, shape (n_rows,)
        One resample's row indices.

    Raises
    ------
    ValueError
        If ``n_rows`` or ``n_resamples`` is not positive.
    """
    if n_rows < 1 or n_resamples < 1:
        raise ValueError(f"resampling needs rows and resamples, got {n_rows} rows and {n_resamples} resamples")
    rng = rng_for(seed, "bootstrap", stream)
    for start in range(0, n_resamples, _CHUNK):
        yield from rng.integers(0, n_rows, (min(_CHUNK, n_resamples - start), n_rows))


def bootstrap_intervals(statistic: Statistic, n_rows: int, n_resamples: int, seed: int,
                        stream: str) -> dict[str, list[float]]:
    """Percentile bootstrap intervals (coverage :data:`CONFIDENCE`) of every metric a statistic returns.

    Parameters
    ----------
    statistic : Statistic
        Row indices -> named metric values.
    n_rows : int
        Rows the statistic's indices refer to.
    n_resamples, seed, stream
        As in :func:`resamples`.

    Returns
    -------
    dict of str to list of float
        Metric name -> ``[low, high]``; ``[nan, nan]`` where the metric is undefined on every resample.
    """
    draws = _draws(statistic, resamples(n_rows, n_resamples, seed, stream))
    return {name: percentile_interval(values) for name, values in draws.items()}


def paired_differences(statistic_a: Statistic, statistic_b: Statistic, n_rows: int, n_resamples: int, seed: int,
                       stream: str) -> dict[str, dict[str, float | list[float]]]:
    """The difference a − b of every metric two statistics share, with a paired bootstrap interval and p-value.

    Both statistics are evaluated on the same resamples of the same rows.

    Parameters
    ----------
    statistic_a, statistic_b : Statistic
        Row indices -> named metric values, of the two classifiers on the same candidates (same row order).
    n_rows, n_resamples, seed, stream
        As in :func:`resamples`.

    Returns
    -------
    dict of str to dict
        Metric name -> ``{"difference": a - b on all rows, "ci95": [low, high], "p_value": p}``, where ``p`` is
        the two-sided bootstrap p-value: twice the smaller fraction of resampled differences on either side of zero
        (at most 1), NaN where the difference is undefined on every resample. A difference is significant at 5 %
        when its interval excludes 0.
    """
    everything = np.arange(n_rows)
    estimate_a, estimate_b = statistic_a(everything), statistic_b(everything)
    names = [name for name in estimate_a if name in estimate_b]

    def difference(rows: np.ndarray) -> dict[str, float]:
        values_a, values_b = statistic_a(rows), statistic_b(rows)
        return {name: values_a[name] - values_b[name] for name in names}

    draws = _draws(difference, resamples(n_rows, n_resamples, seed, stream))
    return {name: {"difference": estimate_a[name] - estimate_b[name], "ci95": percentile_interval(draws[name]),
                   "p_value": _two_sided_p(draws[name])} for name in names}


def mcnemar_test(correct_a, correct_b) -> dict[str, float | int]:
    """McNemar's exact test of two classifiers' correctness on the same candidates.

    Parameters
    ----------
    correct_a, correct_b : array_like of bool, shape (N,)
        Whether each classifier got each candidate right.

    Returns
    -------
    dict
        ``a_only`` (candidates only a got right), ``b_only`` (only b got right) and ``p_value``: the two-sided
        exact binomial probability of a split of the discordant candidates at least this uneven if either
        classifier were as likely to be the one right (1.0 when there are no discordant candidates).

    Raises
    ------
    ValueError
        If the arrays differ in shape or are not boolean (0/1 accepted).
    """
    correct_a, correct_b = np.asarray(correct_a), np.asarray(correct_b)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1:
        raise ValueError(f"correctness arrays must be 1-D of one length, got {correct_a.shape} and {correct_b.shape}")
    if not (np.isin(correct_a, (0, 1)).all() and np.isin(correct_b, (0, 1)).all()):
        raise ValueError("correctness must be boolean (or 0/1)")
    correct_a, correct_b = correct_a.astype(bool), correct_b.astype(bool)
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((correct_b & ~correct_a).sum())
    discordant = a_only + b_only
    p_value = stats.binomtest(a_only, discordant, 0.5).pvalue if discordant else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p_value)}


def _draws(statistic: Statistic, rows: Iterator[np.ndarray]) -> dict[str, np.ndarray]:
    """Each metric's values over the resamples, in resample order."""
    values: dict[str, list[float]] = {}
    for resample in rows:
        for name, value in statistic(resample).items():
            values.setdefault(name, []).append(value)
    return {name: np.asarray(draws, dtype=float) for name, draws in values.items()}


def percentile_interval(draws: np.ndarray) -> list[float]:
    """The central :data:`CONFIDENCE` percentile interval of the defined (not NaN) draws; NaN twice if none is."""
    draws = np.asarray(draws, dtype=float)
    defined = draws[~np.isnan(draws)]
    if not defined.size:
        return [math.nan, math.nan]
    tail = 100 * (1 - CONFIDENCE) / 2
    return [float(np.percentile(defined, tail)), float(np.percentile(defined, 100 - tail))]


def _two_sided_p(draws: np.ndarray) -> float:
    """Twice the smaller fraction of defined draws at or beyond zero on either side, at most 1."""
    defined = draws[~np.isnan(draws)]
    if not defined.size:
        return math.nan
    return float(min(1.0, 2 * min(np.mean(defined <= 0), np.mean(defined >= 0))))
