"""The context table: one row per candidate with its features, the CNN's posterior summaries, class and split.

**No leakage.** The CNN's scores are worth nothing as features of a candidate the CNN trained or early-stopped on,
so the fields of the CNN's ``train`` and ``val`` splits never enter the table (:func:`context_splits`). The context
classifier trains on fields reserved for it (never in the CNN's data set), split by field into its own ``train``,
``val`` and ``test``; the CNN's held-out fields (its ``test`` and ``eval`` splits) are context ``test`` too, so both
models are tested on sky neither saw.
"""

import io
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from bayesrb.context.catalogues import chord_radius, unit_vectors
from bayesrb.dataset.splits import assign_splits
from bayesrb.errors import BadInputError
from bayesrb.textfiles import read_text
from bayesrb.vocabulary import CONTEXT_CLASS_OF_TRUTH, CONTEXT_CLASSES

__all__ = ["CNN_TRAINING_SPLITS", "CNN_SCORE_COLUMNS", "EXCLUDED", "context_splits", "history_features",
           "history_from_detections", "classes_from_truth", "classes_from_labels", "read_context_labels",
           "cnn_features", "cnn_training_fields", "check_no_leakage"]

#: The CNN's splits whose fields it trained or early-stopped on: never in the context table.
CNN_TRAINING_SPLITS: tuple[str, ...] = ("train", "val")
#: The context split of a field that must not be used (a CNN training field).
EXCLUDED = "excluded"


def context_splits(cnn_split_fields: Mapping[str, Sequence[str]], context_field_counts: Mapping[str, int],
                   fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """The context split of every field.

    Parameters
    ----------
    cnn_split_fields : mapping of str to sequence of str
        The CNN data set's fields per split (its ``summary.json`` ``split_fields``).
    context_field_counts : mapping of str to int
        Candidates per field reserved for the context classifier (never in the CNN's data set).
    fractions : mapping of str to float
        Wanted fractions of the context fields' candidates in ``train``, ``val`` and ``test``.
    seed : int

    Returns
    -------
    dict of str to str
        ``train``, ``val`` or ``test`` per field; :data:`EXCLUDED` for the CNN's training fields.

    Raises
    ------
    ValueError
        If a context field is also in the CNN's data set, or the context fields cannot fill the splits.
    """
    in_cnn = {f: s for s, fields in cnn_split_fields.items() for f in fields}
    shared = sorted(set(in_cnn) & set(context_field_counts))
    if shared:
        raise ValueError(f"field(s) {shared} are both in the CNN's data set and reserved for the context classifier")
    splits = {f: (EXCLUDED if s in CNN_TRAINING_SPLITS else "test") for f, s in in_cnn.items()}
    if context_field_counts:
        splits |= assign_splits(context_field_counts, fractions, seed, eval_fields=set())
    return dict(sorted(splits.items()))


def history_features(field: np.ndarray, mjd: np.ndarray, ra: np.ndarray, dec: np.ndarray,
                     radius_arcsec: float) -> dict[str, np.ndarray]:
    """Detections at each candidate's position in earlier visits of its field.

    Parameters
    ----------
    field, mjd, ra, dec : numpy.ndarray
        Every candidate's field, visit epoch (MJD) and position (ICRS, deg): the detections that are searched
        are the candidates themselves.
    radius_arcsec : float
        How close an earlier detection must lie to count.

    Returns
    -------
    dict of str to numpy.ndarray
        ``history_n_earlier`` (detections of earlier visits within ``radius_arcsec``) and
        ``history_days_since_first`` (days since the first of them; 0 without any).
    """
    n = len(field)
    count, days = np.zeros(n), np.zeros(n)
    for name in np.unique(field):
        rows = np.flatnonzero(field == name)
        tree = cKDTree(unit_vectors(ra[rows], dec[rows]))
        for i, near in zip(rows, tree.query_ball_point(unit_vectors(ra[rows], dec[rows]),
                                                       chord_radius(radius_arcsec)), strict=True):
            earlier = mjd[rows[near]][mjd[rows[near]] < mjd[i]]
            count[i] = len(earlier)
            days[i] = mjd[i] - earlier.min() if len(earlier) else 0.0
    return {"history_n_earlier": count, "history_days_since_first": days}


def history_from_detections(ra: np.ndarray, dec: np.ndarray, mjd: float, detections: Mapping[str, np.ndarray],
                            radius_arcsec: float) -> dict[str, np.ndarray]:
    """:func:`history_features` of one visit's candidates from a table of the position's earlier detections.

    Parameters
    ----------
    ra, dec : numpy.ndarray
        The candidates' positions (deg).
    mjd : float
        The visit's epoch (MJD, UTC).
    detections : mapping of str to numpy.ndarray
        ``ra``, ``dec`` (deg) and ``mjd`` of detections from other visits (those after ``mjd`` are not counted).
    radius_arcsec : float
        How close a detection must be to count.

    Returns
    -------
    dict of str to numpy.ndarray
        ``history_n_earlier`` and ``history_days_since_first`` of each candidate.
    """
    n = len(ra)
    history = history_features(np.zeros(n + len(detections["ra"]), dtype=int),
                               np.concatenate([np.full(n, float(mjd)), detections["mjd"]]),
                               np.concatenate([ra, detections["ra"]]), np.concatenate([dec, detections["dec"]]),
                               radius_arcsec)
    return {name: values[:n] for name, values in history.items()}


def classes_from_truth(truth_kinds: np.ndarray) -> np.ndarray:
    """Class index of each candidate from the simulator's truth kind (unmatched and artefacts are bogus)."""
    codes = [CONTEXT_CLASS_OF_TRUTH.get(str(kind), CONTEXT_CLASSES[0]) for kind in truth_kinds]
    return np.array([CONTEXT_CLASSES.index(c) for c in codes], dtype=np.int64)


def read_context_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels CSV of ``candidate_id,class`` rows (every value a string, empty cells ``""``).

    Raises
    ------
    BadInputError
        Naming ``path``: missing, not UTF-8 text, or not a CSV with a header row.
    """
    text = read_text(path, "context labels CSV")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise BadInputError(path, f"not a CSV with a header row of candidate_id,class ({error})") from error


def classes_from_labels(path: str | os.PathLike, labels: pd.DataFrame, candidate_ids: np.ndarray) -> np.ndarray:
    """Class index of each candidate from a labels table (``candidate_id``, ``class``); -1 where unlabelled.

    Raises
    ------
    BadInputError
        Naming ``path``: missing columns, an empty or repeated ``candidate_id``, or a class that is not one of
        :data:`CONTEXT_CLASSES` (listing them).
    """
    missing = [c for c in ("candidate_id", "class") if c not in labels.columns]
    if missing:
        raise BadInputError(path, f"missing column(s) {missing}; a labels table has candidate_id,class")
    ids, classes = labels["candidate_id"].astype(str).str.strip(), labels["class"].astype(str).str.strip()
    if (ids == "").any():
        raise BadInputError(path, f"{int((ids == '').sum())} row(s) without a candidate_id")
    repeated = sorted(ids[ids.duplicated()].unique())
    if repeated:
        raise BadInputError(path, f"{len(repeated)} candidate_id(s) labelled more than once, e.g. {repeated[:5]}")
    unknown = sorted(set(classes) - set(CONTEXT_CLASSES))
    if unknown:
        raise BadInputError(path, f"unknown class(es) {unknown}; allowed: {list(CONTEXT_CLASSES)}")
    index = dict(zip(ids, classes, strict=True))
    return np.array([CONTEXT_CLASSES.index(index[c]) if c in index else -1 for c in candidate_ids.astype(str)])


#: The columns of a scores file that :func:`cnn_features` needs besides the other ``score_*`` summaries.
CNN_SCORE_COLUMNS = ("score_mean", "score_std", "bald")


def cnn_features(scores: pd.DataFrame) -> pd.DataFrame:
    """The CNN's posterior summaries as context features, keyed by ``candidate_id``.

    Parameters
    ----------
    scores : pandas.DataFrame
        A scores table of :func:`bayesrb.model.score.score_store`.

    Returns
    -------
    pandas.DataFrame
        ``candidate_id``, ``cnn_mean``, ``cnn_std``, ``cnn_p05`` ... ``cnn_p95`` and ``cnn_bald``.
    """
    renamed = {c: c.replace("score_", "cnn_") for c in scores.columns if c.startswith("score_")}
    return scores.rename(columns=renamed | {"bald": "cnn_bald"})[
        ["candidate_id", *renamed.values(), "cnn_bald"]].astype({"candidate_id": str})


def cnn_training_fields(cnn_split_fields: Mapping[str, Sequence[str]]) -> set[str]:
    """The fields the CNN trained or early-stopped on (its :data:`CNN_TRAINING_SPLITS`), from its split -> fields."""
    return {f for s in CNN_TRAINING_SPLITS for f in cnn_split_fields.get(s, ())}


def check_no_leakage(table: pd.DataFrame, cnn_split_fields: Mapping[str, Sequence[str]]) -> None:
    """Raise ValueError if any row of ``table`` lies in a field the CNN trained or early-stopped on."""
    leaked = sorted(set(table["field"].astype(str)) & cnn_training_fields(cnn_split_fields))
    if leaked:
        raise ValueError(f"the context table holds candidates of the CNN's training field(s) {leaked}: their CNN "
                         "scores would leak the CNN's training labels")
