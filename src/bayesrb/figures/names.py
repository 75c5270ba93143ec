"""Names of the figures the workflow writes: the file stems that rules declare as outputs.

This module imports nothing, so rule files can read the names without loading matplotlib, pandas or zarr. The
functions that draw each figure are in the figure modules; ``dataset.steps`` and ``evaluation.steps`` map these
names onto them.
"""

__all__ = ["DATASET_FIGURES", "EXPERIMENT_FIGURES", "UNCERTAIN_FIGURE", "COMPARISON_FIGURES", "CONTEXT_FIGURES",
           "ALERT_GALLERIES"]

#: The data-set figures, by output name.
DATASET_FIGURES: tuple[str, ...] = ("gallery", "label_counts", "magnitudes", "host_offsets")
#: Per-experiment figures drawn from the experiment's held-out evaluation table alone.
EXPERIMENT_FIGURES: tuple[str, ...] = (
    "confusion_matrix",
    "roc",
    "rates_vs_threshold",
    "recovery_magnitude",
    "recovery_host_offset",
    "reliability",
    "uncertainty_magnitude",
    "risk_coverage",
)
#: The figure of the least confident and misclassified candidates with their stamps (needs the data set).
UNCERTAIN_FIGURE: str = "uncertain_candidates"
#: Figures that overlay the experiments of a comparison group (a subset of :data:`EXPERIMENT_FIGURES`).
COMPARISON_FIGURES: tuple[str, ...] = ("roc", "reliability", "recovery_magnitude", "recovery_host_offset",
                                       "risk_coverage")
#: Per context experiment: confusion matrices, censoring curves, feature importance, per-class reliability, cards.
CONTEXT_FIGURES: tuple[str, ...] = ("confusion", "censoring", "importance", "reliability", "cards")
#: The galleries of real alerts: spread over the score ranking, and the most uncertain.
ALERT_GALLERIES: tuple[str, ...] = ("score", "uncertainty")
