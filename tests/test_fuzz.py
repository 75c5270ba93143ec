"""Fuzzing the readers: whatever bytes a user hands the tool, the answer is a correct result or one BadInputError.

Each property starts from a valid file written by the project's own writer, damages it (truncation, overwritten
bytes, deleted parts) or replaces it with arbitrary bytes, and requires that reading it either succeeds or raises
:class:`bayesrb.errors.BadInputError` naming the file: never another exception.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imaging_fakes import make_wcs_header
from snakemake.utils import validate

from bayesrb.configuration import check_config, load_schema
from bayesrb.dataset.human import read_human_labels
from bayesrb.errors import BadInputError
from bayesrb.imaging.fitsio import read_difference, read_image, write_difference
from bayesrb.labels.catalogues import read_catalogue
from bayesrb.minorplanets.mpcorb import read_mpcorb
from bayesrb.pipeline.plan import read_manifest
from bayesrb.stamps.shard import read_shard, write_shard

ROOT = Path(__file__).resolve().parents[1]
#: CI runs a fixed set of 60 examples per reader; BAYESRB_FUZZ_EXAMPLES=N runs N new random ones (a deeper search).
FUZZ = settings(max_examples=int(os.environ.get("BAYESRB_FUZZ_EXAMPLES", "60")), deadline=None,
                derandomize="BAYESRB_FUZZ_EXAMPLES" not in os.environ, suppress_health_check=[HealthCheck.too_slow])


def damaged(original: bytes):
    """A strategy of damaged versions of ``original``: truncated, bytes overwritten, or arbitrary bytes."""
    truncated = st.integers(0, len(original)).map(lambda n: original[:n])
    positions = st.lists(st.tuples(st.integers(0, max(0, len(original) - 1)), st.integers(0, 255)), min_size=1,
                         max_size=8)
    overwritten = positions.map(lambda edits: _overwrite(original, edits))
    return st.one_of(truncated, overwritten, st.binary(max_size=400))


def _overwrite(original: bytes, edits) -> bytes:
    data = bytearray(original)
    for position, value in edits:
        if position < len(data):
            data[position] = value
    return bytes(data)


def read_or_bad_input(reader, path: Path, *args):
    """Call ``reader(path, *args)``; a BadInputError must name ``path``. Returns the result or None."""
    try:
        return reader(path, *args)
    except BadInputError as error:
        assert Path(error.source).name == path.name, f"the error names {error.source}, not {path}"
        return None


def _in_temporary(name: str, data: bytes, reader, *args):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        return read_or_bad_input(reader, path, *args)


# ----------------------------------------------------------------------------------------------- text files

MANIFEST = b"visit,field,science,template,difference\nv1,F00,sci.fits,tmpl.fits,\nv2,F00,sci2.fits,tmpl.fits,d.fits\n"
HUMAN = b"candidate_id,label,kind\nv1-00000,real,mp\nv1-00001,0,\nv2-00003,bogus,satellite\n"
CATALOGUE = b"ra,dec,mag\n150.0,2.0,17.5\n150.1,2.1,18.0\n"


@FUZZ
@given(damaged(MANIFEST))
def test_manifest_reader(data):
    visits = _in_temporary("manifest.csv", data, read_manifest)
    if visits is not None:
        assert visits and all(v.visit and v.field and v.science and v.template for v in visits)


@FUZZ
@given(damaged(HUMAN))
def test_human_labels_reader(data):
    table = _in_temporary("human.csv", data, read_human_labels)
    if table is not None:
        assert set(np.asarray(table["label"]).tolist()) <= {0, 1}


@FUZZ
@given(damaged(CATALOGUE))
def test_catalogue_reader(data):
    table = _in_temporary("stars.csv", data, read_catalogue)
    if table is not None:
        assert np.isfinite(np.asarray(table["ra"], float)).all() and np.isfinite(np.asarray(table["dec"], float)).all()


# ----------------------------------------------------------------------------------------------- MPCORB


MPCORB_BYTES = ("MINOR PLANET CENTER ORBIT DATABASE (MPCORB)\n" + "-" * 160 + "\n"
                "00001    3.34  0.12 K249A  25.07130   73.41651   80.26070   10.58687  0.0785209  0.21407094"
                "   2.7670940  0 MPO722043  6751  92 1801-2024 0.60 M-v 30h MPCLINUX   0000      (1) Ceres"
                "              20240917\n").encode()


@FUZZ
@given(data=st.data())
def test_mpcorb_reader(data):
    orbits = _in_temporary("MPCORB.DAT", data.draw(damaged(MPCORB_BYTES)), read_mpcorb, 0.5)
    if orbits is not None:
        assert len(orbits) == 1 and 0 <= orbits.eccentricity[0] < 1


# ----------------------------------------------------------------------------------------------- FITS


def _fits_bytes() -> tuple[bytes, bytes]:
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 5.0, (16, 16)).astype(np.float32)
    with tempfile.TemporaryDirectory() as directory:
        science, difference = Path(directory) / "science.fits", Path(directory) / "difference.fits"
        fits.PrimaryHDU(image, header=make_wcs_header((16, 16))).writeto(science)
        write_difference(difference, image - 100.0, np.full_like(image, 5.0), np.zeros(image.shape, bool), image,
                         make_wcs_header((16, 16)))
        return science.read_bytes(), difference.read_bytes()


SCIENCE_BYTES, DIFFERENCE_BYTES = _fits_bytes()


@FUZZ
@given(damaged(SCIENCE_BYTES))
def test_fits_image_reader(data):
    image = _in_temporary("science.fits", data, read_image)
    if image is not None:
        assert image.data.dtype == np.float32 and image.data.ndim == 2 and image.wcs.has_celestial


@FUZZ
@given(damaged(DIFFERENCE_BYTES))
def test_difference_reader(data):
    stored = _in_temporary("difference.fits", data, read_difference)
    if stored is not None:
        assert stored.difference.shape == stored.noise.shape == stored.mask.shape == stored.template.shape


# ----------------------------------------------------------------------------------------------- stamp shards


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory) -> dict[str, bytes]:
    """Every file of a small valid shard, by its path inside the shard."""
    path = tmp_path_factory.mktemp("shard") / "v.zarr"
    n, size = 5, 9
    meta = {"candidate_id": np.array([f"v-{i:05d}" for i in range(n)]), "visit": np.full(n, "v"),
            **{c: np.arange(n, dtype=float) for c in ("x", "y", "ra", "dec", "mag", "mag_err", "snr", "fwhm")},
            "sign": np.ones(n, np.int8), "flags": np.zeros(n, np.int32), "stamp_flags": np.zeros(n, np.int16),
            "label": np.full(n, -1, np.int8), "kind": np.full(n, "")}
    stamps = np.random.default_rng(1).normal(size=(n, size, size, 2)).astype(np.float32)
    write_shard(path, stamps, ("science", "difference"), meta,
                {"units": "ADU", "pixel_scale_arcsec": 1.24, "stamp_size": size, "seed": 0, "config_hash": "x"})
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@FUZZ
@given(data=st.data())
def test_shard_reader(shard_files, data):
    target = data.draw(st.sampled_from(sorted(shard_files)))
    replacement = data.draw(st.one_of(st.none(), damaged(shard_files[target])))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "v.zarr"
        for name, content in shard_files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            if name != target or replacement is not None:
                (path / name).write_bytes(replacement if name == target else content)
        shard = read_or_bad_input(read_shard, path)
    if shard is not None:
        assert shard.stamps.shape[0] == len(shard.meta["candidate_id"])


# ----------------------------------------------------------------------------------------------- configs

SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
_MODEL_KEYS = sorted(SCHEMA["properties"]["model"]["properties"])
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 500), st.floats(allow_nan=True), st.text(max_size=8),
                    st.lists(st.integers(-2, 64), max_size=3))


@FUZZ
@given(st.dictionaries(st.sampled_from([*_MODEL_KEYS, "not_a_key"]), _VALUES, max_size=3),
       st.text(min_size=1, max_size=6))
def test_experiment_overrides(overrides, name):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config |= {"experiments": {name: {"model": overrides}}, "evaluation": {"comparisons": {}}}
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    try:
        experiments = check_config(config, SCHEMA)
    except BadInputError as error:
        assert error.source.startswith("config ")
        return
    assert list(experiments) == [name]
