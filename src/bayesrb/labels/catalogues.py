"""Reading the external catalogues and lists that the labelling steps use (ECSV, CSV or FITS tables)."""

import os
from pathlib import Path

import numpy as np
from astropy.table import Table

from bayesrb.errors import BadInputError

_FORMATS = {".ecsv": "ascii.ecsv", ".csv": "ascii.csv", ".fits": "fits", ".fit": "fits"}


def read_catalogue(path: str | os.PathLike, required: tuple[str, ...] = ("ra", "dec")) -> Table:
    """Read a catalogue and check it has the columns a step needs, with finite values.

    Parameters
    ----------
    path : str or os.PathLike
        ECSV, CSV or FITS table; positions ``ra``, ``dec`` in degrees.
    required : tuple of str
        Columns that must be present and finite in every row.

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    BadInputError
        Naming the file: missing, unreadable, unknown format, a missing column or non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "catalogue not found")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadInputError(path, f"unknown catalogue format {path.suffix!r}; use one of {sorted(_FORMATS)}")
    try:
        table = Table.read(path, format=fmt)
    except Exception as error:  # astropy raises many types for malformed tables
        raise BadInputError(path, f"unreadable catalogue ({type(error).__name__}: {error})") from error
    missing = [c for c in required if c not in table.colnames]
    if missing:
        raise BadInputError(path, f"missing column(s) {missing}; have {table.colnames}")
    for column in required:
        values = numeric_column(table, column)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise BadInputError(path, f"column {column!r} has {len(bad)} non-numeric or non-finite value(s), "
                                      f"first in data row {bad[0] + 1}")
        table[column] = values
    return table


def numeric_column(table: Table, column: str) -> np.ndarray:
    """A table column as floats: NaN where a value is masked, missing or not a number (e.g. text)."""
    return np.array([_as_float(v) for v in np.ma.filled(np.ma.asarray(table[column], dtype=object), None)])


def _as_float(value) -> float:
    """``value`` as a float, NaN if it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def positions(tables: list[Table]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``ra``, ``dec`` (deg) of several catalogues."""
    if not tables:
        return np.array([]), np.array([])
    return (np.concatenate([np.asarray(t["ra"], float) for t in tables]),
            np.concatenate([np.asarray(t["dec"], float) for t in tables]))
