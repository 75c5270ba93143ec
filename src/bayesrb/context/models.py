"""The context classifiers: flat XGBoost, the random-forest baseline and a hierarchy of XGBoost nodes.

Every classifier predicts probabilities over all of :data:`bayesrb.vocabulary.CONTEXT_CLASSES` (a class absent from
the training rows gets probability 0). Training rows are weighted so that every class weighs the same in total.

The CNN's score enters as a *draw* from its posterior, ``cnn_score``, beside the posterior's width (``cnn_std``,
``cnn_p05``, ``cnn_p95``, ``cnn_bald``); the stored posterior quantiles (:data:`CNN_DRAWS`, equally weighted) stand
for five draws. Each training candidate appears once with one draw picked at random (:func:`with_random_cnn_draw`);
a prediction is evaluated at all five (:func:`with_cnn_draws`) and is their mean, its spread their standard
deviation, so each class probability carries the CNN's uncertainty.
"""

import dataclasses
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import xgboost
from scipy.optimize import minimize_scalar
from sklearn.ensemble import RandomForestClassifier

from bayesrb.atomic import atomic_path, write_json
from bayesrb.context.catalogues import FAMILIES
from bayesrb.context.features import DETECTION_COLUMNS, HOST_COLUMNS, MP_COLUMNS, family_columns
from bayesrb.context.reference import REFERENCE_COLUMNS
from bayesrb.context.settings import ClassifierSettings
from bayesrb.errors import BadInputError
from bayesrb.vocabulary import CONTEXT_BOGUS, CONTEXT_CLASSES, MINOR_PLANET

__all__ = ["CNN_DRAWS", "CNN_COLUMNS", "HISTORY_COLUMNS", "LATITUDE_COLUMNS", "HIERARCHY", "feature_columns",
           "family_feature_columns", "with_cnn_draws", "with_random_cnn_draw", "censor", "balanced_weights",
           "ContextClassifier", "tempered", "mean_log_loss", "fit_temperature",
           "fit_classifier", "predict_with_spread", "feature_importance", "contributions", "save_classifier",
           "load_classifier"]

#: The CNN posterior quantiles (columns of the table) that stand for posterior draws of ``cnn_score``.
CNN_DRAWS: tuple[str, ...] = ("cnn_p05", "cnn_p16", "cnn_p50", "cnn_p84", "cnn_p95")
#: The CNN features the classifier sees.
CNN_COLUMNS: tuple[str, ...] = ("cnn_score", "cnn_std", "cnn_p05", "cnn_p95", "cnn_bald")
#: History features: detections at the position in earlier visits of the field.
HISTORY_COLUMNS: tuple[str, ...] = ("history_n_earlier", "history_days_since_first")
#: Position features.
LATITUDE_COLUMNS: tuple[str, ...] = ("abs_ecliptic_lat_deg", "abs_galactic_lat_deg")

#: The hierarchy: per node, its groups of classes, each with the child node that splits it further (None: a leaf).
HIERARCHY: dict[str, tuple[tuple[tuple[str, ...], str | None], ...]] = {
    "real_bogus": (((CONTEXT_BOGUS,), None), (tuple(c for c in CONTEXT_CLASSES if c != CONTEXT_BOGUS), "real")),
    "real": (((MINOR_PLANET,), None), (("vs",), None), (("nt", "sn"), "extragalactic"), (("or",), None)),
    "extragalactic": ((("nt",), None), (("sn",), None)),
}


def family_feature_columns(family: str) -> tuple[str, ...]:
    """The columns one catalogue family fills (the galaxies also fill the host features)."""
    return family_columns(family) + (HOST_COLUMNS if family == "galaxies" else ())


def feature_columns(features: str) -> tuple[str, ...]:
    """The feature columns of a feature set (``all``, ``catalogue`` or ``cnn``; see ``ClassifierSettings``)."""
    catalogue = (*(c for f in FAMILIES for c in family_feature_columns(f)), *MP_COLUMNS, *LATITUDE_COLUMNS)
    common = (*DETECTION_COLUMNS, *REFERENCE_COLUMNS, *HISTORY_COLUMNS)
    chosen = {"all": (*common, *catalogue, *CNN_COLUMNS), "catalogue": (*common, *catalogue),
              "cnn": (*common, *CNN_COLUMNS)}
    return chosen[features]


def with_cnn_draws(table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """One copy of ``table`` per CNN draw, ``cnn_score`` set to that draw; and each copy's source row.

    Returns
    -------
    pandas.DataFrame
        ``len(CNN_DRAWS) * len(table)`` rows, draw-major.
    numpy.ndarray
        The row of ``table`` each row came from.
    """
    copies = [table.assign(cnn_score=table[draw].to_numpy()) for draw in CNN_DRAWS]
    return pd.concat(copies, ignore_index=True), np.tile(np.arange(len(table)), len(CNN_DRAWS))


def with_random_cnn_draw(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``table`` with ``cnn_score`` set to one of the :data:`CNN_DRAWS` per row, picked at random."""
    draws = table.loc[:, list(CNN_DRAWS)].to_numpy(float)
    picked = rng.integers(0, len(CNN_DRAWS), len(table))
    return table.assign(cnn_score=draws[np.arange(len(table)), picked])


def censor(table: pd.DataFrame, rates: dict[str, float], rng: np.random.Generator,
           together: bool = False) -> pd.DataFrame:
    """Remove whole catalogue families from random rows: their features become missing (NaN).

    Parameters
    ----------
    table : pandas.DataFrame
    rates : dict of str to float
        Per family, the probability that a row loses it.
    rng : numpy.random.Generator
    together : bool
        Whether one draw per row removes every family in ``rates`` at once (at the first family's rate) instead
        of one draw per family.

    Returns
    -------
    pandas.DataFrame
        A censored copy.
    """
    censored = table.copy()
    shared = rng.uniform(size=len(table)) if together else None
    rate_all = next(iter(rates.values()), 0.0)
    for family, rate in rates.items():
        lost = shared < rate_all if together else rng.uniform(size=len(table)) < rate
        censored.loc[lost, list(family_feature_columns(family))] = np.nan
    return censored


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Row weights that give every class present the same total weight (mean weight 1)."""
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return (len(y) / (len(classes) * counts))[inverse]


@dataclass
class _Flat:
    """A multi-class model over the classes present in its training rows, reporting all of ``classes``."""

    model: object
    present: np.ndarray  # indices into ``classes`` of the model's outputs
    n_classes: int

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        proba = np.zeros((len(x), self.n_classes))
        if len(self.present) == 1:
            proba[:, self.present[0]] = 1.0
        else:
            proba[:, self.present] = self.model.predict_proba(x)
        return proba


def _fit_flat(x: pd.DataFrame, y: np.ndarray, settings: ClassifierSettings, n_classes: int, seed: int,
              threads: int, kind: str, validation: tuple[pd.DataFrame, np.ndarray] | None = None) -> _Flat:
    """One multi-class model, class-balanced; XGBoost stops early on ``validation`` (rows of trained classes)."""
    present = np.unique(y)
    if len(present) == 1:
        return _Flat(None, present, n_classes)
    encoded = np.searchsorted(present, y)
    if kind == "random_forest":
        model = RandomForestClassifier(n_estimators=settings.n_estimators, max_depth=None, n_jobs=threads,
                                       random_state=seed, min_samples_leaf=2)
        model.fit(x, encoded, sample_weight=balanced_weights(y))
        return _Flat(model, present, n_classes)
    stop = _early_stopping_set(validation, present) if settings.early_stopping_rounds else None
    model = xgboost.XGBClassifier(n_estimators=settings.n_estimators, max_depth=settings.max_depth,
                                  learning_rate=settings.learning_rate, tree_method="hist", n_jobs=threads,
                                  random_state=seed, subsample=0.8, colsample_bytree=0.8,
                                  early_stopping_rounds=settings.early_stopping_rounds if stop else None)
    if stop is None:
        model.fit(x, encoded, sample_weight=balanced_weights(y))
    else:
        x_val, y_val = stop
        model.fit(x, encoded, sample_weight=balanced_weights(y), eval_set=[(x_val, np.searchsorted(present, y_val))],
                  sample_weight_eval_set=[balanced_weights(y_val)], verbose=False)
    return _Flat(model, present, n_classes)


def _early_stopping_set(validation: tuple[pd.DataFrame, np.ndarray] | None,
                        present: np.ndarray) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The validation rows whose class the model learns; None if they hold fewer than two such classes."""
    if validation is None:
        return None
    x_val, y_val = validation
    known = np.isin(y_val, present)
    if len(np.unique(y_val[known])) < 2:
        return None
    return x_val[known], y_val[known]


@dataclass
class ContextClassifier:
    """A trained context classifier.

    Attributes
    ----------
    settings : ClassifierSettings
    columns : tuple of str
        The feature columns, in the order the models read them.
    nodes : dict of str to object
        The flat model (key ``flat``) or one per :data:`HIERARCHY` node.
    temperature : float
        Calibration: probabilities are raised to ``1 / temperature`` and renormalised (1: as the trees give them;
        see :func:`fit_temperature`).
    """

    settings: ClassifierSettings
    columns: tuple[str, ...]
    nodes: dict
    temperature: float = 1.0

    def predict_proba(self, table: pd.DataFrame) -> np.ndarray:
        """``(n, K)`` probabilities over :data:`CONTEXT_CLASSES` for the rows of ``table`` (one CNN draw each)."""
        return tempered(self.raw_proba(table), self.temperature)

    def raw_proba(self, table: pd.DataFrame) -> np.ndarray:
        """:meth:`predict_proba` before calibration."""
        x = table.loc[:, list(self.columns)].astype(float)
        if "flat" in self.nodes:
            return self.nodes["flat"].predict_proba(x)
        return _hierarchy_proba(self.nodes, x)


def tempered(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities raised to ``1 / temperature``, renormalised per row (zeros stay zero; the order is kept)."""
    if temperature == 1.0:
        return proba
    powered = np.power(proba, 1.0 / temperature)
    return powered / powered.sum(axis=1, keepdims=True)


def mean_log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true classes (clipped at 1e-12)."""
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))))


def fit_temperature(classifier: ContextClassifier, table: pd.DataFrame, y: np.ndarray) -> float:
    """The temperature that minimises the log-loss of the CNN-draw-averaged probabilities of ``table``.

    Temperature scaling (one parameter, searched in [0.1, 10] on a log scale) keeps every row's ranking of the
    classes, so accuracy and recalls do not change; only the confidence does.
    """
    expanded, _ = with_cnn_draws(table)
    raw = classifier.raw_proba(expanded).reshape(len(CNN_DRAWS), len(table), len(CONTEXT_CLASSES))

    def loss(log_t: float) -> float:
        return mean_log_loss(y, tempered(raw.reshape(-1, len(CONTEXT_CLASSES)), np.exp(log_t))
                             .reshape(raw.shape).mean(axis=0))

    best = minimize_scalar(loss, bounds=(np.log(0.1), np.log(10.0)), method="bounded")
    return float(np.exp(best.x))


def _group_of(classes: np.ndarray, node: str) -> np.ndarray:
    """Index of the group of ``node`` holding each class code; -1 for a class that does not reach the node."""
    index = np.full(len(classes), -1)
    for g, (group, _) in enumerate(HIERARCHY[node]):
        index[np.isin(classes, group)] = g
    return index


def _hierarchy_proba(nodes: dict, x: pd.DataFrame) -> np.ndarray:
    """P(leaf) as the product of the node probabilities down the tree."""
    proba = np.zeros((len(x), len(CONTEXT_CLASSES)))

    def descend(node: str, reach: np.ndarray) -> None:
        node_proba = nodes[node].predict_proba(x)
        for g, (group, child) in enumerate(HIERARCHY[node]):
            if child is None:
                proba[:, CONTEXT_CLASSES.index(group[0])] = reach * node_proba[:, g]
            else:
                descend(child, reach * node_proba[:, g])

    descend("real_bogus", np.ones(len(x)))
    return proba


def fit_classifier(table: pd.DataFrame, y: np.ndarray, settings: ClassifierSettings, *, seed: int,
                   threads: int = 1, validation: tuple[pd.DataFrame, np.ndarray] | None = None) -> ContextClassifier:
    """Train a context classifier on the rows of ``table`` (already censored and expanded into CNN draws).

    Parameters
    ----------
    table : pandas.DataFrame
        The feature columns of ``settings.features`` (others are ignored).
    y : numpy.ndarray
        Class index into :data:`CONTEXT_CLASSES` of each row.
    settings : ClassifierSettings
    seed : int
    threads : int
    validation : tuple of (pandas.DataFrame, numpy.ndarray), optional
        Validation rows and their classes: each XGBoost model stops adding trees once their class-balanced
        log-loss has not improved for ``settings.early_stopping_rounds`` rounds, and keeps its best round.

    Returns
    -------
    ContextClassifier
    """
    columns = feature_columns(settings.features)
    x = table.loc[:, list(columns)].astype(float)
    val = None if validation is None else (validation[0].loc[:, list(columns)].astype(float), validation[1])
    if settings.kind != "hierarchical":
        flat = _fit_flat(x, y, settings, len(CONTEXT_CLASSES), seed, threads, settings.kind, val)
        return ContextClassifier(settings, columns, {"flat": flat})
    codes = np.asarray(CONTEXT_CLASSES)[y]
    val_codes = None if val is None else np.asarray(CONTEXT_CLASSES)[val[1]]
    nodes = {}
    for node, groups in HIERARCHY.items():
        group = _group_of(codes, node)
        rows = group >= 0
        node_val = None
        if val is not None:
            val_group = _group_of(val_codes, node)
            node_val = (val[0][val_group >= 0], val_group[val_group >= 0])
        nodes[node] = _fit_flat(x[rows], group[rows], settings, len(groups), seed, threads, "xgboost", node_val)
    return ContextClassifier(settings, columns, nodes)


def predict_with_spread(classifier: ContextClassifier, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities averaged over the CNN draws, and their standard deviation over the draws.

    Returns
    -------
    mean, std : numpy.ndarray
        ``(n, K)`` each, over :data:`CONTEXT_CLASSES`; the std is 0 for a classifier without CNN features.
    """
    expanded, _ = with_cnn_draws(table)
    proba = classifier.predict_proba(expanded).reshape(len(CNN_DRAWS), len(table), len(CONTEXT_CLASSES))
    return proba.mean(axis=0), proba.std(axis=0)


def _node_importance(node: _Flat, columns: tuple[str, ...]) -> np.ndarray:
    if node.model is None:
        return np.zeros(len(columns))
    if isinstance(node.model, RandomForestClassifier):
        return node.model.feature_importances_
    gains = node.model.get_booster().get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    return np.array([gains.get(name, 0.0) / total for name in columns])


def feature_importance(classifier: ContextClassifier) -> dict[str, float]:
    """Each feature's share of the total gain (XGBoost) or impurity decrease (random forest), largest first.

    A hierarchy's node shares are summed and renormalised.
    """
    shares = sum(_node_importance(node, classifier.columns) for node in classifier.nodes.values())
    shares = shares / (shares.sum() or 1.0)
    order = np.argsort(-shares, kind="stable")
    return {classifier.columns[i]: float(shares[i]) for i in order}


def contributions(classifier: ContextClassifier, table: pd.DataFrame, class_index: np.ndarray) -> np.ndarray | None:
    """Per-row feature contributions (SHAP values of XGBoost's ``pred_contribs``) to the log-odds of a class.

    Parameters
    ----------
    classifier : ContextClassifier
    table : pandas.DataFrame
        Rows to explain (one CNN draw each).
    class_index : numpy.ndarray
        The class (index into :data:`CONTEXT_CLASSES`) to explain per row.

    Returns
    -------
    numpy.ndarray or None
        ``(n, len(classifier.columns))``; None for classifiers other than flat XGBoost, or a class it never saw.
    """
    node = classifier.nodes.get("flat")
    if node is None or not isinstance(node.model, xgboost.XGBClassifier):
        return None
    x = xgboost.DMatrix(table.loc[:, list(classifier.columns)].astype(float))
    contribs = node.model.get_booster().predict(x, pred_contribs=True)  # (n, K_present, F + 1)
    position = np.searchsorted(node.present, class_index)
    known = node.present[np.minimum(position, len(node.present) - 1)] == class_index
    if not known.all():
        return None
    return contribs[np.arange(len(table)), position, :-1]


def save_classifier(classifier: ContextClassifier, path: str | os.PathLike, versions: dict[str, str]) -> None:
    """Write a classifier (joblib) and, beside it as ``<path>.json``, the versions and settings it was made with."""
    with atomic_path(path) as tmp:
        joblib.dump(classifier, tmp)
    write_json({"versions": versions, "columns": list(classifier.columns),
                "settings": dataclasses.asdict(classifier.settings)}, f"{path}.json")


def load_classifier(path: str | os.PathLike, versions: dict[str, str]) -> ContextClassifier:
    """Read a classifier written by :func:`save_classifier`.

    Raises
    ------
    BadInputError
        Naming the file: missing, unreadable, or made with other versions of the packages in ``versions`` (a
        pickled model is only trusted by the versions that wrote it).
    """
    try:
        made_with = json.loads(Path(f"{path}.json").read_text())["versions"]
        classifier = joblib.load(path)
    except (OSError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise BadInputError(path, f"not a context classifier written by bayesrb ({error!r})") from error
    differ = {k: (made_with.get(k), v) for k, v in versions.items() if made_with.get(k) != v}
    if differ:
        raise BadInputError(path, f"written with other package versions (written, installed): {differ}; retrain it")
    if not isinstance(classifier, ContextClassifier):
        raise BadInputError(path, f"holds a {type(classifier).__name__}, not a context classifier")
    return classifier
