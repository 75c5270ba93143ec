"""Synthetic main-belt orbits that put minor planets inside given fields at given times.

For each target field the bodies are built backwards from what the observer should see: a random
line of sight inside the field, a heliocentric distance in the main belt, a prograde velocity of a
low-eccentricity orbit, then the osculating elements of that state vector at a whole-day epoch.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import erfa
import numpy as np
from astropy.coordinates import EarthLocation

from bayesrb.minorplanets.ephemeris import (
    ECLIPTIC_TO_ICRS,
    GM_SUN_AU3_PER_DAY2,
    SPEED_OF_LIGHT_AU_PER_DAY,
    ObserverState,
    observe,
    observer_state,
)
from bayesrb.minorplanets.mpcorb import DEFAULT_SLOPE_G, Orbits

HELIOCENTRIC_DISTANCE_AU = (2.1, 3.3)
"""Range of heliocentric distances of the synthetic bodies at the target time (au)."""

ECCENTRICITY_RANGE = (0.0, 0.2)
"""Range of eccentricities of the synthetic orbits."""

INCLINATION_RANGE_DEG = (1.0, 20.0)
"""Range of inclinations drawn for fields near the ecliptic (degrees).

An orbit through a point at heliocentric ecliptic latitude beta needs an inclination of at least
``|beta|``, so away from the ecliptic the inclination is raised to ``|beta|`` plus up to 2 degrees.
"""

_MJD_ZERO_JD = 2400000.5
_HALF_MONTH_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXY"
_ORDER_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"


def orbits_from_state(
    position_au,
    velocity_au_per_day,
    state_mjd_tt,
    epoch_mjd_tt,
    designation,
    h_mag,
    slope_g=DEFAULT_SLOPE_G,
) -> Orbits:
    """Osculating heliocentric elliptic elements of state vectors, referred to a chosen epoch.

    Parameters
    ----------
    position_au : array_like
        Heliocentric positions, shape ``(N, 3)``, ecliptic J2000 axes (au).
    velocity_au_per_day : array_like
        Heliocentric velocities, shape ``(N, 3)``, ecliptic J2000 axes (au / day); the orbits must
        be bound and not rectilinear.
    state_mjd_tt : float or array_like
        Time(s) of the state vectors, MJD in TT.
    epoch_mjd_tt : float or array_like
        Epoch(s) of the returned elements, MJD in TT; the mean anomaly is moved to it with the
        two-body mean motion ``k / a**1.5``.
    designation : array_like of str
        Unpacked designations.
    h_mag : array_like
        Absolute magnitudes H.
    slope_g : float or array_like, optional
        Slope parameters G.

    Returns
    -------
    Orbits
        The orbits; angles in [0, 360) degrees.
    """
    position = np.asarray(position_au, dtype=np.float64)
    velocity = np.asarray(velocity_au_per_day, dtype=np.float64)
    radius = np.linalg.norm(position, axis=1)
    momentum = np.cross(position, velocity)
    momentum_unit = momentum / np.linalg.norm(momentum, axis=1, keepdims=True)
    ecc_vector = np.cross(velocity, momentum) / GM_SUN_AU3_PER_DAY2 - position / radius[:, None]
    eccentricity = np.linalg.norm(ecc_vector, axis=1)
    semi_major = 1.0 / (2.0 / radius - np.einsum("ij,ij->i", velocity, velocity) / GM_SUN_AU3_PER_DAY2)
    node = np.arctan2(momentum_unit[:, 0], -momentum_unit[:, 1])
    node_unit = np.stack([np.cos(node), np.sin(node), np.zeros_like(node)], axis=1)
    arg_perihelion = _signed_angle(node_unit, ecc_vector, momentum_unit)
    true_anomaly = _signed_angle(ecc_vector, position, momentum_unit)
    eccentric = np.arctan2(np.sqrt(1 - eccentricity**2) * np.sin(true_anomaly), eccentricity + np.cos(true_anomaly))
    mean_motion = GM_SUN_AU3_PER_DAY2**0.5 / semi_major**1.5
    mean_anomaly = (
        eccentric
        - eccentricity * np.sin(eccentric)
        + mean_motion * (np.asarray(epoch_mjd_tt) - np.asarray(state_mjd_tt))
    )
    return Orbits(
        designation=designation,
        H=np.broadcast_to(h_mag, radius.shape),
        G=np.broadcast_to(slope_g, radius.shape),
        epoch_mjd=np.broadcast_to(epoch_mjd_tt, radius.shape),
        mean_anomaly_deg=np.rad2deg(mean_anomaly) % 360.0,
        arg_perihelion_deg=np.rad2deg(arg_perihelion) % 360.0,
        node_deg=np.rad2deg(node) % 360.0,
        inclination_deg=np.rad2deg(np.arccos(np.clip(momentum_unit[:, 2], -1.0, 1.0))),
        eccentricity=eccentricity,
        mean_motion_deg_per_day=np.rad2deg(mean_motion),
        semimajor_axis_au=semi_major,
    )


def _signed_angle(start: np.ndarray, end: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle (radians) from row vectors ``start`` to ``end``, positive counter-clockwise about ``axis``."""
    sine = np.einsum("ij,ij->i", np.cross(start, end), axis)
    return np.arctan2(sine, np.einsum("ij,ij->i", start, end))


def _unit_vector(ra_deg, dec_deg) -> np.ndarray:
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    return np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def _directions_in_cap(ra_deg, dec_deg, radius_deg, count, rng) -> np.ndarray:
    """Unit vectors (count, 3) uniformly distributed over the spherical cap around (ra, dec)."""
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    centre = _unit_vector(ra_deg, dec_deg)
    east = np.array([-np.sin(ra), np.cos(ra), 0.0])
    north = np.array([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    separation = np.arccos(rng.uniform(np.cos(np.deg2rad(radius_deg)), 1.0, count))
    position_angle = rng.uniform(0.0, 2 * np.pi, count)
    offset = np.outer(np.sin(position_angle), east) + np.outer(np.cos(position_angle), north)
    return np.outer(np.cos(separation), centre) + np.sin(separation)[:, None] * offset


def _distance_to_shell(observer_au: np.ndarray, directions: np.ndarray, radius_au: np.ndarray) -> np.ndarray:
    """Distance along each direction from the observer to the heliocentric sphere of given radius (au)."""
    along = directions @ observer_au
    return -along + np.sqrt(along**2 - observer_au @ observer_au + radius_au**2)


def _prograde_velocity(position: np.ndarray, rng) -> np.ndarray:
    """Velocities (au / day, ecliptic axes) of prograde low-e orbits through heliocentric ``position``.

    The orbit plane contains the position and has an inclination allowed by its ecliptic latitude;
    eccentricity and true anomaly are random, which fixes speed and flight-path angle.
    """
    count = len(position)
    radius = np.linalg.norm(position, axis=1)
    radial = position / radius[:, None]
    east = np.cross([0.0, 0.0, 1.0], radial)
    east /= np.linalg.norm(east, axis=1, keepdims=True)
    north = np.cross(radial, east)
    latitude = np.arcsin(radial[:, 2])
    inclination = np.maximum(
        np.deg2rad(rng.uniform(*INCLINATION_RANGE_DEG, count)),
        np.abs(latitude) + np.deg2rad(rng.uniform(0.1, 2.0, count)),
    )
    heading = rng.choice([-1.0, 1.0], count) * np.arccos(np.cos(inclination) / np.cos(latitude))
    along_track = np.cos(heading)[:, None] * east + np.sin(heading)[:, None] * north
    eccentricity = rng.uniform(*ECCENTRICITY_RANGE, count)
    true_anomaly = rng.uniform(0.0, 2 * np.pi, count)
    speed_scale = np.sqrt(GM_SUN_AU3_PER_DAY2 / (radius * (1 + eccentricity * np.cos(true_anomaly))))
    radial_speed = speed_scale * eccentricity * np.sin(true_anomaly)
    transverse_speed = speed_scale * (1 + eccentricity * np.cos(true_anomaly))
    return radial_speed[:, None] * radial + transverse_speed[:, None] * along_track


def _states_in_field(observer: ObserverState, target, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heliocentric ecliptic states of bodies seen inside the field, and the times they refer to.

    The light seen at the target time left the body ``delta / c`` earlier, when the Sun was
    ``v_sun * delta / c`` further back along its barycentric path; the state refers to that instant.
    """
    ra_deg, dec_deg, radius_deg, _, count = target
    directions = _directions_in_cap(ra_deg, dec_deg, radius_deg, int(count), rng)
    helio_distance = rng.uniform(*HELIOCENTRIC_DISTANCE_AU, int(count))
    delta = _distance_to_shell(observer.position_au, directions, helio_distance)
    light_time = delta / SPEED_OF_LIGHT_AU_PER_DAY
    position_icrs = (
        observer.position_au + delta[:, None] * directions + np.outer(light_time, observer.sun_velocity_au_per_day)
    )
    position = position_icrs @ ECLIPTIC_TO_ICRS
    return position, _prograde_velocity(position, rng), observer.mjd_tt - light_time


def _half_month(epoch_mjd: float) -> tuple[int, str]:
    year, month, day, _ = erfa.jd2cal(_MJD_ZERO_JD, epoch_mjd)
    return int(year), _HALF_MONTH_LETTERS[2 * (int(month) - 1) + (int(day) > 15)]


def _provisional_designations(epochs_mjd: np.ndarray) -> list[str]:
    """Distinct provisional designations whose year and half-month are those of each epoch."""
    periods = {epoch: _half_month(epoch) for epoch in np.unique(epochs_mjd).tolist()}
    issued = Counter()
    designations = []
    for epoch in epochs_mjd.tolist():
        period = periods[epoch]
        cycle, order = divmod(issued[period], len(_ORDER_LETTERS))
        issued[period] += 1
        designations.append(f"{period[0]} {period[1]}{_ORDER_LETTERS[order]}{cycle or ''}")
    return designations


def _orbits_for_target(target, rng, location: EarthLocation, mag_range, epoch_mjd) -> Orbits:
    mjd_utc = float(target[3])
    observer = observer_state(mjd_utc, location)
    position, velocity, state_mjd = _states_in_field(observer, target, rng)
    epoch = np.round(mjd_utc) if epoch_mjd is None else epoch_mjd
    dark = orbits_from_state(position, velocity, state_mjd, epoch, [""] * len(position), h_mag=0.0)
    target_mag = rng.uniform(*mag_range, len(position))
    return replace(dark, H=target_mag - observe(dark, mjd_utc, location).mag_v)


def orbits_through_fields(
    targets: Sequence[tuple[float, float, float, float, int]],
    rng: np.random.Generator,
    location: EarthLocation,
    mag_range: tuple[float, float] = (15.5, 21.0),
    epoch_mjd: float | None = None,
) -> Orbits:
    """Main-belt-like orbits of minor planets that appear inside given fields at given times.

    For each target, ``count`` bodies are placed at uniformly random positions within ``radius_deg``
    of ``(ra_deg, dec_deg)`` as seen from ``location`` at ``mjd_utc`` (astrometric, light-time
    corrected, matching :func:`~bayesrb.minorplanets.ephemeris.observe`), at heliocentric distances
    uniform in 2.1-3.3 au. Each moves prograde on an orbit with eccentricity uniform in 0-0.2 and a
    modest inclination (at least the body's heliocentric ecliptic latitude). H is chosen so that V at
    ``mjd_utc`` is uniform in ``mag_range``; G is 0.15.

    Parameters
    ----------
    targets : sequence of (ra_deg, dec_deg, radius_deg, mjd_utc, count)
        At least one target: field centre (ICRS degrees), field radius (degrees), time (MJD, UTC)
        and number of bodies.
    rng : numpy.random.Generator
        Source of randomness.
    location : astropy.coordinates.EarthLocation
        The observing site.
    mag_range : tuple of float, optional
        Range of apparent V magnitudes at the target times.
    epoch_mjd : float, optional
        Epoch of the elements (MJD, TT) for all orbits; by default each target's ``mjd_utc`` rounded
        to the nearest day (taken as TT). Use a whole number to be able to write an MPCORB file.

    Returns
    -------
    Orbits
        All bodies, target by target. Their provisional designations follow the year and half-month
        of each epoch and are distinct within this call.
    """
    parts = [_orbits_for_target(target, rng, location, mag_range, epoch_mjd) for target in targets]
    orbits = Orbits.concatenate(parts)
    return replace(orbits, designation=_provisional_designations(orbits.epoch_mjd))
