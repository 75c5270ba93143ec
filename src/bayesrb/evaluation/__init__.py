"""Evaluation of a trained classifier: metrics of its scores on the held-out splits."""

from bayesrb.evaluation.metrics import (
    binomial_interval,
    brier_score,
    confusion_counts,
    expected_calibration_error,
    experiment_metrics,
    fraction_correct_by_kind,
    log_loss,
    rates_at_threshold,
    rates_vs_threshold,
    recovery_curve,
    reliability_bins,
    roc_auc,
    roc_curve,
    threshold_at_fpr,
)

__all__ = [
    "binomial_interval",
    "brier_score",
    "confusion_counts",
    "expected_calibration_error",
    "experiment_metrics",
    "fraction_correct_by_kind",
    "log_loss",
    "rates_at_threshold",
    "rates_vs_threshold",
    "recovery_curve",
    "reliability_bins",
    "roc_auc",
    "roc_curve",
    "threshold_at_fpr",
]
