"""Evaluation metrics of the multi-class context classifier: confusion matrix, per-class rates and calibration.

Every function takes plain arrays: ``y_true`` holds class indices into ``classes`` (normally
:data:`bayesrb.vocabulary.CONTEXT_CLASSES`) and ``proba`` one row of class probabilities per candidate, in the order
of ``classes``. The predicted class is the argmax of the row (the first class on a tie). Rates whose denominator is
zero (the recall of a class absent from ``y_true``, the precision of a class never predicted) are NaN, written as
None in the JSON-safe output, rather than an error. Calibration is judged one class against the rest, with the
real/bogus tools of :mod:`bayesrb.evaluation.metrics`.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayesrb.evaluation.bootstrap import percentile_interval
from bayesrb.evaluation.metrics import checked_positive_int, expected_calibration_error, json_safe, reliability_bins
from bayesrb.seeding import rng_for

__all__ = ["ROW_SUM_TOLERANCE", "classification_metrics", "class_reliability"]

#: Largest accepted ``|sum(row) - 1|`` of a row of ``proba``.
ROW_SUM_TOLERANCE = 1e-4
#: Bootstrap resamples drawn at once are limited to about this many rows in total, to bound memory.
_ROWS_PER_CHUNK = 2**22


# ----------------------------------------------------------------------------------------------- input checks


def _checked_classes(classes: Sequence[str]) -> list[str]:
    """Return ``classes`` as a list of str after checking it is non-empty and has no repeats."""
    classes = [str(name) for name in classes]
    if not classes:
        raise ValueError("classes is empty; at least one class is needed")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes}")
    return classes


def _checked_y_true(y_true, n_classes: int) -> np.ndarray:
    """Return ``y_true`` as a 1-D int array after checking it is non-empty and holds indices in [0, n_classes)."""
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be a 1-D array, got shape {y_true.shape}")
    if y_true.size == 0:
        raise ValueError("y_true is empty; the metrics are undefined without candidates")
    if y_true.dtype.kind not in "iuf" or (y_true.dtype.kind == "f" and not np.all(y_true == np.round(y_true))):
        raise ValueError(f"y_true must hold integer class indices, got dtype {y_true.dtype}")
    y_true = y_true.astype(int)
    outside = (y_true < 0) | (y_true >= n_classes)
    if outside.any():
        raise ValueError(f"y_true must lie in [0, {n_classes}) (one index per class), "
                         f"found {np.unique(y_true[outside])[:5].tolist()}")
    return y_true


def _checked_proba(proba, n_rows: int, n_classes: int) -> np.ndarray:
    """Return ``proba`` as a float array of shape (n_rows, n_classes) after checking it holds probability rows."""
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (n_rows, n_classes):
        raise ValueError(f"proba must have shape (n, K) = ({n_rows}, {n_classes}) to match y_true and classes, "
                         f"got {proba.shape}")
    if not np.isfinite(proba).all():
        raise ValueError(f"proba contain {int((~np.isfinite(proba)).sum())} non-finite value(s)")
    if ((proba < 0) | (proba > 1)).any():
        raise ValueError(f"proba must lie in [0, 1], found range [{proba.min():.6g}, {proba.max():.6g}]")
    off = np.abs(proba.sum(axis=1) - 1.0)
    n_off = int((off > ROW_SUM_TOLERANCE).sum())
    if n_off:
        raise ValueError(f"proba rows must sum to 1 within {ROW_SUM_TOLERANCE:g}; {n_off} row(s) do not, "
                         f"the worst by {off.max():.6g}")
    return proba


def _checked_inputs(y_true, proba, classes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check ``classes``, ``y_true`` and ``proba`` together; see :func:`classification_metrics`."""
    classes = _checked_classes(classes)
    y_true = _checked_y_true(y_true, len(classes))
    return y_true, _checked_proba(proba, y_true.size, len(classes)), classes


# ----------------------------------------------------------------------------------------------- rates


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as floats, NaN where the denominator is 0 (no warning)."""
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    return np.where(denominator == 0, np.nan, numerator / np.where(denominator == 0, 1.0, denominator))


def _per_class_rates(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class from confusion matrices of shape (..., K, K)."""
    true_positives = np.diagonal(confusion, axis1=-2, axis2=-1)
    support, predicted = confusion.sum(axis=-1), confusion.sum(axis=-2)
    return {
        "precision": _divide(true_positives, predicted),
        "recall": _divide(true_positives, support),
        "f1": _divide(2 * true_positives, support + predicted),
        "support": support,
    }


def _summary_rates(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and macro F1 of confusion matrices of shape (..., K, K).

    Balanced accuracy and macro F1 average over the classes present (non-zero support) in each matrix.
    """
    rates = _per_class_rates(confusion)
    present = rates["support"] > 0
    n_present = present.sum(axis=-1)
    return {
        "accuracy": np.trace(confusion, axis1=-2, axis2=-1) / confusion.sum(axis=(-2, -1)),
        "balanced_accuracy": np.where(present, rates["recall"], 0.0).sum(axis=-1) / n_present,
        "macro_f1": np.where(present, rates["f1"], 0.0).sum(axis=-1) / n_present,
    }


# ----------------------------------------------------------------------------------------------- confusion


def _confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of shape (K, K): rows the true class, columns the predicted class."""
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes**2).reshape(n_classes, n_classes)


def _bootstrap_confusions(codes: np.ndarray, n_classes: int, n_bootstrap: int,
                          rng: np.random.Generator) -> np.ndarray:
    """Confusion matrices of shape (B, K, K) of ``n_bootstrap`` resamples, with replacement, of the rows.

    ``codes`` is ``y_true * K + y_pred`` per row; each resample's matrix is one ``np.bincount`` of its codes offset
    by ``resample * K**2``, drawn in chunks of about :data:`_ROWS_PER_CHUNK` rows.
    """
    n, cells = codes.size, n_classes**2
    per_chunk = max(1, _ROWS_PER_CHUNK // n)
    chunks = []
    for start in range(0, n_bootstrap, per_chunk):
        size = min(per_chunk, n_bootstrap - start)
        resampled = codes[rng.integers(0, n, size=(size, n))] + cells * np.arange(size)[:, None]
        chunks.append(np.bincount(resampled.ravel(), minlength=size * cells).reshape(size, n_classes, n_classes))
    return np.concatenate(chunks)


# ----------------------------------------------------------------------------------------------- output


def _with_interval(value: float, draws: np.ndarray) -> dict:
    """``{"value": value, "ci95": [low, high]}`` with the percentile interval of the bootstrap ``draws``."""
    return {"value": float(value), "ci95": percentile_interval(draws)}


def _per_class_entries(y_true: np.ndarray, proba: np.ndarray, classes: list[str], confusion: np.ndarray,
                       n_bins: int) -> dict[str, dict]:
    """The ``per_class`` entry of :func:`classification_metrics`."""
    rates = _per_class_rates(confusion)
    return {
        name: {
            "precision": rates["precision"][k],
            "recall": rates["recall"][k],
            "f1": rates["f1"][k],
            "support": rates["support"][k],
            "ece": expected_calibration_error((y_true == k).astype(int), proba[:, k], n_bins),
        }
        for k, name in enumerate(classes)
    }


# ----------------------------------------------------------------------------------------------- public


def classification_metrics(y_true, proba, classes: Sequence[str], *, n_bootstrap: int = 1000, seed: int = 0,
                           n_bins: int = 10) -> dict:
    """Metrics of a multi-class classifier, with percentile-bootstrap 95 % intervals of the summary rates.

    The prediction of a row is the argmax of its probabilities (the first class on a tie). Conventions:

    - ``precision`` of a class is TP / (TP + FP), NaN when it is never predicted; ``recall`` is TP / support, NaN
      when it is absent from ``y_true``; ``f1`` is 2 TP / (2 TP + FP + FN) = 2 TP / (support + predicted), which
      equals the harmonic mean of precision and recall when both are defined, is 0 for a present class never
      predicted correctly, and NaN only for a class neither present nor predicted.
    - ``balanced_accuracy`` is the mean recall and ``macro_f1`` the mean F1 over the classes present in
      ``y_true`` (non-zero support): classes absent from the data are left out of the average even when predicted.
      In a bootstrap resample the average is over the classes present in that resample. These match scikit-learn's
      ``balanced_accuracy_score`` and ``f1_score(average="macro", labels=<present classes>, zero_division=0)``.
    - ``ci95`` is the 2.5 and 97.5 percentiles of the rate over ``n_bootstrap`` resamples of the rows with
      replacement, drawn from ``rng_for(seed, "context_metrics", "bootstrap")``.
    - ``ece`` of a class is the one-vs-rest expected calibration error of ``proba[:, k]`` against ``y_true == k``
      in ``n_bins`` equal-width bins (:func:`bayesrb.evaluation.metrics.expected_calibration_error`).

    Parameters
    ----------
    y_true : array_like of int, shape (N,)
        True class of each candidate, an index into ``classes``; must not be empty.
    proba : array_like of float, shape (N, K)
        Class probabilities, in [0, 1], each row summing to 1 within :data:`ROW_SUM_TOLERANCE`.
    classes : sequence of str, length K
        Distinct class names in the order of the columns of ``proba``, e.g.
        :data:`bayesrb.vocabulary.CONTEXT_CLASSES`.
    n_bootstrap : int, optional
        Number of bootstrap resamples.
    seed : int, optional
        Seed of the bootstrap; the same seed gives the same output.
    n_bins : int, optional
        Number of calibration bins of each class's ECE.

    Returns
    -------
    dict
        JSON-serialisable (plain ints, floats and lists, NaN written as None)::

            {"n": int,
             "accuracy": {"value": float, "ci95": [low, high]},
             "balanced_accuracy": {"value": float, "ci95": [low, high]},
             "macro_f1": {"value": float, "ci95": [low, high]},
             "per_class": {cls: {"precision": float | None, "recall": float | None, "f1": float | None,
                                 "support": int, "ece": float}},
             "confusion_matrix": [[int, ...], ...],
             "classes": [cls, ...]}

        ``per_class`` follows the order of ``classes``; ``confusion_matrix[i][j]`` counts candidates of true class
        ``classes[i]`` predicted as ``classes[j]``.

    Raises
    ------
    ValueError
        If ``classes`` is empty or repeats a name; ``y_true`` is empty, not 1-D, not integer or outside
        [0, K); ``proba`` is not of shape (N, K), not finite, outside [0, 1] or has a row not summing to 1; or
        ``n_bootstrap`` or ``n_bins`` is not a positive integer.
    """
    y_true, proba, classes = _checked_inputs(y_true, proba, classes)
    n_bootstrap, n_bins = checked_positive_int(n_bootstrap, "n_bootstrap"), checked_positive_int(n_bins, "n_bins")
    n_classes, y_pred = len(classes), np.argmax(proba, axis=1)
    confusion = _confusion_matrix(y_true, y_pred, n_classes)
    rng = rng_for(seed, "context_metrics", "bootstrap")
    draws = _summary_rates(_bootstrap_confusions(y_true * n_classes + y_pred, n_classes, n_bootstrap, rng))
    point = _summary_rates(confusion)
    return json_safe({
        "n": y_true.size,
        **{name: _with_interval(point[name], draws[name]) for name in point},
        "per_class": _per_class_entries(y_true, proba, classes, confusion, n_bins),
        "confusion_matrix": confusion.tolist(),
        "classes": classes,
    })


def class_reliability(y_true, proba, classes: Sequence[str], n_bins: int = 10) -> dict[str, pd.DataFrame]:
    """One-vs-rest reliability-diagram tables of each class, for a per-class reliability figure.

    Parameters
    ----------
    y_true, proba, classes
        As in :func:`classification_metrics`.
    n_bins : int, optional
        Number of equal-width bins on [0, 1].

    Returns
    -------
    dict of str to pandas.DataFrame
        For each class, in the order of ``classes``, :func:`bayesrb.evaluation.metrics.reliability_bins` of
        ``proba[:, k]`` against ``y_true == k``: columns ``lower``, ``upper``, ``count``, ``mean_prob`` and
        ``frac_real`` (here the observed fraction of the class), the means NaN in empty bins.

    Raises
    ------
    ValueError
        As :func:`classification_metrics`.
    """
    y_true, proba, classes = _checked_inputs(y_true, proba, classes)
    n_bins = checked_positive_int(n_bins, "n_bins")
    return {name: reliability_bins((y_true == k).astype(int), proba[:, k], n_bins) for k, name in enumerate(classes)}
