"""Workflow steps of the alert rules (``workflow/rules/alerts.smk``): ingest, score, compare, draw galleries.

Each function is the whole job of one rule; the library functions it calls are in :mod:`bayesrb.alerts.ingest`
and :mod:`bayesrb.alerts.report`.
"""

import logging
import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from bayesrb.alerts.ingest import ingest_alerts
from bayesrb.alerts.report import SURVEY_CHECKS, compare_with_survey, format_comparison, gallery_rows
from bayesrb.atomic import atomic_path, write_json
from bayesrb.evaluation.metrics import json_safe
from bayesrb.figures.style import save_figure
from bayesrb.figures.uncertainty import uncertain_candidates
from bayesrb.model.data import StampSource

__all__ = ["compare", "galleries", "ingest"]

log = logging.getLogger(__name__)

#: Gallery name -> what labels each row's first stamp.
GALLERY_REASONS = {"score": "rank", "uncertainty": "std"}


def ingest(files: Sequence[str | os.PathLike], out: str | os.PathLike, *, survey: str) -> None:
    """Ingest one survey's alert files into one store; log the summary (:func:`bayesrb.alerts.ingest.ingest_alerts`)."""
    log.info("%s", ingest_alerts(files, out, survey=survey))


def compare(scores_path: str | os.PathLike, json_path: str | os.PathLike, markdown_path: str | os.PathLike, *,
            survey: str, threshold: float, n_bootstrap: int, seed: int) -> None:
    """Write the simulated-to-real check of one survey's alerts' scores as JSON (NaN as null) and Markdown."""
    comparison = compare_with_survey(pd.read_parquet(scores_path), survey=survey, threshold=threshold,
                                     n_bootstrap=n_bootstrap, seed=seed)
    write_json(json_safe(comparison), json_path)
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(format_comparison(comparison))
    log.info("%s", format_comparison(comparison))


def galleries(scores_path: str | os.PathLike, store_path: str | os.PathLike, outputs: dict[str, str], *,
              survey: str, rows: int, threshold: float) -> None:
    """Draw the alert galleries: stamps beside posterior score distributions, by score and by uncertainty.

    Parameters
    ----------
    scores_path, store_path : str or os.PathLike
        The alerts' scores table and stamp store.
    outputs : dict of str to str
        Gallery name (``score``, ``uncertainty``; :func:`bayesrb.alerts.report.gallery_rows`) -> figure path.
    survey : str
        The alerts' survey (a key of :data:`bayesrb.alerts.report.SURVEY_CHECKS`): what each alert's title says.
    rows : int
        Alerts per gallery.
    threshold : float
        The score at which an alert is called real (drawn dashed).
    """
    scores = pd.read_parquet(scores_path)
    source = StampSource(store_path)
    for name, picks in gallery_rows(scores, rows).items():
        picked = _gallery_table(scores, picks, GALLERY_REASONS[name], SURVEY_CHECKS[survey].title)
        stamps = {str(scores["candidate_id"].iat[i]): source.read_stamps(slice(i, i + 1))[0] for i in picks}
        save_figure(uncertain_candidates(picked, stamps, source.channels, threshold), outputs[name])


def _gallery_table(scores: pd.DataFrame, picks: np.ndarray, reason: str,
                   title: Callable[[tuple], str]) -> pd.DataFrame:
    """The picked alerts with what the figure writes beside them: rank or spread, and the survey's ``title``."""
    picked = scores.iloc[picks].copy()
    rank = scores["score_mean"].rank(ascending=False, method="first").astype(int).iloc[picks]
    picked["reason"] = ([f"rank {r}/{len(scores)}" for r in rank] if reason == "rank"
                        else [f"std {s:.2f}" for s in picked["score_std"]])
    picked["kind"] = "alert"
    picked["title"] = [title(row) for row in picked.itertuples(index=False)]
    return picked
