"""Simulated observations: science visits (sub-exposures + median stack), templates, truth, catalogues.

The outputs are exactly what a telescope pipeline would write: FITS images with a celestial WCS and
the usual header keys, catalogues and an orbit file. Nothing downstream reads the truth tables
except evaluation and label-purity checks.
"""

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation
from astropy.io import fits
from astropy.table import Table, vstack
from astropy.wcs import WCS

from bayesrb import __version__
from bayesrb.minorplanets.mpcorb import Orbits
from bayesrb.minorplanets.synthetic import orbits_through_fields
from bayesrb.minorplanets.visibility import minor_planets_on_image
from bayesrb.seeding import rng_for
from bayesrb.simulate.artefacts import (
    CameraDefects,
    add_cosmic_rays,
    add_satellite_trail,
    saturate_with_bleed,
    truth_rows,
)
from bayesrb.simulate.plan import Field, Visit, footprint_radius_deg, survey_fields
from bayesrb.simulate.render import GalaxyShapes, PsfModel, render_galaxies, render_points
from bayesrb.simulate.settings import SurveySettings
from bayesrb.simulate.sky import (
    INVISIBLE_MAG,
    POINT_KINDS,
    SKY_MARGIN_ARCSEC,
    TRANSIENT_KINDS,
    galaxy_axis_ratio,
    galaxy_position_angle_deg,
    magnitudes_at,
)

BRIGHT_STAR_MAG = 13.0
VISIBLE_MAG = 24.0
MP_MARGIN_PX = 20.0  # minor planets this far off the image still spill light onto it
STAR_KINDS = ("star", "variable_star")
STATIC_KINDS = ("star", "variable_star", "galaxy")  # what a static star/galaxy catalogue holds (AGN hosts are galaxies)
SHAPE_STEP_ARCSEC = 1.0  # the sky step along a galaxy's major axis that finds its direction on an image
TRUTH_DEFAULTS = {
    "kind": "", "x": np.nan, "y": np.nan, "ra": np.nan, "dec": np.nan, "mag": np.nan, "template_mag": np.nan,
    "source_id": -1, "designation": "", "sub_index": -1, "host_id": -1, "host_offset_arcsec": np.nan,
    "host_hlr_arcsec": np.nan, "angle_deg": np.nan, "length_px": np.nan,
}


def observatory(settings: SurveySettings) -> EarthLocation:
    """The observatory's location from the settings (no site-registry download)."""
    return EarthLocation.from_geodetic(settings.observatory_lon_deg * u.deg, settings.observatory_lat_deg * u.deg,
                                       settings.observatory_height_m * u.m)


def make_wcs(ra_deg: float, dec_deg: float, rotation_deg: float, shape: tuple[int, int], scale_arcsec: float) -> WCS:
    """A TAN WCS centred on ``(ra, dec)`` with North up, East left, rotated by ``rotation_deg``.

    ``shape`` is ``(ny, nx)``; the reference pixel is the image centre.
    """
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    scale, theta = scale_arcsec / 3600.0, np.radians(rotation_deg)
    wcs.wcs.cd = scale * np.array([[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return wcs


def flux_from_mag(mag, zero_point: float) -> np.ndarray:
    """Flux in ADU of magnitudes ``mag`` for the zero point (0 for :data:`INVISIBLE_MAG`)."""
    mag = np.asarray(mag, dtype=float)
    return np.where(mag >= INVISIBLE_MAG, 0.0, 10.0 ** (-0.4 * (mag - zero_point)))


def _image_shape(settings: SurveySettings) -> tuple[int, int]:
    return settings.image_size[1], settings.image_size[0]


def visit_geometry(visit: Visit, settings: SurveySettings) -> tuple[WCS, float]:
    """The visit's WCS (pointing jitter and rotation) and its seeing FWHM in arcsec."""
    rng = rng_for(settings.seed, "pointing", visit.index)
    jitter = rng.normal(0.0, settings.pointing_jitter_arcsec / 3600.0, 2)
    dec = visit.field.dec_deg + jitter[1]
    ra = visit.field.ra_deg + jitter[0] / np.cos(np.radians(dec))
    rotation = rng.normal(0.0, settings.rotation_jitter_deg)
    fwhm = rng.uniform(*settings.fwhm_range_arcsec)
    return make_wcs(ra, dec, rotation, _image_shape(settings), settings.pixel_scale_arcsec), float(fwhm)


def template_geometry(field: Field, settings: SurveySettings) -> WCS:
    """The template's WCS: offset by ``template_offset_arcsec`` and rotated by ``template_rotation_deg``."""
    rng = rng_for(settings.seed, "template", field.index)
    angle = rng.uniform(0, 2 * np.pi)
    offset = settings.template_offset_arcsec / 3600.0
    dec = field.dec_deg + offset * np.cos(angle)
    ra = field.ra_deg + offset * np.sin(angle) / np.cos(np.radians(dec))
    return make_wcs(ra, dec, settings.template_rotation_deg, _image_shape(settings), settings.pixel_scale_arcsec)


def pixel_ellipticities(galaxies: Table, wcs: WCS) -> tuple[np.ndarray, np.ndarray]:
    """Distortions ``(e1, e2)`` of sky-truth galaxies in the pixel frame of ``wcs``, for GalSim.

    Each galaxy keeps its sky position angle (:func:`galaxy_position_angle_deg`) on any image: a step of
    :data:`SHAPE_STEP_ARCSEC` along its major axis on the sky is mapped through ``wcs`` at the galaxy's position,
    which takes in the image's rotation, parity and the convergence of the meridians. For an unrotated image at
    its centre this returns the sky truth's ``(e1, e2)``.
    """
    e1, e2 = np.asarray(galaxies["e1"], dtype=float), np.asarray(galaxies["e2"], dtype=float)
    ra, dec = np.asarray(galaxies["ra"], dtype=float), np.asarray(galaxies["dec"], dtype=float)
    pa = np.radians(galaxy_position_angle_deg(e1, e2))
    step = SHAPE_STEP_ARCSEC / 3600.0
    x0, y0 = wcs.all_world2pix(ra, dec, 0)
    x1, y1 = wcs.all_world2pix(ra + step * np.sin(pa) / np.cos(np.radians(dec)), dec + step * np.cos(pa), 0)
    theta, e = np.arctan2(y1 - y0, x1 - x0), np.hypot(e1, e2)
    return e * np.cos(2 * theta), e * np.sin(2 * theta)


def render_scene(sky: Table, mags: np.ndarray, wcs: WCS, psf: PsfModel, settings: SurveySettings) -> np.ndarray:
    """Noise-free image (ADU, no sky background) of every source of ``sky`` at magnitudes ``mags``."""
    image = np.zeros(psf.shape)
    x, y = wcs.all_world2pix(np.asarray(sky["ra"]), np.asarray(sky["dec"]), 0)
    flux = flux_from_mag(mags, settings.zero_point)
    point = np.isin(np.asarray(sky["kind"]), POINT_KINDS)
    render_points(image, psf, x[point], y[point], flux[point])
    galaxy = ~point
    e1, e2 = pixel_ellipticities(sky[galaxy], wcs)
    shapes = GalaxyShapes(
        sersic_n=np.asarray(sky["sersic_n"][galaxy]),
        hlr_px=np.asarray(sky["hlr_arcsec"][galaxy]) / settings.pixel_scale_arcsec, e1=e1, e2=e2,
    )
    render_galaxies(image, psf, x[galaxy], y[galaxy], flux[galaxy], shapes)
    return image


def add_noise(image: np.ndarray, rng: np.random.Generator, settings: SurveySettings, n_combine: int = 1) -> np.ndarray:
    """Photon and read noise on an expected image (ADU, sky included).

    A single exposure (``n_combine = 1``) gets Poisson photon noise and Gaussian read noise; a
    normalised coadd of ``n_combine`` exposures gets the Gaussian equivalent with the variance divided
    by ``n_combine``.
    """
    gain, read_noise_adu = settings.gain_e_per_adu, settings.read_noise_e / settings.gain_e_per_adu
    expected = np.clip(image, 0.0, None)
    if n_combine == 1:
        return rng.poisson(expected * gain) / gain + rng.normal(0.0, read_noise_adu, image.shape)
    sigma = np.sqrt((expected / gain + read_noise_adu**2) / n_combine)
    return expected + rng.normal(0.0, 1.0, image.shape) * sigma


def _subexposure_mjds(visit: Visit, settings: SurveySettings) -> np.ndarray:
    """Mid-exposure MJD of each sub-exposure."""
    seconds = np.arange(settings.n_subexposures) * settings.subexposure_cadence_s + settings.subexposure_time_s / 2
    return visit.mjd + seconds / 86400.0


def _mp_truth(per_sub: list[dict]) -> dict:
    """One truth row per minor planet, at its mean position over the sub-exposures it was on."""
    designations = np.unique(np.concatenate([p["designation"] for p in per_sub]))
    rows = {k: [] for k in ("x", "y", "ra", "dec", "mag")}
    for name in designations:
        for key in rows:
            rows[key].append(np.mean(np.concatenate([p[key][p["designation"] == name] for p in per_sub])))
    return truth_rows("mp", rows["x"], rows["y"], ra=np.array(rows["ra"]), dec=np.array(rows["dec"]),
                      mag=np.array(rows["mag"]), designation=designations)


def _sky_truth(sky: Table, mags: np.ndarray, template_mags: np.ndarray, wcs: WCS, settings: SurveySettings) -> dict:
    """Truth rows for every sky source whose flux differs from the template or that is bright."""
    kind = np.asarray(sky["kind"])
    varies = np.isin(kind, ("variable_star", "agn", "sn", "nuclear", "hostless")) & (mags < VISIBLE_MAG)
    saturating = flux_from_mag(sky["mag"], settings.zero_point) > settings.saturation_adu
    bright = (kind == "star") & (np.asarray(sky["mag"]) < BRIGHT_STAR_MAG)
    keep = varies | bright
    x, y = wcs.all_world2pix(np.asarray(sky["ra"][keep]), np.asarray(sky["dec"][keep]), 0)
    labels = np.where(varies[keep], kind[keep], np.where(saturating[keep], "saturated_star", "bright_star"))
    return truth_rows(
        "", x, y, ra=np.asarray(sky["ra"][keep]), dec=np.asarray(sky["dec"][keep]), mag=mags[keep],
        template_mag=template_mags[keep], source_id=np.asarray(sky["source_id"][keep]),
        host_id=np.asarray(sky["host_id"][keep]), host_offset_arcsec=np.asarray(sky["host_offset_arcsec"][keep]),
        host_hlr_arcsec=np.asarray(sky["host_hlr_arcsec"][keep]),
    ) | {"kind": labels}


def truth_table(rows: list[dict], wcs: WCS) -> Table:
    """Stack truth row dicts into one table with every column of :data:`TRUTH_DEFAULTS`.

    Rows without sky coordinates get them from their pixel position through ``wcs``.
    """
    columns = {}
    for key, default in TRUTH_DEFAULTS.items():
        parts = [np.asarray(r[key]) if key in r else np.full(len(r["x"]), default) for r in rows]
        columns[key] = np.concatenate(parts) if parts else np.array([], dtype=type(default))
    table = Table(columns)
    missing = np.isnan(table["ra"])
    if missing.any():
        ra, dec = wcs.all_pix2world(table["x"][missing], table["y"][missing], 0)
        table["ra"][missing], table["dec"][missing] = ra, dec
    for col, unit in (("ra", "deg"), ("dec", "deg"), ("x", "pix"), ("y", "pix"), ("mag", "mag"),
                      ("template_mag", "mag"), ("host_offset_arcsec", "arcsec"), ("host_hlr_arcsec", "arcsec")):
        table[col].unit = unit
    return table


def _header(wcs: WCS, settings: SurveySettings, fwhm_arcsec: float, **cards) -> fits.Header:
    header = wcs.to_header()
    header["BUNIT"] = "adu"
    header["MAGZP"] = (settings.zero_point, "mag = MAGZP - 2.5 log10(flux/ADU)")
    header["FWHM"] = (round(fwhm_arcsec, 4), "seeing FWHM at image centre [arcsec]")
    header["SATURATE"] = (settings.saturation_adu, "saturation level [ADU]")
    header["GAIN"] = (settings.gain_e_per_adu, "[e-/ADU]")
    header["RDNOISE"] = (settings.read_noise_e, "read noise [e-]")
    header["PIXSCALE"] = (settings.pixel_scale_arcsec, "[arcsec/pixel]")
    header["OBSGEO-L"] = (settings.observatory_lon_deg, "observatory east longitude [deg]")
    header["OBSGEO-B"] = (settings.observatory_lat_deg, "observatory latitude [deg]")
    header["OBSGEO-H"] = (settings.observatory_height_m, "observatory height [m]")
    header["ORIGIN"] = f"bayesrb {__version__} simulator"
    for key, value in cards.items():
        header[key.upper()] = value
    return header


def simulate_visit(visit: Visit, sky: Table, orbits: Orbits, settings: SurveySettings) -> tuple[fits.HDUList, Table]:
    """Observe one visit: sub-exposures with noise and artefacts, their median stack and the truth.

    Parameters
    ----------
    visit : Visit
    sky : astropy.table.Table
        The visit's field sky from :func:`bayesrb.simulate.sky.make_field_sky`.
    orbits : Orbits
        The survey's orbit file; every orbit is propagated to each sub-exposure.
    settings : SurveySettings

    Returns
    -------
    hdul : astropy.io.fits.HDUList
        Primary HDU: the median stack (float32, ADU); extensions ``SUBEXP1..n``: the sub-exposures.
    truth : astropy.table.Table
        Everything that leaves a signal in a difference image, with pixel and sky positions.
    """
    rng = rng_for(settings.seed, "visit", visit.index)
    wcs, fwhm_arcsec = visit_geometry(visit, settings)
    shape = _image_shape(settings)
    psf = PsfModel(fwhm_arcsec / settings.pixel_scale_arcsec, settings.moffat_beta,
                   settings.fwhm_field_variation, shape)
    mags = magnitudes_at(sky, visit.mjd, rng)
    scene = render_scene(sky, mags, wcs, psf, settings) + settings.sky_adu
    camera = CameraDefects.draw(rng_for(settings.seed, "camera"), shape, settings.hot_pixels_per_megapixel,
                                settings.bad_columns)
    location = observatory(settings)
    truth = [_sky_truth(sky, mags, magnitudes_at(sky, None), wcs, settings), *camera.truth(shape)]
    subexposures, planets = [], []
    for k, mjd in enumerate(_subexposure_mjds(visit, settings)):
        image = scene.copy()
        planets.append(minor_planets_on_image(orbits, mjd, wcs, shape, location, margin_px=MP_MARGIN_PX,
                                             limit_mag=VISIBLE_MAG))
        mp_flux = flux_from_mag(planets[-1]["mag"], settings.zero_point)
        render_points(image, psf, planets[-1]["x"], planets[-1]["y"], mp_flux)
        if rng.uniform() < settings.satellite_probability:
            truth.append(add_satellite_trail(image, rng, psf.fwhm_px) | {"sub_index": np.array([k])})
        image = add_noise(image, rng, settings)
        cosmic = add_cosmic_rays(image, rng, settings.cosmic_rays_per_megapixel)
        truth.append(cosmic | {"sub_index": np.full(len(cosmic["x"]), k)})
        camera.apply(image)
        bleed = saturate_with_bleed(image, settings.saturation_adu)
        truth.append(bleed | {"sub_index": np.full(len(bleed["x"]), k)})
        subexposures.append(image.astype(np.float32))
    truth.append(_mp_truth(planets))
    stack = np.median(np.stack(subexposures), axis=0).astype(np.float32)
    common = {"field": visit.field.name, "visit": visit.visit_id, "filter": "L", "nsubexp": len(subexposures),
              "exptime": settings.subexposure_time_s}
    hdus = [fits.PrimaryHDU(stack, _header(wcs, settings, fwhm_arcsec, mjd_obs=visit.mjd, **common))]
    for k, (image, mjd) in enumerate(zip(subexposures, _subexposure_mjds(visit, settings), strict=True)):
        header = _header(wcs, settings, fwhm_arcsec, mjd_obs=mjd, **common)
        hdus.append(fits.ImageHDU(image, header, name=f"SUBEXP{k + 1}"))
    for hdu in hdus:
        hdu.header.rename_keyword("MJD_OBS", "MJD-OBS")
    table = truth_table(truth, wcs)
    table.meta.update({"visit": visit.visit_id, "field": visit.field.name, "mjd": visit.mjd})
    return fits.HDUList(hdus), table


def simulate_template(field: Field, sky: Table, settings: SurveySettings) -> fits.HDUList:
    """The field's deep template: a noise-reduced coadd with its own PSF and WCS, no transients.

    Parameters
    ----------
    field : Field
        The field (its index seeds the template's noise).
    sky : astropy.table.Table
        The field's sources, drawn as the template sees them (:func:`~bayesrb.simulate.sky.magnitudes_at` without
        an epoch).
    settings : SurveySettings
        The template's seeing, depth (``template_n_combine``), pixel scale and image size.

    Returns
    -------
    astropy.io.fits.HDUList
        One primary HDU, float32, ADU per sub-exposure-equivalent (same zero point as the science).
    """
    rng = rng_for(settings.seed, "template-noise", field.index)
    wcs = template_geometry(field, settings)
    shape = _image_shape(settings)
    psf = PsfModel(settings.template_fwhm_arcsec / settings.pixel_scale_arcsec, settings.moffat_beta,
                   settings.fwhm_field_variation, shape)
    image = render_scene(sky, magnitudes_at(sky, None), wcs, psf, settings) + settings.sky_adu
    image = add_noise(image, rng, settings, n_combine=settings.template_n_combine)
    np.minimum(image, settings.saturation_adu, out=image)
    header = _header(wcs, settings, settings.template_fwhm_arcsec, field=field.name, filter="L",
                     ncombine=settings.template_n_combine, exptime=settings.subexposure_time_s)
    return fits.HDUList([fits.PrimaryHDU(image.astype(np.float32), header)])


def survey_orbits(visits: list[Visit], settings: SurveySettings) -> Orbits:
    """Synthetic main-belt orbits such that ``minor_planets_per_visit`` cross each visit's field."""
    radius = 0.45 * min(settings.field_width_deg, settings.field_height_deg)
    targets = [(v.field.ra_deg, v.field.dec_deg, radius, v.mjd, settings.minor_planets_per_visit) for v in visits]
    return orbits_through_fields(targets, rng_for(settings.seed, "orbits"), observatory(settings),
                                 mag_range=settings.minor_planet_mag_range)


def _observed(rng: np.random.Generator, table: Table, settings: SurveySettings) -> Table:
    """Apply the catalogue's magnitude limit and random incompleteness."""
    keep = (np.asarray(table["mag"]) < settings.catalogue_limit_mag) & (
        rng.uniform(size=len(table)) < settings.catalogue_completeness)
    return table[keep]


def point_source_hlr_arcsec(settings: SurveySettings) -> float:
    """The half-light radius a catalogue gives a point source it takes for a galaxy: half the best seeing."""
    return settings.fwhm_range_arcsec[0] / 2


def galaxy_shape_columns(sky: Table, looks_galaxy: np.ndarray, settings: SurveySettings) -> dict[str, np.ndarray]:
    """Catalogue shape columns ``hlr_arcsec``, ``axis_ratio``, ``pa_deg`` of the rows of ``sky``.

    Rows that look like galaxies get their Sérsic half-light radius and the shape of :func:`galaxy_axis_ratio`
    and :func:`galaxy_position_angle_deg`; point sources among them (stars taken for galaxies) get
    :func:`point_source_hlr_arcsec`, axis ratio 1 and position angle 0. Rows that look like stars get NaN.
    """
    hlr = np.asarray(sky["hlr_arcsec"], dtype=float)
    columns = {"hlr_arcsec": np.where(np.isfinite(hlr), hlr, point_source_hlr_arcsec(settings)),
               "axis_ratio": galaxy_axis_ratio(sky["e1"], sky["e2"]),
               "pa_deg": galaxy_position_angle_deg(sky["e1"], sky["e2"])}
    return {name: np.where(looks_galaxy, values, np.nan) for name, values in columns.items()}


def _add_shape_columns(table: Table, rows: Table, looks_galaxy: np.ndarray, settings: SurveySettings) -> Table:
    """Add the :func:`galaxy_shape_columns` of the sky-truth ``rows`` (one per row of ``table``) to ``table``."""
    for name, values in galaxy_shape_columns(rows, looks_galaxy, settings).items():
        table[name] = values
    table["hlr_arcsec"].unit, table["pa_deg"].unit = "arcsec", "deg"
    return table


def coverage_radius_deg(settings: SurveySettings) -> float:
    """Radius of a field's catalogue-coverage circle about its centre, degrees.

    The larger of :func:`bayesrb.simulate.plan.footprint_radius_deg` (every science and template image, with
    pointing jitter and template offset) and the half-diagonal of the field's sky-truth square (the image
    plus :data:`bayesrb.simulate.sky.SKY_MARGIN_ARCSEC` on each side), so every image pixel and every source of
    the field lies inside.
    """
    margin = SKY_MARGIN_ARCSEC / 3600.0
    sky_half_diagonal = np.hypot(settings.field_width_deg / 2 + margin, settings.field_height_deg / 2 + margin)
    return float(max(footprint_radius_deg(settings), sky_half_diagonal))


def coverage_circles(fields: list[Field], settings: SurveySettings) -> list[dict[str, float]]:
    """The ``coverage`` meta of a catalogue that covers ``fields``: one circle per field, degrees.

    Returns
    -------
    list of dict
        ``[{"ra": deg, "dec": deg, "radius_deg": deg}, ...]``, centred on each field's nominal pointing with
        :func:`coverage_radius_deg`.
    """
    radius = coverage_radius_deg(settings)
    return [{"ra": float(f.ra_deg), "dec": float(f.dec_deg), "radius_deg": radius} for f in fields]


def _with_coverage(table: Table, fields: list[Field], settings: SurveySettings) -> Table:
    table.meta = {"coverage": coverage_circles(fields, settings)}
    return table


def _shallow_catalogues(sky: Table, settings: SurveySettings) -> dict[str, Table]:
    """The all-sky catalogues, every draw from the ``catalogues`` stream (in the order they always had)."""
    rng = rng_for(settings.seed, "catalogues")
    kind = np.asarray(sky["kind"])
    swapped = rng.uniform(size=len(sky)) < settings.star_galaxy_confusion
    is_star = np.isin(kind, STAR_KINDS)
    looks_star = (is_star & ~swapped) | ((kind == "galaxy") & swapped)
    looks_galaxy = ((kind == "galaxy") & ~swapped) | (is_star & swapped)
    columns = ["source_id", "ra", "dec", "mag"]
    galaxies = sky[looks_galaxy]
    catalogues = {
        "stars": sky[looks_star][columns],
        "galaxies": _add_shape_columns(galaxies[columns], galaxies, np.ones(len(galaxies), bool), settings),
        "variables": sky[kind == "variable_star"][columns],
        "agn": sky[kind == "agn"][columns],
    }
    observed = {name: _observed(rng, table, settings) for name, table in catalogues.items()}
    transients = sky[np.isin(kind, TRANSIENT_KINDS)][columns]
    reported = rng.uniform(size=len(transients)) < settings.known_transient_fraction
    return observed | {"transients": transients[reported]}


def deep_covered_fields(fields: list[Field], settings: SurveySettings) -> list[Field]:
    """The fields the deep catalogue covers: a random ``deep_catalogue_coverage`` fraction of ``fields``.

    The number covered is the fraction of the number of fields, rounded, but at least one and, with two or more
    fields, at least one left uncovered. Which ones: those with the smallest draws of their own
    ``deep-coverage`` stream (one per field index), so a field's draw depends on nothing but the seed and its index.
    """
    if not fields:
        return []
    n_covered = int(np.clip(round(settings.deep_catalogue_coverage * len(fields)), 1, max(len(fields) - 1, 1)))
    keys = [rng_for(settings.seed, "deep-coverage", f.index).uniform() for f in fields]
    chosen = set(np.argsort(keys)[:n_covered].tolist())
    return [f for i, f in enumerate(fields) if i in chosen]


def deep_confusion_probability(mag, settings: SurveySettings) -> np.ndarray:
    """Probability that the deep catalogue swaps star and galaxy, at magnitudes ``mag``.

    ``p(m) = p_bright + (p_limit - p_bright) · 10^(0.4 (m - m_lim))``, clipped to ``[0, 1]``: the excess over
    ``deep_star_galaxy_confusion_bright`` scales as the inverse signal-to-noise ratio of a background-limited
    source and reaches ``deep_star_galaxy_confusion_at_limit`` at ``deep_catalogue_limit_mag``.
    """
    excess = settings.deep_star_galaxy_confusion_at_limit - settings.deep_star_galaxy_confusion_bright
    fainter = 10.0 ** (0.4 * (np.asarray(mag, dtype=float) - settings.deep_catalogue_limit_mag))
    return np.clip(settings.deep_star_galaxy_confusion_bright + excess * fainter, 0.0, 1.0)


def _deep_field_rows(sky: Table, field: Field, settings: SurveySettings) -> Table:
    """The deep catalogue's rows of one field: its stars (variables included) and galaxies, from its own stream."""
    rng = rng_for(settings.seed, "deep-catalogue", field.index)
    static = sky[np.isin(np.asarray(sky["kind"]), STATIC_KINDS)]
    mag = np.asarray(static["mag"], dtype=float)
    detected = (mag < settings.deep_catalogue_limit_mag) & (
        rng.uniform(size=len(static)) < settings.deep_catalogue_completeness)
    swapped = rng.uniform(size=len(static)) < deep_confusion_probability(mag, settings)
    looks_galaxy = (np.asarray(static["kind"]) == "galaxy") ^ swapped
    table = static[["source_id", "ra", "dec", "mag"]]
    table["class"] = np.where(looks_galaxy, "galaxy", "star")
    return _add_shape_columns(table, static, looks_galaxy, settings)[detected]


def deep_catalogue(sky: Table, fields: list[Field], settings: SurveySettings) -> Table:
    """A deeper star/galaxy catalogue (Pan-STARRS-like) over part of the survey: see :func:`survey_catalogues`."""
    covered = deep_covered_fields(fields, settings)
    field_of_row = np.asarray(sky["field"])
    parts = [_deep_field_rows(sky[field_of_row == f.name], f, settings) for f in covered]
    return _with_coverage(vstack(parts, metadata_conflicts="silent"), covered, settings)


def survey_catalogues(skies: list[Table], settings: SurveySettings) -> dict[str, Table]:
    """The survey's external catalogues, with realistic incompleteness, star/galaxy confusion and coverage.

    Parameters
    ----------
    skies : list of astropy.table.Table
        The sky truth of every field (with its ``field`` column naming a field of
        :func:`bayesrb.simulate.plan.survey_fields`).
    settings : SurveySettings

    Returns
    -------
    dict of str to astropy.table.Table
        All-sky catalogues like an all-sky survey: ``stars``, ``galaxies``, ``variables`` and ``agn``, each with
        ``source_id``, ``ra``, ``dec`` (deg), ``mag`` (to ``catalogue_limit_mag``, ``catalogue_completeness``
        complete); galaxies also ``hlr_arcsec``, ``axis_ratio`` (b/a) and ``pa_deg`` (major axis, degrees East
        of North, in [0, 180)); ``transients``, the known (reported) transients, a random
        ``known_transient_fraction`` of them, with their peak magnitude. And ``deep``: a deeper
        (``deep_catalogue_limit_mag``, ``deep_catalogue_completeness``) star/galaxy catalogue over a random
        ``deep_catalogue_coverage`` fraction of the fields (:func:`deep_covered_fields`), with ``source_id``,
        ``ra``, ``dec``, ``mag``, ``class`` (``star`` or ``galaxy``, swapped with
        :func:`deep_confusion_probability`) and, for its galaxies, ``hlr_arcsec``, ``axis_ratio`` and ``pa_deg``
        (NaN for its stars); variable stars are among its stars and AGN hosts among its galaxies (the AGN
        point sources are left out). Every table's ``meta["coverage"]`` lists the circles it covers
        (:func:`coverage_circles`): every field for the all-sky catalogues, the covered fields for ``deep``.
        The all-sky catalogues draw from the ``catalogues`` stream, the deep catalogue from its own streams, so
        one never changes the other.
    """
    sky = vstack(skies, metadata_conflicts="silent")
    present = set(np.asarray(sky["field"]).tolist())
    fields = [f for f in survey_fields(settings) if f.name in present]
    catalogues = {name: _with_coverage(table, fields, settings)
                  for name, table in _shallow_catalogues(sky, settings).items()}
    return catalogues | {"deep": deep_catalogue(sky, fields, settings)}
