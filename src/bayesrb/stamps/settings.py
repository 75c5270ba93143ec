"""Settings of stamp extraction: the config's ``stamps:`` section.

Light (no NumPy). Defaults equal the schema's (``tests/test_settings.py`` checks).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StampSettings:
    """Side (odd, pixels) and channels, in order, of every stamp (see :func:`bayesrb.stamps.extract.extract_stamps`)."""

    size: int = 55
    channels: tuple[str, ...] = ("science", "template", "difference", "subframe_ptp")
