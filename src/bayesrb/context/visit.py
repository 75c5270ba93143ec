"""One visit's context features, for the per-visit ``context_features`` jobs.

Kept apart from :mod:`bayesrb.context.steps` so that these many short jobs import only the features, not the
classifiers (XGBoost, scikit-learn) or the figures.
"""

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayesrb.atomic import write_parquet
from bayesrb.context.catalogues import CatalogueSource, read_families
from bayesrb.context.features import candidate_features
from bayesrb.context.reference import ReferenceSources, detect_reference_sources
from bayesrb.context.settings import FeatureSettings
from bayesrb.imaging.fitsio import read_header, read_image
from bayesrb.imaging.inputs import resampled_template
from bayesrb.labels.observing import predicted_minor_planets, read_visit_observation
from bayesrb.stamps.shard import read_shard_meta

log = logging.getLogger(__name__)

__all__ = ["catalogue_sources", "visit_reference_sources", "write_visit_features"]


def catalogue_sources(section: Mapping[str, Sequence]) -> dict[str, list[CatalogueSource]]:
    """The ``context.catalogues`` mapping (family: list of paths or ``{path, where}``) as catalogue sources."""
    return {family: [CatalogueSource(e) if isinstance(e, str) else CatalogueSource(e["path"], dict(e.get("where", {})))
                     for e in entries] for family, entries in section.items()}


def visit_reference_sources(science_path: str, template_path: str, difference_path: str,
                            threshold_sigma: float) -> ReferenceSources:
    """Detect the sources of a visit's template on the science grid (:mod:`bayesrb.context.reference`).

    Parameters
    ----------
    science_path, template_path : str
        The visit's science and template FITS; the template's ``MAGZP`` gives the sources' magnitudes (missing
        without it, with a warning).
    difference_path : str
        The workflow's difference file, which holds the resampled template; for any other file (or ``""``) the
        template is resampled here.
    threshold_sigma : float

    Returns
    -------
    ReferenceSources
    """
    template = resampled_template(read_image(science_path), template_path, difference_path)
    zero_point = read_header(template_path).get("MAGZP")
    if zero_point is None:
        log.warning("%s: no MAGZP in header; the reference sources' magnitudes are missing", template_path)
    return detect_reference_sources(template, None if zero_point is None else float(zero_point), threshold_sigma)


def write_visit_features(shard_path: str, science_path: str, template_path: str, difference_path: str,
                         orbits_path: str, catalogues: Mapping[str, list[CatalogueSource]], settings: FeatureSettings,
                         field: str, out_path: str, max_bad_orbit_fraction: float) -> pd.DataFrame:
    """Compute the context features of one visit's candidates and write them to Parquet.

    Parameters
    ----------
    shard_path : str
        The visit's stamp shard (its meta is read).
    science_path : str
        The science FITS: epoch, site and WCS for the minor-planet prediction and the history.
    template_path, difference_path : str
        The template and difference FITS, for the reference-image features (:func:`visit_reference_sources`).
    orbits_path : str
        MPCORB-format orbits; empty for none (minor-planet features missing).
    catalogues : mapping of str to list of CatalogueSource
        The catalogues of each family.
    settings : FeatureSettings
    field : str
        The visit's field.
    out_path : str
        Parquet: ``candidate_id``, ``visit``, ``field``, ``mjd``, ``ra``, ``dec`` and the features of
        :func:`bayesrb.context.features.candidate_features`.
    max_bad_orbit_fraction : float

    Returns
    -------
    pandas.DataFrame
    """
    meta, attrs = read_shard_meta(shard_path)
    observation = read_visit_observation(science_path)
    planets = predicted_minor_planets(observation, orbits_path, max_bad_orbit_fraction) if orbits_path else None
    reference = visit_reference_sources(science_path, template_path, difference_path,
                                        settings.reference_threshold_sigma)
    features = candidate_features(meta, float(attrs["pixel_scale_arcsec"]), read_families(catalogues), planets,
                                  settings, reference)
    n = len(meta["candidate_id"])
    frame = pd.DataFrame({"candidate_id": meta["candidate_id"].astype(str), "visit": meta["visit"].astype(str),
                          "field": np.full(n, field), "mjd": np.full(n, observation.mjd_utc),
                          "ra": meta["ra"], "dec": meta["dec"]} | features)
    write_parquet(frame, out_path)
    log.info("%s: context features of %d candidates (%s predicted minor planets, %d template sources)",
             attrs.get("visit", shard_path), n, "no" if planets is None else len(planets), len(reference))
    return frame
