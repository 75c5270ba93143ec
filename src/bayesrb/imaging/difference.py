"""The difference image with its noise map and mask: what subtraction makes and detection reads.

Its own module, so that detection and the file-level steps do not import the subtraction's numerics (scipy).
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Difference:
    """A difference image from :func:`bayesrb.imaging.subtract.subtract`; arrays of the science shape, ``[row, col]``.

    Attributes
    ----------
    difference : numpy.ndarray
        float32, ADU on the science flux scale; NaN where the template has no coverage.
    noise : numpy.ndarray
        float32, 1-sigma of ``difference`` per pixel (ADU), calibrated; NaN where ``difference`` is NaN.
    mask : numpy.ndarray
        bool, True where ``difference`` is meaningless: no template coverage (grown by the kernel
        half-width), the image border within the kernel half-width, saturated pixels (grown).
    fwhm_px : float
        FWHM of the PSF of ``difference`` in pixels (science PSF, or template PSF if the science was
        convolved).
    convolved : str
        ``"template"`` or ``"science"``.
    kernel_half_width : int
        Half-width of the matching kernel (pixels).
    kernels : numpy.ndarray
        float64 ``(n_tiles, 2 hw + 1, 2 hw + 1)``, the fitted kernel of every tile.
    kernel_sum : float
        Median over tiles of ``sum(K)``: the flux ratio convolved-side -> other side.
    noise_scale : float
        The global calibration factor applied to the propagated noise model.
    """

    difference: np.ndarray
    noise: np.ndarray
    mask: np.ndarray
    fwhm_px: float = float("nan")
    convolved: str = "template"
    kernel_half_width: int = 0
    kernels: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1)))
    kernel_sum: float = float("nan")
    noise_scale: float = 1.0
