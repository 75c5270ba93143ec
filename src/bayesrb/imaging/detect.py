"""Candidate detection on a difference image, both signs, with a per-pixel error map.

Pixel coordinates in the output are 0-based ``(x, y)`` with ``x = column``, ``y = row`` (so the array
value at a candidate is ``D[round(y), round(x)]``), matching astropy's ``origin=0``.

Flag bits of the ``flags`` column (:data:`FLAG_BITS`):

======  ===============  ======================================================================
value   name             meaning
======  ===============  ======================================================================
1       NEAR_EDGE        centre within ``edge_margin_px`` of the image border
2       NEAR_MASK        a masked / NaN pixel (no template, saturated, border) inside the aperture
4       BLENDED          sep deblended this object from a neighbour (``OBJ_MERGED``)
8       TRUNCATED        object or aperture truncated by the image border
16      DIPOLE           a detection of the opposite sign within 2 FWHM (typical subtraction residual)
32      SEP_OTHER        any other sep extraction flag (singular moments, aperture problems, ...)
======  ===============  ======================================================================
"""

from __future__ import annotations

import numpy as np
import sep
from astropy import units as u
from astropy.table import Table
from astropy.wcs import WCS

from bayesrb.imaging.difference import Difference
from bayesrb.imaging.fitsio import pixel_scale_arcsec

FLAG_NEAR_EDGE = 1
FLAG_NEAR_MASK = 2
FLAG_BLENDED = 4
FLAG_TRUNCATED = 8
FLAG_DIPOLE = 16
FLAG_SEP_OTHER = 32
#: Name -> bit value of every flag.
FLAG_BITS = {"NEAR_EDGE": FLAG_NEAR_EDGE, "NEAR_MASK": FLAG_NEAR_MASK, "BLENDED": FLAG_BLENDED,
             "TRUNCATED": FLAG_TRUNCATED, "DIPOLE": FLAG_DIPOLE, "SEP_OTHER": FLAG_SEP_OTHER}

#: Output columns: name, dtype, unit.
COLUMNS = (("x", np.float64, u.pix), ("y", np.float64, u.pix), ("ra", np.float64, u.deg),
           ("dec", np.float64, u.deg), ("flux", np.float64, None), ("flux_err", np.float64, None),
           ("mag", np.float64, u.mag), ("mag_err", np.float64, u.mag), ("snr", np.float64, None),
           ("fwhm", np.float64, u.arcsec), ("sign", np.int8, None), ("flags", np.int32, None))
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def empty_candidates() -> Table:
    """A zero-row candidate table with the columns, dtypes and units of :func:`detect`."""
    table = Table()
    for name, dtype, unit in COLUMNS:
        table[name] = np.zeros(0, dtype=dtype)
        if unit is not None:
            table[name].unit = unit
    table.meta["flag_bits"] = dict(FLAG_BITS)
    return table


def _prepare(difference: Difference):
    """NaN-free float64 D, a positive err map and the invalid-pixel mask."""
    d = np.asarray(difference.difference, dtype=np.float64)
    noise = np.asarray(difference.noise, dtype=np.float64)
    invalid = np.asarray(difference.mask, dtype=bool) | ~np.isfinite(d) | ~np.isfinite(noise) | (noise <= 0)
    if invalid.all():
        return None
    err = np.where(invalid, np.median(noise[~invalid]), noise)
    return np.ascontiguousarray(np.where(invalid, 0.0, d)), np.ascontiguousarray(err), invalid


def raise_sep_limits(n_pixels: int) -> None:
    """Let sep extract every source of an image of ``n_pixels`` (process-wide limits).

    With its default pixel stack and sub-object limit, sep fails on a crowded image ("internal pixel buffer full").
    """
    sep.set_extract_pixstack(max(300_000, n_pixels))
    sep.set_sub_object_limit(4096)


def _extract(data, err, invalid, threshold, min_area, deblend_nthresh, deblend_cont):
    """Run sep on one sign (``data`` already multiplied by the sign)."""
    raise_sep_limits(data.size)
    return sep.extract(data, threshold, err=err, mask=invalid, minarea=min_area,
                       deblend_nthresh=deblend_nthresh, deblend_cont=deblend_cont)


def _dipoles(x, y, sign, radius: float) -> np.ndarray:
    """True where a detection of the opposite sign lies within ``radius`` pixels."""
    if len(x) == 0:
        return np.zeros(0, dtype=bool)
    dist2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    return ((dist2 <= radius**2) & (sign[:, None] != sign[None, :])).any(axis=1)


def _flags(objects, aper_flags, x, y, sign, shape, edge_margin, fwhm_px) -> np.ndarray:
    """Combine position, mask, sep and dipole information into the documented bitmask."""
    flags = np.zeros(len(x), dtype=np.int32)
    near_edge = (x < edge_margin) | (y < edge_margin) | (x > shape[1] - 1 - edge_margin) | (
        y > shape[0] - 1 - edge_margin)
    flags[near_edge] |= FLAG_NEAR_EDGE
    flags[(aper_flags & sep.APER_HASMASKED) != 0] |= FLAG_NEAR_MASK
    flags[(objects["flag"] & sep.OBJ_MERGED) != 0] |= FLAG_BLENDED
    truncated = ((objects["flag"] & sep.OBJ_TRUNC) != 0) | ((aper_flags & sep.APER_TRUNC) != 0)
    flags[truncated] |= FLAG_TRUNCATED
    other = objects["flag"] & ~(sep.OBJ_MERGED | sep.OBJ_TRUNC)
    flags[other != 0] |= FLAG_SEP_OTHER
    flags[_dipoles(x, y, sign, 2.0 * fwhm_px)] |= FLAG_DIPOLE
    return flags


def detect(difference: Difference, wcs: WCS, zero_point: float, *, threshold: float = 5.0, min_area: int = 5,
           deblend_nthresh: int = 32, deblend_cont: float = 0.005, edge_margin_px: float = 10.0,
           aperture_radius_px: float | None = None) -> Table:
    """Detect positive and negative sources on a difference image.

    sep runs on ``D`` and on ``-D`` with the per-pixel noise map as ``err`` (default 3x3 filter kernel;
    the threshold is in units of the unfiltered per-pixel noise), masked pixels excluded. Fluxes are
    aperture sums (:func:`sep.sum_circle`) of ``sign * D`` within ``aperture_radius_px`` around sep's
    windowed centroid (:func:`windowed_positions`), *not* aperture-corrected (a Gaussian PSF puts 94 % of its flux
    inside 1 FWHM).

    Parameters
    ----------
    difference : Difference
        Output of :func:`bayesrb.imaging.subtract.subtract` (or arrays read back from disk).
    wcs : astropy.wcs.WCS
        Celestial WCS of the difference image (the science WCS).
    zero_point : float
        ``mag = zero_point - 2.5 log10(flux / ADU)`` (the science MAGZP).
    threshold : float, optional
        Detection threshold in sigma per pixel (default 5).
    min_area : int, optional
        Minimum connected pixels above threshold (default 5).
    deblend_nthresh, deblend_cont : int, float, optional
        sep deblending parameters.
    edge_margin_px : float, optional
        Distance from the border below which ``NEAR_EDGE`` is set (default 10 px).
    aperture_radius_px : float, optional
        Aperture radius; default 1 FWHM of D's PSF (``difference.fwhm_px``), or 3 px if unknown.

    Returns
    -------
    astropy.table.Table
        One row per candidate with columns ``x, y`` (0-based px, ``x`` = column), ``ra, dec`` (deg),
        ``flux, flux_err`` (ADU, aperture, positive for either sign), ``mag, mag_err``, ``snr``,
        ``fwhm`` (arcsec, ``2 x`` half-flux radius), ``sign`` (int8, +1 / -1) and ``flags`` (int32,
        see the module docstring). Zero rows (with the same columns) if nothing is found.
    """
    prepared = _prepare(difference)
    if prepared is None:
        return empty_candidates()
    data, err, invalid = prepared
    fwhm_px = float(difference.fwhm_px) if np.isfinite(difference.fwhm_px) and difference.fwhm_px > 0 else 3.0
    radius = float(aperture_radius_px) if aperture_radius_px is not None else fwhm_px
    parts = []
    for sign in (1, -1):
        objects = _extract(sign * data, err, invalid, threshold, min_area, deblend_nthresh, deblend_cont)
        if len(objects):
            parts.append((sign, objects))
    if not parts:
        return empty_candidates()
    return _measure(parts, data, err, invalid, wcs, zero_point, radius, fwhm_px, edge_margin_px)


def windowed_positions(signed, x, y, invalid, fwhm_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroids in a Gaussian window of the PSF's width (SExtractor's ``XWIN``), from sep's barycentres.

    The isophotal barycentre of a faint source wanders with the noise and with whatever lies under the isophote (a
    galaxy's subtraction residuals); a window of the PSF's sigma weighs the core, as a PSF fit would. Where the
    windowed centroid fails or moves farther than one PSF sigma (a blend), the barycentre is kept.

    Parameters
    ----------
    signed : numpy.ndarray
        The difference image times the detections' sign (C-contiguous float64).
    x, y : numpy.ndarray
        sep's barycentres (0-based pixels).
    invalid : numpy.ndarray
        Mask of pixels to ignore.
    fwhm_px : float
        FWHM of the difference image's PSF, in pixels.

    Returns
    -------
    tuple of numpy.ndarray
        ``x``, ``y`` of the windowed centroids.
    """
    sigma = fwhm_px / _FWHM_PER_SIGMA
    x_win, y_win, flag = sep.winpos(signed, x, y, np.full(len(x), sigma), mask=invalid)
    good = (flag == 0) & np.isfinite(x_win) & np.isfinite(y_win) & (np.hypot(x_win - x, y_win - y) <= sigma)
    return np.where(good, x_win, x), np.where(good, y_win, y)


def _measure(parts, data, err, invalid, wcs, zero_point, radius, fwhm_px, edge_margin) -> Table:
    """Windowed centroids, aperture photometry, sizes, sky positions and flags of all detections."""
    objects = np.concatenate([objs for _, objs in parts])
    sign = np.concatenate([np.full(len(objs), s, dtype=np.int8) for s, objs in parts])
    x, y = np.asarray(objects["x"], dtype=np.float64), np.asarray(objects["y"], dtype=np.float64)
    flux, flux_err, aper_flags = np.empty(len(x)), np.empty(len(x)), np.zeros(len(x), dtype=np.int32)
    half_radius = np.empty(len(x))
    for s in (1, -1):
        sel = sign == s
        if not sel.any():
            continue
        signed = np.ascontiguousarray(s * data)
        x[sel], y[sel] = windowed_positions(signed, x[sel], y[sel], invalid, fwhm_px)
        flux[sel], flux_err[sel], aper_flags[sel] = sep.sum_circle(signed, x[sel], y[sel], radius, err=err,
                                                                     mask=invalid, subpix=5)
        half_radius[sel], _ = sep.flux_radius(signed, x[sel], y[sel], np.full(sel.sum(), 3.0 * fwhm_px), 0.5,
                                              mask=invalid, subpix=5)
    ra, dec = wcs.all_pix2world(x, y, 0)
    positive = flux > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(positive, zero_point - 2.5 * np.log10(np.abs(flux)), np.nan)
        mag_err = np.where(positive, 2.5 / np.log(10.0) * flux_err / np.abs(flux), np.nan)
        snr = np.where(flux_err > 0, flux / flux_err, np.nan)
    table = empty_candidates()
    values = dict(x=x, y=y, ra=ra, dec=dec, flux=flux, flux_err=flux_err, mag=mag, mag_err=mag_err, snr=snr,
                  fwhm=2.0 * half_radius * pixel_scale_arcsec(wcs), sign=sign,
                  flags=_flags(objects, aper_flags, x, y, sign, data.shape, edge_margin, fwhm_px))
    out = Table({name: np.asarray(values[name], dtype=dtype) for name, dtype, _ in COLUMNS})
    for name, _, unit in COLUMNS:
        out[name].unit = unit
    out.meta.update(table.meta)
    return out
