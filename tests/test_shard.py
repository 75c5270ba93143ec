"""Tests for bayesrb.stamps.shard and .store: schema round trip, empty shards, determinism, atomicity, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

import bayesrb
from bayesrb.dataset import open_dataset
from bayesrb.errors import BadInputError
from bayesrb.model.data import StampSource
from bayesrb.stamps import (
    CHANNELS_BASE,
    SHARD_META_COLUMNS,
    STAMPS_PER_CHUNK,
    Shard,
    read_shard,
    write_shard,
)
from bayesrb.stamps import shard as shard_module

SIZE = 7
ATTRS = {"units": "ADU", "pixel_scale_arcsec": 1.24, "stamp_size": SIZE, "seed": 12, "config_hash": "abc123"}


def make_meta(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "candidate_id": np.array([f"v001-{i:05d}" for i in range(n)], dtype=object),
        "visit": np.array(["v001"] * n, dtype=np.dtypes.StringDType()),
        "x": rng.uniform(0, 100, n),
        "y": rng.uniform(0, 80, n),
        "ra": rng.uniform(10, 11, n),
        "dec": rng.uniform(-5, -4, n),
        "mag": rng.uniform(15, 20, n),
        "mag_err": rng.uniform(0.01, 0.2, n),
        "snr": rng.uniform(5, 100, n),
        "fwhm": rng.uniform(2, 4, n),
        "sign": rng.choice([-1, 1], n),
        "flags": rng.integers(0, 4, n),
        "label": rng.choice([-1, 0, 1], n),
        "kind": np.array(["", "star", "mp", "cosmic ray ☄"] * n)[:n],
        "truth_flux": rng.uniform(0, 1e4, n),
        "truth_kind": np.array(["sn"] * n),
    }


def make_stamps(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(n, SIZE, SIZE, len(CHANNELS_BASE))).astype(np.float32)


def all_file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def test_round_trip_schema(tmp_path, rng):
    n = 300  # more than one chunk of stamps
    stamps, meta = make_stamps(n, rng), make_meta(n, rng)
    path = tmp_path / "v001.zarr"
    write_shard(path, stamps, CHANNELS_BASE, meta, ATTRS)
    shard = read_shard(path)

    assert isinstance(shard, Shard) and len(shard) == n
    np.testing.assert_array_equal(shard.stamps, stamps)
    assert shard.stamps.dtype == np.float32
    assert shard.channels == CHANNELS_BASE
    assert list(shard.meta)[: len(SHARD_META_COLUMNS)] == list(SHARD_META_COLUMNS)
    assert set(shard.meta) == set(meta)
    for name, dtype in SHARD_META_COLUMNS.items():
        column = shard.meta[name]
        assert column.dtype.kind == "U" if dtype is str else column.dtype == dtype, name
    np.testing.assert_array_equal(shard.meta["candidate_id"], meta["candidate_id"].astype(str))
    np.testing.assert_array_equal(shard.meta["kind"], meta["kind"])
    np.testing.assert_array_equal(shard.meta["x"], meta["x"])  # float64 kept exactly
    np.testing.assert_array_equal(shard.meta["mag"], meta["mag"].astype(np.float32))
    np.testing.assert_array_equal(shard.meta["sign"], meta["sign"])
    np.testing.assert_array_equal(shard.meta["label"], meta["label"])
    np.testing.assert_array_equal(shard.meta["truth_flux"], meta["truth_flux"])
    assert shard.meta["truth_kind"].dtype.kind == "U"

    assert shard.attrs == ATTRS | {
        "bayesrb_version": bayesrb.__version__,
        "n_candidates": n,
        "channels": list(CHANNELS_BASE),
    }


def test_on_disk_layout(tmp_path, rng):
    n = 300
    path = tmp_path / "v001.zarr"
    write_shard(path, make_stamps(n, rng), CHANNELS_BASE, make_meta(n, rng), ATTRS)
    group = zarr.open_group(path, mode="r", zarr_format=3)
    stamps = group["stamps"]
    assert stamps.shape == (n, SIZE, SIZE, 4)
    assert stamps.dtype == np.float32
    assert stamps.chunks == (STAMPS_PER_CHUNK, SIZE, SIZE, 4)
    assert stamps.attrs["channels"] == list(CHANNELS_BASE)
    assert stamps.attrs["units"] == "ADU"
    assert sorted(group["meta"].array_keys()) == sorted(make_meta(1, rng))
    assert all(group["meta"][name].ndim == 1 for name in SHARD_META_COLUMNS)
    zarr_json = json.loads((path / "stamps" / "zarr.json").read_text())
    assert zarr_json["zarr_format"] == 3
    assert {c["name"] for c in zarr_json["codecs"]} >= {"blosc"}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary directory left behind


def test_empty_shard(tmp_path, rng):
    path = tmp_path / "empty.zarr"
    write_shard(path, np.zeros((0, SIZE, SIZE, 4), np.float32), CHANNELS_BASE, make_meta(0, rng), ATTRS)
    shard = read_shard(path)
    assert shard.stamps.shape == (0, SIZE, SIZE, 4)
    assert shard.stamps.dtype == np.float32
    assert shard.attrs["n_candidates"] == 0
    assert set(SHARD_META_COLUMNS) <= set(shard.meta)
    assert all(column.shape == (0,) for column in shard.meta.values())
    assert shard.meta["label"].dtype == np.int8


def test_rewrite_is_byte_identical(tmp_path, rng):
    stamps, meta = make_stamps(40, rng), make_meta(40, rng)
    first, second = tmp_path / "a.zarr", tmp_path / "b.zarr"
    write_shard(first, stamps, CHANNELS_BASE, meta, ATTRS)
    write_shard(second, stamps.copy(), CHANNELS_BASE, {k: v.copy() for k, v in meta.items()}, ATTRS)
    a, b = all_file_bytes(first), all_file_bytes(second)
    assert len(a) > 10
    assert a == b
    # Overwriting in place also reproduces the same bytes.
    write_shard(first, stamps, CHANNELS_BASE, meta, ATTRS)
    assert all_file_bytes(first) == a


def test_numpy_scalars_in_attrs(tmp_path, rng):
    attrs = ATTRS | {"seed": np.int64(12), "pixel_scale_arcsec": np.float32(1.25), "extra": (1, 2)}
    path = tmp_path / "s.zarr"
    write_shard(path, make_stamps(2, rng), CHANNELS_BASE, make_meta(2, rng), attrs)
    got = read_shard(path).attrs
    assert got["seed"] == 12 and got["pixel_scale_arcsec"] == 1.25 and got["extra"] == [1, 2]


def test_wrong_length_column_leaves_old_shard_untouched(tmp_path, rng):
    path = tmp_path / "v001.zarr"
    write_shard(path, make_stamps(5, rng), CHANNELS_BASE, make_meta(5, rng), ATTRS)
    before = all_file_bytes(path)
    meta = make_meta(6, rng)
    meta["mag"] = meta["mag"][:4]
    with pytest.raises(ValueError, match="length 6"):
        write_shard(path, make_stamps(6, rng), CHANNELS_BASE, meta, ATTRS)
    assert all_file_bytes(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v001.zarr"]


def test_failure_midway_leaves_nothing(tmp_path, rng, monkeypatch):
    written = []

    def exploding_write_meta(meta_group, columns):
        written.append(sorted(p.name for p in Path(meta_group.store.root).iterdir()))
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(shard_module, "write_meta_columns", exploding_write_meta)
    path = tmp_path / "new.zarr"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_shard(path, make_stamps(5, rng), CHANNELS_BASE, make_meta(5, rng), ATTRS)
    assert written and "stamps" in written[0]  # the stamps really were written before the failure
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_keeps_old_shard(tmp_path, rng, monkeypatch):
    path = tmp_path / "v001.zarr"
    write_shard(path, make_stamps(5, rng), CHANNELS_BASE, make_meta(5, rng), ATTRS)
    before = all_file_bytes(path)

    def exploding_write_meta(meta_group, columns):
        raise KeyboardInterrupt

    monkeypatch.setattr(shard_module, "write_meta_columns", exploding_write_meta)
    with pytest.raises(KeyboardInterrupt):
        write_shard(path, make_stamps(8, rng), CHANNELS_BASE, make_meta(8, rng), ATTRS)
    assert all_file_bytes(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v001.zarr"]
    assert len(read_shard(path)) == 5


def test_missing_meta_columns_named(tmp_path, rng):
    meta = make_meta(3, rng)
    del meta["ra"], meta["kind"]
    with pytest.raises(ValueError, match="ra, kind"):
        write_shard(tmp_path / "s.zarr", make_stamps(3, rng), CHANNELS_BASE, meta, ATTRS)
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s, c, m, a: (s[..., :3], c, m, a), "distinct channel names"),
        (lambda s, c, m, a: (s, ("a", "a", "b", "c"), m, a), "distinct channel names"),
        (lambda s, c, m, a: (s[0], c, m, a), "4-D"),
        (lambda s, c, m, a: (s, c, m | {"sign": np.full(3, 300)}, a), "sign"),
        (lambda s, c, m, a: (s, c, m | {"label": np.full(3, 0.5)}, a), "label"),
        (lambda s, c, m, a: (s, c, m | {"x": np.array(["a", "b", "c"])}, a), "'x'"),
        (lambda s, c, m, a: (s, c, m | {"bad/name": np.zeros(3)}, a), "column name"),
        (lambda s, c, m, a: (s, c, m, {k: v for k, v in a.items() if k != "seed"}), "seed"),
        (lambda s, c, m, a: (s, c, m, a | {"stamp_size": 9}), "stamp_size"),
    ],
)
def test_bad_write_arguments(tmp_path, rng, change, match):
    args = change(make_stamps(3, rng), CHANNELS_BASE, make_meta(3, rng), ATTRS)
    with pytest.raises(ValueError, match=match):
        write_shard(tmp_path / "s.zarr", *args)
    assert list(tmp_path.iterdir()) == []


def test_read_missing_path(tmp_path):
    path = tmp_path / "nope.zarr"
    with pytest.raises(BadInputError, match="nope.zarr: .*does not exist"):
        read_shard(path)


def test_read_not_a_zarr_group(tmp_path):
    path = tmp_path / "junk.zarr"
    path.mkdir()
    (path / "readme.txt").write_text("hello")
    with pytest.raises(BadInputError, match="junk.zarr"):
        read_shard(path)


def written_shard(tmp_path, rng, n=4) -> Path:
    path = tmp_path / "v.zarr"
    write_shard(path, make_stamps(n, rng), CHANNELS_BASE, make_meta(n, rng), ATTRS)
    return path


def test_read_without_stamps(tmp_path, rng):
    path = written_shard(tmp_path, rng)
    group = zarr.open_group(path, mode="a", zarr_format=3)
    del group["stamps"]
    with pytest.raises(BadInputError, match="v.zarr: .*'stamps'"):
        read_shard(path)


#: Every reader of a stamp store: one validator (bayesrb.stamps.store.open_store) checks the layout for all.
READERS = [read_shard, open_dataset, StampSource]


@pytest.mark.parametrize("reader", READERS)
def test_read_channel_count_mismatch(tmp_path, rng, reader):
    path = written_shard(tmp_path, rng)
    zarr.open_array(path / "stamps", mode="a").attrs["channels"] = ["science", "template"]
    with pytest.raises(BadInputError, match="v.zarr: 'stamps' has 4 channels but its attrs name 2"):
        reader(path)


@pytest.mark.parametrize("reader", READERS)
def test_read_meta_length_mismatch(tmp_path, rng, reader):
    path = written_shard(tmp_path, rng)
    meta = zarr.open_group(path / "meta", mode="a", zarr_format=3)
    meta["snr"].resize((3,))
    with pytest.raises(BadInputError, match="v.zarr: meta columns do not match the 4 stamps.*snr"):
        reader(path)


def test_a_damaged_stamp_chunk_is_bad_input_for_every_reader(tmp_path, rng):
    path = written_shard(tmp_path, rng)
    for chunk in (path / "stamps" / "c").rglob("*"):
        if chunk.is_file():
            chunk.write_bytes(b"not a blosc chunk")
    with pytest.raises(BadInputError, match="v.zarr: corrupt stamp shard"):
        read_shard(path)
    with pytest.raises(BadInputError, match="v.zarr: corrupt stamp store"):
        StampSource(path).read_stamps(slice(0, 4))


def test_read_missing_required_column(tmp_path, rng):
    path = written_shard(tmp_path, rng)
    meta = zarr.open_group(path / "meta", mode="a", zarr_format=3)
    del meta["visit"]
    with pytest.raises(BadInputError, match="missing required column.*visit"):
        read_shard(path)
