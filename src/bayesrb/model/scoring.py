"""The settings of scoring and the reader of the scores files that scoring writes.

Changing the settings rescores without retraining. A light module (no JAX), so that the command line can show the
defaults, and evaluation and the context classifier can read scores, without loading the model stack. The
defaults equal those of the config's ``scoring:`` section (``tests/test_settings.py`` checks).
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bayesrb.errors import BadInputError

#: Repeated candidate ids shown in an error message.
_SHOWN = 5


@dataclass(frozen=True)
class ScoringSettings:
    """How a trained model scores a stamp store.

    Parameters
    ----------
    n_samples : int
        Posterior (or dropout) samples per candidate.
    batch_size : int
        Candidates per scoring step.
    """

    n_samples: int = 100
    batch_size: int = 1024


def read_scores(path: str | os.PathLike, columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a scores file of ``bayesrb score`` (:func:`bayesrb.model.score.score_store`), checked.

    Parameters
    ----------
    path : str or os.PathLike
        The Parquet file.
    columns : sequence of str
        Columns the caller needs besides ``candidate_id``.

    Returns
    -------
    pandas.DataFrame
        Every column of the file, ``candidate_id`` as strings, one row per candidate.

    Raises
    ------
    bayesrb.errors.BadInputError
        Naming the file: unreadable (missing, not Parquet), without ``candidate_id`` or one of ``columns``, or
        scoring a candidate twice.
    """
    try:
        scores = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise BadInputError(path, f"cannot read the scores: {error}") from error
    missing = [name for name in ("candidate_id", *columns) if name not in scores]
    if missing:
        raise BadInputError(path, f"lacks the column(s) {missing}: not a scores file of `bayesrb score`")
    scores["candidate_id"] = scores["candidate_id"].astype(str)
    repeated = scores["candidate_id"][scores["candidate_id"].duplicated()].unique()
    if len(repeated):
        raise BadInputError(path, f"{len(repeated)} candidate id(s) scored twice, e.g. {sorted(repeated)[:_SHOWN]}")
    return scores
