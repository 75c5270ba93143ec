"""Synthetic science/template pairs with known PSFs, WCS offsets and noise, for the imaging tests.

Both PSFs are circular Gaussians, integrated exactly over each pixel (erf), so the ideal matching kernel
is known analytically: a Gaussian of ``sigma_k^2 = sigma_sci^2 - sigma_tmpl^2`` with sum equal to the flux
ratio. The science image is the median of ``n_sub`` sub-exposures with Poisson and read noise; the
template is a coadd of ``ncombine`` exposures (Gaussian noise with the coadd's variance), as the survey
simulator writes them. The noise realisations are kept, so tests can compute the noise that an ideal
subtraction would leave without looking at the pipeline's noise map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from reproject import reproject_interp
from scipy.special import erf

PIXSCALE = 1.24  # arcsec / px


@dataclass
class FakePair:
    """Paths of the written files plus the truth needed by the tests (science-grid arrays, [row, col])."""

    science_path: Path
    template_path: Path
    science_model: np.ndarray
    science_noise: np.ndarray
    template_noise: np.ndarray  # on the template's own grid
    template_sigma: np.ndarray  # known per-pixel sigma of the template, own grid
    science_wcs: WCS
    template_wcs: WCS
    params: dict
    stars: dict = field(default_factory=dict)

    @property
    def flux_ratio(self) -> float:
        """Template ADU per science ADU for the same source."""
        return 10 ** (0.4 * (self.params["zp_t"] - self.params["zp_s"]))

    def sigma_px(self, which: str) -> float:
        """Gaussian sigma (px) of the science (``"s"``) or template (``"t"``) PSF."""
        return self.params[f"fwhm_{which}"] / PIXSCALE / (2 * np.sqrt(2 * np.log(2)))

    def ideal_kernel(self, half_width: int) -> np.ndarray:
        """The true template->science matching kernel (sum = 1 / flux_ratio); requires sci PSF broader."""
        var = self.sigma_px("s") ** 2 - self.sigma_px("t") ** 2
        a = np.arange(-half_width, half_width + 1)
        g = np.exp(-(a[:, None] ** 2 + a[None, :] ** 2) / (2 * var))
        return g / g.sum() / self.flux_ratio

    def ideal_difference_noise(self, half_width: int = 8) -> np.ndarray:
        """Noise-only difference of an ideal subtraction: ``n_S - K_true * align(n_T)`` (NaN off-template)."""
        from scipy.signal import fftconvolve

        aligned = reproject_interp((self.template_noise, self.template_wcs), self.science_wcs,
                                   shape_out=self.science_noise.shape, order="bilinear", return_footprint=False)
        filled = np.nan_to_num(aligned)
        conv = fftconvolve(filled, self.ideal_kernel(half_width), mode="same")
        out = self.science_noise - conv
        out[~np.isfinite(aligned)] = np.nan
        return out

    def ideal_difference_sigma(self, half_width: int = 8) -> np.ndarray:
        """Known sigma of ``D = S - K_true * T``: science variance + template variance convolved with K^2."""
        from scipy.signal import fftconvolve

        var_t = reproject_interp((self.template_sigma**2, self.template_wcs), self.science_wcs,
                                 shape_out=self.science_noise.shape, order="bilinear", return_footprint=False)
        conv = fftconvolve(np.nan_to_num(var_t), self.ideal_kernel(half_width) ** 2, mode="same")
        out = np.sqrt(self.science_sigma() ** 2 + conv)
        out[~np.isfinite(var_t)] = np.nan
        return out

    def science_sigma(self) -> np.ndarray:
        """Known per-pixel sigma of the science stack (model, median-of-n factor included)."""
        p = self.params
        factor = {1: 1.0, 2: 1.0, 3: 1.347, 4: 1.193, 5: 1.434}[p["n_sub"]]
        return np.sqrt((self.science_model / p["gain"] + (p["rdnoise"] / p["gain"]) ** 2) * factor / p["n_sub"])


def make_wcs_header(shape, ra0=150.0, dec0=2.0, rotation_deg=0.0, shift_px=(0.0, 0.0)) -> fits.Header:
    """A TAN WCS header with a CD matrix; ``shift_px`` moves the pointing by ``(dx, dy)`` pixels."""
    scale = PIXSCALE / 3600.0
    theta = np.deg2rad(rotation_deg)
    cd = scale * np.array([[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["CRVAL1"] = ra0 - shift_px[0] * scale / np.cos(np.deg2rad(dec0))
    h["CRVAL2"] = dec0 + shift_px[1] * scale
    h["CRPIX1"], h["CRPIX2"] = shape[1] / 2 + 0.5, shape[0] / 2 + 0.5
    h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = cd[0, 0], cd[0, 1], cd[1, 0], cd[1, 1]
    return h


def render_gaussians(shape, x, y, flux, sigma) -> np.ndarray:
    """Pixel-integrated circular Gaussians at 0-based pixel ``(x, y)`` (x = column)."""
    img = np.zeros(shape)
    rows, cols = np.arange(shape[0]), np.arange(shape[1])
    half = int(np.ceil(6 * sigma)) + 1
    s2 = np.sqrt(2) * sigma
    for xi, yi, fi in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(flux), strict=True):
        r0, r1 = max(int(yi) - half, 0), min(int(yi) + half + 1, shape[0])
        c0, c1 = max(int(xi) - half, 0), min(int(xi) + half + 1, shape[1])
        if r0 >= r1 or c0 >= c1:
            continue
        rr, cc = rows[r0:r1], cols[c0:c1]
        py = 0.5 * (erf((rr + 0.5 - yi) / s2) - erf((rr - 0.5 - yi) / s2))
        px = 0.5 * (erf((cc + 0.5 - xi) / s2) - erf((cc - 0.5 - xi) / s2))
        img[r0:r1, c0:c1] += fi * np.outer(py, px)
    return img


def _keys(h: fits.Header, p: dict, which: str) -> None:
    h["EXPTIME"] = (60.0, "s per sub-exposure")
    h["MAGZP"] = p[f"zp_{which}"]
    h["FWHM"] = (p[f"fwhm_{which}"], "arcsec")
    h["PIXSCALE"] = PIXSCALE
    for key, name in (("GAIN", "gain"), ("RDNOISE", "rdnoise"), ("SATURATE", "saturate")):
        if p[name] is not None:
            h[key] = p[name]


def make_pair(directory, *, shape=(192, 192), seed=0, n_stars=40, fwhm_s=3.2, fwhm_t=2.2, n_sub=3,
              ncombine=9, gain=1.6, rdnoise=8.0, saturate=60000.0, sky_s=300.0, sky_t=250.0, zp_s=25.0,
              zp_t=25.5, shift_px=(1.6, -2.3), rotation_deg=0.4, transient=None, template_only=None,
              saturated_star=True, drop_keys=()) -> FakePair:
    """Write ``science.fits`` and ``template.fits`` into ``directory`` and return the truth.

    ``transient`` / ``template_only`` are ``(x, y, flux)`` in science pixels and science ADU; the first
    appears only in the science sub-exposures, the second only in the template. ``drop_keys`` removes
    header keywords (e.g. ``("GAIN",)``) from both files.
    """
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    p = dict(fwhm_s=fwhm_s, fwhm_t=fwhm_t, n_sub=n_sub, ncombine=ncombine, gain=gain, rdnoise=rdnoise,
             saturate=saturate, sky_s=sky_s, sky_t=sky_t, zp_s=zp_s, zp_t=zp_t)
    h_s, h_t = make_wcs_header(shape), make_wcs_header(shape, rotation_deg=rotation_deg, shift_px=shift_px)
    wcs_s, wcs_t = WCS(h_s), WCS(h_t)
    x = rng.uniform(8, shape[1] - 8, n_stars)
    y = rng.uniform(8, shape[0] - 8, n_stars)
    flux = 10 ** rng.uniform(2.6, 4.6, n_stars)  # science ADU
    if saturated_star:
        x, y, flux = np.append(x, shape[1] * 0.3), np.append(y, shape[0] * 0.7), np.append(flux, 2.0e6)
    ra, dec = wcs_s.all_pix2world(x, y, 0)
    xt, yt = wcs_t.all_world2pix(ra, dec, 0)
    sig_s = fwhm_s / PIXSCALE / 2.3548200450309493
    sig_t = fwhm_t / PIXSCALE / 2.3548200450309493
    ratio = 10 ** (0.4 * (zp_t - zp_s))

    model_s = sky_s + render_gaussians(shape, x, y, flux, sig_s)
    if transient is not None:
        model_s += render_gaussians(shape, *[[v] for v in transient], sig_s)
    model_t = sky_t + render_gaussians(shape, xt, yt, flux * ratio, sig_t)
    if template_only is not None:
        tx, ty = wcs_t.all_world2pix(*wcs_s.all_pix2world([template_only[0]], [template_only[1]], 0), 0)
        model_t += render_gaussians(shape, tx, ty, [template_only[2] * ratio], sig_t)

    subs = [np.minimum(rng.poisson(model_s * gain) / gain + rng.normal(0, rdnoise / gain, shape), saturate)
            for _ in range(n_sub)]
    stack = np.median(subs, axis=0)
    sigma_t = np.sqrt((model_t / gain + (rdnoise / gain) ** 2) / ncombine)
    noise_t = rng.normal(0.0, 1.0, shape) * sigma_t
    template = np.minimum(model_t + noise_t, saturate)

    for key in ("MJD-OBS",):
        h_s[key], h_t[key] = 60000.1, 59000.0
    _keys(h_s, p, "s")
    _keys(h_t, p, "t")
    h_s["NSUBEXP"], h_t["NCOMBINE"] = n_sub, ncombine
    for key in drop_keys:
        h_s.remove(key, ignore_missing=True)
        h_t.remove(key, ignore_missing=True)
    hdus = [fits.PrimaryHDU(stack.astype(np.float32), header=h_s)]
    for i, sub in enumerate(subs, start=1):
        hh = make_wcs_header(shape)
        hh["MJD-OBS"] = 60000.1 + i * 90 / 86400
        hdus.append(fits.ImageHDU(sub.astype(np.float32), header=hh, name=f"SUBEXP{i}"))
    science_path, template_path = directory / "science.fits", directory / "template.fits"
    fits.HDUList(hdus).writeto(science_path, overwrite=True)
    fits.PrimaryHDU(template.astype(np.float32), header=h_t).writeto(template_path, overwrite=True)
    return FakePair(science_path=science_path, template_path=template_path, science_model=model_s,
                    science_noise=stack - model_s, template_noise=noise_t, template_sigma=sigma_t,
                    science_wcs=wcs_s, template_wcs=wcs_t, params=p, stars=dict(x=x, y=y, flux=flux))
