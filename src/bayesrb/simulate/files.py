"""File-level steps of the simulated survey, one per workflow rule; every output is written atomically."""

import logging
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from bayesrb.atomic import atomic_path, write_ecsv
from bayesrb.minorplanets.mpcorb import read_mpcorb, write_mpcorb
from bayesrb.settings import settings_from
from bayesrb.simulate.plan import plan_table, survey_fields, survey_plan
from bayesrb.simulate.settings import SurveySettings
from bayesrb.simulate.sky import make_field_sky
from bayesrb.simulate.survey import simulate_template, simulate_visit, survey_catalogues, survey_orbits
from bayesrb.simulate.truth import match_truth
from bayesrb.stamps.shard import read_shard_meta

log = logging.getLogger(__name__)
CATALOGUE_NAMES = ("stars", "galaxies", "variables", "agn", "transients", "deep")


def write_fits(hdul: fits.HDUList, path: str | Path) -> None:
    """Write a FITS HDU list, atomically."""
    with atomic_path(path) as tmp:
        hdul.writeto(tmp)


def write_survey(section: dict, plan_path: str, orbits_path: str, sky_path: str, catalogue_paths: dict) -> None:
    """Write the survey plan, the orbit file, the sky truth of every field and the external catalogues.

    Parameters
    ----------
    section : dict
        The config's ``simulate`` mapping.
    plan_path, orbits_path, sky_path : str
        Outputs: plan (ECSV), orbits (MPCORB.DAT format), sky truth of all fields (ECSV).
    catalogue_paths : dict of str to str
        Output path of each catalogue in :data:`CATALOGUE_NAMES`.
    """
    settings = settings_from(SurveySettings, section, "simulate")
    visits = survey_plan(settings)
    skies = [make_field_sky(field, settings) for field in survey_fields(settings)]
    orbits = survey_orbits(visits, settings)
    log.info("survey: %d fields, %d visits, %d orbits", len(skies), len(visits), len(orbits))
    write_ecsv(plan_table(visits), plan_path)
    write_mpcorb(orbits, orbits_path)
    write_ecsv(vstack(skies), sky_path)
    for name, table in survey_catalogues(skies, settings).items():
        write_ecsv(table, catalogue_paths[name])
        log.info("catalogue %s: %d sources", name, len(table))


def _field_sky(sky_path: str, field: str) -> Table:
    sky = Table.read(sky_path, format="ascii.ecsv")
    return sky[np.asarray(sky["field"]) == field]


def write_template(section: dict, field: str, sky_path: str, out_path: str) -> None:
    """Render and write the template of ``field``."""
    settings = settings_from(SurveySettings, section, "simulate")
    fields = {f.name: f for f in survey_fields(settings)}
    start = time.perf_counter()
    write_fits(simulate_template(fields[field], _field_sky(sky_path, field), settings), out_path)
    log.info("template %s written in %.1f s", field, time.perf_counter() - start)


def write_visit(section: dict, visit_id: str, sky_path: str, orbits_path: str, science_path: str,
                truth_path: str) -> None:
    """Simulate visit ``visit_id`` and write its science FITS (stack + sub-exposures) and truth table."""
    settings = settings_from(SurveySettings, section, "simulate")
    visit = {v.visit_id: v for v in survey_plan(settings)}[visit_id]
    start = time.perf_counter()
    hdul, truth = simulate_visit(visit, _field_sky(sky_path, visit.field.name), read_mpcorb(orbits_path), settings)
    write_fits(hdul, science_path)
    write_ecsv(truth, truth_path)
    log.info("visit %s: %d truth rows, %.1f s", visit_id, len(truth), time.perf_counter() - start)


def write_truth_matches(shard_path: str, truth_path: str, out_path: str) -> None:
    """Match every candidate of a visit's stamp shard to the simulator's truth and write the result as ECSV.

    The one place where the truth meets the real pipeline's outputs: the table sits beside them, keyed by
    ``candidate_id`` (every shard candidate, in shard order), and later steps read it as data (evaluation-only
    labels, the data set's ``truth_*`` columns, label purity).

    Parameters
    ----------
    shard_path : str
        The visit's stamp shard (its ``candidate_id``, ``x`` and ``y`` are read).
    truth_path : str
        The visit's truth table (:func:`write_visit`).
    out_path : str
        Output ECSV: ``candidate_id`` and the columns of :func:`bayesrb.simulate.truth.match_truth`.
    """
    meta, _ = read_shard_meta(shard_path)
    matches = match_truth(meta["x"], meta["y"], Table.read(truth_path, format="ascii.ecsv"))
    write_ecsv(Table({"candidate_id": meta["candidate_id"]} | matches), out_path)
    log.info("%s: %d of %d candidates matched to the truth", shard_path, int(np.sum(matches["truth_kind"] != "")),
             len(meta["candidate_id"]))
