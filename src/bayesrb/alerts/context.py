"""The context classifier's features from what ZTF alert packets carry, where the two correspond.

A ZTF packet brings its own catalogue context: the three nearest Pan-STARRS1 (PS1) sources within 30" with their
star/galaxy score (Tachibana & Miller 2018), the nearest source of ZTF's reference image, and the nearest known
solar-system object. :func:`packet_features` maps them onto the columns of :mod:`bayesrb.context.features`, so
that a context classifier can score real alerts once their CNN columns are added (``cnn_*``, from the alert
scores). Separations are arcsec, radii those of :class:`bayesrb.context.settings.FeatureSettings`.

=============================  ==========================================================================
feature                        from the packet
=============================  ==========================================================================
``mag``, ``mag_err``           ``magpsf``, ``sigmapsf``
``snr``                        ``2.5 / ln 10 / sigmapsf`` (the S/N of a PSF-fit magnitude)
``fwhm_arcsec``                ``fwhm`` (pixels) x 1.01"
``sign``, ``stamp_flags``      ``isdiffpos``; ingest's edge and blank flags. ``flags``: 0 (ZTF sets none here)
``history_n_earlier``          ``ndethist - 1`` (ZTF counts this detection too), at least 0
``history_days_since_first``   ``jd - jdstarthist``
``stars_*``                    the PS1 sources with ``sgscore >= 0.5``, nearest first: ``sep1``, ``sep2``;
                               ``mag1`` is ``srmag1`` when the nearest star is the nearest PS1 source (else
                               NaN: the packet has no magnitude for it); ``count`` within the count radius
                               among the three (a lower bound); ``state`` 1 matched, 0 not
``galaxies_*``                 the same for ``sgscore < 0.5``
``host_sep_arcsec``            the nearest PS1 galaxy's separation (none within 30": the host search radius)
``host_mag_minus_candidate``   ``srmag1 - magpsf`` when that galaxy is the nearest PS1 source, else NaN
``host_offset_significance``   ``host_sep_arcsec`` over the centroid error, FWHM / S/N
``host_ddlr``,                 NaN: packets carry no galaxy shapes (without a galaxy within 30": the
``host_hlr_arcsec``            simulated catalogues' no-host values, NO_HOST_DDLR and 0)
``variables_*``, ``agn_*``     NaN: packets carry no variable-star or AGN match
``mp_sep_arcsec``, ``mp_mag``  ``ssdistnr``, ``ssmagnr`` (none: the search radius and ``NO_SOURCE_MAG``)
``ref_sep1_arcsec``,           ``distnr``, ``magnr``: the nearest source of ZTF's reference-image PSF catalogue
``ref_mag1``, ``ref_state``    (none within 30": the search radius, ``NO_SOURCE_MAG``, state 0); ``state`` 1
                               within the match radius
``ref_sep2_arcsec``,           NaN: packets carry the nearest reference source only, and its DAOPHOT
``ref_count``, ``ref_extent1`` ``sharpnr``, which is not the half-light-radius ratio of
                               :mod:`bayesrb.context.reference`
latitudes                      from ``ra``, ``dec``
=============================  ==========================================================================

PS1 covers the sky north of declination -30 deg: south of it the PS1 families are NaN (not covered); north of it
a missing PS1 match (ZTF's -999) is "nothing within 30"": separations are then the search radius, magnitudes
:data:`~bayesrb.context.features.NO_SOURCE_MAG` and the state 0, as the simulated catalogues give.
"""

import numpy as np
import pandas as pd

from bayesrb.alerts.ztf import PIXEL_SCALE_ARCSEC
from bayesrb.context.features import (
    DETECTION_COLUMNS,
    HOST_COLUMNS,
    MP_COLUMNS,
    NO_HOST_DDLR,
    NO_SOURCE_MAG,
    centroid_error_arcsec,
    family_columns,
    sky_latitudes,
)
from bayesrb.context.reference import REFERENCE_COLUMNS
from bayesrb.context.settings import FeatureSettings

__all__ = ["PS1_SOUTH_LIMIT_DEG", "STAR_SCORE", "packet_features"]

#: PS1 covers declinations north of this (deg).
PS1_SOUTH_LIMIT_DEG: float = -30.0
#: A PS1 source with ``sgscore`` at least this is a star (Tachibana & Miller 2018).
STAR_SCORE: float = 0.5
_PS1_RANKS = (1, 2, 3)
_MAG_SNR = 2.5 / np.log(10.0)


def packet_features(meta: pd.DataFrame, settings: FeatureSettings | None = None) -> dict[str, np.ndarray]:
    """The context features of ingested ZTF alerts (see the module docstring), all but the CNN's.

    Parameters
    ----------
    meta : pandas.DataFrame
        The alert store's meta columns (:data:`bayesrb.alerts.ztf.EXTRA_COLUMNS` and the shard's), e.g. the
        alert scores table.
    settings : FeatureSettings, optional
        The radii; the defaults if not given.

    Returns
    -------
    dict of str to numpy.ndarray
        One float column per feature: detection, history, the four catalogue families, host, minor planet,
        reference image and latitudes.
    """
    settings = settings or FeatureSettings()
    features = _detection(meta)
    features |= {"history_n_earlier": np.maximum(meta["ndethist"].to_numpy(float) - 1.0, 0.0),
                 "history_days_since_first": meta["jd"].to_numpy(float) - meta["jdstarthist"].to_numpy(float)}
    covered = meta["dec"].to_numpy(float) > PS1_SOUTH_LIMIT_DEG
    is_star = np.stack([meta[f"sgscore{rank}"].to_numpy(float) >= STAR_SCORE for rank in _PS1_RANKS], axis=1)
    features |= _ps1_family("stars", meta, is_star, covered, settings)
    features |= _ps1_family("galaxies", meta, ~is_star, covered, settings)
    for family in ("variables", "agn"):
        features |= dict.fromkeys(family_columns(family), np.full(len(meta), np.nan))
    features |= _host(features, covered, settings)
    features |= _minor_planet(meta, settings)
    features |= _reference(meta, settings)
    return features | sky_latitudes(meta["ra"].to_numpy(float), meta["dec"].to_numpy(float))


def _detection(meta: pd.DataFrame) -> dict[str, np.ndarray]:
    sigma = meta["mag_err"].to_numpy(float)
    features = {"mag": meta["mag"].to_numpy(float), "mag_err": sigma,
                "snr": np.divide(_MAG_SNR, sigma, out=np.full(len(meta), np.nan), where=sigma > 0),
                "fwhm_arcsec": meta["fwhm"].to_numpy(float) * PIXEL_SCALE_ARCSEC, "sign": meta["sign"].to_numpy(float),
                "flags": np.zeros(len(meta)), "stamp_flags": meta["stamp_flags"].to_numpy(float)}
    return {name: features[name] for name in DETECTION_COLUMNS}


def _ps1_family(family: str, meta: pd.DataFrame, member: np.ndarray, covered: np.ndarray,
                settings: FeatureSettings) -> dict[str, np.ndarray]:
    """Neighbour features of one family from the three nearest PS1 sources (``member``: which belong to it)."""
    distance = np.stack([meta[f"distpsnr{rank}"].to_numpy(float) for rank in _PS1_RANKS], axis=1)
    distance = np.where(member & np.isfinite(distance), distance, np.inf)
    ordered = np.sort(distance, axis=1)
    sep1, sep2 = (np.minimum(ordered[:, k], settings.search_radius_arcsec) for k in (0, 1))
    nearest_is_first = np.isfinite(distance[:, 0]) & (distance[:, 0] == ordered[:, 0])
    mag1 = np.where(np.isinf(ordered[:, 0]), NO_SOURCE_MAG,
                    np.where(nearest_is_first, meta["srmag1"].to_numpy(float), np.nan))
    columns = dict(zip(family_columns(family), (
        sep1, sep2, mag1, np.sum(distance <= settings.count_radius_arcsec, axis=1).astype(float),
        (sep1 <= settings.match_radius_arcsec).astype(float)), strict=True))
    return {name: np.where(covered, values, np.nan) for name, values in columns.items()}


def _host(features: dict[str, np.ndarray], covered: np.ndarray, settings: FeatureSettings) -> dict[str, np.ndarray]:
    """Host features from the nearest PS1 galaxy; shapes are unknown."""
    separation = features["galaxies_sep1_arcsec"]
    within = separation <= settings.host_search_radius_arcsec
    sep = np.where(within, separation, settings.host_search_radius_arcsec)
    mag_difference = np.where(within, features["galaxies_mag1"] - features["mag"], NO_SOURCE_MAG - features["mag"])
    columns = dict(zip(HOST_COLUMNS, (
        sep, np.where(within, np.nan, NO_HOST_DDLR), np.where(within, np.nan, 0.0), mag_difference,
        sep / centroid_error_arcsec(features["fwhm_arcsec"], features["snr"])), strict=True))
    return {name: np.where(covered, values, np.nan) for name, values in columns.items()}


def _minor_planet(meta: pd.DataFrame, settings: FeatureSettings) -> dict[str, np.ndarray]:
    separation, mag = meta["ssdistnr"].to_numpy(float), meta["ssmagnr"].to_numpy(float)
    known = np.isfinite(separation)
    return dict(zip(MP_COLUMNS, (np.where(known, separation, settings.mp_search_radius_arcsec),
                                 np.where(known, mag, NO_SOURCE_MAG)), strict=True))


def _reference(meta: pd.DataFrame, settings: FeatureSettings) -> dict[str, np.ndarray]:
    """Reference-image features from the nearest source of ZTF's reference catalogue (``distnr``, ``magnr``)."""
    separation, mag = meta["distnr"].to_numpy(float), meta["magnr"].to_numpy(float)
    known = np.isfinite(separation)
    sep1 = np.where(known, separation, settings.search_radius_arcsec)
    unknown = np.full(len(meta), np.nan)
    columns = {"ref_sep1_arcsec": sep1, "ref_sep2_arcsec": unknown, "ref_mag1": np.where(known, mag, NO_SOURCE_MAG),
               "ref_extent1": unknown, "ref_count": unknown,
               "ref_state": (sep1 <= settings.match_radius_arcsec).astype(float)}
    return {name: columns[name] for name in REFERENCE_COLUMNS}
