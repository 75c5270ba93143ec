"""The survey plan: which fields are observed when.

Fields lie along the ecliptic around the opposition point of the first night, where minor planets
are most numerous, as in a real asteroid-rich transient survey. The training fields come first; the
evaluation-only fields continue along the ecliptic past them, far enough that no image of one overlaps
an image of the other; the context fields (kept for the context classifier, never in the CNN's data set)
follow the evaluation fields.
"""

from dataclasses import dataclass

import erfa
import numpy as np
from astropy.coordinates import angular_separation
from astropy.table import Table

from bayesrb.errors import BadInputError
from bayesrb.simulate.settings import SurveySettings

OBLIQUITY_J2000_DEG = 23.4392911
VISIT_SPACING_DAYS = 0.04
FIELD_SPACING_DAYS = 0.006
FIELD_LATITUDE_DEG = 0.3
POINTING_MARGIN_SIGMA = 5.0


@dataclass(frozen=True)
class Field:
    """One survey field: a name and the nominal pointing of its centre (degrees, ICRS).

    ``evaluation`` fields are observed like the others but are kept out of training; ``context`` fields are kept
    for the context classifier and never enter the CNN's data set.
    """

    index: int
    name: str
    ra_deg: float
    dec_deg: float
    evaluation: bool = False
    context: bool = False


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
    """Training fields around opposition, then evaluation fields and context fields, all spaced along the ecliptic.

    The ``n_fields`` training fields (``F00``, ``F01``, ...) are centred on the opposition point; the
    ``n_eval_fields`` evaluation fields (``E00``, ``E01``, ...) continue past the last training field with
    the same spacing, so training positions do not depend on ``n_eval_fields``, and the ``n_context_fields``
    context fields (``C00``, ...) continue past them. Fields alternate slightly above and below the ecliptic.

    Parameters
    ----------
    settings : SurveySettings

    Returns
    -------
    list of Field
        Indexed 0, 1, ... in this order.

    Raises
    ------
    BadInputError
        If ``field_spacing_deg`` is too small to keep evaluation images clear of training images.
    """
    index = np.arange(settings.n_fields + settings.n_eval_fields + settings.n_context_fields)
    centre = opposition_longitude_deg(settings.start_mjd)
    offsets = (index - (settings.n_fields - 1) / 2) * settings.field_spacing_deg
    latitudes = np.where(index % 2 == 0, FIELD_LATITUDE_DEG, -FIELD_LATITUDE_DEG)
    ra, dec = ecliptic_to_equatorial(centre + offsets, latitudes)
    fields = [_field(int(i), float(r), float(d), settings) for i, r, d in zip(index, ra, dec, strict=True)]
    _check_evaluation_clearance(fields, settings)
    return fields


def _field(index: int, ra_deg: float, dec_deg: float, settings: SurveySettings) -> Field:
    if index < settings.n_fields:
        return Field(index, f"F{index:02d}", ra_deg, dec_deg)
    if index < settings.n_fields + settings.n_eval_fields:
        return Field(index, f"E{index - settings.n_fields:02d}", ra_deg, dec_deg, evaluation=True)
    return Field(index, f"C{index - settings.n_fields - settings.n_eval_fields:02d}", ra_deg, dec_deg, context=True)


def footprint_radius_deg(settings: SurveySettings) -> float:
    """Radius of a circle about a field centre that holds every image of the field, degrees.

    Half the image diagonal plus the larger of the template offset and :data:`POINTING_MARGIN_SIGMA`
    times the RMS pointing error; rotations do not move the circle.
    """
    half_diagonal = np.hypot(settings.field_width_deg, settings.field_height_deg) / 2
    shift_arcsec = max(settings.template_offset_arcsec, POINTING_MARGIN_SIGMA * settings.pointing_jitter_arcsec)
    return float(half_diagonal + shift_arcsec / 3600.0)


def _check_evaluation_clearance(fields: list[Field], settings: SurveySettings) -> None:
    """Raise unless every evaluation or context field is more than two footprint radii from every training field."""
    training = [f for f in fields if not (f.evaluation or f.context)]
    evaluation = [f for f in fields if f.evaluation or f.context]
    if not evaluation:
        return
    t_ra, t_dec = np.radians([[f.ra_deg for f in training], [f.dec_deg for f in training]])
    e_ra, e_dec = np.radians([[f.ra_deg for f in evaluation], [f.dec_deg for f in evaluation]])
    separation = np.degrees(angular_separation(e_ra[:, None], e_dec[:, None], t_ra[None, :], t_dec[None, :]))
    closest_eval, closest_training = np.unravel_index(separation.argmin(), separation.shape)
    needed = 2 * footprint_radius_deg(settings)
    if separation.min() <= needed:
        raise BadInputError(
            "config simulate",
            f"field_spacing_deg = {settings.field_spacing_deg} is too small for image_size {list(settings.image_size)} "
            f"at {settings.pixel_scale_arcsec} arcsec/px: evaluation field {evaluation[closest_eval].name} is "
            f"{separation.min():.3f} deg from training field {training[closest_training].name}, and images of two "
            f"fields can overlap unless their centres are more than {needed:.3f} deg apart; increase field_spacing_deg",
        )


def survey_plan(settings: SurveySettings) -> list[Visit]:
    """All visits of the survey, in observing order.

    Parameters
    ----------
    settings : SurveySettings

    Returns
    -------
    list of Visit
        Visit ids read ``<field>-n<night>-v<visit>`` (e.g. ``F00-n00-v00``, ``E00-n00-v00``) and are
        unique; each night visits the training fields, then the evaluation fields. The context fields' visits
        come after all of them in the list (so adding context fields changes no other visit's index, hence no
        other visit's random stream), though they are observed on the same nights.
    """
    fields, visits = survey_fields(settings), []
    for group in ([f for f in fields if not f.context], [f for f in fields if f.context]):
        for night in range(settings.n_nights):
            for repeat in range(settings.visits_per_night):
                for field in group:
                    mjd = (settings.start_mjd + night * settings.night_spacing_days
                           + repeat * VISIT_SPACING_DAYS + field.index * FIELD_SPACING_DAYS)
                    visit_id = f"{field.name}-n{night:02d}-v{repeat:02d}"
                    visits.append(Visit(len(visits), visit_id, field, night, mjd))
    return visits


def plan_table(visits: list[Visit]) -> Table:
    """The plan as a table (one row per visit); ``evaluation`` and ``context`` flag those fields."""
    return Table(
        {
            "visit": [v.visit_id for v in visits],
            "visit_index": [v.index for v in visits],
            "field": [v.field.name for v in visits],
            "field_ra": [v.field.ra_deg for v in visits],
            "field_dec": [v.field.dec_deg for v in visits],
            "evaluation": [v.field.evaluation for v in visits],
            "context": [v.field.context for v in visits],
            "night": [v.night for v in visits],
            "mjd": [v.mjd for v in visits],
        },
        units={"field_ra": "deg", "field_dec": "deg", "mjd": "d"},
    )
