"""Automatic labels with no human in the loop.

Detections of known minor planets are real; a purity-filtered random sample of the other detections is bogus.
No older classifier score enters: the bogus sample is random among detections that lie clear of everything
that could be real (predicted minor planets, catalogued variable stars and AGN, known transients).
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table


@dataclass(frozen=True)
class MinorPlanetMatch:
    """One-to-one matches of predicted minor planets to detections.

    Attributes
    ----------
    candidate : numpy.ndarray
        Index of the matched detection (int).
    planet : numpy.ndarray
        Index of the matched row of the predicted minor planets.
    separation_arcsec : numpy.ndarray
        Detection-to-prediction separation.
    """

    candidate: np.ndarray
    planet: np.ndarray
    separation_arcsec: np.ndarray


def match_minor_planets(ra: np.ndarray, dec: np.ndarray, sign: np.ndarray, predicted: Table,
                        radius_arcsec: float) -> MinorPlanetMatch:
    """Match positive detections to predicted minor-planet positions, each planet to its nearest detection.

    Parameters
    ----------
    ra, dec : numpy.ndarray
        Detection positions (deg).
    sign : numpy.ndarray
        +1 for detections on D, -1 for detections on -D; only positive ones can be minor planets.
    predicted : astropy.table.Table
        Predicted positions (``ra``, ``dec`` in deg), e.g. from
        :func:`bayesrb.minorplanets.visibility.minor_planets_on_image`, already cut to the magnitude limit.
    radius_arcsec : float
        Match radius.

    Returns
    -------
    MinorPlanetMatch
        A detection matches at most one planet and a planet at most one detection (the nearest).
    """
    empty = MinorPlanetMatch(np.array([], int), np.array([], int), np.array([]))
    positive = np.flatnonzero(np.asarray(sign) > 0)
    if len(positive) == 0 or len(predicted) == 0:
        return empty
    detections = SkyCoord(np.asarray(ra)[positive] * u.deg, np.asarray(dec)[positive] * u.deg)
    planets = SkyCoord(np.asarray(predicted["ra"], float) * u.deg, np.asarray(predicted["dec"], float) * u.deg)
    i_planet, i_detection, separation, _ = detections.search_around_sky(planets, radius_arcsec * u.arcsec)
    order = np.argsort(separation.arcsec, kind="stable")
    used_planets, used_detections, keep = set(), set(), []
    for k in order:
        if i_planet[k] not in used_planets and i_detection[k] not in used_detections:
            used_planets.add(i_planet[k])
            used_detections.add(i_detection[k])
            keep.append(k)
    keep = np.array(sorted(keep, key=lambda k: positive[i_detection[k]]), dtype=int)
    if len(keep) == 0:
        return empty
    return MinorPlanetMatch(positive[i_detection[keep]], i_planet[keep], separation.arcsec[keep])


def clear_of(ra: np.ndarray, dec: np.ndarray, avoid_ra: np.ndarray, avoid_dec: np.ndarray,
             radius_arcsec: float) -> np.ndarray:
    """Whether each position lies farther than ``radius_arcsec`` from every position to avoid.

    Parameters
    ----------
    ra, dec : numpy.ndarray
        Positions to test (deg).
    avoid_ra, avoid_dec : numpy.ndarray
        Positions to stay clear of (deg).
    radius_arcsec : float
        Exclusion radius.

    Returns
    -------
    numpy.ndarray
        Boolean mask, ``True`` where no position to avoid is within the radius.
    """
    clear = np.ones(len(ra), dtype=bool)
    if len(ra) == 0 or len(avoid_ra) == 0:
        return clear
    points = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg)
    avoid = SkyCoord(np.asarray(avoid_ra, float) * u.deg, np.asarray(avoid_dec, float) * u.deg)
    _, near, _, _ = points.search_around_sky(avoid, radius_arcsec * u.arcsec)
    clear[near] = False
    return clear


def recurrent(ra: np.ndarray, dec: np.ndarray, sign: np.ndarray, others: list[tuple[np.ndarray, np.ndarray]],
              stars_ra: np.ndarray, stars_dec: np.ndarray, radius_arcsec: float) -> np.ndarray:
    """Whether each positive detection recurs, unexplained, in another visit of the same field.

    A detection recurs when a positive detection of another visit lies within ``radius_arcsec``; it is
    unexplained when no catalogued star lies within that radius (bright-star residuals recur too, and are bogus).
    Real transients recur from night to night; cosmic rays, noise peaks and minor planets do not, and hot pixels and
    bad columns only where the pointing repeats to the pixel.

    Parameters
    ----------
    ra, dec, sign : numpy.ndarray
        The visit's detections (deg; +1 positive, -1 negative).
    others : list of (numpy.ndarray, numpy.ndarray)
        ``(ra, dec)`` of the positive detections of each other visit of the field.
    stars_ra, stars_dec : numpy.ndarray
        Catalogued stars.
    radius_arcsec : float
        Recurrence and star radius; 0 turns the filter off.

    Returns
    -------
    numpy.ndarray
        Boolean mask of unexplained recurrent positive detections.
    """
    if radius_arcsec <= 0 or not others:
        return np.zeros(len(ra), dtype=bool)
    other_ra = np.concatenate([o[0] for o in others])
    other_dec = np.concatenate([o[1] for o in others])
    seen_again = ~clear_of(ra, dec, other_ra, other_dec, radius_arcsec)
    near_star = ~clear_of(ra, dec, stars_ra, stars_dec, radius_arcsec)
    return seen_again & ~near_star & (np.asarray(sign) > 0)


def sample_bogus(eligible: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw up to ``n`` distinct indices uniformly among the eligible detections, returned sorted.

    Parameters
    ----------
    eligible : numpy.ndarray
        Boolean mask of detections that passed every purity filter.
    n : int
        How many to draw (all of them if fewer are eligible).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        Sorted indices into the detections.
    """
    pool = np.flatnonzero(eligible)
    chosen = rng.choice(pool, size=min(n, len(pool)), replace=False) if len(pool) else pool
    return np.sort(chosen)
