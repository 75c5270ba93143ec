"""Evaluation metrics of a real-bogus classifier: confusion counts, ROC, calibration and binomial intervals.

Every function takes plain 1-D arrays: ``labels`` are 0 (bogus) or 1 (real), ``scores`` / ``probs`` are
probabilities of real in [0, 1]. A candidate is classified real when its score is at or above the threshold
(``score >= threshold``). Rates whose denominator is zero (for example the false-positive rate of a set without
bogus candidates) are NaN rather than an error, so that a split with one class still gets its other metrics.
:func:`experiment_metrics` gathers them for the held-out splits of an experiment into the content of its
``metrics.json``.
"""

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from bayesrb.evaluation.bootstrap import CONFIDENCE, Statistic, bootstrap_intervals
from bayesrb.evaluation.referral import UNCERTAINTY_MEASURES, accuracy_after_referral, error_detection_auroc

__all__ = [
    "checked_positive_int",
    "HELD_OUT_SPLITS",
    "ALL_HELD_OUT",
    "SELECTION_SPLIT",
    "TABLE_COLUMNS",
    "confusion_counts",
    "rates_at_threshold",
    "roc_curve",
    "json_safe",
    "roc_auc",
    "threshold_at_fpr",
    "rates_vs_threshold",
    "reliability_bins",
    "expected_calibration_error",
    "brier_score",
    "log_loss",
    "binomial_interval",
    "recovery_curve",
    "fraction_correct_by_kind",
    "split_statistic",
    "held_out_groups",
    "experiment_metrics",
]

#: Splits never seen in training or model selection, evaluated one by one by :func:`experiment_metrics`.
HELD_OUT_SPLITS: tuple[str, ...] = ("test", "eval")
#: Name of the union of the :data:`HELD_OUT_SPLITS` in :func:`experiment_metrics`.
ALL_HELD_OUT = "all_held_out"
#: The split that training stops early on and variants are chosen on, also evaluated by :func:`experiment_metrics`.
SELECTION_SPLIT = "val"
#: Columns of the evaluation table that :func:`experiment_metrics` reads.
TABLE_COLUMNS: tuple[str, ...] = ("label", "kind", "split", "score_mean")


def _checked_labels(labels) -> np.ndarray:
    """Return ``labels`` as a 1-D int array after checking every entry is 0 or 1."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        bad = np.unique(labels[~np.isin(labels, (0, 1))])[:5]
        raise ValueError(f"labels must be 0 (bogus) or 1 (real), found {bad.tolist()}")
    return labels.astype(int)


def _checked_scores(scores, name: str = "scores") -> np.ndarray:
    """Return ``scores`` as a 1-D float array after checking every entry is in [0, 1] (NaN is refused)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"{name} contain {int(np.isnan(scores).sum())} NaN value(s)")
    if ((scores < 0) | (scores > 1)).any():
        raise ValueError(f"{name} must lie in [0, 1], found range [{scores.min():.6g}, {scores.max():.6g}]")
    return scores


def _checked_pair(labels, scores, name: str = "scores", allow_empty: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Check ``labels`` and ``scores`` one by one, then that they have the same length (non-zero if asked)."""
    labels, scores = _checked_labels(labels), _checked_scores(scores, name)
    if labels.size != scores.size:
        raise ValueError(f"labels and {name} differ in length: {labels.size} against {scores.size}")
    if not allow_empty and labels.size == 0:
        raise ValueError(f"labels and {name} are empty; the metric is undefined without candidates")
    return labels, scores


def _checked_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, refusing NaN."""
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold is NaN")
    return threshold


def _ratio(numerator, denominator):
    """``numerator / denominator`` as floats, NaN where the denominator is 0 (no warning)."""
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, np.nan, numerator / safe)


def confusion_counts(labels, scores, threshold: float = 0.5) -> dict[str, int]:
    """Count true / false positives and negatives, a candidate being classified real when ``score >= threshold``.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Truth: 0 bogus, 1 real.
    scores : array_like of float, shape (N,)
        Probability of real, in [0, 1].
    threshold : float, optional
        Decision threshold.

    Returns
    -------
    dict of str to int
        ``tp`` (real called real), ``fp`` (bogus called real), ``tn`` (bogus called bogus) and ``fn`` (real called
        bogus). All zero for empty input.

    Raises
    ------
    ValueError
        If the inputs differ in length, a label is not 0/1, a score is outside [0, 1] or NaN, or the threshold is NaN.
    """
    labels, scores = _checked_pair(labels, scores)
    called_real = scores >= _checked_threshold(threshold)
    is_real = labels == 1
    return {
        "tp": int(np.sum(called_real & is_real)),
        "fp": int(np.sum(called_real & ~is_real)),
        "tn": int(np.sum(~called_real & ~is_real)),
        "fn": int(np.sum(~called_real & is_real)),
    }


def rates_at_threshold(labels, scores, threshold: float = 0.5) -> dict[str, float | int]:
    """Accuracy and error rates at one threshold.

    Parameters
    ----------
    labels, scores, threshold
        As in :func:`confusion_counts`; the input must not be empty.

    Returns
    -------
    dict
        ``accuracy`` ((tp + tn) / N), ``fpr`` (fp / (fp + tn)), ``fnr`` (fn / (fn + tp)), ``tpr`` (1 - fnr) as
        floats, NaN when their denominator is 0; ``n_real`` and ``n_bogus`` as ints.

    Raises
    ------
    ValueError
        As :func:`confusion_counts`, and for empty input.
    """
    labels, scores = _checked_pair(labels, scores, allow_empty=False)
    counts = confusion_counts(labels, scores, threshold)
    n_real, n_bogus = counts["tp"] + counts["fn"], counts["fp"] + counts["tn"]
    return {
        "accuracy": (counts["tp"] + counts["tn"]) / labels.size,
        "fpr": float(_ratio(counts["fp"], n_bogus)),
        "fnr": float(_ratio(counts["fn"], n_real)),
        "tpr": float(_ratio(counts["tp"], n_real)),
        "n_real": n_real,
        "n_bogus": n_bogus,
    }


def _fpr_fnr(labels: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-positive and false-negative rates at each threshold of checked inputs (NaN for an absent class)."""
    bogus_scores, real_scores = np.sort(scores[labels == 0]), np.sort(scores[labels == 1])
    false_positives = bogus_scores.size - np.searchsorted(bogus_scores, thresholds, side="left")
    false_negatives = np.searchsorted(real_scores, thresholds, side="left")
    return _ratio(false_positives, bogus_scores.size), _ratio(false_negatives, real_scores.size)


def rates_vs_threshold(labels, scores, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """False-positive and false-negative rates as functions of the threshold.

    Parameters
    ----------
    labels, scores
        As in :func:`confusion_counts`; must not be empty.
    thresholds : array_like of float, shape (T,)
        Thresholds to evaluate (any real values, ``±inf`` allowed, no NaN).

    Returns
    -------
    fpr, fnr : numpy.ndarray of float, shape (T,)
        FPR and FNR with ``score >= threshold`` classified real; all NaN for a class absent from ``labels``.

    Raises
    ------
    ValueError
        As :func:`confusion_counts`, for empty input, or for NaN thresholds.
    """
    labels, scores = _checked_pair(labels, scores, allow_empty=False)
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if np.isnan(thresholds).any():
        raise ValueError("thresholds contain NaN")
    return _fpr_fnr(labels, scores, thresholds)


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic: one point per distinct score, plus the origin.

    Parameters
    ----------
    labels, scores
        As in :func:`confusion_counts`; must not be empty.

    Returns
    -------
    fpr, tpr, thresholds : numpy.ndarray of float, shape (K + 1,)
        With ``K`` distinct scores: ``thresholds`` is ``+inf`` followed by the distinct scores in decreasing order,
        and ``fpr[i]`` / ``tpr[i]`` are the rates with ``score >= thresholds[i]`` classified real, so the curve
        starts at (0, 0) and ends at (1, 1). Tied scores share one point. ``fpr`` (``tpr``) is all NaN when there
        are no bogus (real) candidates.

    Raises
    ------
    ValueError
        As :func:`confusion_counts`, and for empty input.
    """
    labels, scores = _checked_pair(labels, scores, allow_empty=False)
    thresholds = np.concatenate([[np.inf], np.unique(scores)[::-1]])
    fpr, fnr = _fpr_fnr(labels, scores, thresholds)
    return fpr, 1.0 - fnr, thresholds


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve by the trapezoid rule over :func:`roc_curve`.

    Equals the Mann-Whitney probability that a random real candidate scores above a random bogus one, a tie
    counting one half.

    Parameters
    ----------
    labels, scores
        As in :func:`confusion_counts`; must not be empty.

    Returns
    -------
    float
        The area in [0, 1]; NaN when either class is absent.

    Raises
    ------
    ValueError
        As :func:`confusion_counts`, and for empty input.
    """
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def threshold_at_fpr(labels, scores, target_fpr: float = 0.01) -> float:
    """The smallest threshold, among the distinct scores, whose false-positive rate is at most ``target_fpr``.

    The FPR falls as the threshold rises, so this is the operating point that keeps the most real candidates while
    meeting the FPR target (the GOTO paper quotes the FNR at 1 % FPR). When even the largest score lets through
    more bogus candidates than allowed (the top-scoring candidate is bogus and ``target_fpr`` is below
    ``1 / n_bogus``), the answer is the smallest float above 1.0, a threshold that classifies every candidate
    bogus (FPR 0); callers can recognise it by ``threshold > 1``.

    Parameters
    ----------
    labels, scores
        As in :func:`confusion_counts`; must not be empty.
    target_fpr : float, optional
        Highest acceptable false-positive rate, in [0, 1].

    Returns
    -------
    float
        The threshold (``score >= threshold`` is classified real); NaN when there are no bogus candidates, for
        which the FPR is undefined.

    Raises
    ------
    ValueError
        As :func:`confusion_counts`, for empty input, or for ``target_fpr`` outside [0, 1].
    """
    labels, scores = _checked_pair(labels, scores, allow_empty=False)
    if not 0 <= target_fpr <= 1:
        raise ValueError(f"target_fpr must lie in [0, 1], got {target_fpr}")
    if not (labels == 0).any():
        return math.nan
    candidates = np.unique(scores)
    fpr, _ = _fpr_fnr(labels, scores, candidates)
    meeting = np.flatnonzero(fpr <= target_fpr)
    return float(candidates[meeting[0]]) if meeting.size else float(np.nextafter(1.0, 2.0))


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Index of the bin ``[edges[i], edges[i + 1])`` holding each value, the last bin closed; -1 outside or NaN."""
    index = np.searchsorted(edges, values, side="right") - 1
    index[values == edges[-1]] = edges.size - 2
    index[(index < 0) | (index > edges.size - 2) | np.isnan(values)] = -1
    return index


def checked_positive_int(value: int, name: str) -> int:
    """``value`` as an int if it is a positive whole number (not a bool), else ValueError naming ``name``."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def reliability_bins(labels, probs, n_bins: int = 15) -> pd.DataFrame:
    """Reliability-diagram table: mean predicted probability and observed fraction real in equal-width bins.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Truth: 0 bogus, 1 real.
    probs : array_like of float, shape (N,)
        Predicted probability of real, in [0, 1].
    n_bins : int, optional
        Number of equal-width bins on [0, 1]; bins are ``[lower, upper)`` except the last, ``[lower, 1]``.

    Returns
    -------
    pandas.DataFrame
        One row per bin with columns ``lower``, ``upper``, ``count`` (int), ``mean_prob`` and ``frac_real``;
        the means are NaN in empty bins.

    Raises
    ------
    ValueError
        As :func:`confusion_counts` (with ``probs`` for ``scores``), or if ``n_bins`` is not a positive integer.
    """
    labels, probs = _checked_pair(labels, probs, name="probs")
    n_bins = checked_positive_int(n_bins, "n_bins")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = _bin_index(probs, edges)
    count = np.bincount(index, minlength=n_bins)
    return pd.DataFrame({
        "lower": edges[:-1],
        "upper": edges[1:],
        "count": count,
        "mean_prob": _ratio(np.bincount(index, weights=probs, minlength=n_bins), count),
        "frac_real": _ratio(np.bincount(index, weights=labels, minlength=n_bins), count),
    })


def expected_calibration_error(labels, probs, n_bins: int = 15) -> float:
    """Expected calibration error: ``sum over bins of count / N * |frac_real - mean_prob|``.

    Parameters
    ----------
    labels, probs, n_bins
        As in :func:`reliability_bins`; the input must not be empty.

    Returns
    -------
    float
        The ECE in [0, 1]; empty bins contribute nothing.

    Raises
    ------
    ValueError
        As :func:`reliability_bins`, and for empty input.
    """
    labels, probs = _checked_pair(labels, probs, name="probs", allow_empty=False)
    bins = reliability_bins(labels, probs, n_bins)
    filled = bins[bins["count"] > 0]
    gaps = np.abs(filled["frac_real"] - filled["mean_prob"])
    return float(np.sum(filled["count"] * gaps) / labels.size)


def brier_score(labels, probs) -> float:
    """Brier score, the mean squared difference between predicted probability and label.

    Parameters
    ----------
    labels, probs
        As in :func:`reliability_bins`; the input must not be empty.

    Returns
    -------
    float
        The score in [0, 1]; 0 is perfect.

    Raises
    ------
    ValueError
        As :func:`reliability_bins`, and for empty input.
    """
    labels, probs = _checked_pair(labels, probs, name="probs", allow_empty=False)
    return float(np.mean((probs - labels) ** 2))


def log_loss(labels, probs, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood (nats) of the labels under the predicted probabilities.

    Parameters
    ----------
    labels, probs
        As in :func:`reliability_bins`; the input must not be empty.
    eps : float, optional
        Probabilities are clipped to ``[eps, 1 - eps]``, so that one confident mistake costs at most
        ``-log(eps)`` (16.1 nats) instead of infinity.

    Returns
    -------
    float
        The loss, 0 for a perfect prediction; a strictly proper score, as the Brier score.

    Raises
    ------
    ValueError
        As :func:`brier_score`.
    """
    labels, probs = _checked_pair(labels, probs, name="probs", allow_empty=False)
    probs = np.clip(probs, eps, 1 - eps)
    return float(-np.mean(np.where(labels == 1, np.log(probs), np.log1p(-probs))))


def binomial_interval(k, n, confidence: float = 0.68):
    """Clopper-Pearson (exact) central interval of a binomial success fraction ``k / n``.

    With ``alpha = 1 - confidence``, the limits are the ``alpha / 2`` quantile of Beta(k, n - k + 1) and the
    ``1 - alpha / 2`` quantile of Beta(k + 1, n - k); the lower limit is 0 when ``k == 0`` and the upper 1 when
    ``k == n``.

    Parameters
    ----------
    k : int or array_like of int
        Successes, ``0 <= k <= n``.
    n : int or array_like of int
        Trials; broadcast against ``k``.
    confidence : float, optional
        Coverage of the interval, in (0, 1).

    Returns
    -------
    low, high : float or numpy.ndarray of float
        The limits, floats for scalar input, else arrays of the broadcast shape; NaN where ``n == 0``.

    Raises
    ------
    ValueError
        If ``k`` or ``n`` is not a whole number, ``k < 0``, ``k > n``, or ``confidence`` is outside (0, 1).
    """
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if (k != np.round(k)).any() or (n != np.round(n)).any() or (k < 0).any() or (k > n).any():
        raise ValueError("k and n must be whole numbers with 0 <= k <= n")
    alpha = 1.0 - confidence
    low = np.where(k == 0, 0.0, stats.beta.ppf(alpha / 2, np.maximum(k, 1), n - k + 1))
    high = np.where(k == n, 1.0, stats.beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1)))
    low, high = np.where(n == 0, np.nan, low), np.where(n == 0, np.nan, high)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def recovery_curve(values, recovered, bins, confidence: float = 0.68) -> pd.DataFrame:
    """Recovered fraction in bins of a quantity (magnitude, host offset, ...) with Clopper-Pearson intervals.

    Parameters
    ----------
    values : array_like of float, shape (N,)
        The binned quantity; NaN values and values outside the bins are dropped.
    recovered : array_like of bool, shape (N,)
        Whether each candidate was recovered (for example, classified correctly); 0/1 are accepted.
    bins : array_like of float, shape (B + 1,)
        Increasing bin edges; bins are ``[lower, upper)`` except the last, which is closed.
    confidence : float, optional
        Coverage of the intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``lower``, ``upper``, ``centre`` (their mean), ``n`` (candidates), ``k`` (recovered),
        ``fraction`` (k / n, NaN when n is 0), ``low`` and ``high`` (interval of the fraction, NaN when n is 0).

    Raises
    ------
    ValueError
        If the arrays differ in length or are not 1-D, ``recovered`` is not boolean, the edges are fewer than two,
        not finite or not increasing, or ``confidence`` is outside (0, 1).
    """
    values, recovered = np.asarray(values, dtype=float), np.asarray(recovered)
    edges = np.asarray(bins, dtype=float)
    if values.ndim != 1 or recovered.shape != values.shape:
        raise ValueError(f"values and recovered must be 1-D of one length, got {values.shape} and {recovered.shape}")
    if not np.isin(recovered, (0, 1)).all():
        raise ValueError("recovered must be boolean (or 0/1)")
    if edges.ndim != 1 or edges.size < 2 or not np.isfinite(edges).all() or (np.diff(edges) <= 0).any():
        raise ValueError(f"bins must be at least two finite, strictly increasing edges, got {edges}")
    index = _bin_index(values, edges)
    kept = index >= 0
    n = np.bincount(index[kept], minlength=edges.size - 1)
    k = np.bincount(index[kept], weights=recovered[kept].astype(float), minlength=edges.size - 1).astype(int)
    low, high = binomial_interval(k, n, confidence)
    return pd.DataFrame({
        "lower": edges[:-1],
        "upper": edges[1:],
        "centre": (edges[:-1] + edges[1:]) / 2,
        "n": n,
        "k": k,
        "fraction": _ratio(k, n),
        "low": low,
        "high": high,
    })


def fraction_correct_by_kind(kinds, labels, scores, threshold: float = 0.5,
                             confidence: float = 0.68) -> dict[str, dict[str, float | int]]:
    """Fraction of each kind of candidate classified correctly, with its Clopper-Pearson interval.

    A candidate is correct when ``(score >= threshold) == label``, so for a real kind the fraction is its recall
    and for a bogus kind its rejection rate.

    Parameters
    ----------
    kinds : array_like of str, shape (N,)
        Kind of each candidate (``mp``, ``glxresid``, ...).
    labels, scores, threshold
        As in :func:`confusion_counts`.
    confidence : float, optional
        Coverage of the intervals, in (0, 1).

    Returns
    -------
    dict of str to dict
        For each kind, in sorted order: ``n`` and ``n_correct`` (ints), ``fraction``, ``low`` and ``high`` (floats).
        Empty for empty input.

    Raises
    ------
    ValueError
        As :func:`confusion_counts`, or if ``kinds`` differs in length from ``labels``.
    """
    labels, scores = _checked_pair(labels, scores)
    kinds = np.asarray(kinds, dtype=str)
    if kinds.shape != labels.shape:
        raise ValueError(f"kinds and labels differ in shape: {kinds.shape} against {labels.shape}")
    correct = (scores >= _checked_threshold(threshold)) == (labels == 1)
    by_kind = {}
    for kind in np.unique(kinds):
        of_kind = kinds == kind
        n, n_correct = int(of_kind.sum()), int(correct[of_kind].sum())
        low, high = binomial_interval(n_correct, n, confidence)
        by_kind[str(kind)] = {"n": n, "n_correct": n_correct, "fraction": n_correct / n, "low": low, "high": high}
    return by_kind


def json_safe(value):
    """Plain Python copy of nested dicts and lists of numbers, numpy scalars converted and NaN replaced by None."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(item) for item in value]
    if isinstance(value, np.integer | int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if math.isnan(value) else float(value)
    return value


def _scalar_metrics(labels: np.ndarray, scores: np.ndarray, uncertainties: Mapping[str, np.ndarray],
                    threshold: float, target_fpr: float, n_bins: int) -> dict[str, float]:
    """The single-number metrics of a set of candidates: those that get bootstrap intervals."""
    rates = rates_at_threshold(labels, scores, threshold)
    operating_threshold = threshold_at_fpr(labels, scores, target_fpr)
    if math.isnan(operating_threshold):
        operating_fpr = operating_fnr = math.nan
    else:
        operating = rates_at_threshold(labels, scores, operating_threshold)
        operating_fpr, operating_fnr = operating["fpr"], operating["fnr"]
    return {
        "accuracy": rates["accuracy"],
        "fpr": rates["fpr"],
        "fnr": rates["fnr"],
        "threshold_at_fpr": operating_threshold,
        "fpr_at_fpr_threshold": operating_fpr,
        "fnr_at_fpr_threshold": operating_fnr,
        "roc_auc": roc_auc(labels, scores),
        "ece": expected_calibration_error(labels, scores, n_bins),
        "brier": brier_score(labels, scores),
        "log_loss": log_loss(labels, scores),
    } | {f"error_auroc_{column}": error_detection_auroc(labels, scores, values, threshold)
         for column, values in uncertainties.items()} | {f"mean_{column}": float(np.mean(values))
                                                          for column, values in uncertainties.items()}


def split_statistic(rows: pd.DataFrame, threshold: float = 0.5, target_fpr: float = 0.01,
                    n_bins: int = 15) -> Statistic:
    """The scalar metrics of some of ``rows``, as a function of their row positions (for the bootstrap).

    Parameters
    ----------
    rows : pandas.DataFrame
        Candidates with ``label`` and ``score_mean``, and the columns of
        :data:`~bayesrb.evaluation.referral.UNCERTAINTY_MEASURES` it has (each gets an ``error_auroc_<column>``).
    threshold, target_fpr, n_bins
        As in :func:`experiment_metrics`.

    Returns
    -------
    Statistic
        Row positions -> ``accuracy``, ``fpr``, ``fnr``, ``threshold_at_fpr``, ``fpr_at_fpr_threshold``,
        ``fnr_at_fpr_threshold``, ``roc_auc``, ``ece``, ``brier``, ``log_loss``, and ``error_auroc_<column>`` and
        ``mean_<column>`` (the mean uncertainty) of each uncertainty column.
    """
    labels, scores = rows["label"].to_numpy(), rows["score_mean"].to_numpy(dtype=float)
    uncertainties = {column: rows[column].to_numpy(dtype=float) for column in UNCERTAINTY_MEASURES
                     if column in rows}

    def statistic(positions: np.ndarray) -> dict[str, float]:
        return _scalar_metrics(labels[positions], scores[positions],
                               {column: values[positions] for column, values in uncertainties.items()},
                               threshold, target_fpr, n_bins)

    return statistic


def _split_metrics(rows: pd.DataFrame, split: str, threshold: float, target_fpr: float, n_bins: int,
                   n_bootstrap: int, seed: int) -> dict:
    """The metrics of one split (or union of splits) of an evaluation table."""
    labels, scores = rows["label"].to_numpy(), rows["score_mean"].to_numpy(dtype=float)
    statistic = split_statistic(rows, threshold, target_fpr, n_bins)
    intervals = bootstrap_intervals(statistic, len(rows), n_bootstrap, seed, split) if n_bootstrap else {}
    counts = confusion_counts(labels, scores, threshold)
    return {
        "n": int(labels.size),
        "n_real": counts["tp"] + counts["fn"],
        "n_bogus": counts["fp"] + counts["tn"],
        **statistic(np.arange(len(rows))),
        "ci95": intervals,
        "accuracy_after_referral": {column: accuracy_after_referral(labels, scores, rows[column], threshold)
                                    for column in UNCERTAINTY_MEASURES if column in rows},
        "by_kind": fraction_correct_by_kind(rows["kind"].to_numpy(), labels, scores, threshold),
    }


def held_out_groups(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of each of :data:`HELD_OUT_SPLITS` present in ``table``, and of :data:`ALL_HELD_OUT`, their union.

    Raises
    ------
    ValueError
        If a column of :data:`TABLE_COLUMNS` is missing or the table has no held-out rows.
    """
    missing = [column for column in TABLE_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"evaluation table lacks column(s) {missing}")
    held_out = table[table["split"].isin(HELD_OUT_SPLITS)]
    if held_out.empty:
        raise ValueError(f"evaluation table has no rows in the held-out splits {list(HELD_OUT_SPLITS)}")
    groups = {split: held_out[held_out["split"] == split] for split in HELD_OUT_SPLITS}
    return {split: rows for split, rows in groups.items() if not rows.empty} | {ALL_HELD_OUT: held_out}


def experiment_metrics(table: pd.DataFrame, threshold: float = 0.5, target_fpr: float = 0.01,
                       n_bins: int = 15, n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Metrics of one experiment on its held-out splits, with bootstrap intervals: the content of its ``metrics.json``.

    Parameters
    ----------
    table : pandas.DataFrame
        The evaluation table, one row per scored candidate, with at least the columns :data:`TABLE_COLUMNS`
        (``label`` 0/1, ``kind``, ``split``, ``score_mean`` in [0, 1]); the uncertainty columns of
        :data:`~bayesrb.evaluation.referral.UNCERTAINTY_MEASURES` it has are evaluated as error detectors.
    threshold : float, optional
        Decision threshold on ``score_mean``.
    target_fpr : float, optional
        False-positive rate at which the operating threshold is chosen (:func:`threshold_at_fpr`).
    n_bins : int, optional
        Number of calibration bins of the ECE.
    n_bootstrap : int, optional
        Bootstrap resamples of the candidates of each split (0: no intervals).
    seed : int, optional
        Seed of the resamples; each split has its own stream, shared by every experiment, so that experiments
        scored on the same candidates are resampled alike (:mod:`bayesrb.evaluation.bootstrap`).

    Returns
    -------
    dict
        JSON-serialisable (plain ints and floats, NaN written as None)::

            {"threshold": ..., "target_fpr": ..., "n_bins": ...,
             "bootstrap": {"resamples": ..., "unit": "candidate", "confidence": 0.95, "seed": ...},
             "splits": {split: {"n", "n_real", "n_bogus", "accuracy", "fpr", "fnr",
                                "threshold_at_fpr", "fpr_at_fpr_threshold", "fnr_at_fpr_threshold",
                                "roc_auc", "ece", "brier", "log_loss", "error_auroc_<column>", "mean_<column>",
                                "ci95": {metric: [low, high]},
                                "accuracy_after_referral": {column: {fraction: accuracy}},
                                "by_kind": {kind: {"n", "n_correct", "fraction", "low", "high"}}}}}

        with one entry in ``splits`` for each of :data:`HELD_OUT_SPLITS` present in the table, one for
        :data:`ALL_HELD_OUT`, their union, and one for :data:`SELECTION_SPLIT` when the table has its rows (the
        numbers to choose variants by; training stopped early on them, so they are not an unbiased estimate).
        ``fpr``, ``fnr``, ``by_kind`` are at ``threshold``; the ``*_at_fpr_threshold`` rates at
        ``threshold_at_fpr``. Rates that a split with one class cannot define are None. ``error_auroc_<column>``
        is the AUROC of that uncertainty for flagging misclassified candidates, and ``accuracy_after_referral``
        the accuracy kept when its most uncertain 5 and 10 % are referred (:mod:`bayesrb.evaluation.referral`);
        ``mean_<column>`` its mean, which rises under a shift of the data that the model notices. ``ci95`` holds
        the percentile bootstrap interval of every scalar metric (empty when ``n_bootstrap`` is 0). ``by_kind``
        fractions are recall for real kinds and rejection rate for bogus kinds, with 68 % Clopper-Pearson
        intervals.

    Raises
    ------
    ValueError
        If a column of :data:`TABLE_COLUMNS` is missing, the table has no held-out rows, or its labels or scores
        are invalid (see :func:`confusion_counts`).
    """
    held_out = held_out_groups(table)
    selection = table[table["split"] == SELECTION_SPLIT]
    groups = ({SELECTION_SPLIT: selection} if len(selection) else {}) | held_out
    splits = {split: _split_metrics(rows, split, threshold, target_fpr, n_bins, n_bootstrap, seed)
              for split, rows in groups.items()}
    bootstrap = {"resamples": n_bootstrap, "unit": "candidate", "confidence": CONFIDENCE, "seed": seed}
    return json_safe({"threshold": threshold, "target_fpr": target_fpr, "n_bins": n_bins, "bootstrap": bootstrap,
                      "splits": splits})
