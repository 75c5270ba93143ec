"""Train one context experiment on the context table and measure it: splits, censoring levels, the CNN alone.

Training rows are the context ``train`` split, each with one random draw of the CNN's posterior, censored: each
training row loses each catalogue family with the configured probability (:func:`bayesrb.context.models.censor`),
so that the trees learn what to do when a catalogue is missing. The test split is then evaluated whole and at each
catalogue loss of ``censoring_levels``, per family and for all families together.
"""

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesrb.context.catalogues import FAMILIES
from bayesrb.context.metrics import classification_metrics
from bayesrb.context.models import (
    ContextClassifier,
    censor,
    fit_classifier,
    fit_temperature,
    mean_log_loss,
    predict_with_spread,
    with_random_cnn_draw,
)
from bayesrb.context.settings import ClassifierSettings, ContextSettings
from bayesrb.evaluation.metrics import expected_calibration_error
from bayesrb.seeding import rng_for
from bayesrb.vocabulary import CONTEXT_BOGUS, CONTEXT_CLASSES

log = logging.getLogger(__name__)

__all__ = ["ALL_FAMILIES", "Trained", "train_experiment", "class_probabilities", "score_table",
           "experiment_metrics"]

#: The censoring scenario that removes every family at once.
ALL_FAMILIES = "all"
#: The class whose recall the censoring curves follow beside the accuracy.
SUPERNOVA = "sn"
#: Equal-width probability bins of the calibration errors (as in the per-class metrics).
ECE_BINS = 10


@dataclass
class Trained:
    """A trained context classifier and what it took.

    Attributes
    ----------
    classifier : ContextClassifier
    n_train : int
        Training candidates (before the expansion into CNN draws).
    seconds : float
        Training time.
    """

    classifier: ContextClassifier
    n_train: int
    seconds: float


def train_experiment(table: pd.DataFrame, context: ContextSettings, settings: ClassifierSettings, name: str,
                     threads: int = 1) -> Trained:
    """Fit a classifier on the ``train`` rows of the context table, censored, each with a random CNN draw.

    The ``val`` rows (uncensored, one random CNN draw each) stop XGBoost early; the calibration temperature is then
    fitted to them over all CNN draws (``settings.calibrate``).
    """
    train = table[table["split"] == "train"].reset_index(drop=True)
    if train.empty:
        raise ValueError("the context table has no train rows: give the context classifier fields of its own "
                         "(context fields) or a labels table for some")
    val = table[table["split"] == "val"].reset_index(drop=True)
    drawn = with_random_cnn_draw(train, rng_for(context.seed, "cnn-draw", name))
    censored = censor(drawn, context.censoring, rng_for(context.seed, "censor-train", name))
    validation = None
    if len(val):
        validation = (with_random_cnn_draw(val, rng_for(context.seed, "cnn-draw-val", name)), val["class"].to_numpy())
    start = time.perf_counter()
    classifier = fit_classifier(censored, train["class"].to_numpy(), settings, seed=context.seed, threads=threads,
                                validation=validation)
    if settings.calibrate and len(val):
        classifier.temperature = fit_temperature(classifier, val, val["class"].to_numpy())
    seconds = time.perf_counter() - start
    log.info("%s: trained on %d candidates in %.1f s (%s; calibration temperature %.2f)", name, len(train), seconds,
             _rounds(classifier), classifier.temperature)
    return Trained(classifier, len(train), seconds)


def _rounds(classifier: ContextClassifier) -> str:
    """The boosting rounds kept by each XGBoost node, for the log."""
    kept = {node: getattr(flat.model, "best_iteration", None) for node, flat in classifier.nodes.items()
            if flat.model is not None and hasattr(flat.model, "get_booster")}
    return ", ".join(f"{node}: {'all' if best is None else best + 1} rounds" for node, best in kept.items()) or \
        "no boosting"


def class_probabilities(classifier: ContextClassifier, table: pd.DataFrame) -> pd.DataFrame:
    """Class probabilities (mean and spread over the CNN draws), the predicted class and 1 - P(bogus).

    Returns
    -------
    pandas.DataFrame
        ``candidate_id``, ``p_<class>`` and ``p_<class>_std`` for every class, ``predicted_class`` and
        ``real_bogus``.
    """
    mean, std = predict_with_spread(classifier, table)
    classes = np.asarray(CONTEXT_CLASSES)
    scores = pd.DataFrame({"candidate_id": table["candidate_id"].to_numpy(str)})
    for k, code in enumerate(CONTEXT_CLASSES):
        scores[f"p_{code}"], scores[f"p_{code}_std"] = mean[:, k], std[:, k]
    scores["predicted_class"] = classes[np.argmax(mean, axis=1)]
    scores["real_bogus"] = 1.0 - mean[:, CONTEXT_CLASSES.index(CONTEXT_BOGUS)]
    return scores


def score_table(classifier: ContextClassifier, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`class_probabilities` of the context table's rows, with their split, CNN split and true class."""
    scores = class_probabilities(classifier, table)
    scores.insert(1, "split", table["split"].to_numpy())
    scores.insert(2, "cnn_split", table["cnn_split"].to_numpy())
    scores.insert(3, "true_class", np.asarray(CONTEXT_CLASSES)[table["class"]])
    return scores


def _metrics(classifier: ContextClassifier, rows: pd.DataFrame, context: ContextSettings) -> dict:
    mean, _ = predict_with_spread(classifier, rows)
    return classification_metrics(rows["class"].to_numpy(), mean, CONTEXT_CLASSES, n_bootstrap=context.n_bootstrap,
                                  seed=context.seed)


def _censoring_curves(classifier: ContextClassifier, test: pd.DataFrame, context: ContextSettings) -> dict:
    """Accuracy and SN recall (with intervals) of the test split at each catalogue loss, per scenario."""
    curves = {}
    for scenario in (*FAMILIES, ALL_FAMILIES):
        families = FAMILIES if scenario == ALL_FAMILIES else (scenario,)
        curves[scenario] = {}
        for level in context.censoring_levels:
            rng = rng_for(context.seed, "censor-test", scenario, int(round(level * 1000)))
            censored = censor(test, dict.fromkeys(families, level), rng, together=True)
            metrics = _metrics(classifier, censored, context)
            curves[scenario][f"{level:g}"] = {
                "accuracy": metrics["accuracy"],
                "sn_recall": metrics["per_class"][SUPERNOVA]["recall"],
                "balanced_accuracy": metrics["balanced_accuracy"],
            }
    return curves


def _calibration(classifier: ContextClassifier, table: pd.DataFrame) -> dict:
    """The calibration temperature, and per split the log-loss and mean per-class ECE without and with it."""
    raw = dataclasses.replace(classifier, temperature=1.0)
    measured = {"temperature": classifier.temperature}
    for split in ("val", "test"):
        rows = table[table["split"] == split]
        if rows.empty:
            continue
        y = rows["class"].to_numpy()
        measured[split] = {}
        for name, model in (("raw", raw), ("calibrated", classifier)):
            mean, _ = predict_with_spread(model, rows)
            measured[split][name] = {"log_loss": mean_log_loss(y, mean), "mean_ece": _mean_ece(y, mean)}
    return measured


def _mean_ece(y: np.ndarray, proba: np.ndarray) -> float:
    """The one-vs-rest expected calibration error averaged over the classes present."""
    return float(np.mean([expected_calibration_error((y == k).astype(int), proba[:, k], ECE_BINS)
                          for k in np.unique(y)]))


def _real_bogus(scores: pd.DataFrame, table: pd.DataFrame, threshold: float = 0.5) -> dict:
    """Real-bogus accuracy of 1 - P(bs) against the CNN's alone, at the same threshold."""
    real = (table["class"].to_numpy() != CONTEXT_CLASSES.index(CONTEXT_BOGUS))
    context = float(np.mean((scores["real_bogus"].to_numpy() >= threshold) == real)) if len(real) else None
    cnn = float(np.mean((table["cnn_mean"].to_numpy() >= threshold) == real)) if len(real) else None
    return {"threshold": threshold, "context_accuracy": context, "cnn_accuracy": cnn}


def experiment_metrics(trained: Trained, table: pd.DataFrame, scores: pd.DataFrame, context: ContextSettings) -> dict:
    """Everything measured of one experiment: per split, the test split by CNN split, censoring, real-bogus.

    Returns
    -------
    dict
        JSON-safe: ``splits`` (metrics of ``val`` and ``test``, and of the ``test`` rows of each CNN split, e.g.
        ``test/eval``), ``calibration`` (the temperature; per split, log-loss and mean per-class ECE ``raw`` and
        ``calibrated``), ``censoring`` (scenario → loss → accuracy / SN recall / balanced accuracy), ``real_bogus``
        (test), ``n_train``, ``train_seconds``.
    """
    splits = {}
    for split in ("val", "test"):
        rows = table["split"] == split
        if rows.any():
            splits[split] = _metrics(trained.classifier, table[rows], context)
    for cnn_split in sorted(set(table.loc[table["split"] == "test", "cnn_split"]) - {""}):
        rows = (table["split"] == "test") & (table["cnn_split"] == cnn_split)
        splits[f"test/{cnn_split}"] = _metrics(trained.classifier, table[rows], context)
    test = (table["split"] == "test").to_numpy()
    return {
        "splits": splits,
        "calibration": _calibration(trained.classifier, table),
        "censoring": _censoring_curves(trained.classifier, table[test], context) if test.any() else {},
        "real_bogus": _real_bogus(scores[test], table[test]),
        "n_train": trained.n_train,
        "train_seconds": trained.seconds,
    }
