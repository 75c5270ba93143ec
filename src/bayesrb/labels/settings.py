"""Settings of labelling and augmentation: the config's ``labels:`` and ``augment:`` keys that those steps read.

Light (no NumPy), so that the workflow can read the field names while it builds its graph. Defaults equal the
schema's (``tests/test_settings.py`` checks).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class LabelSettings:
    """How automatic labels are made; see the ``labels:`` section of ``config/README.md``."""

    mp_limit_mag: float = 20.5
    mp_match_radius_arcsec: float = 3.0
    bogus_per_visit: int = 150
    bogus_clear_radius_arcsec: float = 10.0
    recurrence_radius_arcsec: float = 2.0
    max_bad_orbit_fraction: float = 0.01


@dataclass(frozen=True)
class AugmentSettings:
    """How synthetic transients are made; see the ``augment:`` section of ``config/README.md``."""

    mp_mag_range: tuple[float, float] = (14.0, 20.5)
    host_mag_range: tuple[float, float] = (14.0, 19.5)
    offset_unit: str = "hlr"
    max_offset: float = 3.0
    glxresid_fraction: float = 0.5
    host_clear_radius_arcsec: float = 10.0
    fading_fraction: float = 0.0
    variable_star_fraction: float = 0.0
    variable_star_mag_range: tuple[float, float] = (14.0, 19.0)
