"""Context features of candidates, from catalogues, the minor-planet ephemeris and the detection; never the truth.

Per catalogue family (:data:`bayesrb.context.catalogues.FAMILIES`) a candidate gets the separation of the nearest
and second-nearest source, the nearest source's magnitude, the number of sources within a radius and a three-state
availability ``{family}_state``: 1 matched (a source within the match radius), 0 no match, NaN not covered (no
catalogue of the family covers the position). Outside a family's footprint all its features are NaN, the missing
values that the censored training teaches the classifier to handle. Where nothing lies within the search radius,
separations are the search radius and magnitudes :data:`NO_SOURCE_MAG`, so that "nothing there" is a value, not a
gap.

Host features come from the galaxy family: the host is the galaxy of smallest *directional light radius* distance
``dDLR = separation / DLR`` (Sullivan et al. 2006; Gupta et al. 2016), where DLR is the radius of the galaxy's
half-light ellipse in the direction of the candidate.
"""

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from scipy.spatial import cKDTree

from bayesrb.context.catalogues import FAMILIES, NO_SOURCE_MAG, Family, chord_radius, unit_vectors
from bayesrb.context.reference import ReferenceSources, reference_features
from bayesrb.context.settings import FeatureSettings

__all__ = ["NO_SOURCE_MAG", "NO_HOST_DDLR", "family_columns", "HOST_COLUMNS",
           "neighbour_features", "directional_light_radius", "host_features", "centroid_error_arcsec",
           "minor_planet_features",
           "sky_latitudes", "detection_features", "candidate_features"]

#: dDLR given where no galaxy lies within the host search radius.
NO_HOST_DDLR = 99.0
#: Host features; NaN where no galaxy catalogue covers the candidate.
HOST_COLUMNS: tuple[str, ...] = ("host_sep_arcsec", "host_ddlr", "host_hlr_arcsec", "host_mag_minus_candidate",
                                 "host_offset_significance")
#: Minor-planet features; NaN where no ephemeris was given.
MP_COLUMNS: tuple[str, ...] = ("mp_sep_arcsec", "mp_mag")
#: Detection features, from the stamp store's meta.
DETECTION_COLUMNS: tuple[str, ...] = ("mag", "mag_err", "snr", "fwhm_arcsec", "sign", "flags", "stamp_flags")
_NEIGHBOUR_SUFFIXES = ("sep1_arcsec", "sep2_arcsec", "mag1", "count", "state")


def family_columns(family: str) -> tuple[str, ...]:
    """The feature columns of one catalogue family, e.g. ``stars_sep1_arcsec``."""
    return tuple(f"{family}_{suffix}" for suffix in _NEIGHBOUR_SUFFIXES)


def _chord_to_arcsec(chord: np.ndarray) -> np.ndarray:
    return np.degrees(2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))) * 3600.0


def neighbour_features(family: Family, ra: np.ndarray, dec: np.ndarray, settings: FeatureSettings) -> dict:
    """Nearest-neighbour features of candidates at ``(ra, dec)`` (deg) in one family.

    Parameters
    ----------
    family : Family
        The family's ensembled catalogue and footprint.
    ra, dec : numpy.ndarray
        The candidates' positions (ICRS, deg).
    settings : FeatureSettings
        ``search_radius_arcsec`` (nearest and second-nearest neighbours) and ``count_radius_arcsec`` (counts).

    Returns
    -------
    dict of str to numpy.ndarray
        The columns of :func:`family_columns`; NaN outside the family's footprint.
    """
    n, names = len(ra), family_columns(family.name)
    sep1, sep2, mag1, count, state = (np.full(n, np.nan) for _ in names)
    covered = family.covers(ra, dec)
    if covered.any():
        sep1[covered], sep2[covered] = settings.search_radius_arcsec, settings.search_radius_arcsec
        mag1[covered], count[covered] = NO_SOURCE_MAG, 0.0
    if covered.any() and len(family):
        points = unit_vectors(ra[covered], dec[covered])
        tree = cKDTree(unit_vectors(family.ra, family.dec))
        chord, index = tree.query(points, k=2, distance_upper_bound=chord_radius(settings.search_radius_arcsec))
        found = np.isfinite(chord)
        separation = np.where(found, _chord_to_arcsec(np.where(found, chord, 0.0)), settings.search_radius_arcsec)
        sep1[covered], sep2[covered] = separation[:, 0], separation[:, 1]
        mag1[covered] = np.where(found[:, 0], family.mag[np.minimum(index[:, 0], len(family) - 1)], NO_SOURCE_MAG)
        count[covered] = tree.query_ball_point(points, chord_radius(settings.count_radius_arcsec), return_length=True)
    state[covered] = (sep1[covered] <= settings.match_radius_arcsec).astype(float)
    return dict(zip(names, (sep1, sep2, mag1, count, state), strict=True))


def directional_light_radius(east_arcsec, north_arcsec, hlr_arcsec, axis_ratio, pa_deg) -> np.ndarray:
    """Radius (arcsec) of a galaxy's half-light ellipse in the direction of offsets ``(east, north)``.

    The ellipse has the area of the circle of radius ``hlr_arcsec`` (semi-axes ``hlr / sqrt(q)`` and
    ``hlr * sqrt(q)``, as a shear that preserves area) and its major axis at position angle ``pa_deg`` East of
    North.
    """
    q = np.asarray(axis_ratio, float)
    a, b = hlr_arcsec / np.sqrt(q), hlr_arcsec * np.sqrt(q)
    position_angle = np.arctan2(east_arcsec, north_arcsec)
    phi = position_angle - np.radians(pa_deg)
    return a * b / np.hypot(b * np.cos(phi), a * np.sin(phi))


def _offsets_arcsec(ra, dec, ra0, dec0) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane offsets (east, north) of ``(ra, dec)`` from ``(ra0, dec0)``, arcsec (small separations)."""
    east = ((ra - ra0 + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec0)) * 3600.0
    return east, (dec - dec0) * 3600.0


def host_features(galaxies: Family, ra: np.ndarray, dec: np.ndarray, mag: np.ndarray,
                  centroid_error_arcsec: np.ndarray, settings: FeatureSettings) -> dict:
    """Host-galaxy features: the galaxy of smallest dDLR within the host search radius.

    Parameters
    ----------
    galaxies : Family
    ra, dec, mag : numpy.ndarray
        The candidates' positions (deg) and magnitudes.
    centroid_error_arcsec : numpy.ndarray
        Each candidate's position uncertainty (:func:`centroid_error_arcsec`): a nuclear transient's offset from
        its host's centre is consistent with zero at a few of these, a supernova's seldom.
    settings : FeatureSettings

    Returns
    -------
    dict of str to numpy.ndarray
        :data:`HOST_COLUMNS`: separation to the host (arcsec), dDLR, the host's half-light radius, the host's
        magnitude minus the candidate's, and the separation in units of the centroid error;
        :data:`NO_HOST_DDLR` and :data:`NO_SOURCE_MAG` where no galaxy is near (the separation is then the search
        radius), NaN outside the galaxies' footprint.
    """
    columns = _smallest_ddlr_host(galaxies, ra, dec, mag, settings)
    columns["host_offset_significance"] = columns["host_sep_arcsec"] / centroid_error_arcsec
    return columns


def _smallest_ddlr_host(galaxies: Family, ra: np.ndarray, dec: np.ndarray, mag: np.ndarray,
                        settings: FeatureSettings) -> dict:
    """:data:`HOST_COLUMNS` but the significance (see :func:`host_features`)."""
    n = len(ra)
    columns = {name: np.full(n, np.nan) for name in HOST_COLUMNS if name != "host_offset_significance"}
    covered = np.flatnonzero(galaxies.covers(ra, dec))
    columns["host_sep_arcsec"][covered] = settings.host_search_radius_arcsec
    columns["host_ddlr"][covered] = NO_HOST_DDLR
    columns["host_hlr_arcsec"][covered] = 0.0
    columns["host_mag_minus_candidate"][covered] = NO_SOURCE_MAG - mag[covered]
    if len(covered) == 0 or len(galaxies) == 0:
        return columns
    near = cKDTree(unit_vectors(galaxies.ra, galaxies.dec)).query_ball_point(
        unit_vectors(ra[covered], dec[covered]), chord_radius(settings.host_search_radius_arcsec))
    candidate = np.repeat(covered, [len(g) for g in near])
    galaxy = np.concatenate([np.asarray(g, dtype=int) for g in near]) if len(near) else np.array([], int)
    if len(galaxy) == 0:
        return columns
    east, north = _offsets_arcsec(ra[candidate], dec[candidate], galaxies.ra[galaxy], galaxies.dec[galaxy])
    dlr = directional_light_radius(east, north, galaxies.hlr_arcsec[galaxy], galaxies.axis_ratio[galaxy],
                                   galaxies.pa_deg[galaxy])
    ddlr = np.hypot(east, north) / dlr
    order = np.lexsort((ddlr, candidate))
    first = order[np.r_[True, candidate[order][1:] != candidate[order][:-1]]]
    host, rows = galaxy[first], candidate[first]
    columns["host_sep_arcsec"][rows] = np.hypot(east, north)[first]
    columns["host_ddlr"][rows] = ddlr[first]
    columns["host_hlr_arcsec"][rows] = galaxies.hlr_arcsec[host]
    columns["host_mag_minus_candidate"][rows] = galaxies.mag[host] - mag[rows]
    return columns


def centroid_error_arcsec(fwhm_arcsec: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """The position uncertainty of a detection, FWHM / S/N (arcsec; an S/N below 1 counts as 1).

    NaN (unknown) where the FWHM is not positive: the detector found no width (e.g. a single hot pixel).
    """
    fwhm = np.asarray(fwhm_arcsec, float)
    return np.where(fwhm > 0, fwhm, np.nan) / np.maximum(np.asarray(snr, float), 1.0)


def minor_planet_features(planets: Table | None, ra: np.ndarray, dec: np.ndarray, settings: FeatureSettings) -> dict:
    """Separation to and magnitude of the nearest predicted minor planet; NaN when ``planets`` is None.

    Parameters
    ----------
    planets : astropy.table.Table or None
        Predicted minor planets at the visit's epoch (``ra``, ``dec`` in deg, ``mag``), any magnitude.
    ra, dec : numpy.ndarray
        The candidates' positions (ICRS, deg).
    settings : FeatureSettings
        ``mp_search_radius_arcsec``: how far a planet may lie; beyond it the separation is that radius and the
        magnitude :data:`NO_SOURCE_MAG`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``mp_sep_arcsec`` and ``mp_mag``.
    """
    n = len(ra)
    if planets is None:
        return {name: np.full(n, np.nan) for name in MP_COLUMNS}
    separation, mag = np.full(n, settings.mp_search_radius_arcsec), np.full(n, NO_SOURCE_MAG)
    if len(planets) and n:
        chord, index = cKDTree(unit_vectors(planets["ra"], planets["dec"])).query(
            unit_vectors(ra, dec), distance_upper_bound=chord_radius(settings.mp_search_radius_arcsec))
        found = np.isfinite(chord)
        separation[found] = _chord_to_arcsec(chord[found])
        mag[found] = np.asarray(planets["mag"], float)[index[found]]
    return {"mp_sep_arcsec": separation, "mp_mag": mag}


def sky_latitudes(ra: np.ndarray, dec: np.ndarray) -> dict:
    """Absolute ecliptic and galactic latitudes (deg) of ``(ra, dec)`` (ICRS, deg)."""
    coords = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg, frame="icrs")
    return {"abs_ecliptic_lat_deg": np.abs(coords.barycentricmeanecliptic.lat.deg),
            "abs_galactic_lat_deg": np.abs(coords.galactic.b.deg)}


def detection_features(meta: dict[str, np.ndarray], pixel_scale_arcsec: float) -> dict:
    """The detection's own features (:data:`DETECTION_COLUMNS`) from a stamp store's meta."""
    features = {name: np.asarray(meta[name], float) for name in DETECTION_COLUMNS
                if name not in ("fwhm_arcsec",)}
    features["fwhm_arcsec"] = np.asarray(meta["fwhm"], float) * pixel_scale_arcsec
    return {name: features[name] for name in DETECTION_COLUMNS}


def candidate_features(meta: dict[str, np.ndarray], pixel_scale_arcsec: float, families: dict[str, Family],
                       planets: Table | None, settings: FeatureSettings,
                       reference: ReferenceSources | None = None) -> dict[str, np.ndarray]:
    """Every context feature of one visit's candidates except the history and the CNN's scores.

    Parameters
    ----------
    meta : dict of str to numpy.ndarray
        The visit's stamp-store meta (``x``, ``y``, ``ra``, ``dec``, ``mag``, ``mag_err``, ``snr``, ``fwhm`` in
        pixels, ``sign``, ``flags``, ``stamp_flags``).
    pixel_scale_arcsec : float
    families : dict of str to Family
        The catalogue families; a family left out is missing (NaN) for every candidate.
    planets : astropy.table.Table or None
        Predicted minor planets at the visit's epoch, or None without an ephemeris.
    settings : FeatureSettings
    reference : ReferenceSources, optional
        The visit's template sources; without them the reference-image features are missing.

    Returns
    -------
    dict of str to numpy.ndarray
        One float column per feature, in a fixed order.
    """
    ra, dec = np.asarray(meta["ra"], float), np.asarray(meta["dec"], float)
    mag = np.asarray(meta["mag"], float)
    features = detection_features(meta, pixel_scale_arcsec)
    for name in FAMILIES:
        family = families.get(name) or _absent(name)
        features |= neighbour_features(family, ra, dec, settings)
    features |= host_features(families.get("galaxies") or _absent("galaxies"), ra, dec, mag,
                              centroid_error_arcsec(features["fwhm_arcsec"], features["snr"]), settings)
    features |= minor_planet_features(planets, ra, dec, settings)
    if reference is not None:
        x, y = np.asarray(meta["x"], float), np.asarray(meta["y"], float)
    else:
        x = y = np.zeros(len(ra))
    features |= reference_features(reference, x, y, pixel_scale_arcsec, settings)
    return features | sky_latitudes(ra, dec)


def _absent(name: str) -> Family:
    """A family without catalogues: covers nothing."""
    empty = np.array([], float)
    return Family(name, empty, empty, empty, empty, empty, empty, coverage=np.empty((0, 3)))
