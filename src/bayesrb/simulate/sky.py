"""The static and variable sky of one field: stars, galaxies, variable stars, AGN and transients.

Every source of a field lives in one table (the field's *sky truth*), one row per source, with a
``kind`` column. Magnitudes are the mean (or peak) magnitudes; :func:`magnitudes_at` turns them into the
magnitudes seen at a given epoch.
"""

import logging

import numpy as np
from astropy.table import Table, vstack

from bayesrb.seeding import rng_for
from bayesrb.simulate.plan import Field
from bayesrb.simulate.settings import SurveySettings

log = logging.getLogger(__name__)

SKY_MARGIN_ARCSEC = 90.0
SERSIC_INDICES = np.array([1.0, 2.5, 4.0])
SERSIC_WEIGHTS = np.array([0.6, 0.15, 0.25])
HOST_LIMIT_MAG = 20.5
HOSTLESS_CLEARANCE_ARCSEC = 10.0
TRANSIENT_RISE_DAYS = 8.0
TRANSIENT_DECLINE_MAG_PER_DAY = 0.03
TRANSIENT_MAX_AGE_DAYS = 30.0
EXPONENTIAL_DISC_HLR_SCALE_LENGTHS = 1.678  # an exponential disc's half-light radius in scale lengths
INVISIBLE_MAG = 99.0

POINT_KINDS = ("star", "variable_star", "agn", "sn", "nuclear", "hostless")
TRANSIENT_KINDS = ("sn", "nuclear", "hostless")


def tangent_to_sky(ra0: float, dec0: float, xi_deg: np.ndarray, eta_deg: np.ndarray):
    """Inverse gnomonic projection: offsets on the tangent plane at (ra0, dec0) to (ra, dec), degrees."""
    xi, eta = np.radians(xi_deg), np.radians(eta_deg)
    ra0r, dec0r = np.radians(ra0), np.radians(dec0)
    denom = np.cos(dec0r) - eta * np.sin(dec0r)
    ra = ra0r + np.arctan2(xi, denom)
    dec = np.arctan2(np.sin(dec0r) + eta * np.cos(dec0r), np.hypot(xi, denom))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def power_law_magnitudes(rng: np.random.Generator, n: int, mag_range, slope: float) -> np.ndarray:
    """Draw magnitudes from dN/dm ∝ 10^(slope·m) within ``mag_range`` by inverting the CDF."""
    lo, hi = 10.0 ** (slope * np.asarray(mag_range, dtype=float))
    return np.log10(lo + rng.uniform(size=n) * (hi - lo)) / slope


def _uniform_positions(rng, field: Field, settings: SurveySettings, density_per_deg2: float):
    half_w = settings.field_width_deg / 2 + SKY_MARGIN_ARCSEC / 3600
    half_h = settings.field_height_deg / 2 + SKY_MARGIN_ARCSEC / 3600
    n = rng.poisson(density_per_deg2 * 4 * half_w * half_h)
    xi, eta = rng.uniform(-half_w, half_w, n), rng.uniform(-half_h, half_h, n)
    return tangent_to_sky(field.ra_deg, field.dec_deg, xi, eta)


def _empty_columns(n: int) -> dict[str, np.ndarray]:
    nan = np.full(n, np.nan)
    return {
        "sersic_n": nan.copy(), "hlr_arcsec": nan.copy(), "e1": nan.copy(), "e2": nan.copy(),
        "amplitude_mag": nan.copy(), "period_days": nan.copy(), "phase_rad": nan.copy(),
        "peak_mjd": nan.copy(), "host_id": np.full(n, -1), "host_offset_arcsec": nan.copy(),
        "host_hlr_arcsec": nan.copy(),
    }


def _table(kind: np.ndarray, ra, dec, mag, **columns) -> Table:
    data = {"kind": kind, "ra": ra, "dec": dec, "mag": mag} | _empty_columns(len(ra))
    data.update(columns)
    return Table(data)


def _held_out(field: Field) -> bool:
    """Whether a field is kept out of the CNN's training (evaluation and context fields): it gets richer populations."""
    return field.evaluation or field.context


def make_stars(rng, field: Field, settings: SurveySettings) -> Table:
    """Stars with a power-law luminosity function; a fraction of them periodic variables."""
    ra, dec = _uniform_positions(rng, field, settings, settings.star_density_per_deg2)
    n = len(ra)
    mag = power_law_magnitudes(rng, n, settings.star_mag_range, settings.star_lf_slope)
    fraction = settings.eval_variable_fraction if _held_out(field) else settings.variable_fraction
    variable = rng.uniform(size=n) < fraction
    amplitude = np.where(variable, rng.uniform(*settings.variable_amplitude_range_mag, n), np.nan)
    period = np.where(variable, 10 ** rng.uniform(-1, 1.3, n), np.nan)
    phase = np.where(variable, rng.uniform(0, 2 * np.pi, n), np.nan)
    kind = np.where(variable, "variable_star", "star")
    return _table(kind, ra, dec, mag, amplitude_mag=amplitude, period_days=period, phase_rad=phase)


def make_galaxies(rng, field: Field, settings: SurveySettings) -> Table:
    """Sérsic galaxies; brighter galaxies are larger."""
    ra, dec = _uniform_positions(rng, field, settings, settings.galaxy_density_per_deg2)
    n = len(ra)
    mag = power_law_magnitudes(rng, n, settings.galaxy_mag_range, 0.4)
    lo, hi = settings.galaxy_hlr_range_arcsec
    bright_fraction = (settings.galaxy_mag_range[1] - mag) / np.ptp(settings.galaxy_mag_range)
    hlr = np.clip(lo * (hi / lo) ** bright_fraction * rng.lognormal(0.0, 0.25, n), lo, hi)
    ellipticity = rng.uniform(0.0, 0.5, n)
    angle = rng.uniform(0.0, np.pi, n)
    return _table(
        np.full(n, "galaxy"), ra, dec, mag,
        sersic_n=rng.choice(SERSIC_INDICES, size=n, p=SERSIC_WEIGHTS), hlr_arcsec=hlr,
        e1=ellipticity * np.cos(2 * angle), e2=ellipticity * np.sin(2 * angle),
    )


def make_agn(rng, field: Field, galaxies: Table, settings: SurveySettings) -> Table:
    """Variable nuclear point sources in a fraction of the galaxies."""
    fraction = settings.eval_agn_fraction if _held_out(field) else settings.agn_fraction
    hosts = np.flatnonzero(rng.uniform(size=len(galaxies)) < fraction)
    mag = galaxies["mag"][hosts] + rng.uniform(0.5, 2.0, len(hosts))
    return _table(
        np.full(len(hosts), "agn"), galaxies["ra"][hosts], galaxies["dec"][hosts], mag,
        amplitude_mag=np.full(len(hosts), settings.agn_variability_mag),
        host_id=galaxies["source_id"][hosts], host_offset_arcsec=np.zeros(len(hosts)),
        host_hlr_arcsec=galaxies["hlr_arcsec"][hosts],
    )


def galaxy_axis_ratio(e1, e2) -> np.ndarray:
    """Minor-to-major axis ratio b/a of galaxies of GalSim distortion ``(e1, e2)``.

    The sky truth's ``e1, e2`` are GalSim *distortions* (``galsim.GSObject.shear(e1=, e2=)``), of modulus
    ``e = (a² - b²) / (a² + b²)``, so ``b/a = sqrt((1 - e) / (1 + e))``; NaN (a point source) gives 1.
    """
    e = np.hypot(np.asarray(e1, dtype=float), np.asarray(e2, dtype=float))
    return np.where(np.isfinite(e), np.sqrt((1.0 - np.nan_to_num(e)) / (1.0 + np.nan_to_num(e))), 1.0)


def galaxy_position_angle_deg(e1, e2) -> np.ndarray:
    """Position angle of the major axis, degrees East of North in ``[0, 180)``, of distortions ``(e1, e2)``.

    The sky truth's ``(e1, e2)`` are given in the frame of an unrotated image
    (:func:`bayesrb.simulate.survey.make_wcs` with ``rotation_deg = 0``): first axis ``x`` to the West, second
    axis ``y`` to the North. The major axis lies at ``θ = atan2(e2, e1) / 2`` from ``+x`` towards ``+y``, that is
    at position angle ``θ - 90°``. NaN (a point source) gives 0.
    """
    theta = 0.5 * np.degrees(np.arctan2(np.asarray(e2, dtype=float), np.asarray(e1, dtype=float)))
    pa = np.mod(theta - 90.0, 180.0)
    return np.where(np.isfinite(pa) & (pa < 180.0), pa, 0.0)  # mod can round up to 180, which is 0


def _disc_positions(rng, hosts: Table, offsets_in_hlr: np.ndarray):
    """Positions at ``offsets_in_hlr`` along the hosts' half-light ellipses, in random directions.

    A disc seen at axis ratio ``q`` spreads its light (and its supernovae) along ellipses of semi-axes
    ``hlr / sqrt(q)`` and ``hlr * sqrt(q)`` (the area-preserving shear that renders it), so an offset of ``r``
    half-light radii in the disc's own frame is a directional-light-radius distance (dDLR) of ``r``.

    Returns
    -------
    tuple of numpy.ndarray
        ``ra``, ``dec`` (deg) and the offset from the host's centre (arcsec).
    """
    q = galaxy_axis_ratio(hosts["e1"], hosts["e2"])
    pa = np.radians(galaxy_position_angle_deg(hosts["e1"], hosts["e2"]))
    phi = rng.uniform(0, 2 * np.pi, len(hosts))
    radius = offsets_in_hlr * np.asarray(hosts["hlr_arcsec"])
    major, minor = radius * np.cos(phi) / np.sqrt(q), radius * np.sin(phi) * np.sqrt(q)
    east = major * np.sin(pa) + minor * np.cos(pa)
    north = major * np.cos(pa) - minor * np.sin(pa)
    dec0 = np.asarray(hosts["dec"])
    ra = np.asarray(hosts["ra"]) + east / 3600 / np.cos(np.radians(dec0))
    return ra, dec0 + north / 3600, np.hypot(east, north)


def _hosted_transients(rng, kind: str, hosts: Table, offsets_in_hlr: np.ndarray, settings):
    if len(hosts) == 0:
        return None
    ra, dec, offset = _disc_positions(rng, hosts, offsets_in_hlr)
    return _transient_table(rng, kind, ra, dec, settings, host_id=np.asarray(hosts["source_id"]),
                            host_offset_arcsec=offset, host_hlr_arcsec=np.asarray(hosts["hlr_arcsec"]))


def _draw_hosts(rng, field: Field, galaxies: Table, taken: np.ndarray, counts: dict[str, int]) -> dict[str, Table]:
    """Distinct host galaxies for the supernovae and nuclear transients, clear of the galaxies in ``taken``.

    Every galaxy brighter than :data:`HOST_LIMIT_MAG` hosts at most one of them (and none hosts an AGN too), so
    that no two sources of the truth share a nucleus or blend into one detection. When there are too few such
    galaxies, both kinds are cut in proportion, with a warning.
    """
    pool = np.flatnonzero((np.asarray(galaxies["mag"]) < HOST_LIMIT_MAG)
                          & ~np.isin(np.asarray(galaxies["source_id"]), taken))
    wanted = {kind: counts[kind] for kind in ("sn", "nuclear")}
    total = sum(wanted.values())
    if total > len(pool):
        log.warning("field %s: %d galaxies brighter than %.1f mag can host %d supernovae and nuclear transients; "
                    "simulating fewer of each", field.name, len(pool), HOST_LIMIT_MAG, total)
        wanted = {kind: n * len(pool) // total for kind, n in wanted.items()}
    chosen = rng.choice(pool, size=sum(wanted.values()), replace=False)
    return {"sn": galaxies[chosen[:wanted["sn"]]], "nuclear": galaxies[chosen[wanted["sn"]:]]}


def _transient_table(rng, kind, ra, dec, settings, **columns):
    n = len(ra)
    last_mjd = settings.start_mjd + settings.n_nights * settings.night_spacing_days
    peak_mjd = rng.uniform(settings.start_mjd - 15.0, last_mjd + 5.0, n)
    mag = rng.uniform(*settings.transient_peak_mag_range, n)
    return _table(np.full(n, kind), ra, dec, mag, peak_mjd=peak_mjd, **columns)


def _hostless_transients(rng, n: int, field: Field, galaxies: Table, settings: SurveySettings):
    half_w, half_h = settings.field_width_deg * 0.45, settings.field_height_deg * 0.45
    ra, dec = [], []
    while len(ra) < n:
        r, d = tangent_to_sky(field.ra_deg, field.dec_deg, rng.uniform(-half_w, half_w), rng.uniform(-half_h, half_h))
        separation = 3600 * np.hypot((galaxies["ra"] - r) * np.cos(np.radians(d)), galaxies["dec"] - d)
        if len(galaxies) == 0 or separation.min() > HOSTLESS_CLEARANCE_ARCSEC:
            ra.append(float(r))
            dec.append(float(d))
    return _transient_table(rng, "hostless", np.array(ra), np.array(dec), settings)


def make_transients(rng: np.random.Generator, field: Field, galaxies: Table, agn: Table, counts: dict[str, int],
                    settings: SurveySettings) -> list[Table]:
    """Supernovae at exponential-disc host offsets, nuclear transients and hostless transients.

    Parameters
    ----------
    rng : numpy.random.Generator
    field : Field
    galaxies : astropy.table.Table
        The field's galaxies (with ``source_id``), from which distinct hosts are drawn (:func:`_draw_hosts`).
    agn : astropy.table.Table
        The field's AGN (:func:`make_agn`): their hosts host no transient.
    counts : dict of str to int
        Number of transients of each kind ``sn``, ``nuclear`` and ``hostless``
        (see :meth:`SurveySettings.transient_counts`).
    settings : SurveySettings

    Returns
    -------
    list of astropy.table.Table
        Up to one table per kind; a hosted kind is left out when its count is zero or no galaxy is bright
        enough to host it.
    """
    hosts = _draw_hosts(rng, field, galaxies, np.asarray(agn["host_id"]), counts)
    # supernovae trace the disc light: radii in an exponential disc follow r exp(-r / h), a Gamma(2, h) with
    # scale length h = hlr / 1.678; offsets here are in units of the host's half-light radius (hlr)
    sn_offsets = rng.gamma(2.0, 1.0 / EXPONENTIAL_DISC_HLR_SCALE_LENGTHS, len(hosts["sn"]))
    nuclear_offsets = np.abs(rng.normal(0.0, 0.05, len(hosts["nuclear"])))
    tables = [
        _hosted_transients(rng, "sn", hosts["sn"], sn_offsets, settings),
        _hosted_transients(rng, "nuclear", hosts["nuclear"], nuclear_offsets, settings),
        _hostless_transients(rng, counts["hostless"], field, galaxies, settings),
    ]
    return [t for t in tables if t is not None]


def make_field_sky(field: Field, settings: SurveySettings) -> Table:
    """Every source of one field, deterministically from the survey seed and the field index.

    Evaluation and context fields get the ``eval_*`` populations (transient counts, variable-star and AGN
    fractions), training fields the others.

    Parameters
    ----------
    field : Field
    settings : SurveySettings

    Returns
    -------
    astropy.table.Table
        One row per source with columns ``source_id`` (unique within the survey), ``field``,
        ``kind``, ``ra``, ``dec`` (deg), ``mag`` (mean or peak), Sérsic parameters for galaxies,
        variability parameters and transient parameters (NaN or -1 where not applicable).
    """
    rng = rng_for(settings.seed, "sky", field.index)
    stars = make_stars(rng, field, settings)
    galaxies = make_galaxies(rng, field, settings)
    galaxies["source_id"] = field.index * 10_000_000 + 5_000_000 + np.arange(len(galaxies))
    agn = make_agn(rng, field, galaxies, settings)
    transients = make_transients(rng, field, galaxies, agn, settings.transient_counts(_held_out(field)), settings)
    others = [agn, *transients]
    sky = vstack([stars, galaxies, *others], metadata_conflicts="silent")
    is_galaxy = np.asarray(sky["kind"] == "galaxy")
    source_id = np.asarray(sky["source_id"].filled(-1), dtype=np.int64)
    source_id[~is_galaxy] = field.index * 10_000_000 + np.arange(int((~is_galaxy).sum()))
    sky["source_id"] = source_id
    sky["field"] = field.name
    for col in ("ra", "dec", "hlr_arcsec", "host_offset_arcsec", "host_hlr_arcsec"):
        sky[col].unit = "deg" if col in ("ra", "dec") else "arcsec"
    return sky


def transient_magnitude(peak_mag, peak_mjd, mjd: float) -> np.ndarray:
    """Magnitude of transients at ``mjd``: a quadratic rise to peak, then a linear decline.

    Returns :data:`INVISIBLE_MAG` before the rise (``TRANSIENT_MAX_AGE_DAYS`` before peak).
    """
    age = mjd - np.asarray(peak_mjd)
    rise = peak_mag + (age / TRANSIENT_RISE_DAYS) ** 2
    decline = peak_mag + TRANSIENT_DECLINE_MAG_PER_DAY * age
    mag = np.where(age < 0, rise, decline)
    return np.where(age < -TRANSIENT_MAX_AGE_DAYS, INVISIBLE_MAG, np.minimum(mag, INVISIBLE_MAG))


def magnitudes_at(sky: Table, mjd: float | None, rng: np.random.Generator | None = None) -> np.ndarray:
    """Magnitudes of every source of ``sky`` at ``mjd``.

    Parameters
    ----------
    sky : astropy.table.Table
        A field's sky truth from :func:`make_field_sky`.
    mjd : float or None
        Epoch (MJD, UTC). ``None`` gives the template's view: variables at their mean, AGN at their
        mean, transients absent.
    rng : numpy.random.Generator, optional
        Draws the stochastic AGN variability; required when ``mjd`` is given.

    Returns
    -------
    numpy.ndarray
        Magnitudes, :data:`INVISIBLE_MAG` for sources that do not shine.
    """
    kind = np.asarray(sky["kind"])
    mag = np.array(sky["mag"], dtype=float)
    is_transient = np.isin(kind, TRANSIENT_KINDS)
    if mjd is None:
        mag[is_transient] = INVISIBLE_MAG
        return mag
    periodic = kind == "variable_star"
    mag[periodic] += np.asarray(sky["amplitude_mag"][periodic]) * np.sin(
        2 * np.pi * mjd / np.asarray(sky["period_days"][periodic]) + np.asarray(sky["phase_rad"][periodic]))
    agn = kind == "agn"
    mag[agn] += np.asarray(sky["amplitude_mag"][agn]) * rng.standard_normal(int(agn.sum()))
    mag[is_transient] = transient_magnitude(mag[is_transient], np.asarray(sky["peak_mjd"][is_transient]), mjd)
    return mag
