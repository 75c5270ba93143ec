"""The Earth-orientation (IERS) table of the ephemeris: built once per run, read fast by every job.

The observer's position on the Earth needs UT1-UTC and the polar motion at the instant of a visit. astropy builds
its table of them (``IERS_Auto``) by parsing two text files that ship with astropy, which dominates the start-up
of a short job that computes an ephemeris (README: *What the workflow does*). :func:`write_earth_orientation`
saves the columns of that table that astropy interpolates, exactly, to a FITS binary table;
:func:`earth_orientation_from` installs the saved table for a block of code, so that ephemerides come out
bit-identical to those computed with astropy's own table, for the cost of reading one small binary file. Neither
ever downloads anything (:func:`offline_iers`).
"""

import importlib.metadata
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from astropy.io import fits
from astropy.table import QTable
from astropy.utils import iers

from bayesrb.atomic import atomic_path
from bayesrb.errors import BadInputError

__all__ = ["INTERPOLATED_COLUMNS", "earth_orientation_from", "iers_data_version", "offline_iers",
           "read_earth_orientation", "write_earth_orientation"]

#: The columns astropy's IERS interpolation reads: UT1-UTC, polar motion and CIP offsets with their source flags.
INTERPOLATED_COLUMNS = ("MJD", "UT1_UTC", "UT1Flag", "PM_x", "PM_y", "PolPMFlag", "dX_2000A", "dY_2000A", "NutFlag")
#: Header keywords of the table's metadata that ``IERS_Auto`` reads (where its predictions start).
_META_KEYWORDS = {"predictive_index": "PREDIDX", "predictive_mjd": "PREDMJD"}


@contextmanager
def offline_iers() -> Iterator[None]:
    """Use astropy's bundled IERS and leap-second tables and never try to download newer ones.

    Beyond the bundled tables astropy extrapolates UT1-UTC and polar motion (and may warn); at worst that moves the
    observer by a few hundred metres, i.e. well below a milliarcsecond of parallax for a main-belt object.
    """
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("auto_max_age", None):
        yield


def iers_data_version() -> str:
    """The version of the IERS data that astropy bundles (``astropy-iers-data``): a new one changes the table."""
    return importlib.metadata.version("astropy-iers-data")


def write_earth_orientation(path: str | os.PathLike) -> None:
    """Write the Earth-orientation table astropy uses offline (bundled IERS-A with IERS-B values) to a FITS file.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file to write (atomically).
    """
    with offline_iers():
        table = iers.IERS_Auto.open()
    subset = QTable([table[name] for name in INTERPOLATED_COLUMNS], names=INTERPOLATED_COLUMNS)
    hdu = fits.table_to_hdu(subset)
    for key, keyword in _META_KEYWORDS.items():
        hdu.header[keyword] = table.meta[key]
    with atomic_path(path) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)


def read_earth_orientation(path: str | os.PathLike) -> iers.IERS_Auto:
    """Read a table written by :func:`write_earth_orientation`.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file.

    Returns
    -------
    astropy.utils.iers.IERS_Auto
        The table, ready for ``astropy.utils.iers.earth_orientation_table.set``.

    Raises
    ------
    bayesrb.errors.BadInputError
        If the file cannot be read, lacks a column or keyword, or holds a non-finite or unsorted MJD.
    """
    try:
        table = QTable.read(path, format="fits", hdu=1, character_as_bytes=False, mask_invalid=False)
        meta = {key: table.meta[keyword] for key, keyword in _META_KEYWORDS.items()}
    except (OSError, KeyError, IndexError, ValueError) as error:
        raise BadInputError(path, f"not an Earth-orientation table written by bayesrb ({error})") from error
    missing = [name for name in INTERPOLATED_COLUMNS if name not in table.colnames]
    if missing:
        raise BadInputError(path, f"Earth-orientation table lacks the column(s) {missing}")
    mjd = np.asarray(table["MJD"].value)
    if len(mjd) < 2 or not np.all(np.isfinite(mjd)) or np.any(np.diff(mjd) <= 0):
        raise BadInputError(path, "Earth-orientation table: MJD must be finite and increasing, with >= 2 rows")
    table.meta.clear()
    table.meta.update(meta)
    return iers.IERS_Auto(table)


@contextmanager
def earth_orientation_from(path: str | os.PathLike | None) -> Iterator[None]:
    """Use the Earth-orientation table of ``path`` for every ephemeris computed inside the block.

    Parameters
    ----------
    path : str, os.PathLike or None
        A table written by :func:`write_earth_orientation`; None: astropy's own (read from its text files when
        first needed; the same values, more slowly).

    Raises
    ------
    bayesrb.errors.BadInputError
        If the table cannot be read (:func:`read_earth_orientation`).
    """
    if path is None:
        yield
        return
    with iers.earth_orientation_table.set(read_earth_orientation(path)):
        yield
