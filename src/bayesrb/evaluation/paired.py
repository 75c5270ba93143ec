"""Paired comparisons of experiments scored on the same candidates: which differences are significant.

Every experiment of a comparison group is compared with the group's first (the reference) on each held-out split:
the difference of each scalar metric (other − reference) with a paired bootstrap interval and p-value
(:func:`bayesrb.evaluation.bootstrap.paired_differences`; both evaluated on the same resampled candidates), and
McNemar's exact test of their correctness at the threshold (:func:`bayesrb.evaluation.bootstrap.mcnemar_test`).
"""

from collections.abc import Mapping

import pandas as pd

from bayesrb.evaluation.bootstrap import CONFIDENCE, mcnemar_test, paired_differences
from bayesrb.evaluation.metrics import held_out_groups, json_safe, split_statistic
from bayesrb.evaluation.referral import errors_at_threshold
from bayesrb.evaluation.settings import EvaluationSettings

__all__ = ["paired_comparison"]


def paired_comparison(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> dict:
    """Compare every experiment with the first on the same held-out candidates.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Experiment name -> evaluation table (with ``candidate_id``); the first is the reference. Every table must
        hold the same held-out candidates.
    settings : EvaluationSettings
        Threshold, target FPR, calibration bins, bootstrap resamples and seed.

    Returns
    -------
    dict
        JSON-serialisable::

            {"reference": name, "bootstrap": {"resamples", "unit", "confidence", "seed"},
             "experiments": {name: {split: {"mcnemar": {"a_only", "b_only", "p_value"},
                                            "differences": {metric: {"difference", "ci95", "p_value"}}}}}}

        with ``a`` the experiment and ``b`` the reference, for every experiment but the reference.

    Raises
    ------
    ValueError
        If fewer than two tables are given, or a table's held-out candidates differ from the reference's.
    """
    if len(tables) < 2:
        raise ValueError(f"a paired comparison needs two experiments or more, got {list(tables)}")
    if settings.bootstrap_resamples < 1:
        raise ValueError("a paired comparison needs bootstrap resamples (evaluation.bootstrap_resamples >= 1)")
    (reference, reference_table), *others = tables.items()
    reference_groups = held_out_groups(reference_table)
    experiments = {name: {split: _compare(_aligned(table, rows, name, reference), rows, split, settings)
                          for split, rows in reference_groups.items()}
                   for name, table in others}
    bootstrap = {"resamples": settings.bootstrap_resamples, "unit": "candidate", "confidence": CONFIDENCE,
                 "seed": settings.seed}
    return json_safe({"reference": reference, "bootstrap": bootstrap, "experiments": experiments})


def _aligned(table: pd.DataFrame, reference_rows: pd.DataFrame, name: str, reference: str) -> pd.DataFrame:
    """The rows of ``table`` for the reference's candidates, in the reference's order."""
    indexed = table.set_index("candidate_id")
    wanted = reference_rows["candidate_id"]
    missing = ~wanted.isin(indexed.index)
    if missing.any():
        raise ValueError(f"experiment {name} lacks {int(missing.sum())} held-out candidate(s) of {reference}, "
                         f"e.g. {wanted[missing].head(3).tolist()}: a paired comparison needs the same candidates")
    return indexed.loc[wanted.to_numpy()].reset_index()


def _compare(rows: pd.DataFrame, reference_rows: pd.DataFrame, split: str, settings: EvaluationSettings) -> dict:
    """McNemar's test and the paired metric differences of one split."""
    statistic = {name: split_statistic(table, settings.threshold, settings.target_fpr, settings.calibration_bins)
                 for name, table in (("other", rows), ("reference", reference_rows))}
    correct = [~errors_at_threshold(table["label"], table["score_mean"], settings.threshold)
               for table in (rows, reference_rows)]
    differences = paired_differences(statistic["other"], statistic["reference"], len(rows),
                                     settings.bootstrap_resamples, settings.seed, split)
    return {"mcnemar": mcnemar_test(*correct), "differences": differences}
