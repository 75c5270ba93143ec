"""Candidates worth a closer look: the least confident and the most confidently misclassified of an experiment."""

import numpy as np
import pandas as pd

from bayesrb.evaluation.table import require_columns

__all__ = ["LEAST_CONFIDENT", "MISCLASSIFIED", "select_uncertain"]

#: ``reason`` of the candidates :func:`select_uncertain` picks for the highest predictive entropy.
LEAST_CONFIDENT: str = "least confident"
#: ``reason`` of the candidates :func:`select_uncertain` picks for being on the wrong side of the threshold.
MISCLASSIFIED: str = "misclassified"


def select_uncertain(table: pd.DataFrame, n: int = 6, threshold: float = 0.5) -> pd.DataFrame:
    """The least confident and the most confidently misclassified candidates of one experiment.

    First the ``n`` candidates of highest predictive ``entropy`` (:data:`LEAST_CONFIDENT`), then of the others
    up to ``n`` on the wrong side of ``threshold`` (:data:`MISCLASSIFIED`), the one giving the wrong class the
    highest probability first (``score_mean`` for bogus, ``1 - score_mean`` for real candidates). Ties keep
    table order.

    Parameters
    ----------
    table : pandas.DataFrame
        One experiment's evaluation table; needs ``candidate_id``, ``label``, ``score_mean`` and ``entropy``.
    n : int, optional
        Candidates picked for each reason (at least 1).
    threshold : float, optional
        A candidate is classified real when ``score_mean >= threshold``.

    Returns
    -------
    pandas.DataFrame
        The picked rows, all columns of ``table`` plus ``reason``, with a fresh index.

    Raises
    ------
    ValueError
        If ``n < 1`` or a column is missing.
    """
    require_columns(table, ("candidate_id", "label", "score_mean", "entropy"))
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    table = table.reset_index(drop=True)
    least_confident = table.sort_values("entropy", ascending=False, kind="stable").head(n)
    others = table.drop(index=least_confident.index)
    wrong = others[(others["score_mean"] >= threshold) != (others["label"] == 1)]
    wrong_class_probability = np.where(wrong["label"] == 1, 1.0 - wrong["score_mean"], wrong["score_mean"])
    misclassified = wrong.iloc[np.argsort(-wrong_class_probability, kind="stable")].head(n)
    return pd.concat([least_confident.assign(reason=LEAST_CONFIDENT), misclassified.assign(reason=MISCLASSIFIED)],
                     ignore_index=True)
