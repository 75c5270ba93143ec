"""Scores of ingested alerts, joined to their packets, and their comparison with the survey's own scores.

:func:`score_alerts` scores an alert store (:mod:`bayesrb.alerts.ingest`) with a model of this project and writes
one row per alert: the posterior summaries of :func:`bayesrb.model.score.score_store` beside the packet's metadata.
:func:`compare_with_survey` is the simulated-to-real check: a model trained on simulated stamps, judged on real
candidates that no one here labelled, through what the packets carry:

- the rank correlation (Spearman) of the posterior mean with the survey's own real-bogus scores (ZTF's deep
  ``drb`` and older ``rb``; Rubin's ``reliability``), with a 95 % bootstrap interval over alerts;
- the AUROC of the posterior mean for the survey's first score ``>= 0.9`` (real to the survey) against ``< 0.1``
  (bogus to it), NaN with the two counts when either side is empty;
- the fraction of alerts called real (posterior mean at or above the threshold) with its 95 % Clopper-Pearson
  interval, in groups: every alert, real to the survey, known asteroids (ZTF: ``ssdistnr < 2"``; Rubin: associated
  with a solar-system object, ``ssObjectId``; such an object is real by construction), each sign of the
  subtraction, and stamps clipped at the CCD edge or with blank pixels.

What differs between surveys is in :data:`SURVEY_CHECKS`.
"""

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import spearmanr

from bayesrb.atomic import atomic_path, check_output_path
from bayesrb.errors import BadInputError
from bayesrb.evaluation.bootstrap import percentile_interval
from bayesrb.evaluation.metrics import binomial_interval, roc_auc
from bayesrb.markdown import markdown_table
from bayesrb.model.score import score_store
from bayesrb.stamps.extract import FLAG_EDGE, FLAG_NAN
from bayesrb.stamps.shard import read_shard_meta

__all__ = ["ASTEROID_RADIUS_ARCSEC", "GROUPS", "SURVEY_CHECKS", "SurveyCheck", "compare_with_survey",
           "format_comparison", "gallery_rows", "score_alerts"]

#: An alert within this distance of a known solar-system object's predicted position (``ssdistnr``) is that object.
ASTEROID_RADIUS_ARCSEC: float = 2.0
#: The survey's score above which an alert is real to the survey, and below which it is bogus, for the AUROC.
SURVEY_REAL, SURVEY_BOGUS = 0.9, 0.1

Selection = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class SurveyCheck:
    """What the check of one survey's alerts compares with.

    Attributes
    ----------
    scores : tuple of str
        The survey's own real-bogus scores (columns); the first is the one of the AUROC and of the group of alerts
        real to the survey.
    asteroids : tuple of (str, callable)
        Description and selection of the alerts of known solar-system objects.
    title : callable
        ``title(row)``: what a gallery writes above an alert's stamps (``row`` a scores table row's namedtuple).
    """

    scores: tuple[str, ...]
    asteroids: tuple[str, Selection]
    title: Callable[[tuple], str]


#: The check of each survey's alerts, by the store's ``survey`` attribute.
SURVEY_CHECKS: dict[str, SurveyCheck] = {
    "ZTF": SurveyCheck(
        scores=("drb", "rb"),
        asteroids=(f"known asteroids (ssdistnr < {ASTEROID_RADIUS_ARCSEC:g}\")",
                   lambda t: t["ssdistnr"] < ASTEROID_RADIUS_ARCSEC),
        title=lambda row: f"{row.objectId}, drb {row.drb:.2f}, isdiffpos {row.isdiffpos}"),
    "Rubin": SurveyCheck(
        scores=("reliability",),
        asteroids=("known solar-system objects (ssObjectId)", lambda t: t["ssObjectId"] != 0),
        title=lambda row: f"{row.diaObjectId or f'ss {row.ssObjectId}'}, reliability {row.reliability:.2f}, "
                          f"{'negative' if row.sign < 0 else 'positive'}"),
}

#: Groups of alerts whose fraction called real is reported, besides the survey's: name -> (description, selection).
GROUPS: dict[str, tuple[str, Selection]] = {
    "all": ("every alert", lambda t: pd.Series(True, index=t.index)),
    "positive": ("positive subtractions (brighter than the template)", lambda t: t["sign"] > 0),
    "negative": ("negative subtractions (fainter than the template)", lambda t: t["sign"] < 0),
    "edge": ("clipped at the CCD edge (padded)", lambda t: (t["stamp_flags"] & FLAG_EDGE) > 0),
    "blank_pixels": ("with NaN or blank pixels", lambda t: (t["stamp_flags"] & FLAG_NAN) > 0),
}


def score_alerts(model_dir: str | os.PathLike, store: str | os.PathLike, out: str | os.PathLike, *,
                 n_samples: int, batch_size: int, seed: int) -> int:
    """Score an alert store and write the summaries joined to the alerts' metadata, atomically.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model (:func:`bayesrb.model.score.load_model`); it must read 63x63 science, template and difference.
    store : str or os.PathLike
        The alert store (:func:`bayesrb.alerts.ingest.ingest_alerts`).
    out : str or os.PathLike
        The Parquet file: the score columns of :func:`~bayesrb.model.score.score_store` (and its schema metadata),
        then every meta column of the store, one row per alert in store order.
    n_samples, batch_size, seed
        As in :func:`~bayesrb.model.score.score_store`.

    Returns
    -------
    int
        Alerts scored.

    Raises
    ------
    bayesrb.errors.BadInputError
        As :func:`~bayesrb.model.score.score_store` (a model that reads other channels or another stamp size among
        them), or if the store's metadata cannot be read.
    """
    check_output_path(out)
    meta, _ = read_shard_meta(store)
    with tempfile.TemporaryDirectory(dir=Path(out).parent, prefix=".scores-") as scratch:
        n = score_store(model_dir, store, Path(scratch) / "scores.parquet", n_samples=n_samples,
                        batch_size=batch_size, seed=seed)
        scores = pq.read_table(Path(scratch) / "scores.parquet")
    if scores["candidate_id"].to_pylist() != [str(c) for c in meta["candidate_id"]]:
        raise BadInputError(store, "scores and metadata are not in the same order")  # a store changed meanwhile
    joined = scores
    for name, values in meta.items():
        if name != "candidate_id":
            joined = joined.append_column(name, pa.array(values))
    with atomic_path(out) as tmp:
        pq.write_table(joined, tmp)
    return n


def compare_with_survey(scores: pd.DataFrame, *, survey: str = "ZTF", threshold: float = 0.5,
                        n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """The simulated-to-real check of an alert scores table (see the module docstring).

    Parameters
    ----------
    scores : pandas.DataFrame
        :func:`score_alerts`'s table: ``score_mean``, ``sign``, ``stamp_flags`` and the survey's columns of
        :data:`SURVEY_CHECKS`.
    survey : str
        The alerts' survey, a key of :data:`SURVEY_CHECKS`.
    threshold : float
        Posterior mean at or above which an alert is called real.
    n_bootstrap : int
        Bootstrap resamples of alerts for the rank correlations' intervals.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``survey``, ``n_alerts``, ``threshold``; ``spearman`` per survey score: ``n``, ``value``, ``ci95``;
        ``auroc``: ``score`` (the survey's first), ``n_real``, ``n_bogus``, ``value``; ``called_real`` per group
        (:data:`GROUPS`, ``survey_real`` and ``known_asteroids``): ``description``, ``n``, ``k``, ``fraction``,
        ``ci95``, ``mean_score``. NaN where there is nothing to measure.
    """
    check = SURVEY_CHECKS[survey]
    main = check.scores[0]
    rng = np.random.default_rng(seed)
    real, bogus = scores[main] >= SURVEY_REAL, scores[main] < SURVEY_BOGUS
    both = pd.concat([scores.loc[real, "score_mean"], scores.loc[bogus, "score_mean"]])
    labels = np.r_[np.ones(real.sum(), int), np.zeros(bogus.sum(), int)]
    groups = {"all": GROUPS["all"], "survey_real": (f"{main} >= {SURVEY_REAL}", lambda t: t[main] >= SURVEY_REAL),
              "known_asteroids": check.asteroids, **GROUPS}
    return {
        "survey": survey,
        "n_alerts": len(scores),
        "threshold": threshold,
        "spearman": {name: _spearman(scores["score_mean"], scores[name], n_bootstrap, rng) for name in check.scores},
        "auroc": {"score": main, "n_real": int(real.sum()), "n_bogus": int(bogus.sum()),
                  "value": roc_auc(labels, both.to_numpy()) if real.any() and bogus.any() else float("nan")},
        "called_real": {name: _called_real(scores.loc[select(scores), "score_mean"].to_numpy(), threshold, text)
                        for name, (text, select) in groups.items()},
    }


def _spearman(score: pd.Series, survey: pd.Series, n_bootstrap: int, rng: np.random.Generator) -> dict:
    """Spearman's rank correlation of the two where both are known, with a bootstrap 95 % interval over alerts."""
    known = survey.notna().to_numpy()
    x, y = score.to_numpy()[known], survey.to_numpy()[known]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"n": int(len(x)), "value": float("nan"), "ci95": [float("nan"), float("nan")]}
    draws = [spearmanr(x[rows], y[rows]).statistic for rows in rng.integers(0, len(x), (n_bootstrap, len(x)))]
    return {"n": int(len(x)), "value": float(spearmanr(x, y).statistic), "ci95": percentile_interval(draws)}


def _called_real(score: np.ndarray, threshold: float, description: str) -> dict:
    """How many of ``score`` are at or above the threshold, with the fraction's 95 % Clopper-Pearson interval."""
    n, k = len(score), int(np.sum(score >= threshold))
    low, high = binomial_interval(k, n, confidence=0.95)
    return {"description": description, "n": n, "k": k, "fraction": k / n if n else float("nan"),
            "ci95": [float(low), float(high)], "mean_score": float(np.mean(score)) if n else float("nan")}


def format_comparison(comparison: dict) -> str:
    """:func:`compare_with_survey`'s result as Markdown: the rank correlations and AUROC, then a table of groups."""
    survey = comparison["survey"]
    lines = [f"# Simulated-to-real check: {comparison['n_alerts']} real {survey} alerts\n"]
    for name, entry in comparison["spearman"].items():
        low, high = entry["ci95"]
        lines.append(f"- Spearman rank correlation with {survey}'s {name}: {entry['value']:.3f} "
                     f"[{low:.3f}, {high:.3f}] over {entry['n']} alerts")
    auroc, main = comparison["auroc"], comparison["auroc"]["score"]
    lines.append(f"- AUROC, {main} >= {SURVEY_REAL} ({auroc['n_real']}) against {main} < {SURVEY_BOGUS} "
                 f"({auroc['n_bogus']}): "
                 + (f"{auroc['value']:.3f}" if np.isfinite(auroc["value"]) else "not measurable (a side is empty)"))
    lines.append(f"\nCalled real: posterior mean >= {comparison['threshold']:g}; 95 % Clopper-Pearson intervals.\n")
    rows = [[entry["description"], str(entry["n"]), str(entry["k"]), _percent(entry["fraction"]),
             f"[{_percent(entry['ci95'][0])}, {_percent(entry['ci95'][1])}]", f"{entry['mean_score']:.3f}"]
            for entry in comparison["called_real"].values()]
    lines.append(markdown_table(["alerts", "n", "called real", "%", "95 % interval", "mean score"], rows))
    return "\n".join(lines) + "\n"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}" if np.isfinite(value) else "n/a"


def gallery_rows(scores: pd.DataFrame, n: int) -> dict[str, np.ndarray]:
    """Rows of the scores table to show in the galleries.

    Parameters
    ----------
    scores : pandas.DataFrame
        With ``score_mean`` and ``score_std``.
    n : int
        Rows per gallery (fewer if there are fewer alerts).

    Returns
    -------
    dict of str to numpy.ndarray
        ``score``: rows spread evenly over the ranking by posterior mean, highest first; ``uncertainty``: the
        rows of largest posterior standard deviation, largest first.
    """
    by_score = np.argsort(-scores["score_mean"].to_numpy(), kind="stable")
    picks = np.unique(np.linspace(0, len(scores) - 1, min(n, len(scores))).round().astype(int))
    by_std = np.argsort(-scores["score_std"].to_numpy(), kind="stable")[:n]
    return {"score": by_score[picks], "uncertainty": by_std}  # the names of figures.names.ALERT_GALLERIES
