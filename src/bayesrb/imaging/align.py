"""Alignment: resample the template onto the science image's pixel grid (bilinear, with astropy WCS and scipy)."""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS
from scipy.ndimage import map_coordinates

from bayesrb.errors import BadInputError
from bayesrb.imaging.fitsio import Image

#: Default smallest fraction of the science image that the template must cover.
MIN_COVERAGE = 0.01


def align_template(template: Image, science: Image, *, min_coverage: float = MIN_COVERAGE) -> np.ndarray:
    """Resample the template onto the science grid by bilinear interpolation (:func:`resample_bilinear`).

    Values are interpolated, not flux-rescaled: they stay in template ADU per template pixel, and
    the PSF-matching kernel absorbs any pixel-area and zero-point difference.

    Parameters
    ----------
    template : Image
        The (deeper) template with its own WCS.
    science : Image
        The science image that defines the output grid.
    min_coverage : float, optional
        Smallest fraction of science pixels the template must cover (default 0.01).

    Returns
    -------
    numpy.ndarray
        float32 of ``science.data.shape``, indexed ``[row, col]``; NaN where the template has no coverage.

    Raises
    ------
    BadInputError
        Naming the template file if it does not overlap the science image or covers less than
        ``min_coverage`` of it.
    """
    aligned = resample_bilinear(template.data, template.wcs, science.wcs, science.data.shape)
    coverage = float(np.isfinite(aligned).mean())
    if coverage == 0.0:
        raise BadInputError(template.source, f"does not overlap the science image {science.source}")
    if coverage < min_coverage:
        raise BadInputError(template.source, f"covers only {coverage:.2%} of the science image "
                            f"{science.source} (need at least {min_coverage:.2%})")
    return aligned


def resample_bilinear(data: np.ndarray, data_wcs: WCS, out_wcs: WCS, out_shape: tuple[int, int]) -> np.ndarray:
    """Interpolate an image bilinearly at the sky positions of another grid's pixel centres.

    Each output pixel centre goes to the sky through ``out_wcs`` and back to ``data``'s pixels through
    ``data_wcs`` (both with their distortions), where ``data`` is interpolated between the four nearest pixel
    centres. A position in the outer half of an edge pixel takes that pixel's value (the image covers its pixels
    whole, not only up to their centres); beyond it, and wherever a NaN pixel takes part, the output is NaN. This
    is what ``reproject.reproject_interp(..., order="bilinear", roundtrip_coords=False)`` computes, bit for bit
    away from right ascension 0 (it wraps right ascensions into [0, 360) in between, which costs a few ulps near
    0); importing reproject costs each subtraction job more time than the interpolation itself.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image indexed ``[row, col]``.
    data_wcs, out_wcs : astropy.wcs.WCS
        Celestial WCS of ``data`` and of the output grid.
    out_shape : tuple of int
        ``(rows, cols)`` of the output grid.

    Returns
    -------
    numpy.ndarray
        float32 of ``out_shape``; NaN where ``data`` does not cover the position.
    """
    rows, cols = np.meshgrid(np.arange(out_shape[0], dtype=float), np.arange(out_shape[1], dtype=float),
                             indexing="ij")
    ra, dec = out_wcs.all_pix2world(cols.ravel(), rows.ravel(), 0)
    x, y = data_wcs.all_world2pix(ra, dec, 0, quiet=True)
    positions = np.array([y, x])
    for axis, size in enumerate(data.shape):
        _snap_outer_half_pixels(positions[axis], size)
    values = np.empty(positions.shape[1])
    map_coordinates(data, positions, output=values, order=1, mode="constant", cval=np.nan)
    return values.reshape(out_shape).astype(np.float32)


def _snap_outer_half_pixels(positions: np.ndarray, size: int) -> None:
    """Move positions in the outer half of the first or last pixel onto that pixel's centre, in place."""
    positions[(positions < 0) & (positions >= -0.5)] = 0
    positions[(positions > size - 1) & (positions < size - 0.5)] = size - 1
