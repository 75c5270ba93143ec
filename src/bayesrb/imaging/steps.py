"""File-level imaging steps, one per workflow rule: subtraction and detection of one visit."""

import logging
import time

import numpy as np

from bayesrb.atomic import write_ecsv
from bayesrb.imaging.detect import detect
from bayesrb.imaging.fitsio import check_same_grid, read_image, write_difference
from bayesrb.imaging.inputs import check_usable_area, external_difference, stored_difference
from bayesrb.imaging.settings import DetectSettings, SubtractSettings

log = logging.getLogger(__name__)


def subtract_visit(science_path: str, template_path: str, out_path: str, settings: SubtractSettings, *,
                   n_threads: int = 1) -> None:
    """Align the template onto the science image, subtract, and write D, its noise map, mask and the aligned template.

    Parameters
    ----------
    science_path, template_path : str
        Input FITS files (see :func:`bayesrb.imaging.fitsio.read_image` for what they must hold).
    out_path : str
        Output FITS with DIFF, NOISE, MASK and TEMPLATE extensions (:func:`write_difference`), written atomically.
    settings : SubtractSettings
        Tiles, kernel, background, solver, the template coverage and the usable area the science image needs.
    n_threads : int
        Threads for the subtraction's FFTs.
    """
    # scipy: imports that the detect jobs need not pay
    from bayesrb.imaging.align import align_template
    from bayesrb.imaging.subtract import subtract

    start = time.perf_counter()
    science, template = read_image(science_path), read_image(template_path)
    check_usable_area(science, settings.min_usable_fraction, settings.low_usable == "fail")
    aligned = align_template(template, science, min_coverage=settings.min_template_coverage)
    result = subtract(science, aligned, template.header, tile_size=settings.tile_size,
                      kernel_half_width=settings.kernel_half_width or None, background_order=settings.background_order,
                      kernel_fit=settings.kernel_fit, n_threads=n_threads)
    write_difference(out_path, result.difference, result.noise, result.mask, aligned, science.header)
    log.info("%s: difference written in %.1f s (kernel hw %d, noise scale %.3f)", science_path,
             time.perf_counter() - start, result.kernel_half_width, result.noise_scale)


def detect_visit(difference_path: str, science_path: str, out_path: str, settings: DetectSettings, *,
                 external: bool = False) -> None:
    """Detect positive and negative candidates in a difference image and write them as ECSV.

    Parameters
    ----------
    difference_path : str
        The workflow's difference file, or (``external=True``) a user's single-HDU difference image.
    science_path : str
        The science image: its header gives the zero point (``MAGZP``) and WCS.
    out_path : str
        Candidate table (ECSV), written atomically.
    settings : DetectSettings
        Threshold, minimum area and edge margin of :func:`bayesrb.imaging.detect.detect`; with an external
        difference image (no subtraction step) the science image's usable area is checked here.
    external : bool
        Whether ``difference_path`` was made outside the workflow.
    """
    science = read_image(science_path)
    if external:
        check_usable_area(science, settings.min_usable_fraction, settings.low_usable == "fail")
        difference = external_difference(difference_path)
    else:
        difference = stored_difference(difference_path)
    check_same_grid(science, difference.difference.shape, difference_path)
    zero_point = float(science.header.get("MAGZP", 0.0))
    if "MAGZP" not in science.header:
        log.warning("%s: no MAGZP in header; magnitudes use zero point 0", science_path)
    candidates = detect(difference, science.wcs, zero_point, threshold=settings.detection_threshold,
                        min_area=settings.min_area, edge_margin_px=settings.edge_margin_px)
    log.info("%s: %d candidates (%d positive)", difference_path, len(candidates),
             int(np.sum(np.asarray(candidates["sign"]) > 0)))
    write_ecsv(candidates, out_path)
