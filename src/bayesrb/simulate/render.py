"""Noise-free rendering of point sources and Sérsic galaxies with GalSim, on a pixel grid.

Positions are 0-based pixel coordinates ``(x, y)`` with ``x`` the column; the returned arrays are
indexed ``[row, col] = [y, x]``. Profiles are integrated over pixels (GalSim's default drawing
method). Sky-to-pixel conversion happens before, with astropy (drawing through a GalSim WCS is slower).
"""

from dataclasses import dataclass

import galsim
import numpy as np

MIN_HALF_SIZE_PX = 8
MAX_HALF_SIZE_PX = 160
WING_FLOOR_ADU = 0.2
SERSIC_TRUNCATION_HLR = 6.0


@dataclass(frozen=True)
class PsfModel:
    """A Moffat PSF whose FWHM grows quadratically with distance from the image centre.

    Attributes
    ----------
    fwhm_px : float
        FWHM at the image centre, pixels.
    beta : float
        Moffat index.
    field_variation : float
        Fractional FWHM increase at the image corners.
    shape : tuple of int
        Image shape ``(ny, nx)``.
    """

    fwhm_px: float
    beta: float
    field_variation: float
    shape: tuple[int, int]

    def fwhm_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """FWHM in pixels at pixel positions ``(x, y)``."""
        cy, cx = (self.shape[0] - 1) / 2, (self.shape[1] - 1) / 2
        r2 = ((np.asarray(x) - cx) ** 2 + (np.asarray(y) - cy) ** 2) / (cx**2 + cy**2)
        return self.fwhm_px * (1.0 + self.field_variation * r2)

    def profile(self, fwhm_px: float) -> galsim.GSObject:
        """The GalSim Moffat profile of unit flux with the given FWHM (pixels)."""
        return galsim.Moffat(beta=self.beta, fwhm=fwhm_px)


def point_half_size(flux: float, fwhm_px: float, beta: float) -> int:
    """Half-size of the stamp beyond which a Moffat star's wings fall below ``WING_FLOOR_ADU``.

    Uses the Moffat surface brightness ``I(r) = F (β-1)/(π α²) (1 + (r/α)²)^-β``.
    """
    alpha = fwhm_px / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    peak = max(flux, 0.0) * (beta - 1.0) / (np.pi * alpha**2)
    ratio = max(peak / WING_FLOOR_ADU, 1.0)
    radius = alpha * np.sqrt(ratio ** (1.0 / beta) - 1.0)
    return int(np.clip(np.ceil(max(radius, 3 * fwhm_px)), MIN_HALF_SIZE_PX, MAX_HALF_SIZE_PX))


def _add_stamp(image: np.ndarray, stamp: galsim.Image) -> None:
    """Add a GalSim stamp (1-based bounds) into a 0-based numpy image, clipping at the edges."""
    ny, nx = image.shape
    b = stamp.bounds
    x0, x1 = max(b.xmin - 1, 0), min(b.xmax, nx)
    y0, y1 = max(b.ymin - 1, 0), min(b.ymax, ny)
    if x0 >= x1 or y0 >= y1:
        return
    sx0, sy0 = x0 - (b.xmin - 1), y0 - (b.ymin - 1)
    image[y0:y1, x0:x1] += stamp.array[sy0:sy0 + (y1 - y0), sx0:sx0 + (x1 - x0)]


def _draw(image: np.ndarray, obj: galsim.GSObject, x: float, y: float, half_size: int) -> None:
    size = 2 * half_size + 1
    stamp = obj.drawImage(nx=size, ny=size, scale=1.0, center=galsim.PositionD(x + 1.0, y + 1.0))
    _add_stamp(image, stamp)


def _on_image(x, y, shape, margin: float) -> np.ndarray:
    return (x > -margin) & (x < shape[1] + margin) & (y > -margin) & (y < shape[0] + margin)


def render_points(image: np.ndarray, psf: PsfModel, x, y, flux) -> None:
    """Add point sources of the given fluxes (ADU) at pixel positions ``(x, y)`` to ``image`` in place."""
    x, y, flux = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (x, y, flux))
    keep = _on_image(x, y, image.shape, MAX_HALF_SIZE_PX) & (flux > 0)
    for xi, yi, fi in zip(x[keep], y[keep], flux[keep], strict=True):
        fwhm = float(psf.fwhm_at(xi, yi))
        _draw(image, psf.profile(fwhm).withFlux(fi), xi, yi, point_half_size(fi, fwhm, psf.beta))


@dataclass(frozen=True)
class GalaxyShapes:
    """Sérsic shape parameters, one entry per galaxy (sizes in pixels)."""

    sersic_n: np.ndarray
    hlr_px: np.ndarray
    e1: np.ndarray
    e2: np.ndarray


def render_galaxies(image: np.ndarray, psf: PsfModel, x, y, flux, shapes: GalaxyShapes) -> None:
    """Add PSF-convolved sheared Sérsic galaxies to ``image`` in place.

    Profiles are truncated at ``SERSIC_TRUNCATION_HLR`` half-light radii and normalised to the given
    flux inside, so the whole flux lands in the stamp.

    Parameters
    ----------
    image : numpy.ndarray
        2-D float image, ``[row, col]``.
    psf : PsfModel
    x, y : array_like
        0-based pixel positions of the galaxy centres (``x`` is the column).
    flux : array_like
        Total fluxes, ADU.
    shapes : GalaxyShapes
    """
    x, y, flux = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (x, y, flux))
    keep = np.flatnonzero(_on_image(x, y, image.shape, MAX_HALF_SIZE_PX) & (flux > 0))
    for i in keep:
        fwhm = float(psf.fwhm_at(x[i], y[i]))
        hlr = float(shapes.hlr_px[i])
        galaxy = galsim.Sersic(n=float(shapes.sersic_n[i]), half_light_radius=hlr, flux=flux[i],
                               trunc=SERSIC_TRUNCATION_HLR * hlr)
        galaxy = galaxy.shear(e1=float(shapes.e1[i]), e2=float(shapes.e2[i]))
        half = int(np.clip(SERSIC_TRUNCATION_HLR * hlr + 3 * fwhm, MIN_HALF_SIZE_PX, MAX_HALF_SIZE_PX))
        _draw(image, galsim.Convolve(galaxy, psf.profile(fwhm)), x[i], y[i], half)
