"""The evaluation table of an experiment: the data set's candidate metadata joined with its posterior scores.

One row per candidate of the data set, in store order, with the meta columns of :data:`META_COLUMNS` that the data
set has (``label``, ``kind``, ``split``, detected ``mag``, host offsets, ...) and the score columns of
:data:`bayesrb.model.score.SCORE_COLUMNS`. Metrics (:mod:`bayesrb.evaluation.metrics`) and the data of the figures
(:mod:`bayesrb.evaluation.curves`, :mod:`bayesrb.evaluation.selection`) are computed from it; the workflow writes it
as ``results/experiments/<name>/evaluation.parquet`` for the notebook and for users' own analyses.
"""

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayesrb.dataset.store import open_dataset
from bayesrb.errors import BadInputError
from bayesrb.evaluation.metrics import HELD_OUT_SPLITS
from bayesrb.model.scoring import read_scores

__all__ = ["META_COLUMNS", "ALWAYS_PRESENT", "evaluation_table", "held_out", "require_columns"]

#: Data-set meta columns carried into the table (those the data set has).
META_COLUMNS: tuple[str, ...] = (
    "candidate_id", "visit", "field", "split", "kind", "label", "label_source", "mag", "mag_err", "snr", "fwhm",
    "host_mag", "host_offset_arcsec", "host_offset_hlr", "mp_mag", "truth_kind", "truth_mag",
)
#: Columns every table has: NaN where the data set lacks them (e.g. no host offsets without augmentation).
ALWAYS_PRESENT: tuple[str, ...] = ("mag", "host_offset_arcsec", "host_offset_hlr")
_SHOWN = 5


def evaluation_table(store_path: str | os.PathLike, scores_path: str | os.PathLike) -> pd.DataFrame:
    """Join a data set's candidate metadata with an experiment's scores.

    Parameters
    ----------
    store_path : str or os.PathLike
        The data-set store (:mod:`bayesrb.dataset.store`).
    scores_path : str or os.PathLike
        The experiment's ``scores.parquet`` (:func:`bayesrb.model.score.score_store`) of the same data set.

    Returns
    -------
    pandas.DataFrame
        One row per candidate, in store order; the columns of :data:`ALWAYS_PRESENT` are there even if the data
        set lacks them (then NaN).

    Raises
    ------
    bayesrb.errors.BadInputError
        If the scores file cannot be read, repeats a candidate, or misses candidates of the data set (naming the
        first ones).
    """
    dataset = open_dataset(store_path)
    meta = pd.DataFrame({name: dataset.meta[name] for name in META_COLUMNS if name in dataset.meta})
    for name in ALWAYS_PRESENT:
        if name not in meta:
            meta[name] = np.nan
    scores = read_scores(scores_path).set_index("candidate_id")
    missing = ~meta["candidate_id"].isin(scores.index)
    if missing.any():
        raise BadInputError(scores_path, f"{missing.sum()} of the data set's {len(meta)} candidates are not scored, "
                                         f"e.g. {meta['candidate_id'][missing].head(_SHOWN).tolist()}; score the "
                                         f"data set {store_path} again")
    return meta.join(scores, on="candidate_id")


def held_out(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the splits never used for training or model selection (``test`` and ``eval``)."""
    return table[table["split"].isin(HELD_OUT_SPLITS)]


def require_columns(table: pd.DataFrame, names: Sequence[str], what: str = "evaluation table") -> None:
    """Check that ``table`` has the named columns.

    Parameters
    ----------
    table : pandas.DataFrame
    names : sequence of str
        The columns needed.
    what : str, optional
        What the table is, for the message (e.g. ``"evaluation table of 'baseline'"``).

    Raises
    ------
    ValueError
        Naming the missing columns and those the table has.
    """
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {missing}; it has {sorted(table.columns)}")


