"""File-level imaging steps, one per workflow rule: subtraction and detection of one visit."""

import logging
import time

import numpy as np
import sep

from bayesrb.atomic import write_ecsv
from bayesrb.errors import BadInputError
from bayesrb.imaging.detect import detect
from bayesrb.imaging.difference import Difference
from bayesrb.imaging.fitsio import (
    Image,
    check_same_grid,
    is_difference_file,
    read_difference,
    read_image,
    write_difference,
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


def subtract_visit(science_path: str, template_path: str, out_path: str, *, tile_size: int = 1024,
                   kernel_half_width: int = 0, background_order: int = 1, kernel_fit: str = "fourier",
                   min_template_coverage: float = 0.5, min_usable_fraction: float = 0.5,
                   fail_on_low_usable: bool = False, n_threads: int = 1) -> None:
    """Align the template onto the science image, subtract, and write D, its noise map, mask and the aligned template.

    Parameters
    ----------
    science_path, template_path : str
        Input FITS files (see :func:`bayesrb.imaging.fitsio.read_image` for what they must hold).
    out_path : str
        Output FITS with DIFF, NOISE, MASK and TEMPLATE extensions (:func:`write_difference`), written atomically.
    tile_size, kernel_half_width, background_order : int
        Passed to :func:`bayesrb.imaging.subtract.subtract`; ``kernel_half_width = 0`` derives it.
    kernel_fit : {"fourier", "sfft"}
        Solver of the PSF-matching kernel fit, passed on.
    min_template_coverage : float
        Smallest fraction of the science image the template must cover.
    min_usable_fraction, fail_on_low_usable
        A science image with a smaller fraction of finite pixels is warned about, or rejected
        (:func:`check_usable_area`).
    n_threads : int
        Threads for the subtraction's FFTs.
    """
    # reproject and scipy: ~0.6 s of imports that the detect jobs need not pay
    from bayesrb.imaging.align import align_template
    from bayesrb.imaging.subtract import subtract

    start = time.perf_counter()
    science, template = read_image(science_path), read_image(template_path)
    check_usable_area(science, min_usable_fraction, fail_on_low_usable)
    aligned = align_template(template, science, min_coverage=min_template_coverage)
    result = subtract(science, aligned, template.header, tile_size=tile_size,
                      kernel_half_width=kernel_half_width or None, background_order=background_order,
                      kernel_fit=kernel_fit, n_threads=n_threads)
    write_difference(out_path, result.difference, result.noise, result.mask, aligned, science.header)
    log.info("%s: difference written in %.1f s (kernel hw %d, noise scale %.3f)", science_path,
             time.perf_counter() - start, result.kernel_half_width, result.noise_scale)


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


def detect_visit(difference_path: str, science_path: str, out_path: str, *, external: bool = False,
                 threshold: float = 5.0, min_area: int = 5, edge_margin_px: int = 10,
                 min_usable_fraction: float = 0.5, fail_on_low_usable: bool = False) -> None:
    """Detect positive and negative candidates in a difference image and write them as ECSV.

    Parameters
    ----------
    difference_path : str
        The workflow's difference file, or (``external=True``) a user's single-HDU difference image.
    science_path : str
        The science image: its header gives the zero point (``MAGZP``) and WCS.
    out_path : str
        Candidate table (ECSV), written atomically.
    external : bool
        Whether ``difference_path`` was made outside the workflow.
    threshold, min_area, edge_margin_px
        Passed to :func:`bayesrb.imaging.detect.detect`.
    min_usable_fraction, fail_on_low_usable
        With an external difference image (no subtraction step), the science image's usable area is checked here
        (:func:`check_usable_area`).
    """
    science = read_image(science_path)
    if external:
        check_usable_area(science, min_usable_fraction, fail_on_low_usable)
        difference = external_difference(difference_path)
    else:
        difference = stored_difference(difference_path)
    check_same_grid(science, difference.difference.shape, difference_path)
    zero_point = float(science.header.get("MAGZP", 0.0))
    if "MAGZP" not in science.header:
        log.warning("%s: no MAGZP in header; magnitudes use zero point 0", science_path)
    candidates = detect(difference, science.wcs, zero_point, threshold=threshold, min_area=min_area,
                        edge_margin_px=edge_margin_px)
    log.info("%s: %d candidates (%d positive)", difference_path, len(candidates),
             int(np.sum(np.asarray(candidates["sign"]) > 0)))
    write_ecsv(candidates, out_path)
