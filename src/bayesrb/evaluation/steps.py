"""Workflow steps of the evaluation: evaluation table, metrics.json, per-experiment and comparison figures.

Figures and comparisons use the held-out splits only (:func:`bayesrb.evaluation.table.held_out`): ``test`` (fields
never trained on, with the training kinds) and ``eval`` (evaluation-only fields with injected transients); metrics add
the ``val`` split apart, for choosing between variants. Each figure's data (curves, bins, rates, picked candidates) is
computed here with :mod:`bayesrb.evaluation` and handed to its drawing function in :mod:`bayesrb.figures`; the figure
names are those of :mod:`bayesrb.figures.names`.
"""

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayesrb.atomic import atomic_path, write_json, write_parquet
from bayesrb.configuration import split_replicate
from bayesrb.dataset.store import open_dataset
from bayesrb.evaluation.curves import (
    RECOVERY_CONFIDENCE,
    calibration_errors,
    finite_values,
    labels_and_scores,
    magnitude_bins,
    offset_bins,
    operating_points,
    recovery_curves,
    reliability_curves,
    roc_curves,
    running_medians,
    threshold_rates,
)
from bayesrb.evaluation.metrics import ALL_HELD_OUT, SELECTION_SPLIT, confusion_counts, experiment_metrics
from bayesrb.evaluation.paired import paired_comparison
from bayesrb.evaluation.referral import UNCERTAINTY_MEASURES, error_detection_auroc, risk_coverage
from bayesrb.evaluation.selection import select_uncertain
from bayesrb.evaluation.settings import EvaluationSettings
from bayesrb.evaluation.table import evaluation_table, held_out
from bayesrb.figures import calibration, classification, recovery, uncertainty
from bayesrb.figures.names import COMPARISON_FIGURES, EXPERIMENT_FIGURES, UNCERTAIN_FIGURE
from bayesrb.figures.style import OFFSET_PANELS, save_figure
from bayesrb.markdown import markdown_table

__all__ = ["EXPERIMENT_FIGURES", "UNCERTAIN_FIGURE", "COMPARISON_FIGURES",
           "write_evaluation_table", "write_metrics", "write_experiment_figures", "write_comparison_figures",
           "write_paired_comparison", "metrics_summary", "paired_summary", "replicate_summary",
           "write_metrics_summary"]


def write_evaluation_table(store_path: str | os.PathLike, scores_path: str | os.PathLike,
                           out_path: str | os.PathLike) -> pd.DataFrame:
    """Write an experiment's evaluation table (:func:`bayesrb.evaluation.table.evaluation_table`) to Parquet."""
    table = evaluation_table(store_path, scores_path)
    write_parquet(table, out_path)
    return table


def write_metrics(table_path: str | os.PathLike, out_path: str | os.PathLike, settings: EvaluationSettings,
                  experiment: str) -> dict[str, Any]:
    """Compute an experiment's metrics on its validation and held-out splits and write them as JSON.

    Parameters
    ----------
    table_path : str or os.PathLike
        The experiment's evaluation table (:func:`bayesrb.evaluation.table.evaluation_table`).
    out_path : str or os.PathLike
        The JSON file written.
    settings : EvaluationSettings
        Threshold, target FPR, calibration bins and bootstrap resamples.
    experiment : str
        Its name, written into the file.

    Returns
    -------
    dict
        ``{"experiment": name, **experiment_metrics(...)}``, as written.
    """
    table = pd.read_parquet(table_path)
    metrics = {"experiment": experiment} | experiment_metrics(
        table, threshold=settings.threshold, target_fpr=settings.target_fpr,
        n_bins=settings.calibration_bins, n_bootstrap=settings.bootstrap_resamples, seed=settings.seed)
    write_json(metrics, out_path)
    return metrics


def write_experiment_figures(table_path: str | os.PathLike, store_path: str | os.PathLike,
                             out_dir: str | os.PathLike, settings: EvaluationSettings, experiment: str) -> list[Path]:
    """Write every per-experiment figure as ``out_dir/<stem>.png``.

    Parameters
    ----------
    table_path : str or os.PathLike
        The experiment's evaluation table; the figures show its held-out splits.
    store_path : str or os.PathLike
        The data set, whose stamps the gallery of uncertain candidates shows.
    out_dir : str or os.PathLike
        The folder of the figures.
    settings : EvaluationSettings
        Threshold, target FPR, calibration bins, and how many uncertain candidates the gallery shows.
    experiment : str
        Its name, in the figures' legends.

    Returns
    -------
    list of pathlib.Path
        The files written, :data:`EXPERIMENT_FIGURES` then :data:`UNCERTAIN_FIGURE`.
    """
    tables = {experiment: held_out(pd.read_parquet(table_path))}
    written = [_save(_FIGURES[stem](tables, settings), Path(out_dir) / f"{stem}.png") for stem in EXPERIMENT_FIGURES]
    figure = _uncertain_figure(tables[experiment], store_path, settings)
    return [*written, _save(figure, Path(out_dir) / f"{UNCERTAIN_FIGURE}.png")]


def write_comparison_figures(table_paths: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike,
                             settings: EvaluationSettings) -> list[Path]:
    """Write the overlays of :data:`COMPARISON_FIGURES` of several experiments as ``out_dir/<stem>.png``."""
    tables = {name: held_out(pd.read_parquet(path)) for name, path in table_paths.items()}
    return [_save(_FIGURES[stem](tables, settings), Path(out_dir) / f"{stem}.png") for stem in COMPARISON_FIGURES]


def write_paired_comparison(table_paths: Mapping[str, str | os.PathLike], out_path: str | os.PathLike,
                            settings: EvaluationSettings) -> dict[str, Any]:
    """Write the paired comparison (:func:`bayesrb.evaluation.paired.paired_comparison`) of a group as JSON."""
    tables = {name: held_out(pd.read_parquet(path)) for name, path in table_paths.items()}
    comparison = paired_comparison(tables, settings)
    write_json(comparison, out_path)
    return comparison


_SPLIT_ORDER = (SELECTION_SPLIT, "test", "eval", ALL_HELD_OUT)
#: Section titles of metrics.md beyond the split's name.
_SPLIT_TITLES = {SELECTION_SPLIT: f"{SELECTION_SPLIT} (model selection: training stopped early on it)"}
#: Columns of :func:`metrics_summary`: header, metrics.json key, scale (100: in %), whether its interval is shown.
_SUMMARY_COLUMNS: tuple[tuple[str, str, float, bool], ...] = (
    ("accuracy [95 %]", "accuracy", 100, True), ("FPR", "fpr", 100, False), ("FNR", "fnr", 100, False),
    ("FNR at target FPR [95 %]", "fnr_at_fpr_threshold", 100, True), ("ROC AUC", "roc_auc", 1, False),
    ("ECE [95 %]", "ece", 100, True), ("Brier", "brier", 1, False), ("log loss", "log_loss", 1, False),
    ("error AUROC of std [95 %]", "error_auroc_score_std", 1, True), ("mean std", "mean_score_std", 1, False),
)
#: Metric differences of :func:`paired_summary`: header, key, scale.
_PAIRED_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("Δ accuracy", "accuracy", 100), ("Δ FNR at target FPR", "fnr_at_fpr_threshold", 100), ("Δ ECE", "ece", 100),
    ("Δ error AUROC of std", "error_auroc_score_std", 1),
)


def metrics_summary(metrics: Mapping[str, Mapping[str, Any]], split: str = ALL_HELD_OUT) -> str:
    """A Markdown table of the headline metrics of every experiment on one split.

    Parameters
    ----------
    metrics : mapping
        Experiment name -> its ``metrics.json`` content.
    split : str
        The split whose numbers are shown.

    Returns
    -------
    str
        One row per experiment: accuracy, FPR and FNR at the threshold, FNR at the target FPR, AUC, ECE, Brier, log
        loss, the error-detection AUROC of the posterior std and its mean; the bootstrap 95 % interval after the
        main ones.
    """
    rows = []
    for experiment, content in metrics.items():
        values = content["splits"][split]
        intervals = values.get("ci95", {})
        cells = [_value_cell(values.get(key), intervals.get(key) if shown else None, scale)
                 for _, key, scale, shown in _SUMMARY_COLUMNS]
        rows.append([experiment, str(values["n"]), *cells])
    return markdown_table(["experiment", "n", *(header for header, *_ in _SUMMARY_COLUMNS)], rows) + "\n"


def paired_summary(comparisons: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of the paired comparisons of every group, one row per experiment and split.

    Parameters
    ----------
    comparisons : mapping
        Group name -> its ``paired.json`` content (:func:`write_paired_comparison`).

    Returns
    -------
    str
        Differences (experiment − the group's reference) with their paired bootstrap 95 % intervals, and McNemar's
        test (candidates only the experiment got right / only the reference did, and p); a ``*`` marks a
        difference whose interval excludes 0 or a McNemar p below 0.05.
    """
    rows = []
    for group, content in comparisons.items():
        for experiment, splits in content["experiments"].items():
            for split in sorted(splits, key=_SPLIT_ORDER.index):
                result = splits[split]
                cells = [_difference_cell(result["differences"].get(key), scale) for _, key, scale in _PAIRED_COLUMNS]
                rows.append([group, f"{experiment} − {content['reference']}", split, *cells,
                             _mcnemar_cell(result["mcnemar"])])
    headers = ["group", "compared", "split", *(header for header, *_ in _PAIRED_COLUMNS),
               "McNemar (only a / only b, p)"]
    return markdown_table(headers, rows) + "\n"


def replicate_summary(metrics: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]],
                      split: str = ALL_HELD_OUT) -> str:
    """Markdown tables of the spread across replicates (``NAME``, ``NAME.r1``, ...) on one split.

    Parameters
    ----------
    metrics : mapping
        Experiment name (replicates included) -> its ``metrics.json`` content.
    groups : mapping of str to sequence of str
        Comparison group -> its configured experiments, the reference first.
    split : str
        The split whose numbers are shown.

    Returns
    -------
    str
        The mean ± standard deviation (across replicates) of each configured experiment's headline metrics, then of
        each comparison's differences (experiment − reference, replicate by replicate), with their range.
    """
    by_replicate = _by_replicate(metrics, split)
    headers = [header for header, *_ in _PAIRED_COLUMNS]
    rows = [[name, str(len(replicates)),
             *(_spread_cell([values.get(key) for values in replicates.values()], scale)
               for _, key, scale in _PAIRED_COLUMNS)]
            for name, replicates in by_replicate.items()]
    text = markdown_table(["experiment", "replicates", *(header.removeprefix("Δ ") for header in headers)], rows) + "\n"
    differences = []
    for group, (reference, *others) in groups.items():
        for name in others:
            shared = sorted(set(by_replicate[name]) & set(by_replicate[reference]))
            cells = [_spread_cell([_difference(by_replicate[name][k].get(key), by_replicate[reference][k].get(key))
                                   for k in shared], scale, "+") for _, key, scale in _PAIRED_COLUMNS]
            differences.append([group, f"{name} − {reference}", str(len(shared)), *cells])
    if differences:
        text += "\n" + markdown_table(["group", "compared", "replicates", *headers], differences) + "\n"
    return text


def write_metrics_summary(metrics_paths: Mapping[str, str | os.PathLike], out_path: str | os.PathLike,
                          paired_paths: Mapping[str, str | os.PathLike] | None = None,
                          groups: Mapping[str, Sequence[str]] | None = None) -> str:
    """Write the Markdown summary of every experiment's metrics, for each held-out split.

    It holds :func:`metrics_summary`, then :func:`paired_summary` of the comparison groups' ``paired.json`` files
    and, when experiments are replicated, :func:`replicate_summary`.
    """
    metrics = {name: json.loads(Path(path).read_text()) for name, path in metrics_paths.items()}
    splits = [split for split in _SPLIT_ORDER
              if all(split in content["splits"] for content in metrics.values())]
    first = next(iter(metrics.values()))
    text = (f"Threshold {first['threshold']}, target FPR {100 * first['target_fpr']:g} %; rates, accuracy and ECE "
            f"in %; intervals are bootstrap 95 % intervals over the candidates.\n\n"
            + "\n".join(f"## {_SPLIT_TITLES.get(split, split)}\n\n{metrics_summary(metrics, split)}"
                        for split in splits))
    if paired_paths:
        comparisons = {name: json.loads(Path(path).read_text()) for name, path in paired_paths.items()}
        text += ("\n## Paired comparisons\n\nExperiment minus the group's reference on the same candidates (paired "
                 "bootstrap 95 % intervals; * : the interval excludes 0, or McNemar's p < 0.05).\n\n"
                 + paired_summary(comparisons))
    if any(split_replicate(name)[1] for name in metrics):
        text += ("\n## Replicates\n\nMean ± standard deviation across the replicates (each trained from its own "
                 "seed) [range], and of each comparison's differences replicate by replicate.\n\n"
                 + "\n".join(f"### {split}\n\n{replicate_summary(metrics, groups or {}, split)}"
                             for split in splits))
    with atomic_path(out_path) as tmp:
        Path(tmp).write_text(text)
    return text


def _plain(value: float, scale: float, sign: str = "") -> str:
    """``value`` in % (two decimals) when ``scale`` is 100, else with four decimals; ``sign="+"`` shows the sign."""
    return f"{scale * value:{sign}.2f}" if scale != 1 else f"{value:{sign}.4f}"


def _value_cell(value: float | None, interval: list | None, scale: float) -> str:
    if value is None:
        return "n/a"
    if not interval or None in interval:
        return _plain(value, scale)
    return f"{_plain(value, scale)} [{_plain(interval[0], scale)}, {_plain(interval[1], scale)}]"


def _difference_cell(difference: Mapping[str, Any] | None, scale: float) -> str:
    if difference is None or difference["difference"] is None or None in difference["ci95"]:
        return "n/a"
    low, high = difference["ci95"]
    marker = " *" if low > 0 or high < 0 else ""
    return (f"{_plain(difference['difference'], scale, '+')} [{_plain(low, scale, '+')}, {_plain(high, scale, '+')}]"
            f"{marker}")


def _by_replicate(metrics: Mapping[str, Mapping[str, Any]], split: str) -> dict[str, dict[int, Mapping[str, Any]]]:
    """Configured experiment -> replicate number -> that replicate's metrics on ``split``."""
    grouped: dict[str, dict[int, Mapping[str, Any]]] = {}
    for name, content in metrics.items():
        base, replicate = split_replicate(name)
        grouped.setdefault(base, {})[replicate] = content["splits"][split]
    return grouped


def _difference(value: float | None, reference: float | None) -> float | None:
    return None if value is None or reference is None else value - reference


def _spread_cell(values: Sequence[float | None], scale: float, sign: str = "") -> str:
    """``mean ± sd [min, max]`` of the defined values (the mean alone for one), or n/a."""
    defined = np.array([value for value in values if value is not None], dtype=float)
    if not defined.size:
        return "n/a"
    if defined.size == 1:
        return _plain(defined[0], scale, sign)
    return (f"{_plain(defined.mean(), scale, sign)} ± {_plain(defined.std(ddof=1), scale)} "
            f"[{_plain(defined.min(), scale, sign)}, {_plain(defined.max(), scale, sign)}]")


def _mcnemar_cell(test: Mapping[str, Any]) -> str:
    marker = " *" if test["p_value"] < 0.05 else ""
    return f"{test['a_only']} / {test['b_only']}, p = {test['p_value']:.2g}{marker}"


def _only(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    (table,) = tables.values()
    return table


# --- the data of each figure, computed from the held-out tables {name: table} -------------------------------


def _confusion_matrix(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> Figure:
    counts = confusion_counts(*labels_and_scores(_only(tables)), threshold=settings.threshold)
    return classification.confusion_matrix(counts, settings.threshold)


def _roc(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> Figure:
    return classification.roc(roc_curves(tables), operating_points(tables, settings.target_fpr), settings.target_fpr)


def _rates_vs_threshold(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> Figure:
    (operating,) = operating_points(tables, settings.target_fpr).values()
    return classification.rates_vs_threshold_figure(threshold_rates(_only(tables)), operating, settings.target_fpr)


def _recovery_magnitude(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> Figure:
    kinds = recovery.MAGNITUDE_KINDS
    bins = magnitude_bins(finite_values(tables, "mag", kinds))
    curves = recovery_curves(tables, kinds, "mag", bins, settings.threshold, RECOVERY_CONFIDENCE)
    return recovery.recovery_vs_magnitude(curves, kinds, settings.threshold, RECOVERY_CONFIDENCE)


def _recovery_host_offset(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> Figure:
    kinds = recovery.HOST_OFFSET_KINDS
    curves = {}
    for panel in OFFSET_PANELS:
        bins = offset_bins(finite_values(tables, panel.column, kinds), panel.nuclear_limit)
        curves[panel.column] = recovery_curves(tables, kinds, panel.column, bins, settings.threshold,
                                               RECOVERY_CONFIDENCE)
    return recovery.recovery_vs_host_offset(curves, kinds, settings.threshold, RECOVERY_CONFIDENCE)


def _reliability(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> Figure:
    n_bins = settings.calibration_bins
    return calibration.reliability(reliability_curves(tables, n_bins), calibration_errors(tables, n_bins))


def _risk_coverage(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> Figure:
    measures = {column: name for column, name in UNCERTAINTY_MEASURES.items()
                if all(column in table for table in tables.values())}
    curves, aurocs = {}, {}
    for name, table in tables.items():
        labels, scores = labels_and_scores(table)
        curves[name] = {column: risk_coverage(labels, scores, table[column], settings.threshold)
                        for column in measures}
        aurocs[name] = {column: error_detection_auroc(labels, scores, table[column], settings.threshold)
                        for column in measures}
    return uncertainty.risk_coverage(curves, aurocs, measures)


def _uncertainty_magnitude(tables: Mapping[str, pd.DataFrame], settings: EvaluationSettings) -> Figure:
    bins = magnitude_bins(finite_values(tables, "mag"))
    medians = {column: running_medians(tables, column, bins) for column, _ in uncertainty.UNCERTAINTY_PANELS}
    return uncertainty.uncertainty_vs_magnitude(tables, medians)


#: Figure name (of :data:`EXPERIMENT_FIGURES`) -> function of (held-out tables {name: table}, settings).
_FIGURES: dict[str, Callable[[Mapping[str, pd.DataFrame], EvaluationSettings], Figure]] = {
    "confusion_matrix": _confusion_matrix,
    "roc": _roc,
    "rates_vs_threshold": _rates_vs_threshold,
    "recovery_magnitude": _recovery_magnitude,
    "recovery_host_offset": _recovery_host_offset,
    "reliability": _reliability,
    "uncertainty_magnitude": _uncertainty_magnitude,
    "risk_coverage": _risk_coverage,
}


def _uncertain_figure(table: pd.DataFrame, store_path: str | os.PathLike, settings: EvaluationSettings) -> Figure:
    """The least confident and misclassified candidates beside their stamps, read from the data set."""
    picked = select_uncertain(table, settings.uncertain_candidates, settings.threshold)
    store_row = pd.Series(table.index, index=table["candidate_id"])  # the table's index is the store row
    dataset = open_dataset(store_path)
    stamps = {candidate: np.asarray(dataset.stamps[store_row[candidate]]) for candidate in picked["candidate_id"]}
    return uncertainty.uncertain_candidates(picked, stamps, dataset.channels, settings.threshold)


def _save(figure: Figure, path: Path) -> Path:
    save_figure(figure, path)
    return path
