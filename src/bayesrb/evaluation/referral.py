"""Whether a classifier's uncertainty finds its own mistakes: error detection and referral (risk-coverage).

A survey that sends its most uncertain candidates to a human wants the uncertainty to be high exactly where the
classifier is wrong. Two measures answer that, for any uncertainty column of the evaluation table
(:data:`UNCERTAINTY_MEASURES`):

- the *error-detection AUROC*: the probability that a misclassified candidate is more uncertain than a correctly
  classified one (a tie counting one half): 0.5 is no better than chance, 1 flags every error first;
- the *risk-coverage curve*: the accuracy on the candidates kept when the most uncertain ones are referred, as a
  function of the fraction referred.

Candidates of equal uncertainty cannot be ordered, so where a referral cuts through a tie, the curve gives the
expectation over the orders of the tied candidates (a linear interpolation between the ends of the tie). A model
without posterior spread (``score_std`` zero everywhere) thus refers at random by that measure. A candidate is
classified real when ``score >= threshold``, as in :mod:`bayesrb.evaluation.metrics`.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["UNCERTAINTY_MEASURES", "REFERRED_FRACTIONS", "errors_at_threshold", "error_detection_auroc",
           "risk_coverage", "accuracy_after_referral"]

#: Evaluation-table columns of uncertainty -> how figures and tables name them.
UNCERTAINTY_MEASURES: dict[str, str] = {
    "score_std": "posterior std",
    "bald": "BALD (mutual information)",
    "entropy": "predictive entropy",
}
#: Fractions of candidates referred (most uncertain first) at which ``metrics.json`` gives the accuracy kept.
REFERRED_FRACTIONS: tuple[float, ...] = (0.05, 0.1)


def errors_at_threshold(labels, scores, threshold: float = 0.5) -> np.ndarray:
    """Whether each candidate is misclassified (``score >= threshold`` called real), shape (N,).

    ``labels`` (0 bogus, 1 real) and ``scores`` (probability of real) are as in
    :func:`bayesrb.evaluation.metrics.confusion_counts`.
    """
    return (np.asarray(scores, dtype=float) >= threshold) != (np.asarray(labels) == 1)


def error_detection_auroc(labels, scores, uncertainty, threshold: float = 0.5) -> float:
    """AUROC of an uncertainty for telling misclassified candidates from correct ones.

    Parameters
    ----------
    labels, scores, threshold
        As in :func:`errors_at_threshold`.
    uncertainty : array_like of float, shape (N,)
        Larger means less certain; any scale (only its order counts).

    Returns
    -------
    float
        In [0, 1]; NaN when every candidate is right or every one is wrong.

    Raises
    ------
    ValueError
        If the arrays differ in length or the uncertainty holds NaN.
    """
    errors, uncertainty = _checked(labels, scores, uncertainty, threshold)
    n_errors, n_correct = int(errors.sum()), int((~errors).sum())
    if not n_errors or not n_correct:
        return math.nan
    ranks = stats.rankdata(uncertainty)  # tied values share their mean rank: a tie counts one half
    wins = ranks[errors].sum() - n_errors * (n_errors + 1) / 2  # Mann-Whitney U of the errors
    return float(wins / (n_errors * n_correct))


def risk_coverage(labels, scores, uncertainty, threshold: float = 0.5, n_points: int = 201) -> pd.DataFrame:
    """Accuracy of the kept candidates against the fraction referred, most uncertain referred first.

    Parameters
    ----------
    labels, scores, uncertainty, threshold
        As in :func:`error_detection_auroc`.
    n_points : int, optional
        Referred fractions evaluated, evenly from 0 to 1 (the last keeps nothing: its accuracy is NaN).

    Returns
    -------
    pandas.DataFrame
        ``referred`` (fraction of candidates referred), ``accuracy`` (expected accuracy of the rest over the
        orders of tied uncertainties) and, for reference, ``oracle`` (the accuracy if the errors were referred
        first) and ``random`` (the accuracy of a random referral: that of all candidates). Empty input gives an
        empty table.
    """
    errors, uncertainty = _checked(labels, scores, uncertainty, threshold)
    referred = np.linspace(0.0, 1.0, n_points)
    columns = ("referred", "accuracy", "oracle", "random")
    if not errors.size:
        return pd.DataFrame({name: [] for name in columns})
    kept = errors.size * (1.0 - referred)
    correct_kept = _correct_when_keeping(errors, uncertainty, kept)
    oracle_correct = np.minimum(kept, errors.size - errors.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "referred": referred,
            "accuracy": np.where(kept > 0, correct_kept / kept, np.nan),
            "oracle": np.where(kept > 0, oracle_correct / kept, np.nan),
            "random": 1.0 - errors.mean(),
        })


def accuracy_after_referral(labels, scores, uncertainty, threshold: float = 0.5,
                            fractions=REFERRED_FRACTIONS) -> dict[str, float]:
    """The expected accuracy kept when each fraction of the most uncertain candidates is referred.

    Parameters
    ----------
    labels, scores, uncertainty : array_like
        True classes (1 real, 0 bogus), scores and uncertainties of the candidates (no NaN uncertainty).
    threshold : float
        Scores at or above it are called real.
    fractions : sequence of float
        Fractions in [0, 1) of the candidates referred, most uncertain first (ties shared out evenly).

    Returns
    -------
    dict of str to float
        ``"{fraction:g}"`` -> accuracy (NaN without candidates).
    """
    errors, uncertainty = _checked(labels, scores, uncertainty, threshold)
    if not errors.size:
        return {f"{fraction:g}": math.nan for fraction in fractions}
    kept = errors.size * (1.0 - np.asarray(fractions, dtype=float))
    accuracy = _correct_when_keeping(errors, uncertainty, kept) / kept
    return {f"{fraction:g}": float(value) for fraction, value in zip(fractions, accuracy, strict=True)}


def _checked(labels, scores, uncertainty, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The error flags and the uncertainty as float, after checking lengths and NaN."""
    errors = errors_at_threshold(labels, scores, threshold)
    uncertainty = np.asarray(uncertainty, dtype=float)
    if uncertainty.shape != errors.shape:
        raise ValueError(f"uncertainty and labels differ in shape: {uncertainty.shape} against {errors.shape}")
    if np.isnan(uncertainty).any():
        raise ValueError(f"uncertainty holds {int(np.isnan(uncertainty).sum())} NaN value(s)")
    return errors, uncertainty


def _correct_when_keeping(errors: np.ndarray, uncertainty: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Expected correct candidates among the ``kept`` least uncertain, linear within a tie of uncertainty."""
    order = np.argsort(uncertainty, kind="stable")
    sorted_uncertainty, correct = uncertainty[order], ~errors[order]
    tie_ends = np.flatnonzero(np.append(np.diff(sorted_uncertainty) != 0, True)) + 1  # kept counts at tie ends
    ends = np.concatenate([[0], tie_ends])
    correct_at_ends = np.concatenate([[0], np.cumsum(correct)[tie_ends - 1]])
    return np.interp(kept, ends, correct_at_ends)
