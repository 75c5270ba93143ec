"""A visit's images as the steps after subtraction read them: science, resampled template, difference, noise.

Imports no scipy at module level, so that the detection jobs start fast.
"""

import logging

import numpy as np
import sep

from bayesrb.errors import BadInputError
from bayesrb.imaging.difference import Difference
from bayesrb.imaging.fitsio import (
    Image,
    check_same_grid,
    is_difference_file,
    read_difference,
    read_image,
    read_subexposures,
)

log = logging.getLogger(__name__)


def check_usable_area(image: Image, min_fraction: float, fail: bool) -> float:
    """Return the fraction of ``image``'s pixels that are finite; warn (or fail) when it is below ``min_fraction``.

    Parameters
    ----------
    image : Image
        A science (or difference) image as read, non-finite pixels NaN.
    min_fraction : float
        Smallest usable fraction that passes silently.
    fail : bool
        Raise instead of warning.

    Raises
    ------
    bayesrb.errors.BadInputError
        Naming the image's file, if ``fail`` and the usable fraction is below ``min_fraction``.
    """
    usable = float(np.isfinite(image.data).mean())
    if usable < min_fraction:
        problem = (f"only {100 * usable:.1f} % of the pixels are finite (imaging.min_usable_fraction "
                   f"{min_fraction:g}); few or no candidates will come from it")
        if fail:
            raise BadInputError(image.source, problem)
        log.warning("%s: %s", image.source, problem)
    return usable


def external_difference(path: str) -> Difference:
    """A difference image made elsewhere: noise from its own background RMS map.

    Parameters
    ----------
    path : str
        FITS file whose primary HDU is the difference image, with a celestial WCS; or a difference file of this
        workflow (:func:`bayesrb.imaging.fitsio.write_difference`), read with its own noise and mask.

    Returns
    -------
    Difference
        Noise is sep's spatially varying background RMS; the mask flags non-finite pixels.
    """
    if is_difference_file(path):
        return stored_difference(path)
    image = read_image(path)
    invalid = ~np.isfinite(image.data)
    background = sep.Background(np.where(invalid, 0, image.data).astype(np.float32), mask=invalid)
    noise = background.rms().astype(np.float32)
    return Difference(difference=image.data, noise=np.where(invalid, np.nan, noise), mask=invalid)


def stored_difference(path: str) -> Difference:
    """The difference image, noise and mask of a file of :func:`bayesrb.imaging.fitsio.write_difference`."""
    stored = read_difference(path)
    return Difference(difference=stored.difference, noise=stored.noise, mask=stored.mask)


def load_visit_images(science_path: str, template_path: str, difference_path: str,
                      external_difference_image: bool) -> tuple[Image, np.ndarray, np.ndarray, np.ndarray]:
    """Read the images stamps are cut from, all on the science grid.

    The resampled template is the one the workflow's difference file holds; with an external difference
    image the template is resampled here (:func:`bayesrb.imaging.align.align_template`).

    Parameters
    ----------
    science_path, template_path, difference_path : str
        The visit's science, template and difference FITS files.
    external_difference_image : bool
        Whether the difference file is the user's own (a single image on the science grid) rather than the
        workflow's (which holds the resampled template too).

    Returns
    -------
    science : bayesrb.imaging.fitsio.Image
        The science stack with header and WCS.
    template : numpy.ndarray
        The template reprojected onto the science grid (NaN where it does not cover).
    difference : numpy.ndarray
        The difference image.
    subexposures : numpy.ndarray
        ``(n_sub, H, W)``; ``n_sub = 0`` when the science file has none.

    Raises
    ------
    bayesrb.errors.BadInputError
        If a file cannot be read, or the difference image is not on the science image's grid (naming both).
    """
    science = read_image(science_path)
    if external_difference_image:
        aligned = resampled_template(science, template_path)
        difference = external_difference(difference_path).difference
    else:
        stored = read_difference(difference_path)
        aligned, difference = stored.template, stored.difference
    check_same_grid(science, difference.shape, difference_path)
    return science, aligned, difference, read_subexposures(science_path)


def resampled_template(science: Image, template_path: str, difference_path: str = "") -> np.ndarray:
    """The template on the science grid: from the workflow's difference file if given, else resampled here.

    Parameters
    ----------
    science : bayesrb.imaging.fitsio.Image
        The science image, whose grid the template goes onto.
    template_path : str
        The template FITS (resampled with :func:`bayesrb.imaging.align.align_template` when there is no
        difference file of the workflow).
    difference_path : str, optional
        A difference file of :func:`bayesrb.imaging.fitsio.write_difference`, which holds the resampled template.

    Returns
    -------
    numpy.ndarray
        float32 on the science grid; NaN where the template does not cover.
    """
    if difference_path and is_difference_file(difference_path):
        aligned = read_difference(difference_path).template
        check_same_grid(science, aligned.shape, difference_path)
        return aligned
    from bayesrb.imaging.align import align_template  # scipy.ndimage: only needed here

    return align_template(read_image(template_path), science)
