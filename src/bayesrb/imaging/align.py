"""Alignment: resample the template onto the science image's pixel grid."""

from __future__ import annotations

import numpy as np
from reproject import reproject_interp

from bayesrb.errors import BadInputError
from bayesrb.imaging.fitsio import Image

#: Default smallest fraction of the science image that the template must cover.
MIN_COVERAGE = 0.01


def align_template(template: Image, science: Image, *, min_coverage: float = MIN_COVERAGE,
                   order: str = "bilinear") -> np.ndarray:
    """Reproject the template onto the science grid with :func:`reproject.reproject_interp`.

    Values are interpolated, not flux-rescaled: they stay in template ADU per template pixel, and
    the PSF-matching kernel absorbs any pixel-area and zero-point difference. reproject's round-trip
    check of the coordinates is skipped (it halves the cost): it only matters for projections that
    are multi-valued over the science field, not for a template that overlaps it.

    Parameters
    ----------
    template : Image
        The (deeper) template with its own WCS.
    science : Image
        The science image that defines the output grid.
    min_coverage : float, optional
        Smallest fraction of science pixels the template must cover (default 0.01).
    order : str, optional
        Interpolation order passed to ``reproject_interp`` (default ``"bilinear"``).

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
    aligned, footprint = reproject_interp((template.data, template.wcs), science.wcs,
                                          shape_out=science.data.shape, order=order, return_footprint=True,
                                          roundtrip_coords=False)
    aligned = np.asarray(aligned, dtype=np.float32)
    aligned[footprint <= 0] = np.nan
    coverage = float(np.isfinite(aligned).mean())
    if coverage == 0.0:
        raise BadInputError(template.source, f"does not overlap the science image {science.source}")
    if coverage < min_coverage:
        raise BadInputError(template.source, f"covers only {coverage:.2%} of the science image "
                            f"{science.source} (need at least {min_coverage:.2%})")
    return aligned
