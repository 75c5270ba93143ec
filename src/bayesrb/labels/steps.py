"""File-level labelling steps, one per workflow rule: automatic labels of a visit, synthetic transients."""

import logging
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from bayesrb.atomic import write_ecsv
from bayesrb.errors import BadInputError
from bayesrb.labels.automatic import (
    clear_of,
    match_minor_planets,
    recurrent,
    sample_bogus,
)
from bayesrb.labels.catalogues import positions, read_catalogue
from bayesrb.labels.observing import predicted_minor_planets, read_visit_observation
from bayesrb.labels.settings import LabelSettings
from bayesrb.seeding import rng_for
from bayesrb.stamps.shard import read_shard_meta
from bayesrb.vocabulary import (
    INJECTED_FROM_TRUTH,
    MINOR_PLANET,
    RANDOM_BOGUS,
    REAL,
    REAL_TRUTH_KINDS,
    UNLABELLED,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelInputs:
    """Paths of what labelling reads besides the shard.

    ``orbits`` is the MPCORB file (empty: none, so no minor-planet labels); ``avoid_catalogues`` are the
    catalogues (variables, AGN, known transients) whose positions the bogus sample stays clear of; ``stars`` the
    star catalogue and ``field_candidates`` the candidate tables of the field's other visits (recurrence filter).
    """

    science: str
    orbits: str = ""
    avoid_catalogues: tuple[str, ...] = ()
    stars: str = ""
    field_candidates: tuple[str, ...] = ()


def _label_table(n: int) -> dict[str, np.ndarray]:
    return {"label": np.full(n, -1, dtype=np.int8), "kind": np.full(n, "", dtype=object),
            "mp_designation": np.full(n, "", dtype=object), "mp_predicted_mag": np.full(n, np.nan),
            "mp_separation_arcsec": np.full(n, np.nan), "host_offset_arcsec": np.full(n, np.nan),
            "host_offset_hlr": np.full(n, np.nan)}


def _predicted_planets(inputs: LabelInputs, settings: LabelSettings) -> Table:
    if not inputs.orbits:
        log.warning("no orbit file given: no minor-planet labels for %s", inputs.science)
        return Table({"designation": np.array([], str), "ra": [], "dec": [], "x": [], "y": [], "mag": []})
    observation = read_visit_observation(inputs.science)
    return predicted_minor_planets(observation, inputs.orbits, settings.max_bad_orbit_fraction)


def _avoid_positions(inputs: LabelInputs, planets: Table) -> tuple[np.ndarray, np.ndarray]:
    return positions([read_catalogue(path) for path in inputs.avoid_catalogues] + [planets])


def _recurring(meta: dict[str, np.ndarray], inputs: LabelInputs, settings: LabelSettings) -> np.ndarray:
    others = []
    for path in inputs.field_candidates:
        table = read_catalogue(path, ("ra", "dec", "sign"))
        positive = np.asarray(table["sign"]) > 0
        others.append((np.asarray(table["ra"], float)[positive], np.asarray(table["dec"], float)[positive]))
    stars_ra, stars_dec = positions([read_catalogue(inputs.stars)] if inputs.stars else [])
    return recurrent(meta["ra"], meta["dec"], meta["sign"], others, stars_ra, stars_dec,
                     settings.recurrence_radius_arcsec)


def automatic_labels(meta: dict[str, np.ndarray], planets: Table, avoid_ra: np.ndarray, avoid_dec: np.ndarray,
                     settings: LabelSettings, rng: np.random.Generator,
                     recurring: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Label one visit's detections: minor-planet matches real, a purity-filtered random sample bogus.

    Parameters
    ----------
    meta : dict of str to numpy.ndarray
        The visit's shard meta (``ra``, ``dec``, ``sign`` are used).
    planets : astropy.table.Table
        Every predicted minor planet on (or near) the image, any magnitude.
    avoid_ra, avoid_dec : numpy.ndarray
        Positions that bogus candidates must stay clear of (catalogued variables and AGN, known transients
        and every predicted minor planet).
    settings : LabelSettings
    rng : numpy.random.Generator
        Draws the bogus sample.
    recurring : numpy.ndarray, optional
        Detections that recur unexplained in other visits of the field (see
        :func:`bayesrb.labels.automatic.recurrent`); kept out of the bogus sample.

    Returns
    -------
    dict of str to numpy.ndarray
        Per detection: ``label`` (1, 0 or -1 = unlabelled), ``kind``, ``mp_designation``,
        ``mp_predicted_mag`` and ``mp_separation_arcsec``.
    """
    n = len(meta["ra"])
    table = _label_table(n)
    bright = planets[np.asarray(planets["mag"], float) < settings.mp_limit_mag]
    match = match_minor_planets(meta["ra"], meta["dec"], meta["sign"], bright, settings.mp_match_radius_arcsec)
    table["label"][match.candidate] = 1
    table["kind"][match.candidate] = MINOR_PLANET
    table["mp_designation"][match.candidate] = np.asarray(bright["designation"])[match.planet]
    table["mp_predicted_mag"][match.candidate] = np.asarray(bright["mag"], float)[match.planet]
    table["mp_separation_arcsec"][match.candidate] = match.separation_arcsec
    eligible = (table["label"] < 0) & clear_of(meta["ra"], meta["dec"], avoid_ra, avoid_dec,
                                               settings.bogus_clear_radius_arcsec)
    if recurring is not None:
        eligible &= ~recurring
    bogus = sample_bogus(eligible, settings.bogus_per_visit, rng)
    table["label"][bogus] = 0
    table["kind"][bogus] = RANDOM_BOGUS
    return table


def truth_labels(meta: dict[str, np.ndarray], truth: Table, table: dict[str, np.ndarray]) -> int:
    """Label the positive detections of simulated evaluation-only transients from the truth, in place.

    These stand in for a spectroscopically confirmed sample; they override automatic labels. Their host offsets
    (arcsec and host half-light radii) come from the truth too. Every other automatic label that the truth
    contradicts (a random bogus position on a variable star or AGN, a minor-planet label on a hot pixel) is
    withdrawn, so that the evaluation split measures the models, not the automatic labels' noise.

    Parameters
    ----------
    meta : dict of str to numpy.ndarray
        The shard's meta (``candidate_id``, ``sign``).
    truth : astropy.table.Table
        The visit's candidates matched to the simulator's truth, in shard order: ``truth_kind``,
        ``truth_host_offset_arcsec``, ``truth_host_hlr_arcsec``.
    table : dict of str to numpy.ndarray
        The label columns (:func:`automatic_labels`), changed in place.

    Returns
    -------
    int
        Number of detections labelled from the truth.
    """
    kinds = np.asarray(truth["truth_kind"], dtype=str)
    injected = np.isin(kinds, list(INJECTED_FROM_TRUTH)) & (np.asarray(meta["sign"]) > 0)
    table["label"][injected] = 1
    table["kind"][injected] = [INJECTED_FROM_TRUTH[k] for k in kinds[injected]]
    truly_real = np.isin(kinds, list(REAL_TRUTH_KINDS))
    contradicted = ~injected & (table["label"] != UNLABELLED) & ((table["label"] == REAL) != truly_real)
    table["label"][contradicted] = UNLABELLED
    table["kind"][contradicted] = ""
    if contradicted.any():
        log.info("withdrew %d automatic labels the truth contradicts (truth kinds %s)", int(contradicted.sum()),
                 sorted(set(kinds[contradicted].tolist())))
    offset = np.asarray(truth["truth_host_offset_arcsec"], float)
    table["host_offset_arcsec"][injected] = offset[injected]
    table["host_offset_hlr"][injected] = (offset / np.asarray(truth["truth_host_hlr_arcsec"], float))[injected]
    return int(injected.sum())


def _read_truth(path: str, candidate_ids: np.ndarray) -> Table:
    """The truth-match table of a visit; BadInputError naming it unless it lists the shard's candidates in order."""
    truth = Table.read(path, format="ascii.ecsv")
    if not np.array_equal(np.asarray(truth["candidate_id"], dtype=str), candidate_ids):
        raise BadInputError(path, "does not list the candidates of the visit's stamp shard in order")
    return truth


def label_visit(shard_path: str, out_path: str, inputs: LabelInputs, settings: LabelSettings, *, seed: int,
                truth_path: str = "") -> None:
    """Write the automatic labels of one visit's detections as an ECSV table, atomically.

    Parameters
    ----------
    shard_path : str
        The visit's stamp shard (only its meta is read).
    out_path : str
        Output ECSV: one row per labelled detection, with ``candidate_id``, ``label``, ``kind`` and the
        minor-planet match columns.
    inputs : LabelInputs
        Science FITS (epoch, site, WCS), orbit file, catalogues to keep bogus clear of, known transients.
    settings : LabelSettings
    seed : int
        Seed of the labelling stage; the bogus sample of a visit is drawn from ``(seed, "bogus", visit)``.
    truth_path : str
        Evaluation-only visits of a simulated survey: the candidates matched to the simulator's truth
        (:func:`bayesrb.simulate.files.write_truth_matches`), from which the injected transients are labelled.
    """
    meta, attrs = read_shard_meta(shard_path)
    visit = str(attrs.get("visit", shard_path))
    planets = _predicted_planets(inputs, settings)
    avoid_ra, avoid_dec = _avoid_positions(inputs, planets)
    recurring = _recurring(meta, inputs, settings)
    table = automatic_labels(meta, planets, avoid_ra, avoid_dec, settings, rng_for(seed, "bogus", visit), recurring)
    n_truth = truth_labels(meta, _read_truth(truth_path, meta["candidate_id"]), table) if truth_path else 0
    keep = table["label"] >= 0
    labels = Table({"candidate_id": meta["candidate_id"][keep]}
                   | {name: np.asarray(values[keep]).astype(str) if values.dtype == object else values[keep]
                      for name, values in table.items()})
    labels.meta.update(visit=visit, n_candidates=len(meta["ra"]), n_predicted_planets=len(planets))
    write_ecsv(labels, out_path)
    kinds, counts = np.unique(np.asarray(labels["kind"], dtype=str), return_counts=True)
    log.info("%s: %d detections, %d predicted minor planets on the image, %d recurrent, labels %s (%d from truth)",
             visit, len(meta["ra"]), len(planets), int(recurring.sum()),
             dict(zip(kinds.tolist(), counts.tolist(), strict=True)), n_truth)
