"""Human labels: read a CSV of vetted candidates and let its labels override the automatic ones.

The CSV has a header line and the columns ``candidate_id`` and ``label`` (``0``/``1`` or ``bogus``/``real``,
any case) and optionally ``kind``; other columns are ignored.
"""

import csv
import io
import logging
import os
from collections.abc import Iterable

import numpy as np
from astropy.table import Table

from bayesrb.errors import BadInputError
from bayesrb.textfiles import read_text
from bayesrb.vocabulary import BOGUS, CLASS_NAMES, HUMAN, REAL

__all__ = ["read_human_labels", "apply_human_labels"]

log = logging.getLogger(__name__)


_LABEL_WORDS = {str(BOGUS): BOGUS, str(REAL): REAL, CLASS_NAMES[BOGUS]: BOGUS, CLASS_NAMES[REAL]: REAL}
_REQUIRED = ("candidate_id", "label")
_SHOWN = 5  # ids or lines quoted in a message


def read_human_labels(path: str | os.PathLike) -> Table:
    """Read a human-labels CSV.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.

    Returns
    -------
    astropy.table.Table
        Columns ``candidate_id`` (str), ``label`` (int8: 1 real, 0 bogus) and ``kind`` (str, ``""`` where the CSV
        gives none), one row per line of the file, in file order.

    Raises
    ------
    bayesrb.errors.BadInputError
        If the file is missing or empty, lacks a required column, has an empty id or a label other than
        0/1/real/bogus (the message gives the line numbers), or names a candidate twice.
    """
    rows = _read_rows(path)
    ids = [row["candidate_id"].strip() for _, row in rows]
    labels = [_LABEL_WORDS.get(row["label"].strip().lower()) for _, row in rows]
    bad = [f"line {line}: {row['label']!r}" for (line, row), label in zip(rows, labels, strict=True) if label is None]
    if bad:
        raise BadInputError(path, f"label must be 0, 1, real or bogus; bad value(s) at {_first(bad)}")
    empty = [str(line) for (line, _), cid in zip(rows, ids, strict=True) if not cid]
    if empty:
        raise BadInputError(path, f"empty candidate_id at line(s) {_first(empty)}")
    _check_unique(path, ids, [line for line, _ in rows])
    kinds = [(row.get("kind") or "").strip() for _, row in rows]
    return Table({"candidate_id": np.array(ids, dtype=str), "label": np.array(labels, dtype=np.int8),
                  "kind": np.array(kinds, dtype=str)})


def apply_human_labels(metas: Iterable[dict[str, np.ndarray]], human: Table) -> dict:
    """Overwrite automatic labels with human ones, in place.

    Each meta dict needs ``candidate_id``, ``label`` (-1 = unlabelled), ``kind`` and ``label_source`` columns.
    For every candidate the CSV names, ``label`` becomes the human label, ``label_source`` becomes ``"human"``
    and ``kind`` becomes the CSV's kind if it gives one; a candidate without an automatic label and without a
    CSV kind gets :data:`bayesrb.vocabulary.HUMAN`. The counts are logged; conflicts with automatic labels and ids
    found in no meta are logged as warnings.

    Parameters
    ----------
    metas : iterable of dict of str to numpy.ndarray
        Meta columns of each visit (changed in place).
    human : astropy.table.Table
        As returned by :func:`read_human_labels`.

    Returns
    -------
    dict
        ``n_human`` (rows in the CSV), ``applied`` (candidates given a human label), ``conflicts`` (applied where
        the automatic label differed), ``newly_labelled`` (applied where there was no automatic label),
        ``unknown`` (ids in no meta) and ``unknown_examples`` (the first few of them, sorted).
    """
    row_of = {cid: i for i, cid in enumerate(np.asarray(human["candidate_id"], dtype=str))}
    labels = np.asarray(human["label"], dtype=np.int8)
    kinds = np.asarray(human["kind"], dtype=str)
    found = np.zeros(len(human), dtype=bool)
    applied = conflicts = newly = 0
    for meta in metas:
        hit = np.array([cid in row_of for cid in meta["candidate_id"]], dtype=bool)
        rows = np.array([row_of[cid] for cid in meta["candidate_id"][hit]], dtype=int)
        old = meta["label"][hit]
        found[rows] = True
        applied += len(rows)
        conflicts += int(np.sum((old >= 0) & (old != labels[rows])))
        newly += int(np.sum(old < 0))
        meta["label"][hit] = labels[rows]
        given = kinds[rows]
        meta["kind"] = _set_text(meta["kind"], hit, np.where(given != "", given,
                                                             np.where(old < 0, HUMAN, meta["kind"][hit])))
        meta["label_source"] = _set_text(meta["label_source"], hit, "human")
    unknown = sorted(np.asarray(human["candidate_id"], dtype=str)[~found].tolist())
    log.info("human labels: %d of %d applied, %d newly labelled", applied, len(human), newly)
    if conflicts:
        log.warning("%d human label(s) disagree with the automatic label; the human label was kept", conflicts)
    if unknown:
        log.warning("%d human-labelled candidate id(s) are in no stamp shard and were ignored, e.g. %s",
                    len(unknown), ", ".join(unknown[:_SHOWN]))
    return {"n_human": len(human), "applied": applied, "conflicts": conflicts, "newly_labelled": newly,
            "unknown": len(unknown), "unknown_examples": unknown[:_SHOWN]}


def _set_text(column: np.ndarray, mask: np.ndarray, values) -> np.ndarray:
    """Return a copy of the text ``column``, widened if needed, with ``values`` written where ``mask`` is true."""
    values = np.asarray(values, dtype=str)
    column = column.astype(np.result_type(column.dtype, values.dtype))
    column[mask] = values
    return column


def _read_rows(path: str | os.PathLike) -> list[tuple[int, dict[str, str]]]:
    """Return ``(line number, row)`` for every data line of the CSV, after checking the header."""
    reader = csv.DictReader(io.StringIO(read_text(path, "human-labels CSV")))
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise BadInputError(path, f"human-labels CSV lacks column(s) {missing}; its header is {header}")
    reader.fieldnames = header
    return [(reader.line_num, {k: (v or "") for k, v in row.items() if k is not None}) for row in reader]


def _check_unique(path, ids: list[str], lines: list[int]) -> None:
    """Raise BadInputError naming the first few ids that occur more than once, with their lines."""
    first_line: dict[str, int] = {}
    repeats = []
    for cid, line in zip(ids, lines, strict=True):
        if cid in first_line:
            repeats.append(f"{cid!r} (lines {first_line[cid]} and {line})")
        first_line.setdefault(cid, line)
    if repeats:
        raise BadInputError(path, f"{len(repeats)} duplicate candidate_id(s): {_first(repeats)}")


def _first(items: list[str]) -> str:
    """Join the first few items, noting how many more there are."""
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more
