"""Catalogue families for the context features: stars, variable stars, AGN and galaxies, each an ensemble of catalogues.

A *family* is one kind of astrophysical source that can explain a candidate. Several catalogues may describe it
(an all-sky catalogue and a deeper survey of part of the sky, say): they are ensembled into one list of sources, a
later catalogue's entry dropped when an earlier catalogue has a source within :data:`DUPLICATE_RADIUS_ARCSEC` of it,
and the family covers the union of its catalogues' footprints. A catalogue's footprint is the list of circles in its
``coverage`` meta (``[{"ra": deg, "dec": deg, "radius_deg": deg}, ...]``); a catalogue without one covers the sky.
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

from bayesrb.errors import BadInputError
from bayesrb.labels.catalogues import numeric_column, read_catalogue

__all__ = ["FAMILIES", "NO_SOURCE_MAG", "DUPLICATE_RADIUS_ARCSEC", "CatalogueSource", "Family", "unit_vectors",
           "chord_radius", "read_family", "read_families"]

#: The catalogue families, in the order of the feature table's columns.
FAMILIES: tuple[str, ...] = ("stars", "variables", "agn", "galaxies")
#: Magnitude given where no source lies within the search radius (fainter than any catalogue or template source).
NO_SOURCE_MAG = 30.0
#: Entries of two catalogues of one family closer than this are one source.
DUPLICATE_RADIUS_ARCSEC = 1.0
#: Columns every catalogue needs; galaxies also need ``hlr_arcsec`` (``axis_ratio`` and ``pa_deg`` are optional).
REQUIRED_COLUMNS = ("ra", "dec", "mag")
GALAXY_COLUMNS = ("hlr_arcsec",)


@dataclass(frozen=True)
class CatalogueSource:
    """One catalogue of a family: a table file and an optional row selection.

    Attributes
    ----------
    path : str
        ECSV, CSV or FITS table with ``ra``, ``dec`` (deg) and ``mag``.
    where : dict of str to str
        Keep only the rows whose column equals the value, e.g. ``{"class": "star"}`` for the stars of a
        catalogue that lists stars and galaxies.
    """

    path: str
    where: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """The ensembled sources of one family and its footprint.

    Attributes
    ----------
    name : str
    ra, dec, mag : numpy.ndarray
        Source positions (deg) and magnitudes.
    hlr_arcsec, axis_ratio, pa_deg : numpy.ndarray
        Half-light radius, axis ratio b/a and position angle of the major axis (deg East of North); NaN, 1 and 0
        where a catalogue does not give them.
    coverage : numpy.ndarray or None
        ``(n, 3)`` circles ``ra, dec, radius_deg`` of the footprint; None when some catalogue covers the sky.
    """

    name: str
    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    hlr_arcsec: np.ndarray
    axis_ratio: np.ndarray
    pa_deg: np.ndarray
    coverage: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ra)

    def covers(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Whether each position ``(ra, dec)`` (deg) lies inside the family's footprint."""
        if self.coverage is None:
            return np.ones(len(ra), dtype=bool)
        if len(self.coverage) == 0 or len(ra) == 0:
            return np.zeros(len(ra), dtype=bool)
        centres = unit_vectors(self.coverage[:, 0], self.coverage[:, 1])
        cosines = unit_vectors(ra, dec) @ centres.T
        return np.any(cosines >= np.cos(np.radians(self.coverage[:, 2])), axis=1)


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """``(n, 3)`` unit vectors of positions ``(ra, dec)`` in degrees."""
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def chord_radius(radius_arcsec: float) -> float:
    """The chord between two unit vectors ``radius_arcsec`` apart on the sky."""
    return 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)


def _coverage(table: Table, path: str) -> np.ndarray | None:
    circles = table.meta.get("coverage")
    if circles is None:
        return None
    try:
        return np.array([[float(c["ra"]), float(c["dec"]), float(c["radius_deg"])] for c in circles]).reshape(-1, 3)
    except (KeyError, TypeError, ValueError) as error:
        raise BadInputError(path, "meta 'coverage' must be a list of {ra, dec, radius_deg} circles in degrees, "
                                  f"got {circles!r}") from error


def _selected(table: Table, source: CatalogueSource) -> Table:
    for column, value in source.where.items():
        if column not in table.colnames:
            raise BadInputError(source.path, f"missing column {column!r} named in the selection {source.where}; "
                                             f"have {table.colnames}")
        table = table[np.asarray(table[column]).astype(str) == str(value)]
    return table


def _shape_columns(table: Table, path: str, galaxies: bool) -> dict[str, np.ndarray]:
    n = len(table)
    if not galaxies:
        return {"hlr_arcsec": np.full(n, np.nan), "axis_ratio": np.ones(n), "pa_deg": np.zeros(n)}
    shape = {"hlr_arcsec": numeric_column(table, "hlr_arcsec"),
             "axis_ratio": numeric_column(table, "axis_ratio") if "axis_ratio" in table.colnames else np.ones(n),
             "pa_deg": numeric_column(table, "pa_deg") if "pa_deg" in table.colnames else np.zeros(n)}
    bad = ~(np.isfinite(shape["hlr_arcsec"]) & (shape["hlr_arcsec"] > 0) & (shape["axis_ratio"] > 0)
            & (shape["axis_ratio"] <= 1) & np.isfinite(shape["pa_deg"]))
    if bad.any():
        raise BadInputError(path, f"{int(bad.sum())} galaxy row(s) with a non-positive or non-finite hlr_arcsec, an "
                                  f"axis_ratio outside (0, 1] or a non-finite pa_deg (or a value that is not a "
                                  f"number), first in data row "
                                  f"{int(np.flatnonzero(bad)[0]) + 1}")
    return shape


def _read_source(source: CatalogueSource, galaxies: bool,
                 tables: dict[str, Table]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    if source.path not in tables:
        tables[source.path] = read_catalogue(source.path, REQUIRED_COLUMNS)
    table = _selected(tables[source.path], source)
    missing = [c for c in GALAXY_COLUMNS if galaxies and c not in table.colnames]
    if missing:
        raise BadInputError(source.path, f"missing column(s) {missing} that galaxies need; have {table.colnames}")
    columns = {name: np.asarray(table[name], float) for name in REQUIRED_COLUMNS}
    return columns | _shape_columns(table, source.path, galaxies), _coverage(table, source.path)


def _new_sources(kept: list[dict[str, np.ndarray]], columns: dict[str, np.ndarray]) -> np.ndarray:
    """Rows of ``columns`` with no already kept source within :data:`DUPLICATE_RADIUS_ARCSEC`."""
    if not kept or len(columns["ra"]) == 0:
        return np.ones(len(columns["ra"]), dtype=bool)
    earlier = unit_vectors(np.concatenate([k["ra"] for k in kept]), np.concatenate([k["dec"] for k in kept]))
    if len(earlier) == 0:
        return np.ones(len(columns["ra"]), dtype=bool)
    distance, _ = cKDTree(earlier).query(unit_vectors(columns["ra"], columns["dec"]))
    return distance > chord_radius(DUPLICATE_RADIUS_ARCSEC)


def read_family(name: str, sources: Sequence[CatalogueSource], tables: dict[str, Table] | None = None) -> Family:
    """Read and ensemble the catalogues of one family.

    Parameters
    ----------
    name : str
        One of :data:`FAMILIES`; ``galaxies`` catalogues must give ``hlr_arcsec``.
    sources : sequence of CatalogueSource
        The family's catalogues, most trusted first: an entry of a later one that duplicates an earlier one is
        dropped.
    tables : dict of str to astropy.table.Table, optional
        Catalogues already read, by path; those read here are added (a file that serves several families or
        selections is read once).

    Returns
    -------
    Family

    Raises
    ------
    BadInputError
        Naming the file: missing, unreadable, a missing column, non-finite coordinates, a bad galaxy shape or a
        malformed coverage.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown catalogue family {name!r}; use one of {list(FAMILIES)}")
    kept, footprints, tables = [], [], {} if tables is None else tables
    for source in sources:
        columns, coverage = _read_source(source, name == "galaxies", tables)
        fresh = _new_sources(kept, columns)
        kept.append({key: values[fresh] for key, values in columns.items()})
        footprints.append(coverage)
    merged = {key: np.concatenate([k[key] for k in kept]) if kept else np.array([], float)
              for key in (*REQUIRED_COLUMNS, "hlr_arcsec", "axis_ratio", "pa_deg")}
    all_sky = any(f is None for f in footprints)
    coverage = None if all_sky else (np.concatenate(footprints) if footprints else np.empty((0, 3)))
    return Family(name=name, coverage=coverage, **merged)


def read_families(sources: Mapping[str, Sequence[CatalogueSource]],
                  where: str | os.PathLike = "context.catalogues") -> dict[str, Family]:
    """Read every family of :data:`FAMILIES` that ``sources`` names; a family with no catalogue is left out.

    Parameters
    ----------
    sources : mapping of str to sequence of CatalogueSource
        The catalogues of each family.
    where : str
        The config key the mapping came from, for error messages.

    Returns
    -------
    dict of str to Family
    """
    unknown = sorted(set(sources) - set(FAMILIES))
    if unknown:
        raise BadInputError(where, f"unknown catalogue family(ies) {unknown}; use {list(FAMILIES)}")
    tables: dict[str, Table] = {}
    return {name: read_family(name, sources[name], tables) for name in FAMILIES if sources.get(name)}
