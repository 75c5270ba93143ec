"""File-level stamp step: cut one visit's candidates into a zarr shard."""

import logging

import numpy as np
from astropy.table import Table

from bayesrb.imaging.fitsio import pixel_scale_arcsec
from bayesrb.imaging.inputs import load_visit_images
from bayesrb.stamps.extract import extract_stamps
from bayesrb.stamps.settings import StampSettings
from bayesrb.stamps.shard import write_shard

log = logging.getLogger(__name__)
CANDIDATE_COLUMNS = ("x", "y", "ra", "dec", "mag", "mag_err", "snr", "fwhm", "sign", "flags")


def candidate_meta(visit: str, candidates: Table, stamp_flags: np.ndarray) -> dict[str, np.ndarray]:
    """Per-candidate meta columns of a shard: ids, detection columns, stamp flags, no label yet."""
    n = len(candidates)
    meta = {"candidate_id": np.array([f"{visit}-{i:05d}" for i in range(n)], dtype=str),
            "visit": np.full(n, visit)}
    meta |= {column: np.asarray(candidates[column]) for column in CANDIDATE_COLUMNS}
    meta |= {"stamp_flags": stamp_flags, "label": np.full(n, -1, dtype=np.int8), "kind": np.full(n, "")}
    return meta


def stamp_visit(visit: str, science_path: str, template_path: str, difference_path: str, candidates_path: str,
                out_path: str, settings: StampSettings, *, seed: int, config_hash: str,
                external_difference_image: bool = False) -> None:
    """Cut stamps of every candidate of a visit and write them as one zarr v3 shard, atomically.

    Parameters
    ----------
    visit : str
        Visit id; candidate ids are ``{visit}-{index:05d}``.
    science_path, template_path, difference_path, candidates_path : str
        Inputs: science FITS (stack + SUBEXPn extensions), template FITS, difference FITS, candidates.
    out_path : str
        The shard directory.
    settings : StampSettings
        Stamp side (odd, pixels) and channels, in order.
    seed : int
        Seed of the survey, recorded in the shard's attrs.
    config_hash : str
        Hash of the config sections that shaped the shard, recorded in its attrs.
    external_difference_image : bool
        Whether the difference image was made outside the workflow (one HDU, no noise map).
    """
    science, aligned, difference, subexposures = load_visit_images(science_path, template_path, difference_path,
                                                                   external_difference_image)
    candidates = Table.read(candidates_path, format="ascii.ecsv")
    x, y = np.asarray(candidates["x"], float), np.asarray(candidates["y"], float)
    stamps, stamp_flags = extract_stamps(science.data, aligned, difference, subexposures, x, y,
                                         size=settings.size, channels=settings.channels)
    meta = candidate_meta(visit, candidates, stamp_flags)
    attrs = {"units": "adu", "pixel_scale_arcsec": pixel_scale_arcsec(science.wcs), "stamp_size": settings.size,
             "seed": seed, "config_hash": config_hash, "visit": visit}
    write_shard(out_path, stamps, settings.channels, meta, attrs)
    log.info("%s: %d stamps of %dx%dx%d", visit, len(stamps), settings.size, settings.size, len(settings.channels))
