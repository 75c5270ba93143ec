"""File-level augmentation step: synthetic transients on galaxies (real) and galaxy residuals (bogus) of a visit.

For every labelled minor planet in a magnitude range, a galaxy of the same visit is drawn from the galaxy
catalogue and a static point source with the minor planet's fitted difference-image signal is placed at a
host offset drawn uniformly (see :mod:`bayesrb.labels.augment` for how the signal is built). Galaxy-residual
bogus stamps are cut at galaxies with nothing added, at the same offset distribution, so that the position
relative to the host carries no information about the label. A fraction of the synthetic transients
(``augment.fading_fraction``) is faded: put in the template instead, so that the subtraction is negative (meta
``sign`` -1), at the template's FWHM (its header's ``FWHM``, arcsec; the signal's own FWHM without one).

Synthetic variable stars (``augment.variable_star_fraction`` per synthetic transient, kind ``synvariable``, real)
reuse the first signals on catalogued stars of the visit (in a magnitude range, clear of the positions to avoid),
at the star's position: every other one added to the science image (the star brightened), the others faded (the
star was brighter when the template was taken). A residual on a star is otherwise always bogus in the training
set, while a survey's real alerts on stars are variable stars.
"""

import logging
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from bayesrb.imaging.fitsio import pixel_scale_arcsec
from bayesrb.imaging.inputs import load_visit_images
from bayesrb.labels.augment import PointSource, VisitImages, draw_host_offsets, fit_point_source, inject_point_sources
from bayesrb.labels.automatic import clear_of
from bayesrb.labels.catalogues import positions, read_catalogue
from bayesrb.labels.settings import AugmentSettings
from bayesrb.seeding import rng_for
from bayesrb.stamps.extract import extract_stamps
from bayesrb.stamps.shard import read_shard, write_shard
from bayesrb.vocabulary import GALAXY_RESIDUAL, MINOR_PLANET, SYNTHETIC_TRANSIENT, SYNTHETIC_VARIABLE

log = logging.getLogger(__name__)

MAD_TO_SIGMA = 1.4826
_PLACED_COLUMNS = ("x", "y", "ra", "dec", "host_offset_arcsec", "host_offset_hlr", "host_mag")


@dataclass(frozen=True)
class Hosts:
    """Candidate host galaxies on the image: pixel and sky positions, magnitude, half-light radius."""

    x: np.ndarray
    y: np.ndarray
    sky: SkyCoord
    mag: np.ndarray
    hlr_arcsec: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def robust_sigma(stamp: np.ndarray) -> float:
    """Noise of a stamp from the median absolute deviation of its non-zero pixels."""
    values = stamp[stamp != 0]
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values)))) if len(values) else 1.0


def fit_signals(stamps: np.ndarray, channels: tuple[str, ...],
                fwhm_px: np.ndarray) -> tuple[list[PointSource | None], list[PointSource | None]]:
    """Fit point-source models to the science and difference channels of minor-planet stamps.

    Returns
    -------
    science, difference : list of PointSource or None
        One model per stamp; ``None`` where either fit failed.
    """
    k_science, k_difference = channels.index("science"), channels.index("difference")
    science, difference = [], []
    for stamp, fwhm in zip(stamps, fwhm_px, strict=True):
        guess = float(fwhm) if np.isfinite(fwhm) and fwhm > 0 else 3.0
        try:
            pair = [fit_point_source(stamp[..., k], robust_sigma(stamp[..., k]), guess)
                    for k in (k_science, k_difference)]
        except ValueError:
            pair = [None, None]
        science.append(pair[0])
        difference.append(pair[1])
    return science, difference


def hosts_on_image(galaxies: Table, wcs, shape: tuple[int, int], settings: AugmentSettings, margin_px: float,
                   avoid_ra: np.ndarray, avoid_dec: np.ndarray) -> Hosts:
    """Catalogued galaxies usable as hosts.

    Hosts are in the magnitude range, far enough from the edges for any offset, and clear of the positions to
    avoid (catalogued variables and AGN, known transients, detected minor planets).
    """
    x, y = wcs.all_world2pix(np.asarray(galaxies["ra"], float), np.asarray(galaxies["dec"], float), 0)
    mag, hlr = np.asarray(galaxies["mag"], float), np.asarray(galaxies["hlr_arcsec"], float)
    reach = margin_px + _max_offset_arcsec(hlr, settings) / pixel_scale_arcsec(wcs)
    keep = ((x > reach) & (x < shape[1] - 1 - reach) & (y > reach) & (y < shape[0] - 1 - reach)
            & (mag >= settings.host_mag_range[0]) & (mag <= settings.host_mag_range[1]))
    keep &= clear_of(np.asarray(galaxies["ra"], float), np.asarray(galaxies["dec"], float), avoid_ra, avoid_dec,
                     settings.host_clear_radius_arcsec)
    sky = SkyCoord(np.asarray(galaxies["ra"], float)[keep] * u.deg, np.asarray(galaxies["dec"], float)[keep] * u.deg)
    return Hosts(x[keep], y[keep], sky, mag[keep], hlr[keep])


def stars_on_image(stars: Table, wcs, shape: tuple[int, int], settings: AugmentSettings, margin_px: float,
                   avoid_ra: np.ndarray, avoid_dec: np.ndarray) -> dict[str, np.ndarray]:
    """Catalogued stars that can vary: ``x``, ``y`` (pixel), ``ra``, ``dec`` (deg) and ``mag``.

    They are in the magnitude range, ``margin_px`` inside the image, and clear of the positions to avoid.
    """
    ra, dec, mag = (np.asarray(stars[name], float) for name in ("ra", "dec", "mag"))
    x, y = wcs.all_world2pix(ra, dec, 0)
    low, high = settings.variable_star_mag_range
    keep = ((x > margin_px) & (x < shape[1] - 1 - margin_px) & (y > margin_px) & (y < shape[0] - 1 - margin_px)
            & (mag >= low) & (mag <= high))
    keep &= clear_of(ra, dec, avoid_ra, avoid_dec, settings.host_clear_radius_arcsec)
    return {"x": x[keep], "y": y[keep], "ra": ra[keep], "dec": dec[keep], "mag": mag[keep]}


def _varying_stars(stars: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` of the stars (each once while possible), as positions with no host."""
    if n == 0 or len(stars["x"]) == 0:
        return {name: np.array([]) for name in _PLACED_COLUMNS}
    chosen = np.concatenate([rng.permutation(len(stars["x"])) for _ in range(-(-n // len(stars["x"])))])[:n]
    nan = np.full(n, np.nan)
    return {name: stars[name][chosen] for name in ("x", "y", "ra", "dec")} | dict.fromkeys(
        ("host_offset_arcsec", "host_offset_hlr", "host_mag"), nan)


def _max_offset_arcsec(hlr_arcsec: np.ndarray, settings: AugmentSettings) -> np.ndarray:
    return settings.max_offset * (hlr_arcsec if settings.offset_unit == "hlr" else np.ones_like(hlr_arcsec))


def place_on_hosts(hosts: Hosts, n: int, settings: AugmentSettings, wcs, rng: np.random.Generator) -> dict:
    """Choose ``n`` hosts (each once while possible) and an offset position on each.

    Parameters
    ----------
    hosts : Hosts
        The galaxies that may host a synthetic transient.
    n : int
        Positions to place.
    settings : AugmentSettings
        ``max_offset`` and ``offset_unit``: how far from each host's centre (:func:`draw_host_offsets`).
    wcs : astropy.wcs.WCS
        The visit's WCS, for the pixel positions.
    rng : numpy.random.Generator

    Returns
    -------
    dict of str to numpy.ndarray
        ``x``, ``y`` (pixel), ``ra``, ``dec`` (deg) of the placed positions, and per position the host's
        ``host_offset_arcsec``, ``host_offset_hlr`` and ``host_mag``.
    """
    if n == 0 or len(hosts) == 0:
        return {name: np.array([]) for name in _PLACED_COLUMNS}
    chosen = np.concatenate([rng.permutation(len(hosts)) for _ in range(-(-n // len(hosts)))])[:n]
    offset, angle = draw_host_offsets(rng, hosts.hlr_arcsec[chosen], settings.max_offset, settings.offset_unit)
    placed = hosts.sky[chosen].directional_offset_by(angle * u.rad, offset * u.arcsec)
    x, y = wcs.all_world2pix(placed.ra.deg, placed.dec.deg, 0)
    values = (x, y, placed.ra.deg, placed.dec.deg, offset, offset / hosts.hlr_arcsec[chosen], hosts.mag[chosen])
    return dict(zip(_PLACED_COLUMNS, values, strict=True))


def _meta(visit: str, prefix: str, placed: dict, label: int, kind: str, source: dict, flags: np.ndarray) -> dict:
    n = len(placed["x"])
    nan = np.full(n, np.nan)
    meta = {"candidate_id": np.array([f"{visit}-{prefix}{i:04d}" for i in range(n)], dtype=str),
            "visit": np.full(n, visit), "sign": np.ones(n, np.int8), "flags": np.zeros(n, np.int32),
            "label": np.full(n, label, np.int8), "kind": np.full(n, kind), "stamp_flags": flags}
    meta |= {k: placed[k] for k in ("x", "y", "ra", "dec", "host_offset_arcsec", "host_offset_hlr", "host_mag")}
    meta |= {k: source.get(k, nan) for k in ("mag", "mag_err", "snr", "fwhm")}
    meta |= {"mp_mag": source.get("mag", nan), "mp_candidate_id": source.get("candidate_id", np.full(n, ""))}
    return meta


def _concatenate(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def augment_visit(visit: str, shard_path: str, labels_path: str, image_paths: tuple[str, str, str], out_path: str,
                  *, galaxies_path: str, avoid_paths: tuple[str, ...], settings: AugmentSettings, seed: int,
                  config_hash: str, external_difference_image: bool = False, stars_path: str | None = None) -> None:
    """Write one visit's synthetic transients, galaxy residuals and variable stars as a stamp shard, atomically.

    Parameters
    ----------
    visit : str
        Visit id; synthetic ids read ``{visit}-syn{i:04d}``, ``{visit}-glx{i:04d}`` and ``{visit}-var{i:04d}``.
    shard_path, labels_path : str
        The visit's stamp shard and label table (its ``mp`` rows are the sources of the signal).
    image_paths : tuple of str
        Science, template and difference FITS of the visit.
    out_path : str
        Output shard; every row labelled, with ``host_offset_arcsec``, ``host_offset_hlr``, ``host_mag``,
        ``mp_mag`` and ``mp_candidate_id`` columns.
    galaxies_path : str
        Galaxy catalogue with ``ra``, ``dec``, ``mag`` and ``hlr_arcsec``.
    avoid_paths : tuple of str
        Catalogues (variables, AGN, known transients) whose positions hosts must be clear of.
    settings : AugmentSettings
    seed : int
        Seed of the augmentation stage; a visit draws from ``(seed, "augment", visit)``.
    config_hash : str
        Recorded in the shard's attrs.
    external_difference_image : bool
        Whether the difference image came from outside the workflow.
    stars_path : str, optional
        Star catalogue (``ra``, ``dec``, ``mag``) of the synthetic variable stars; none without it.
    """
    rng = rng_for(seed, "augment", visit)
    shard = read_shard(shard_path)
    science, template, difference, subexposures = load_visit_images(*image_paths, external_difference_image)
    images = VisitImages(science.data, template, difference, subexposures, float(science.header.get("GAIN", 1.0)))
    sources = _signal_sources(shard, Table.read(labels_path, format="ascii.ecsv"), settings)
    fitted_science, fitted_difference = fit_signals(shard.stamps[sources], shard.channels,
                                                    shard.meta["fwhm"][sources])
    usable = np.array([m is not None for m in fitted_science], dtype=bool)
    sources = sources[usable]
    avoid_ra, avoid_dec = positions([read_catalogue(p) for p in avoid_paths]
                                    + [Table({k: shard.meta[k][sources] for k in ("ra", "dec")})])
    hosts = hosts_on_image(read_catalogue(galaxies_path, ("ra", "dec", "mag", "hlr_arcsec")), science.wcs,
                           science.data.shape, settings, shard.stamps.shape[1] // 2 + 1, avoid_ra, avoid_dec)
    n_synthetic = len(sources) if len(hosts) else 0
    n_residual = int(round(settings.glxresid_fraction * n_synthetic))
    synthetic = place_on_hosts(hosts, n_synthetic, settings, science.wcs, rng)
    residual = place_on_hosts(hosts, n_residual, settings, science.wcs, rng)
    signals = _Signals([m for m in fitted_science if m is not None], [m for m in fitted_difference if m is not None],
                       {k: shard.meta[k][sources] for k in ("mag", "mag_err", "snr", "fwhm", "candidate_id")},
                       _template_fwhm_px(image_paths[1], float(shard.attrs["pixel_scale_arcsec"])))
    faded = np.arange(n_synthetic) < round(settings.fading_fraction * n_synthetic)  # positions are random already
    parts = [_injected(visit, "syn", SYNTHETIC_TRANSIENT, images, synthetic, signals, faded, shard, rng)]
    glx_stamps, glx_flags = extract_stamps(science.data, template, difference, subexposures, residual["x"],
                                           residual["y"], size=shard.stamps.shape[1], channels=shard.channels)
    parts.append((glx_stamps, _meta(visit, "glx", residual, 0, GALAXY_RESIDUAL, {}, glx_flags)))
    n_variable = min(round(settings.variable_star_fraction * n_synthetic), n_synthetic) if stars_path else 0
    if n_variable:
        stars = stars_on_image(read_catalogue(stars_path, ("ra", "dec", "mag")), science.wcs, science.data.shape,
                               settings, shard.stamps.shape[1] // 2 + 1, avoid_ra, avoid_dec)
        varying = _varying_stars(stars, n_variable, rng)
        parts.append(_injected(visit, "var", SYNTHETIC_VARIABLE, images, varying, signals,
                               np.arange(len(varying["x"])) % 2 == 1, shard, rng))
        n_variable = len(varying["x"])
    attrs = {k: shard.attrs[k] for k in ("units", "pixel_scale_arcsec", "stamp_size")}
    write_shard(out_path, np.concatenate([stamps for stamps, _ in parts]), shard.channels,
                _concatenate([meta for _, meta in parts]),
                attrs | {"seed": seed, "config_hash": config_hash, "visit": visit})
    log.info("%s: %d synthetic transients (%d faded) from %d minor planets (%d fits failed), %d galaxy residuals, "
             "%d usable hosts, %d synthetic variable stars", visit, n_synthetic, int(faded.sum()), usable.size,
             int((~usable).sum()), n_residual, len(hosts), n_variable)


@dataclass(frozen=True)
class _Signals:
    """The fitted minor-planet signals, in order: science and difference models, their detections' meta."""

    science: list[PointSource]
    difference: list[PointSource]
    meta: dict[str, np.ndarray]
    template_fwhm_px: float | None


def _injected(visit: str, prefix: str, kind: str, images: VisitImages, placed: dict, signals: _Signals,
              faded: np.ndarray, shard, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Stamps and meta of the first ``len(placed["x"])`` signals injected at the placed positions (real rows)."""
    n = len(placed["x"])
    size, channels = shard.stamps.shape[1], shard.channels
    stamps, flags = inject_point_sources(
        images, placed["x"], placed["y"], signals.science[:n], signals.difference[:n], rng, size, channels,
        faded=faded, template_fwhm_px=signals.template_fwhm_px,
    ) if n else (np.zeros((0, size, size, len(channels)), np.float32), np.zeros(0, np.uint8))
    meta = _meta(visit, prefix, placed, 1, kind, {k: v[:n] for k, v in signals.meta.items()}, flags)
    meta["sign"][faded] = -1
    return stamps, meta


def _template_fwhm_px(template_path: str, pixel_scale: float) -> float | None:
    """The template's FWHM in pixels from its header's ``FWHM`` (arcsec); None without a positive one."""
    fwhm = fits.getheader(template_path).get("FWHM")
    return float(fwhm) / pixel_scale if isinstance(fwhm, int | float) and fwhm > 0 else None


def _signal_sources(shard, labels: Table, settings: AugmentSettings) -> np.ndarray:
    """Shard rows of labelled minor planets in the magnitude range whose stamps are whole."""
    mp_ids = set(np.asarray(labels["candidate_id"])[np.asarray(labels["kind"]) == MINOR_PLANET].tolist())
    is_mp = np.array([c in mp_ids for c in shard.meta["candidate_id"]], dtype=bool)
    mag = np.asarray(shard.meta["mag"], float)
    in_range = (mag >= settings.mp_mag_range[0]) & (mag <= settings.mp_mag_range[1])
    whole = np.asarray(shard.meta.get("stamp_flags", np.zeros(len(mag))), int) == 0
    return np.flatnonzero(is_mp & in_range & whole)
