"""PSF-matched image subtraction: a constant kernel per tile, overlapping tiles blended.

Conventions: arrays are indexed ``[row, col]``; pixel ``(x, y)`` means ``x = col``, ``y = row``. The
matching kernel ``K`` is stored as ``K[row offset + hw, col offset + hw]`` and applied as a true
convolution, ``(K * I)[r, c] = sum_ab K[a + hw, b + hw] I[r - a, c - b]``.

Which side is convolved
    When the template PSF is at least as sharp as the science PSF (the usual case for a deep, good-seeing
    template) the template is convolved: ``D = S - (K * T + B)``, so D keeps the science PSF and the
    science flux scale (ADU of the science image, its MAGZP applies). When the template is broader, the
    science image is convolved instead (a kernel cannot deconvolve) and the result is rescaled:
    ``D = (K * S + B - T) / sum(K)``. D is then still positive for sources brighter in the science image
    and on the science flux scale, but it has the *template's* PSF (``Difference.fwhm_px`` says which).

Noise model (variance per pixel, ADU^2)
    A stack of ``n`` frames has ``Var = f_n (max(I, 0) / g + (r / g)^2) / n`` with ``I`` the image itself
    (sky included), ``g`` = GAIN (e-/ADU), ``r`` = RDNOISE (e-), ``n`` = NSUBEXP with ``f_n`` the
    variance inflation of a median of ``n`` (1.35 for 3, 1.19 for 4, -> pi/2) for the science stack, and
    ``n`` = NCOMBINE with ``f_n = 1`` for the template. The convolved side's variance is convolved with
    ``K^2``. One global factor then rescales the map so that the median ``|D / noise|`` over source-free,
    unmasked pixels equals the Gaussian value 0.6745 (``Difference.noise_scale``).

Header fallbacks (logged)
    GAIN missing: estimated from the sky level and the measured sky variance (``Var = f_n/n (sky/g +
    r^2/g^2)``); if the sky is not positive (sky-subtracted data) the image is treated as having a
    constant, measured noise. RDNOISE missing: 0 (the empirical calibration absorbs it). SATURATE
    missing: the image maximum if at least 3 pixels share it (a clipped plateau), else no saturation.
    FWHM missing: twice the median half-light radius of bright compact sources measured with sep.
    NSUBEXP / NCOMBINE missing: 1.

Kernel fit
    :mod:`bayesrb.imaging.psfmatch` solves ``J ~ K * I + B`` per tile by least squares, in closed form with
    FFTs (``kernel_fit="fourier"``, the default) or with the sfft package (``kernel_fit="sfft"``: the same
    kernel, far slower and with gigabytes of memory per tile; README.md, *Benchmark*). An image is cut into equal tiles
    of at most ``tile_size`` whose overlaps (``2 (hw + 2 + max(8, hw))`` px) are blended with linear ramps.

Known limitation: the template is resampled with bilinear interpolation; a template PSF narrower than
about 1.8 px FWHM is undersampled and leaves residuals (about 1.25x the noise around stars at 1.6 px)
that no constant kernel can remove.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import sep
from astropy.io import fits
from scipy import ndimage

from bayesrb.errors import BadInputError
from bayesrb.imaging.difference import Difference
from bayesrb.imaging.fitsio import Image, pixel_scale_arcsec
from bayesrb.imaging.psfmatch import SOLVERS, convolve_periodic

log = logging.getLogger(__name__)

#: Variance of the median of n Gaussian samples relative to that of their mean (Monte Carlo, 2e7 draws).
_MEDIAN_VARIANCE_FACTOR = {1: 1.0, 2: 1.0, 3: 1.347, 4: 1.193, 5: 1.434, 6: 1.289, 7: 1.474, 8: 1.345,
                           9: 1.495, 10: 1.383, 11: 1.508}
#: median |z| of a standard normal variable.
_GAUSS_MEDIAN_ABS = 0.6744897501960817
#: Kernel half-width derived from the FWHM: clip(ratio * max FWHM [px], lo, hi) (sfft's own default rule).
_KERNEL_HW_RATIO, _KERNEL_HW_LIMITS = 2.0, (3, 20)


@dataclass(frozen=True)
class NoiseModel:
    """Per-pixel variance model of a stacked image (see the module docstring).

    Attributes
    ----------
    gain : float
        e-/ADU (``inf`` means no Poisson term: constant noise).
    read_noise_adu : float
        Read noise of one frame in ADU.
    n_frames : int
        Number of frames stacked.
    stack_factor : float
        Variance of the stack relative to a mean of ``n_frames`` (1 for a mean, > 1 for a median).
    saturate : float
        Saturation level in ADU (``inf`` if unknown).
    """

    gain: float
    read_noise_adu: float
    n_frames: int
    stack_factor: float
    saturate: float

    def variance(self, data: np.ndarray) -> np.ndarray:
        """Variance (ADU^2) of every pixel of ``data`` (NaN-free input), float32."""
        photons = np.clip(data, 0.0, None) / self.gain if np.isfinite(self.gain) else 0.0
        return ((photons + self.read_noise_adu**2) * (self.stack_factor / self.n_frames)).astype(np.float32)


def median_variance_factor(n: int) -> float:
    """Variance of the median of ``n`` Gaussian samples divided by that of their mean.

    Parameters
    ----------
    n : int
        Number of samples (>= 1).

    Returns
    -------
    float
        Tabulated for ``n <= 11``, ``pi / 2`` (the large-``n`` limit) beyond.
    """
    return _MEDIAN_VARIANCE_FACTOR.get(int(n), math.pi / 2)


def _header_float(header: fits.Header, key: str) -> float | None:
    """``header[key]`` as a finite float, or None."""
    try:
        value = float(header[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _saturation(header: fits.Header, data: np.ndarray, name: str) -> float:
    """SATURATE from the header, else the level of a clipped plateau, else inf."""
    value = _header_float(header, "SATURATE")
    if value is not None and value > 0:
        return value
    top = np.nanmax(data)
    plateau = int(np.count_nonzero(data == top)) >= 3
    log.info("%s: no SATURATE keyword; using %s", name, f"plateau level {top:g}" if plateau else "none")
    return float(top) if plateau else float("inf")


def noise_model(header: fits.Header, data: np.ndarray, sky: float, sky_rms: float, *, median_stack: bool,
                name: str = "image") -> NoiseModel:
    """Build the :class:`NoiseModel` of an image from its header, with documented fallbacks.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Header with GAIN, RDNOISE, SATURATE and NSUBEXP (science) or NCOMBINE (template).
    data : numpy.ndarray
        The image (used for the SATURATE fallback).
    sky, sky_rms : float
        Measured global sky level and sky rms (ADU), used when GAIN is missing.
    median_stack : bool
        True for the science image (median of NSUBEXP frames), False for the template (NCOMBINE, mean-like).
    name : str, optional
        Used in log messages.

    Returns
    -------
    NoiseModel
    """
    n = int(_header_float(header, "NSUBEXP" if median_stack else "NCOMBINE") or 1)
    n = max(n, 1)
    factor = median_variance_factor(n) if median_stack else 1.0
    read_e = _header_float(header, "RDNOISE")
    if read_e is None:
        log.info("%s: no RDNOISE keyword; assuming 0 e-", name)
        read_e = 0.0
    gain = _header_float(header, "GAIN")
    if gain is None or gain <= 0:
        gain = _gain_from_sky(sky, sky_rms**2 * n / factor, read_e)
        log.info("%s: no GAIN keyword; estimated %.3g e-/ADU from the sky", name, gain)
    if not np.isfinite(gain):
        read_adu = sky_rms * math.sqrt(n / factor)
    else:
        read_adu = read_e / gain
    return NoiseModel(gain=gain, read_noise_adu=read_adu, n_frames=n, stack_factor=factor,
                      saturate=_saturation(header, data, name))


def _gain_from_sky(sky: float, frame_variance: float, read_e: float) -> float:
    """Solve ``frame_variance = sky / g + (read_e / g)^2`` for ``g``; inf if the sky is not usable."""
    if not (sky > 0 and frame_variance > 0) or sky < 0.05 * frame_variance:
        return float("inf")
    if read_e == 0:
        return sky / frame_variance
    u = (-sky + math.sqrt(sky**2 + 4 * read_e**2 * frame_variance)) / (2 * read_e**2)
    return 1.0 / u if u > 0 else float("inf")


def _background(data: np.ndarray, invalid: np.ndarray) -> tuple[np.ndarray, float]:
    """A smooth sep background map (NaN-free, float32) and the global sky rms."""
    filled = np.where(invalid, np.nanmedian(data), data).astype(np.float32)
    bkg = sep.Background(filled, mask=invalid, bw=64, bh=64, fw=3, fh=3)
    return bkg.back().astype(np.float32), float(bkg.globalrms)


def estimate_fwhm_px(data: np.ndarray, background: np.ndarray, rms: float) -> float:
    """Estimate the FWHM (pixels) as twice the median half-light radius of bright compact sources.

    Parameters
    ----------
    data, background : numpy.ndarray
        Image and its background, NaN-free, indexed ``[row, col]``.
    rms : float
        Sky rms (ADU).

    Returns
    -------
    float
        FWHM in pixels (exact for a Gaussian PSF); 3.0 if too few sources are found.
    """
    sub = np.ascontiguousarray(data - background, dtype=np.float32)
    objects = sep.extract(sub, 10.0, err=rms, minarea=5)
    good = objects[(objects["flag"] == 0) & (objects["peak"] < 0.5 * np.nanmax(sub))]
    if len(good) < 3:
        return 3.0
    radius, _ = sep.flux_radius(sub, good["x"], good["y"], 6.0 * good["a"], 0.5, subpix=5)
    return float(2.0 * np.median(radius))


def _fwhm_px(header: fits.Header, scale_arcsec: float, data, background, rms, name: str) -> float:
    """FWHM in science pixels from the header's FWHM (arcsec), or measured."""
    fwhm = _header_float(header, "FWHM")
    if fwhm is not None and fwhm > 0:
        return fwhm / scale_arcsec
    measured = estimate_fwhm_px(data, background, rms)
    log.info("%s: no FWHM keyword; measured %.2f px", name, measured)
    return measured


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a boolean mask by a square of half-size ``radius`` pixels."""
    if radius <= 0 or not mask.any():
        return mask.copy()
    return ndimage.maximum_filter(mask.astype(np.uint8), size=2 * radius + 1).astype(bool)


def _cosmic_rays(data: np.ndarray, background: np.ndarray, rms: float) -> np.ndarray:
    """Pixels far sharper than any PSF: > 8 sigma above their 3x3 median and > 3x that median's excess.

    The median (edges reflected, as ``scipy.ndimage.median_filter``) is taken only where it can matter: a
    pixel no more than 8 sigma above its 3x3 minimum cannot be 8 sigma above its median.
    """
    threshold = 8.0 * rms
    rows, cols = np.nonzero(data - ndimage.minimum_filter(data, size=3) > threshold)
    padded = np.pad(data, 1, mode="symmetric")
    med = np.median([padded[rows + dr, cols + dc] for dr in range(3) for dc in range(3)], axis=0)
    excess = data[rows, cols] - med
    hit = (excess > threshold) & (excess > 3.0 * np.clip(med - background[rows, cols], 0.0, None))
    rays = np.zeros(data.shape, dtype=bool)
    rays[rows[hit], cols[hit]] = True
    return rays


def _border(shape, width: int) -> np.ndarray:
    """True within ``width`` pixels of the image border."""
    out = np.zeros(shape, dtype=bool)
    if width > 0:
        out[:width], out[-width:], out[:, :width], out[:, -width:] = True, True, True, True
    return out


def _tile_layout(n: int, tile_size: int, overlap: int) -> tuple[list[int], int]:
    """Start offsets and the common length of tiles covering ``[0, n)`` with at least ``overlap`` shared."""
    if n <= tile_size:
        return [0], n
    count = math.ceil((n - overlap) / (tile_size - overlap))
    length = min(n, math.ceil((n + (count - 1) * overlap) / count))
    starts = [round(i * (n - length) / (count - 1)) for i in range(count)]
    return starts, length


def _edge_weights(start: int, length: int, n: int, pad: int, ramp: int) -> np.ndarray:
    """1-D blending weights of one tile: 0 within ``pad`` of an inner edge, then a linear ramp to 1."""
    idx = np.arange(length, dtype=np.float64)
    w = np.ones(length)
    if start > 0:
        w *= np.clip((idx - pad + 1) / ramp, 0.0, 1.0)
    if start + length < n:
        w *= np.clip((length - idx - pad) / ramp, 0.0, 1.0)
    return w


@dataclass
class _Prepared:
    """Inputs of the tile loop, full-frame, NaN-free, indexed ``[row, col]``."""

    conv: np.ndarray        # the side that is convolved (I)
    other: np.ndarray       # the side that is not (J)
    masked_conv: np.ndarray
    masked_other: np.ndarray
    var_conv: np.ndarray
    var_other: np.ndarray
    fit_mask: np.ndarray


def _kernel_half_width(fwhm_sci: float, fwhm_tmpl: float) -> int:
    """Apply sfft's rule: ``clip(round(2 * max FWHM), 3, 20)`` pixels."""
    lo, hi = _KERNEL_HW_LIMITS
    return int(np.clip(round(_KERNEL_HW_RATIO * max(fwhm_sci, fwhm_tmpl)), lo, hi))


def _masks(sci, tmpl, bkg_s, bkg_t, rms_s, rms_t, model_s, model_t, nocov, hw, fwhm_px, conv_template):
    """Fit mask (pixels replaced by the background in the copies the kernel is fitted on) and output mask."""
    grow_sat = int(math.ceil(fwhm_px)) + 1
    sat_s = sci >= model_s.saturate
    sat_t = tmpl >= 0.9 * model_t.saturate  # bilinear interpolation lowers a clipped plateau slightly
    bright = ((sci - bkg_s) > 0.5 * (model_s.saturate - bkg_s)) | ((tmpl - bkg_t) > 0.5 * (model_t.saturate - bkg_t))
    rays = _cosmic_rays(sci, bkg_s, rms_s) | _cosmic_rays(tmpl, bkg_t, rms_t)
    border = _border(sci.shape, hw)
    fit_mask = (_grow(nocov, hw + 1) | _grow(sat_s | sat_t | bright, grow_sat + hw) | _grow(rays, 1) | border)
    spread_s, spread_t = (grow_sat, grow_sat + hw) if conv_template else (grow_sat + hw, grow_sat)
    out_mask = _grow(nocov, hw) | _grow(sat_s, spread_s) | _grow(sat_t, spread_t) | border
    return fit_mask, out_mask


def _prepare(science: Image, aligned: np.ndarray, template_header, hw_override):
    """Backgrounds, noise models, masks and the NaN-free images for the tile loop."""
    sci = science.data.astype(np.float32)
    nocov = ~np.isfinite(aligned) | ~np.isfinite(sci)
    bkg_s, rms_s = _background(np.where(nocov, np.nan, sci), nocov)
    bkg_t, rms_t = _background(np.where(nocov, np.nan, aligned), nocov)
    sci = np.where(nocov, bkg_s, sci)
    tmpl = np.where(nocov, bkg_t, aligned).astype(np.float32)
    name_s = science.source
    model_s = noise_model(science.header, sci, float(np.median(bkg_s)), rms_s, median_stack=True, name=name_s)
    model_t = noise_model(template_header, tmpl, float(np.median(bkg_t)), rms_t, median_stack=False,
                          name="template")
    scale = pixel_scale_arcsec(science.wcs)
    fwhm_s = _fwhm_px(science.header, scale, sci, bkg_s, rms_s, name_s)
    fwhm_t = _fwhm_px(template_header, scale, tmpl, bkg_t, rms_t, "template")
    conv_template = fwhm_t <= fwhm_s
    hw = int(hw_override) if hw_override is not None else _kernel_half_width(fwhm_s, fwhm_t)
    fit_mask, out_mask = _masks(sci, tmpl, bkg_s, bkg_t, rms_s, rms_t, model_s, model_t, nocov, hw,
                                max(fwhm_s, fwhm_t), conv_template)
    masked_s, masked_t = np.where(fit_mask, bkg_s, sci), np.where(fit_mask, bkg_t, tmpl)
    var_s, var_t = model_s.variance(sci), model_t.variance(tmpl)
    if conv_template:
        prep = _Prepared(tmpl, sci, masked_t, masked_s, var_t, var_s, fit_mask)
    else:
        prep = _Prepared(sci, tmpl, masked_s, masked_t, var_s, var_t, fit_mask)
    sources = _source_mask(sci - bkg_s, np.sqrt(var_s), fwhm_s) | _source_mask(tmpl - bkg_t, np.sqrt(var_t), fwhm_t)
    info = dict(nocov=nocov, out_mask=out_mask, sources=sources, hw=hw, conv_template=conv_template,
                fwhm_px=fwhm_s if conv_template else fwhm_t)
    return prep, info


def _source_mask(signal: np.ndarray, sigma: np.ndarray, fwhm_px: float) -> np.ndarray:
    """Pixels near sources: PSF-smoothed S/N > 2, grown by one FWHM."""
    s = max(fwhm_px / 2.3548, 0.5)
    smoothed = ndimage.gaussian_filter(signal, s)
    smoothed_sigma = ndimage.gaussian_filter(sigma, s) / (2.0 * math.sqrt(math.pi) * s)
    return _grow(smoothed > 2.0 * smoothed_sigma, int(math.ceil(fwhm_px)))


def _blend_zone(hw: int) -> tuple[int, int]:
    """``(pad, ramp)``: tile-edge pixels given zero weight (periodic-convolution wrap) and ramp length."""
    return hw + 2, max(8, hw)


def subtract(science: Image, aligned_template: np.ndarray, template_header: fits.Header, *,
             tile_size: int = 1024, kernel_half_width: int | None = None, background_order: int = 1,
             kernel_fit: str = "fourier", n_threads: int = 1, min_fit_fraction: float = 0.2) -> Difference:
    """PSF-matched difference ``D`` of a science image and an aligned template.

    Parameters
    ----------
    science : Image
        The science stack (header keys: FWHM, GAIN, RDNOISE, SATURATE, NSUBEXP; see the module docstring
        for fallbacks).
    aligned_template : numpy.ndarray
        The template on the science grid (:func:`bayesrb.imaging.align.align_template`), NaN where
        uncovered.
    template_header : astropy.io.fits.Header
        The template's header (FWHM, GAIN, RDNOISE, SATURATE, NCOMBINE).
    tile_size : int, optional
        Largest tile side in pixels (default 1024); tiles overlap and are blended with linear ramps.
    kernel_half_width : int, optional
        Matching-kernel half-width in pixels; default ``clip(round(2 * max FWHM_px), 3, 20)``.
    background_order : int, optional
        Polynomial order (0-3) of the differential background per tile (default 1).
    kernel_fit : {"fourier", "sfft"}, optional
        Solver of the kernel fit (:data:`bayesrb.imaging.psfmatch.SOLVERS`); both give the same kernel.
    n_threads : int, optional
        Threads for the FFTs (and sfft's numba kernels) (default 1).
    min_fit_fraction : float, optional
        A tile with fewer usable pixels than this fraction borrows the kernel of the best tile.

    Returns
    -------
    Difference
        ``D``, its calibrated noise map and mask (see :class:`Difference`).

    Raises
    ------
    BadInputError
        If the shapes differ, no tile has pixels to fit a kernel on, or a tile's fit is singular.
    """
    aligned_template = np.asarray(aligned_template, dtype=np.float32)
    if aligned_template.shape != science.data.shape:
        raise BadInputError(science.source, f"aligned template shape {aligned_template.shape} differs from "
                            f"the science image {science.data.shape}")
    prep, info = _prepare(science, aligned_template, template_header, kernel_half_width)
    hw = info["hw"]
    overlap = 2 * sum(_blend_zone(hw))
    tile_size = max(int(tile_size), overlap + 16)
    (rows, nr), (cols, nc) = (_tile_layout(n, tile_size, overlap) for n in science.data.shape)
    engine = SOLVERS[kernel_fit]((nr, nc), hw, background_order, n_threads)
    tiles = [(r, c) for r in rows for c in cols]
    solutions = _solve_tiles(engine, prep, tiles, (nr, nc), min_fit_fraction, science.source)
    diff, var, kernels = _apply_tiles(engine, prep, tiles, (nr, nc), solutions, hw, info["conv_template"])
    return _finish(diff, var, kernels, info)


def _solve_tiles(engine, prep, tiles, shape, min_fraction, source):
    """Fit each tile's kernel; tiles with too few usable pixels borrow the best tile's solution."""
    usable = [1.0 - prep.fit_mask[r:r + shape[0], c:c + shape[1]].mean() for r, c in tiles]
    best = int(np.argmax(usable))
    if usable[best] <= 0.0:
        raise BadInputError(source, "no unmasked pixels to fit the PSF-matching kernel on")
    solutions = [None] * len(tiles)
    for k, (r, c) in enumerate(tiles):
        if usable[k] >= min_fraction or k == best:
            t0 = time.perf_counter()
            sl = np.s_[r:r + shape[0], c:c + shape[1]]
            try:
                solutions[k] = engine.solve(prep.masked_conv[sl], prep.masked_other[sl])
            except np.linalg.LinAlgError as exc:
                raise BadInputError(source, f"the PSF-matching fit of the tile at {(r, c)} is singular "
                                            f"({exc})") from exc
            log.debug("tile %s at (%d, %d): kernel fitted in %.2f s", shape, r, c, time.perf_counter() - t0)
    for k in range(len(tiles)):
        if solutions[k] is None:
            log.info("tile at %s has only %.1f%% usable pixels; using the kernel of tile %s",
                     tiles[k], 100 * usable[k], tiles[best])
            solutions[k] = solutions[best]
    return solutions


def _apply_tiles(engine, prep, tiles, shape, solutions, hw, conv_template):
    """Apply every tile's solution and blend D and its variance with overlapping ramps."""
    full = prep.conv.shape
    pad, ramp = _blend_zone(hw)
    acc_d, acc_v, acc_w = (np.zeros(full) for _ in range(3))
    kernels = []
    for (r, c), solution in zip(tiles, solutions, strict=True):
        sl = np.s_[r:r + shape[0], c:c + shape[1]]
        raw = engine.apply(prep.conv[sl], prep.other[sl], solution)  # J - (K*I + B)
        kernel = solution.kernel
        kernels.append(kernel)
        var = convolve_periodic(prep.var_conv[sl], kernel**2, engine.n_threads)
        if conv_template:
            d, v = raw, prep.var_other[sl] + var
        else:
            ksum = kernel.sum()
            d, v = -raw / ksum, (var + prep.var_other[sl]) / ksum**2
        w = np.outer(_edge_weights(r, shape[0], full[0], pad, ramp), _edge_weights(c, shape[1], full[1], pad, ramp))
        acc_d[sl] += w * d
        acc_v[sl] += w * v
        acc_w[sl] += w
    return acc_d / acc_w, acc_v / acc_w, np.array(kernels)


def _finish(diff, var, kernels, info) -> Difference:
    """Calibrate the noise, apply NaN/mask conventions and package the result."""
    noise = np.sqrt(np.clip(var, 0.0, None))
    clean = ~info["out_mask"] & ~info["sources"] & (noise > 0)
    scale = 1.0
    if clean.sum() >= 500:
        scale = float(np.median(np.abs(diff[clean] / noise[clean])) / _GAUSS_MEDIAN_ABS)
    else:
        log.warning("only %d source-free pixels; noise map left uncalibrated", int(clean.sum()))
    log.info("noise calibration factor %.3f (1 = noise model exact)", scale)
    noise *= scale
    diff[info["nocov"]] = np.nan
    noise[info["nocov"]] = np.nan
    return Difference(difference=diff.astype(np.float32), noise=noise.astype(np.float32),
                      mask=info["out_mask"] | info["nocov"], fwhm_px=float(info["fwhm_px"]),
                      convolved="template" if info["conv_template"] else "science",
                      kernel_half_width=int(info["hw"]), kernels=kernels,
                      kernel_sum=float(np.median(kernels.sum(axis=(1, 2)))), noise_scale=scale)
