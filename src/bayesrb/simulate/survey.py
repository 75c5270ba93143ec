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
from bayesrb.simulate.plan import Field, Visit
from bayesrb.simulate.render import GalaxyShapes, PsfModel, render_galaxies, render_points
from bayesrb.simulate.settings import SurveySettings
from bayesrb.simulate.sky import INVISIBLE_MAG, POINT_KINDS, TRANSIENT_KINDS, magnitudes_at

BRIGHT_STAR_MAG = 13.0
VISIBLE_MAG = 24.0
MP_MARGIN_PX = 20.0  # minor planets this far off the image still spill light onto it
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


def render_scene(sky: Table, mags: np.ndarray, wcs: WCS, psf: PsfModel, settings: SurveySettings) -> np.ndarray:
    """Noise-free image (ADU, no sky background) of every source of ``sky`` at magnitudes ``mags``."""
    image = np.zeros(psf.shape)
    x, y = wcs.all_world2pix(np.asarray(sky["ra"]), np.asarray(sky["dec"]), 0)
    flux = flux_from_mag(mags, settings.zero_point)
    point = np.isin(np.asarray(sky["kind"]), POINT_KINDS)
    render_points(image, psf, x[point], y[point], flux[point])
    galaxy = ~point
    shapes = GalaxyShapes(
        sersic_n=np.asarray(sky["sersic_n"][galaxy]),
        hlr_px=np.asarray(sky["hlr_arcsec"][galaxy]) / settings.pixel_scale_arcsec,
        e1=np.asarray(sky["e1"][galaxy]), e2=np.asarray(sky["e2"][galaxy]),
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


def survey_catalogues(skies: list[Table], settings: SurveySettings) -> dict[str, Table]:
    """The survey's external catalogues, with realistic incompleteness and star/galaxy confusion.

    Parameters
    ----------
    skies : list of astropy.table.Table
        The sky truth of every field.
    settings : SurveySettings

    Returns
    -------
    dict of str to astropy.table.Table
        ``stars``, ``galaxies``, ``variables`` and ``agn``, each with ``source_id``, ``ra``, ``dec``, ``mag``
        (galaxies also ``hlr_arcsec``); and ``transients``, the known (reported) transients, a random
        ``known_transient_fraction`` of them, with their peak magnitude.
    """
    rng = rng_for(settings.seed, "catalogues")
    sky = vstack(skies)
    kind = np.asarray(sky["kind"])
    swapped = rng.uniform(size=len(sky)) < settings.star_galaxy_confusion
    is_star = np.isin(kind, ("star", "variable_star"))
    looks_star = (is_star & ~swapped) | ((kind == "galaxy") & swapped)
    looks_galaxy = ((kind == "galaxy") & ~swapped) | (is_star & swapped)
    columns = ["source_id", "ra", "dec", "mag"]
    catalogues = {
        "stars": sky[looks_star][columns],
        "galaxies": sky[looks_galaxy][[*columns, "hlr_arcsec"]],
        "variables": sky[kind == "variable_star"][columns],
        "agn": sky[kind == "agn"][columns],
    }
    galaxies = catalogues["galaxies"]
    point_like = np.isnan(np.asarray(galaxies["hlr_arcsec"], dtype=float))
    galaxies["hlr_arcsec"][point_like] = settings.fwhm_range_arcsec[0] / 2
    observed = {name: _observed(rng, table, settings) for name, table in catalogues.items()}
    transients = sky[np.isin(kind, TRANSIENT_KINDS)][columns]
    reported = rng.uniform(size=len(transients)) < settings.known_transient_fraction
    return observed | {"transients": transients[reported]}
