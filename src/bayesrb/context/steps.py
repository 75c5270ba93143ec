"""File-level steps of the context classifier, one per workflow rule; every output is written atomically."""

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import xgboost
from astropy.table import Table

from bayesrb import __version__
from bayesrb.atomic import atomic_path, write_json, write_parquet
from bayesrb.context.catalogues import CatalogueSource, read_families
from bayesrb.context.experiment import (
    ALL_FAMILIES,
    class_probabilities,
    experiment_metrics,
    score_table,
    train_experiment,
)
from bayesrb.context.features import candidate_features
from bayesrb.context.metrics import class_reliability
from bayesrb.context.models import contributions as contributions_of
from bayesrb.context.models import feature_importance, load_classifier, save_classifier
from bayesrb.context.settings import ContextSettings, FeatureSettings
from bayesrb.context.table import (
    CNN_SCORE_COLUMNS,
    EXCLUDED,
    check_no_leakage,
    classes_from_labels,
    classes_from_truth,
    cnn_features,
    cnn_training_fields,
    context_splits,
    history_features,
    history_from_detections,
    read_context_labels,
)
from bayesrb.context.visit import visit_reference_sources
from bayesrb.errors import BadInputError
from bayesrb.figures import context as context_figures
from bayesrb.figures.style import save_figure
from bayesrb.imaging.fitsio import read_image
from bayesrb.labels.catalogues import read_catalogue
from bayesrb.labels.observing import VisitObservation, predicted_minor_planets, read_visit_observation
from bayesrb.markdown import markdown_table
from bayesrb.model.scoring import read_scores
from bayesrb.settings import settings_dict
from bayesrb.stamps.store import open_store
from bayesrb.textfiles import read_text
from bayesrb.vocabulary import CONTEXT_CLASS_NAMES, CONTEXT_CLASSES

log = logging.getLogger(__name__)

__all__ = ["score_held_out_candidates", "write_context_table",
           "write_context_experiment", "write_context_figures", "write_context_summary", "classify_store",
           "classifier_versions"]


def _cnn_split_fields(summary_path: str | os.PathLike) -> dict[str, list[str]]:
    try:
        split_fields = json.loads(read_text(summary_path, "data-set summary"))["split_fields"]
        return {split: list(fields) for split, fields in split_fields.items()}
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
        raise BadInputError(summary_path, f"not a data-set summary with split_fields ({error!r})") from error


def score_held_out_candidates(model_dir: str, shard_paths: Sequence[str], fields: Sequence[str], summary_path: str,
                              out_path: str, *, n_samples: int, batch_size: int, seed: int) -> int:
    """Score with the CNN every candidate of the fields it never trained or early-stopped on.

    Parameters
    ----------
    model_dir : str
        The CNN (training directory of the ``context.cnn_experiment``).
    shard_paths, fields : sequence of str
        Every visit's stamp shard and its field.
    summary_path : str
        The CNN data set's ``summary.json`` (its ``split_fields``).
    out_path : str
        Parquet of :func:`bayesrb.model.score.score_store`.
    n_samples, batch_size, seed : int

    Returns
    -------
    int
        Candidates scored.
    """
    from bayesrb.model.score import score_store  # JAX loads in this rule only, not in every job of this module

    split_fields = _cnn_split_fields(summary_path)
    training = cnn_training_fields(split_fields)
    shards = [s for s, f in zip(shard_paths, fields, strict=True) if f not in training]
    log.info("scoring the candidates of %d of %d visits (the others are in the CNN's training fields %s)",
             len(shards), len(shard_paths), sorted(training))
    return score_store(model_dir, shards, out_path, n_samples=n_samples, batch_size=batch_size, seed=seed)


def _read_features(paths: Sequence[str], radius_arcsec: float) -> pd.DataFrame:
    features = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    history = history_features(features["field"].to_numpy(str), features["mjd"].to_numpy(float),
                               features["ra"].to_numpy(float), features["dec"].to_numpy(float), radius_arcsec)
    return features.assign(**history)


def _history(meta: Mapping[str, np.ndarray], observation: VisitObservation | None, history_path: str,
             radius_arcsec: float) -> dict[str, np.ndarray]:
    """The history features of a store's candidates: from the detections table if given, else none (0)."""
    if not history_path:
        n = len(meta["ra"])
        return {"history_n_earlier": np.zeros(n), "history_days_since_first": np.zeros(n)}
    detections = read_catalogue(history_path, ("ra", "dec", "mjd"))
    columns = {name: np.asarray(detections[name], float) for name in ("ra", "dec", "mjd")}
    return history_from_detections(np.asarray(meta["ra"], float), np.asarray(meta["dec"], float),
                                   observation.mjd_utc, columns, radius_arcsec)


def _classes(table: pd.DataFrame, truth_paths: Sequence[str], labels_path: str) -> np.ndarray:
    if labels_path:
        return classes_from_labels(labels_path, read_context_labels(labels_path), table["candidate_id"].to_numpy(str))
    truth = pd.concat([Table.read(p, format="ascii.ecsv")[["candidate_id", "truth_kind"]].to_pandas()
                       for p in truth_paths], ignore_index=True)
    kinds = truth.astype({"candidate_id": str}).set_index("candidate_id")["truth_kind"].fillna("").astype(str)
    return classes_from_truth(kinds.reindex(table["candidate_id"]).fillna("").to_numpy())


def write_context_table(feature_paths: Sequence[str], scores_path: str, summary_path: str, out_path: str,
                        settings: ContextSettings, *, truth_paths: Sequence[str] = (),
                        labels_path: str = "") -> pd.DataFrame:
    """Join features, history, CNN scores and classes of the usable candidates, with their context split.

    Parameters
    ----------
    feature_paths : sequence of str
        Every visit's context features (:func:`write_visit_features`).
    scores_path : str
        The CNN's scores of the candidates outside its training fields (:func:`score_held_out_candidates`).
    summary_path : str
        The CNN data set's ``summary.json``.
    out_path : str
        Parquet: one row per labelled candidate outside the CNN's training fields, with ``split`` (context),
        ``cnn_split`` (the CNN's split of the field; empty for fields reserved for the context classifier) and
        ``class`` (index into :data:`bayesrb.vocabulary.CONTEXT_CLASSES`).
    settings : ContextSettings
    truth_paths : sequence of str
        Simulated surveys: the truth-match tables, from which the classes come.
    labels_path : str
        Real data: a CSV of ``candidate_id,class``; candidates it does not list are left out.

    Returns
    -------
    pandas.DataFrame
    """
    split_fields = _cnn_split_fields(summary_path)
    features = _read_features(feature_paths, settings.features.history_radius_arcsec)
    features = features[~features["field"].isin(cnn_training_fields(split_fields))]
    cnn_split = {f: s for s, fields in split_fields.items() for f in fields}
    scores = cnn_features(read_scores(scores_path, CNN_SCORE_COLUMNS))
    table = features.merge(scores, on="candidate_id", how="left", validate="one_to_one")
    unscored = table["cnn_mean"].isna().to_numpy()
    if unscored.any():
        raise BadInputError(scores_path, f"has no CNN score for {int(unscored.sum())} candidate(s), e.g. "
                                         f"{table['candidate_id'][unscored].iloc[0]}")
    table["class"] = _classes(table, truth_paths, labels_path)
    table = table[table["class"] >= 0].reset_index(drop=True)
    context_fields = table.loc[~table["field"].isin(cnn_split), "field"].value_counts().to_dict()
    splits = context_splits(split_fields, context_fields, settings.fractions, settings.seed)
    table["split"] = table["field"].map(splits)
    table["cnn_split"] = table["field"].map(cnn_split).fillna("")
    table = table[table["split"] != EXCLUDED].reset_index(drop=True)
    check_no_leakage(table, split_fields)
    write_parquet(table, out_path)
    log.info("context table: %d candidates; per split %s", len(table), table["split"].value_counts().to_dict())
    return table


def classifier_versions() -> dict[str, str]:
    """The package versions a saved context classifier is trusted with (see ``load_classifier``)."""
    return {"bayesrb": __version__, "xgboost": xgboost.__version__, "scikit-learn": sklearn.__version__}


def write_context_experiment(table_path: str, settings: ContextSettings, experiment: str, model_path: str,
                             scores_path: str, metrics_path: str, threads: int = 1) -> dict:
    """Train one context experiment, score every row of the context table and write its metrics.

    Parameters
    ----------
    table_path : str
        The context table (:func:`write_context_table`).
    settings : ContextSettings
    experiment : str
        A key of ``settings.experiments``.
    model_path : str
        Output: the trained classifier (joblib), with a ``.json`` beside it naming the package versions and
        settings it was trained with.
    scores_path : str
        Output Parquet of :func:`bayesrb.context.experiment.score_table`.
    metrics_path : str
        Output JSON of :func:`bayesrb.context.experiment.experiment_metrics`, with the feature importances.
    threads : int

    Returns
    -------
    dict
        The metrics.
    """
    classifier_settings = settings.classifier(experiment)
    table = pd.read_parquet(table_path)
    trained = train_experiment(table, settings, classifier_settings, experiment, threads)
    scores = score_table(trained.classifier, table)
    metrics = experiment_metrics(trained, table, scores, settings) | {
        "experiment": experiment, "settings": settings_dict(classifier_settings),
        "feature_importance": [[name, share] for name, share in feature_importance(trained.classifier).items()]}
    save_classifier(trained.classifier, model_path, classifier_versions())
    write_parquet(scores, scores_path)
    write_json(metrics, metrics_path)
    test = metrics["splits"].get("test", {})
    log.info("%s: test accuracy %s, balanced accuracy %s", experiment, test.get("accuracy"),
             test.get("balanced_accuracy"))
    return metrics


#: Display names of the censoring scenarios in the figures.
_SCENARIO_NAMES = {ALL_FAMILIES: "all catalogues"}
#: Explanation cards drawn per experiment: one test candidate per class at most.
_CARDS = len(CONTEXT_CLASSES)


def _censoring_inputs(censoring: dict) -> tuple[np.ndarray, dict, dict]:
    """Loss levels, curves and accuracy intervals of ``metrics["censoring"]`` in the figure's layout."""
    levels = sorted({float(level) for curves in censoring.values() for level in curves})
    keys = [f"{level:g}" for level in levels]
    curves, intervals = {}, {}
    for scenario, by_level in censoring.items():
        name = _SCENARIO_NAMES.get(scenario, scenario)
        curves[name] = {"accuracy": np.array([by_level[k]["accuracy"]["value"] for k in keys], float),
                        "sn_recall": np.array([np.nan if by_level[k]["sn_recall"] is None else by_level[k]["sn_recall"]
                                               for k in keys], float)}
        intervals[name] = {"accuracy": np.array([by_level[k]["accuracy"]["ci95"] for k in keys], float)}
    return np.array(levels), curves, intervals


def _card_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """Test candidates to explain: the most confident correct one of each class, then the most confident mistake."""
    test = scores[scores["split"] == "test"]
    confidence = test[[f"p_{c}" for c in CONTEXT_CLASSES]].max(axis=1)
    ranked = test.assign(confidence=confidence).sort_values("confidence", ascending=False, kind="stable")
    correct = ranked[ranked["true_class"] == ranked["predicted_class"]].groupby("true_class", sort=False).head(1)
    wrong = ranked[ranked["true_class"] != ranked["predicted_class"]].head(1)
    return pd.concat([correct, wrong]).head(_CARDS)


def _cards(scores: pd.DataFrame, table: pd.DataFrame, model_path: str, shards: Mapping[str, str]) -> list[dict]:
    picked = _card_rows(scores)
    rows = table.set_index("candidate_id").loc[picked["candidate_id"]].reset_index()
    classifier = load_classifier(model_path, classifier_versions())
    predicted = np.array([CONTEXT_CLASSES.index(c) for c in picked["predicted_class"]], dtype=int)
    contributions = contributions_of(classifier, rows.assign(cnn_score=rows["cnn_p50"]), predicted)
    cards = []
    for i, (candidate, visit) in enumerate(zip(rows["candidate_id"], rows["visit"], strict=True)):
        store = open_store(shards[visit])
        row = int(np.flatnonzero(store.column("candidate_id").astype(str) == candidate)[0])
        score = picked.iloc[i]
        cards.append({
            "stamps": store.read_stamps(slice(row, row + 1))[0], "channels": list(store.channels),
            "title": f"{candidate} (true: {CONTEXT_CLASS_NAMES[score['true_class']]})",
            "classes": list(CONTEXT_CLASSES),
            "p_mean": score[[f"p_{c}" for c in CONTEXT_CLASSES]].to_numpy(float),
            "p_std": score[[f"p_{c}_std" for c in CONTEXT_CLASSES]].to_numpy(float),
            "contributions": {} if contributions is None else dict(zip(classifier.columns, contributions[i],
                                                                        strict=True)),
        })
    return cards


def write_context_figures(table_path: str, scores_path: str, metrics_path: str, model_path: str,
                          shard_paths: Mapping[str, str], out_paths: Mapping[str, str]) -> None:
    """Draw an experiment's figures (:data:`bayesrb.figures.names.CONTEXT_FIGURES`) from its outputs.

    Parameters
    ----------
    table_path, scores_path, metrics_path, model_path : str
        The context table and the experiment's scores, metrics and classifier.
    shard_paths : mapping of str to str
        Each visit's stamp shard, for the stamps of the explanation cards.
    out_paths : mapping of str to str
        Output file of each figure name.
    """
    metrics = json.loads(read_text(metrics_path, "context metrics"))
    scores, table = pd.read_parquet(scores_path), pd.read_parquet(table_path)
    test = scores[scores["split"] == "test"]
    y_test = np.array([CONTEXT_CLASSES.index(c) for c in test["true_class"]], dtype=int)
    proba = test[[f"p_{c}" for c in CONTEXT_CLASSES]].to_numpy(float)
    proba = proba / proba.sum(axis=1, keepdims=True)
    loss, curves, intervals = _censoring_inputs(metrics["censoring"])
    importance = dict(metrics["feature_importance"])
    figures = {
        "confusion": lambda: context_figures.confusion_matrices(
            np.array(metrics["splits"]["test"]["confusion_matrix"]), CONTEXT_CLASSES),
        "censoring": lambda: context_figures.censoring_curves(loss, curves, intervals=intervals),
        "importance": lambda: context_figures.feature_importance(list(importance),
                                                                 np.array(list(importance.values()))),
        "reliability": lambda: context_figures.class_reliability(class_reliability(y_test, proba, CONTEXT_CLASSES)),
        "cards": lambda: context_figures.explanation_cards(_cards(scores, table, model_path, shard_paths)),
    }
    for name, draw in figures.items():
        save_figure(draw(), out_paths[name])


def _percent(metric: dict | None) -> str:
    """``value [lo, hi]`` in per cent of a metric with a 95 % interval, or ``-``."""
    if not metric or metric.get("value") is None:
        return "-"
    low, high = metric["ci95"]
    return f"{100 * metric['value']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _recall(metrics: dict, code: str) -> str:
    recall = metrics["per_class"][code]["recall"]
    return "-" if recall is None else f"{100 * recall:.1f}"


def _summary_row(name: str, metrics: dict) -> list[str]:
    test = metrics["splits"].get("test")
    if test is None:
        return [name, metrics["settings"]["kind"], metrics["settings"]["features"], *["-"] * 8]
    half = metrics["censoring"].get(ALL_FAMILIES, {}).get("0.5", {}).get("accuracy")
    recalls = [r for r in (test["per_class"][c]["recall"] for c in CONTEXT_CLASSES) if r is not None]
    real_bogus = metrics["real_bogus"]
    return [name, metrics["settings"]["kind"], metrics["settings"]["features"], str(test["n"]),
            _percent(test["accuracy"]), _percent(test["balanced_accuracy"]), _recall(test, "sn"),
            f"{100 * min(recalls):.1f}" if recalls else "-", _percent(half),
            f"{100 * real_bogus['context_accuracy']:.1f} / {100 * real_bogus['cnn_accuracy']:.1f}",
            _calibration_cell(metrics["calibration"])]


def _calibration_cell(calibration: dict) -> str:
    """Test mean per-class ECE in %, raw → calibrated, and the temperature."""
    test = calibration.get("test")
    if test is None:
        return "-"
    return (f"{100 * test['raw']['mean_ece']:.2f} → {100 * test['calibrated']['mean_ece']:.2f} "
            f"(T = {calibration['temperature']:.2f})")


def write_context_summary(metrics_paths: Mapping[str, str], out_path: str) -> str:
    """Write a Markdown table comparing the context experiments on the test split.

    Parameters
    ----------
    metrics_paths : mapping of str to str
        Each experiment's ``metrics.json``.
    out_path : str

    Returns
    -------
    str
        The table.
    """
    header = ["experiment", "model", "features", "test n", "accuracy % [95 %]", "balanced accuracy %",
              "SN recall %", "lowest class recall %", "accuracy at 50 % catalogue loss",
              "real-bogus acc. % (1-P(bs) / CNN)", "mean class ECE %, raw → calibrated"]
    rows = [_summary_row(name, json.loads(read_text(path, "context metrics"))) for name, path in metrics_paths.items()]
    text = ("# Context classifier, test split\n\nTest split: the CNN's held-out fields and the context fields kept for "
            "testing; intervals are bootstrap 95 %.\n\n" + markdown_table(header, rows) + "\n")
    with atomic_path(out_path) as tmp:
        Path(tmp).write_text(text)
    return text


def classify_store(model_path: str, store_path: str, scores_path: str,
                   catalogues: Mapping[str, list[CatalogueSource]], out_path: str, *, science_path: str = "",
                   orbits_path: str = "", history_path: str = "", template_path: str = "",
                   settings: FeatureSettings | None = None, max_bad_orbit_fraction: float = 0.01) -> pd.DataFrame:
    """Classify every candidate of a stamp store with a trained context classifier, to Parquet.

    Parameters
    ----------
    model_path : str
        A classifier written by the ``context_experiment`` rule (``results/context/NAME/model.joblib``).
    store_path : str
        A stamp shard or any stamp store with the candidates' meta (``ra``, ``dec``, ``mag``, ``mag_err``,
        ``snr``, ``fwhm``, ``sign``, ``flags``, ``stamp_flags``) and ``pixel_scale_arcsec`` in its attributes.
    scores_path : str
        The CNN's scores of the store (``bayesrb score``).
    catalogues : mapping of str to list of CatalogueSource
        The catalogues of each family; a family left out is missing for every candidate.
    out_path : str
        Parquet of :func:`bayesrb.context.experiment.class_probabilities`.
    science_path, orbits_path : str
        The visit's science FITS and an MPCORB file, for the predicted minor planets; without them the minor-planet
        features are missing.
    history_path : str
        A table (ECSV, CSV or FITS) of the survey's detections in other visits, columns ``ra``, ``dec`` (deg) and
        ``mjd``, for the history features (:func:`bayesrb.context.table.history_from_detections`, at the visit's
        epoch from ``science_path``, which it needs). Without it the history is 0, as for a field's first visit.
    template_path : str
        The visit's template FITS, for the reference-image features (:func:`bayesrb.context.visit.
        visit_reference_sources`: resampled onto the grid of ``science_path``, which it needs). Without it they
        are missing.
    settings : FeatureSettings, optional
    max_bad_orbit_fraction : float

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    bayesrb.errors.BadInputError
        Naming the file: a store without ``pixel_scale_arcsec``, scores missing candidates, a history table without
        ``ra``, ``dec`` or ``mjd`` or with non-finite values, a history without the science FITS, or a bad
        catalogue.
    """
    settings = settings or FeatureSettings()
    classifier = load_classifier(model_path, classifier_versions())
    store = open_store(store_path)
    meta = store.read_meta(("candidate_id", "ra", "dec", "mag", "fwhm"))
    if "pixel_scale_arcsec" not in store.attrs:
        raise BadInputError(store_path, "has no pixel_scale_arcsec attribute (needed for the FWHM in arcsec)")
    if history_path and not science_path:
        raise BadInputError(history_path, "the history needs the visit's epoch: give its science FITS as well")
    if template_path and not science_path:
        raise BadInputError(template_path, "the reference sources need the science grid: give its science FITS too")
    observation = read_visit_observation(science_path) if science_path else None
    planets = None
    if observation is not None and orbits_path:
        planets = predicted_minor_planets(observation, orbits_path, max_bad_orbit_fraction)
    reference = None
    if template_path:
        reference = visit_reference_sources(science_path, template_path, "", settings.reference_threshold_sigma)
        meta["x"], meta["y"] = read_image(science_path).wcs.all_world2pix(meta["ra"], meta["dec"], 0)
    families = read_families(catalogues, "--catalogue")
    features = candidate_features(meta, float(store.attrs["pixel_scale_arcsec"]), families, planets, settings,
                                  reference)
    table = pd.DataFrame({"candidate_id": meta["candidate_id"].astype(str)} | features
                         | _history(meta, observation, history_path, settings.history_radius_arcsec))
    scores = cnn_features(read_scores(scores_path, CNN_SCORE_COLUMNS))
    table = table.merge(scores, on="candidate_id", how="left", validate="1:1")
    if table["cnn_mean"].isna().any():
        raise BadInputError(scores_path, f"has no score for {int(table['cnn_mean'].isna().sum())} of the store's "
                                         f"{len(table)} candidates; score the store with `bayesrb score` first")
    probabilities = class_probabilities(classifier, table)
    write_parquet(probabilities, out_path)
    return probabilities
