"""The survey plan: which fields are observed when.

Fields lie along the ecliptic around the opposition point of the first night, where minor planets
are most numerous, as in a real asteroid-rich transient survey.
"""

from dataclasses import dataclass

import erfa
import numpy as np
from astropy.table import Table

from bayesrb.simulate.settings import SurveySettings

OBLIQUITY_J2000_DEG = 23.4392911
VISIT_SPACING_DAYS = 0.04
FIELD_SPACING_DAYS = 0.006


@dataclass(frozen=True)
class Field:
    """One survey field: a name and the nominal pointing of its centre (degrees, ICRS)."""

    index: int
    name: str
    ra_deg: float
    dec_deg: float


@dataclass(frozen=True)
class Visit:
    """One visit of a field: the sub-exposures start at ``mjd`` (UTC)."""

    index: int
    visit_id: str
    field: Field
    night: int
    mjd: float


def ecliptic_to_equatorial(lon_deg: np.ndarray, lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert J2000 ecliptic longitude and latitude to right ascension and declination (degrees)."""
    lon, lat, eps = np.radians(lon_deg), np.radians(lat_deg), np.radians(OBLIQUITY_J2000_DEG)
    x = np.cos(lat) * np.cos(lon)
    y = np.cos(lat) * np.sin(lon) * np.cos(eps) - np.sin(lat) * np.sin(eps)
    z = np.cos(lat) * np.sin(lon) * np.sin(eps) + np.sin(lat) * np.cos(eps)
    return np.degrees(np.arctan2(y, x)) % 360.0, np.degrees(np.arcsin(z))


def opposition_longitude_deg(mjd: float) -> float:
    """Ecliptic longitude (J2000, degrees) of the anti-solar point at ``mjd``."""
    heliocentric, _ = erfa.epv00(2400000.5, mjd)
    x, y, z = heliocentric["p"]
    eps = np.radians(OBLIQUITY_J2000_DEG)
    ecliptic_y = y * np.cos(eps) + z * np.sin(eps)
    return float(np.degrees(np.arctan2(ecliptic_y, x)) % 360.0)


def survey_fields(settings: SurveySettings) -> list[Field]:
    """Fields spaced along the ecliptic around opposition, alternating slightly above and below it."""
    centre = opposition_longitude_deg(settings.start_mjd)
    offsets = (np.arange(settings.n_fields) - (settings.n_fields - 1) / 2) * settings.field_spacing_deg
    latitudes = np.where(np.arange(settings.n_fields) % 2 == 0, 0.3, -0.3)
    ra, dec = ecliptic_to_equatorial(centre + offsets, latitudes)
    return [Field(i, f"F{i:02d}", float(r), float(d)) for i, (r, d) in enumerate(zip(ra, dec, strict=True))]


def survey_plan(settings: SurveySettings) -> list[Visit]:
    """All visits of the survey, in observing order.

    Parameters
    ----------
    settings : SurveySettings

    Returns
    -------
    list of Visit
        Visit ids read ``F<field>-n<night>-v<visit>`` and are unique.
    """
    visits = []
    for night in range(settings.n_nights):
        for repeat in range(settings.visits_per_night):
            for field in survey_fields(settings):
                mjd = (settings.start_mjd + night * settings.night_spacing_days
                       + repeat * VISIT_SPACING_DAYS + field.index * FIELD_SPACING_DAYS)
                visit_id = f"{field.name}-n{night:02d}-v{repeat:02d}"
                visits.append(Visit(len(visits), visit_id, field, night, mjd))
    return visits


def plan_table(visits: list[Visit]) -> Table:
    """The plan as a table (one row per visit) for the survey's record."""
    return Table(
        {
            "visit": [v.visit_id for v in visits],
            "visit_index": [v.index for v in visits],
            "field": [v.field.name for v in visits],
            "field_ra": [v.field.ra_deg for v in visits],
            "field_dec": [v.field.dec_deg for v in visits],
            "night": [v.night for v in visits],
            "mjd": [v.mjd for v in visits],
        },
        units={"field_ra": "deg", "field_dec": "deg", "mjd": "d"},
    )
