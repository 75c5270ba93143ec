"""Settings of subtraction and detection: the config's ``imaging:`` keys that each of the two steps reads.

Light (no NumPy), so that the workflow can read the field names while it builds its graph (each rule's params hold
only its own keys). Defaults equal the schema's (``tests/test_settings.py`` checks).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SubtractSettings:
    """Template alignment and PSF-matched subtraction (see :func:`bayesrb.imaging.subtract.subtract`).

    ``kernel_half_width = 0`` derives the kernel size from the FWHMs; a science image with a smaller fraction of
    finite pixels than ``min_usable_fraction`` is warned about (``low_usable = "warn"``) or rejected (``"fail"``).
    """

    tile_size: int = 1024
    kernel_half_width: int = 0
    background_order: int = 1
    kernel_fit: str = "fourier"
    min_template_coverage: float = 0.5
    min_usable_fraction: float = 0.5
    low_usable: str = "warn"


@dataclass(frozen=True)
class DetectSettings:
    """Detection on the difference image (see :func:`bayesrb.imaging.detect.detect`).

    The usable-area check runs here when the difference image comes from outside the workflow (no subtraction).
    """

    detection_threshold: float = 5.0
    min_area: int = 5
    edge_margin_px: int = 10
    min_usable_fraction: float = 0.5
    low_usable: str = "warn"
