"""Ingesting real ZTF alert packets (../shared/data/ztf_alerts, see its PROVENANCE.md) into a stamp store."""

import datetime
import functools
import gzip
import io
import json
import logging
import shutil
import struct
import tracemalloc
import warnings
from pathlib import Path

import fastavro
import numpy as np
import pytest
import zarr
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from bayesrb import cli
from bayesrb.alerts import ingest
from bayesrb.alerts.fitsimage import astropy_image, plain_image, read_image
from bayesrb.alerts.ingest import ingest_alerts, store_attrs, store_columns
from bayesrb.alerts.packets import CHANNELS, Alert, AlertError, read_avro_alerts
from bayesrb.alerts.projection import BLOCK, HEADER, ProjectedReader
from bayesrb.alerts.store import BlockWriter
from bayesrb.alerts.ztf import (
    CUTOUT_FIELDS,
    CUTOUT_TAIL,
    READER,
    SELECT,
    ZTF,
    alert_from_record,
    decode_cutout,
)
from bayesrb.errors import BadInputError
from bayesrb.model.data import check_compatible
from bayesrb.stamps.extract import FLAG_EDGE, FLAG_NAN
from bayesrb.stamps.shard import read_shard, write_shard

ALERTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ztf_alerts"
ATTRS, COLUMNS = store_attrs(ZTF), store_columns(ZTF)


def read_alert_file(path):
    """The alerts of one ZTF Avro file, as ingest reads them."""
    return read_avro_alerts(path, [ZTF])


pytestmark = pytest.mark.skipif(not ALERTS.is_dir(), reason=f"the shared ZTF alert packets are not at {ALERTS}")

NEGATIVE = ALERTS / "20231012" / "2475433850015010009.avro"  # isdiffpos f, schema 4.01
POSITIVE = ALERTS / "20231012" / "2475433850015015001.avro"  # isdiffpos t, schema 4.01
OLD = ALERTS / "20200202" / "1105522281015015000.avro"  # isdiffpos t, schema 3.3
NAN_ALERTS = {"2475433850015015000", "2475433850215010007", "2475433850415015002", "2475433850415015006"}


def packet(path: Path) -> tuple[dict, dict]:
    """The writer schema and the single record of a shared alert file."""
    with path.open("rb") as handle:
        reader = fastavro.reader(handle)
        (record,) = list(reader)
        return reader.writer_schema, record


def write_avro(path: Path, schema: dict, records: list, codec: str = "null") -> Path:
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), records, codec=codec)
    return path


def fits_gz(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(image.astype(">f4")).writeto(buffer)
    return gzip.compress(buffer.getvalue())


def cutout(record: dict, field: str = "cutoutScience") -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # the packets' SIMPLE card is not in fixed format
        with fits.open(io.BytesIO(gzip.decompress(record[field]["stampData"]))) as hdus:
            return np.array(hdus[0].data, dtype=np.float32)


def only_alert(path: Path) -> Alert:
    (index, alert), = list(read_alert_file(path))
    assert index == 0 and isinstance(alert, Alert), alert
    return alert


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("alerts") / "ztf.zarr"
    summary = ingest_alerts([ALERTS], out)
    return summary, read_shard(out), out


def test_every_shared_packet_is_ingested(store):
    summary, shard, out = store
    assert (summary.files, summary.ingested, summary.skipped_records, summary.skipped_files) == (38, 38, 0, 0)
    assert shard.stamps.shape == (38, 63, 63, 3) and shard.stamps.dtype == np.float32
    assert np.isfinite(shard.stamps).all() and shard.channels == CHANNELS
    assert len(set(shard.meta["candidate_id"])) == 38 and len(set(shard.meta["objectId"])) == 37
    assert np.sum(shard.meta["objectId"] == "ZTF20aajcdad") == 2
    assert sorted(set(shard.meta["schemavsn"])) == ["3.3", "4.01", "4.02"]
    assert (shard.attrs["units"], shard.attrs["pixel_scale_arcsec"], shard.attrs["survey"]) == ("DN", 1.01, "ZTF")
    assert np.all(shard.meta["label"] == -1) and np.all(shard.meta["flags"] == 0)
    nan_flagged = set(shard.meta["candidate_id"][(shard.meta["stamp_flags"] & FLAG_NAN) > 0])
    assert nan_flagged == NAN_ALERTS and not np.any(shard.meta["stamp_flags"] & FLAG_EDGE)
    assert np.abs(shard.stamps[:]).max() < 1e6  # two references' -3.4e38 blanks are zeroed and flagged
    assert check_compatible(out, ["science", "template", "difference"], 63).stamp_shape == (63, 63)


@pytest.mark.parametrize("path", [NEGATIVE, POSITIVE, OLD])
def test_meta_equals_the_packet(store, path):
    _, shard, _ = store
    _, record = packet(path)
    c = record["candidate"]
    (row,) = np.flatnonzero(shard.meta["candidate_id"] == str(record["candid"]))
    meta = {name: values[row] for name, values in shard.meta.items()}
    assert (meta["objectId"], meta["isdiffpos"], meta["sign"]) == (record["objectId"], c["isdiffpos"],
                                                                    1 if c["isdiffpos"] == "t" else -1)
    assert meta["mag"] == np.float32(c["magpsf"]) and meta["mag_err"] == np.float32(c["sigmapsf"])
    assert (meta["ra"], meta["dec"], meta["jd"], meta["fid"]) == (c["ra"], c["dec"], c["jd"], c["fid"])
    assert (meta["x"], meta["y"]) == (c["xpos"] - 1, c["ypos"] - 1) and meta["drb"] == np.float32(c["drb"])
    for name in ("ssdistnr", "ssmagnr", "srmag1", "distpsnr1", "sgscore1", "distnr", "magnr"):
        assert np.isnan(meta[name]) if c[name] in (None, -999.0) else meta[name] == c[name], name
    assert np.isnan(meta["snr"])
    assert (meta["source_file"], meta["record_index"], meta["visit"]) == (str(path), 0, f"ztf-pid{c['pid']}")
    np.testing.assert_array_equal(shard.stamps[row, ..., 2], meta["sign"] * cutout(record, "cutoutDifference"))


def test_difference_is_science_minus_template_for_both_signs(store):
    _, shard, _ = store
    centre = np.median(shard.stamps[:, 29:34, 29:34, :], axis=(1, 2))
    signs = shard.meta["sign"]
    assert np.sum(signs == -1) == 5 and np.sum(signs == 1) == 33
    difference = centre[:, 2]
    assert np.all(difference[signs == -1] < -5) and np.all(difference[signs == 1] > 3)
    background = np.median(shard.stamps, axis=(1, 2))
    brighter_in_template = (centre - background)[:, 1] > (centre - background)[:, 0]
    assert np.all(brighter_in_template[signs == -1])
    for path in (NEGATIVE, POSITIVE):
        _, record = packet(path)
        suffix = "scimref.fits.gz" if record["candidate"]["isdiffpos"] == "t" else "refmsci.fits.gz"
        assert record["cutoutDifference"]["fileName"].endswith(suffix)


@pytest.mark.parametrize("codec", ["deflate", "snappy"])
def test_multi_record_files_read_back_identically(tmp_path, codec):
    schema, first = packet(NEGATIVE)
    _, second = packet(POSITIVE)
    path = write_avro(tmp_path / f"two.{codec}.avro", schema, [first, second], codec=codec)
    with path.open("rb") as handle:
        assert fastavro.reader(handle).codec == codec
    alerts = list(read_alert_file(path))
    assert [index for index, _ in alerts] == [0, 1]
    for (_, alert), single in zip(alerts, (NEGATIVE, POSITIVE), strict=True):
        expected = only_alert(single)
        assert alert.candid == expected.candid
        np.testing.assert_equal(alert.meta, expected.meta)
        np.testing.assert_array_equal(alert.stamps, expected.stamps)


@pytest.mark.parametrize(("rows", "ypos", "pad_before"), [(slice(22, None), 11.0, True),
                                                          (slice(None, 41), 3050.0, False)])
def test_an_edge_clipped_cutout_is_padded_at_its_edge_and_flagged(tmp_path, rows, ypos, pad_before):
    schema, record = packet(POSITIVE)
    full = only_alert(POSITIVE).stamps
    record["candidate"]["ypos"] = ypos
    for field in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
        record[field]["stampData"] = fits_gz(cutout(record, field)[rows])
    alert = only_alert(write_avro(tmp_path / "edge.avro", schema, [record]))
    assert alert.stamps.shape == (63, 63, 3) and alert.stamp_flags == FLAG_EDGE
    pad = slice(None, 22) if pad_before else slice(41, None)
    assert np.all(alert.stamps[pad] == 0)
    np.testing.assert_array_equal(alert.stamps[rows], full[rows])


def test_nan_pixels_are_zeroed_and_flagged(tmp_path):
    schema, record = packet(POSITIVE)
    science = cutout(record)
    science[5:9, 40:50] = np.nan
    science[0, 0] = np.inf
    record["cutoutScience"]["stampData"] = fits_gz(science)
    alert = only_alert(write_avro(tmp_path / "nan.avro", schema, [record]))
    assert alert.stamp_flags == FLAG_NAN and np.isfinite(alert.stamps).all()
    assert np.all(alert.stamps[5:9, 40:50, 0] == 0) and alert.stamps[0, 0, 0] == 0
    np.testing.assert_array_equal(alert.stamps[20:, :, 0], science[20:])


def bad_inputs(tmp: Path) -> dict[str, Path]:
    """One good file, and one file of each kind of bad input (each with a good record where it can hold one)."""
    schema, good = packet(POSITIVE)
    _, other = packet(NEGATIVE)
    _, third = packet(OLD)
    missing = {**other, "cutoutDifference": None}
    not_fits = {**third, "cutoutTemplate": {"fileName": "x.fits.gz", "stampData": gzip.compress(b"not FITS" * 99)}}
    truncated = write_avro(tmp / "full.avro", schema, [other]).read_bytes()
    (tmp / "truncated.avro").write_bytes(truncated[: len(truncated) // 2])
    (tmp / "text.avro").write_text("this is not an Avro file\n" * 10)
    other_schema = {"type": "record", "name": "weather", "fields": [{"name": "t", "type": "double"}]}
    return {"good": write_avro(tmp / "good.avro", schema, [good]),
            "missing": write_avro(tmp / "missing.avro", schema, [good, missing]),
            "not_fits": write_avro(tmp / "not_fits.avro", schema, [not_fits]),
            "truncated": tmp / "truncated.avro",
            "non_alert": write_avro(tmp / "weather.avro", other_schema, [{"t": 1.5}]),
            "not_avro": tmp / "text.avro",
            "absent": tmp / "absent.avro"}


def test_bad_input_is_one_warning_each_and_the_good_records_are_kept(tmp_path, caplog):
    (tmp_path / "in").mkdir()
    files = bad_inputs(tmp_path / "in")
    with caplog.at_level(logging.WARNING, logger="bayesrb.alerts"):
        summary = ingest_alerts(list(files.values()), tmp_path / "out.zarr")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 6
    for name, record in [("missing", "record 1: cutoutDifference is missing"),
                         ("not_fits", "record 0: cutoutTemplate is not a FITS image, gzip-compressed or not"),
                         ("truncated", "record 0: truncated or damaged Avro data"),
                         ("non_alert", "is an Avro file but not of alerts"),
                         ("not_avro", "is not an Avro object-container file"),
                         ("absent", "cannot be read")]:
        assert sum(line.startswith(f"{files[name]}: {record}") for line in lines) == 1, (name, lines)
    assert (summary.ingested, summary.duplicates, summary.skipped_records, summary.skipped_files) == (1, 1, 3, 3)
    shard = read_shard(tmp_path / "out.zarr")
    assert list(shard.meta["candidate_id"]) == [str(packet(POSITIVE)[1]["candid"])]
    assert shard.meta["source_file"][0] == str(files["good"])


def test_nothing_readable_raises_and_writes_nothing(tmp_path):
    files = bad_inputs(tmp_path)
    with pytest.raises(BadInputError, match="no alert could be ingested"):
        ingest_alerts([files["not_avro"], files["non_alert"], files["absent"]], tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()
    assert [p.name for p in tmp_path.iterdir() if "out" in p.name] == []


def test_a_duplicate_candid_is_kept_once(tmp_path):
    shutil.copy(POSITIVE, tmp_path / "copy.avro")
    summary = ingest_alerts([POSITIVE, tmp_path / "copy.avro", NEGATIVE], tmp_path / "out.zarr")
    assert (summary.ingested, summary.duplicates) == (2, 1)
    assert list(read_shard(tmp_path / "out.zarr").meta["source_file"]) == [str(POSITIVE), str(NEGATIVE)]


def test_cli_ingests_globs_and_fails_on_nothing(tmp_path, capsys):
    out = tmp_path / "night.zarr"
    assert cli.main(["ingest-alerts", str(ALERTS / "2020*" / "*.avro"), str(NEGATIVE), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"ingested 13 ZTF alerts from 13 file(s) -> {out}; skipped 0")
    assert len(read_shard(out)) == 13
    (tmp_path / "text.avro").write_text("no")
    assert cli.main(["ingest-alerts", str(tmp_path / "text.avro"), "--out", str(tmp_path / "none.zarr")]) == 1
    assert "no alert could be ingested" in capsys.readouterr().err and not (tmp_path / "none.zarr").exists()


# --- The fast paths (cutout FITS, projected Avro records) against their references ------------------------------

SHARED_FILES = sorted(ALERTS.rglob("*.avro"))


def shared_records() -> list[tuple[Path, dict]]:
    """Every record of the shared packets, as fastavro reads it (the reference)."""
    records = []
    for path in SHARED_FILES:
        with path.open("rb") as handle:
            records.extend((path, record) for record in fastavro.reader(handle))
    return records


def fast_records(path: Path, select=SELECT, trailing=CUTOUT_TAIL) -> list[dict]:
    """The records of a file as the projected reader reads them (with the cutouts located, for ZTF's selection)."""
    with path.open("rb") as handle:
        return list(ProjectedReader(select, trailing if select is SELECT else None).open(handle).records)


def fits_bytes(*hdus) -> bytes:
    buffer = io.BytesIO()
    fits.HDUList(list(hdus)).writeto(buffer)
    return buffer.getvalue()


def handmade_fits(cards: list[str], data: np.ndarray) -> bytes:
    """A single-HDU FITS file with exactly these header cards (``END`` added) and big-endian ``data``."""
    header = "".join(card.ljust(80) for card in [*cards, "END"]).encode()
    pixels = data.astype(data.dtype.newbyteorder(">")).tobytes()
    return header.ljust(-(-len(header) // 2880) * 2880) + pixels.ljust(-(-len(pixels) // 2880) * 2880, b"\0")


def test_the_direct_fits_path_gives_astropy_s_arrays_bit_for_bit_on_every_shared_cutout():
    cutouts = [(path, field, gzip.decompress(record[field]["stampData"])) for path, record in shared_records()
               for field in CUTOUT_FIELDS]
    assert len(cutouts) == 3 * 38
    for path, field, raw in cutouts:
        direct = plain_image(raw)
        assert direct is not None, (path, field)
        reference = astropy_image(raw)
        assert direct.dtype == reference.dtype == np.float32 and direct.dtype.isnative
        np.testing.assert_array_equal(direct.view(np.uint32), reference.view(np.uint32), err_msg=f"{path} {field}")
    assert sum(np.isnan(plain_image(raw)).any() for _, _, raw in cutouts) > 0  # NaN pixels come through as they are


RNG_IMAGE = np.random.default_rng(17).normal(100, 10, (40, 63))
PLAIN_CARDS = ["SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    2",
               "NAXIS1  =                   63", "NAXIS2  =                   40"]


@pytest.mark.parametrize(("name", "raw", "expected"), [pytest.param(*case, id=case[0]) for case in [
    ("int16 with BZERO", fits_bytes(fits.PrimaryHDU(np.arange(2520, dtype=np.uint16).reshape(40, 63) * 20)),
     np.arange(2520, dtype=np.float32).reshape(40, 63) * 20),
    ("float32 with BSCALE", handmade_fits([*PLAIN_CARDS, "BSCALE  =                  2.0"], RNG_IMAGE.astype(">f4")),
     RNG_IMAGE.astype(np.float32) * 2),
    ("image in an extension", fits_bytes(fits.PrimaryHDU(), fits.ImageHDU(RNG_IMAGE.astype(">f4"))),
     RNG_IMAGE.astype(np.float32)),
    ("float64", fits_bytes(fits.PrimaryHDU(RNG_IMAGE)), RNG_IMAGE.astype(np.float32)),
]])
def test_an_unusual_cutout_goes_to_astropy_and_decodes(tmp_path, name, raw, expected):
    assert plain_image(raw) is None
    np.testing.assert_array_equal(read_image(raw), expected)
    np.testing.assert_array_equal(decode_cutout({"stampData": gzip.compress(raw)}, "cutoutScience"), expected)
    schema, record = packet(POSITIVE)
    record["cutoutScience"]["stampData"] = gzip.compress(raw)
    record["candidate"]["ypos"] = 3050.0  # near the far edge: the 40 rows are padded after
    alert = only_alert(write_avro(tmp_path / "unusual.avro", schema, [record]))
    np.testing.assert_array_equal(alert.stamps[:40, :, 0], expected)
    assert alert.stamp_flags == FLAG_EDGE and np.all(alert.stamps[40:, :, 0] == 0)


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_only_a_whole_plain_float_image_takes_the_direct_path():
    image = RNG_IMAGE.astype(np.float32)
    identity = handmade_fits([*PLAIN_CARDS, "BSCALE  =                  1.0", "BZERO   =                  0.0",
                              "BUNIT   = 'DN      '           / units"], image)
    np.testing.assert_array_equal(plain_image(identity), image)
    np.testing.assert_array_equal(astropy_image(identity), image)
    raw = handmade_fits(PLAIN_CARDS, image)
    assert plain_image(raw) is not None
    assert plain_image(raw[:2880 + 100]) is None  # pixels missing
    assert plain_image(raw.replace(b"END" + b" " * 77, b" " * 80)) is None  # no END card
    assert plain_image(raw.replace(b"NAXIS   =", b"NAXES   =")) is None  # not the mandatory cards
    with pytest.raises(AlertError, match="cutoutTemplate is not a FITS image, gzip-compressed or not"):
        decode_cutout({"stampData": gzip.compress(raw[:2880 + 100])}, "cutoutTemplate")


def selected(value, select):
    """The ``select``-ed part of a value as fastavro decodes it (what the projected reader must give)."""
    if select is None or value is None:
        return value
    if isinstance(value, list):
        return [selected(item, select) for item in value]
    return {name: selected(value[name], sub) for name, sub in select.items() if name in value}


def assert_same_values(got, expected):
    """Equal, in dicts and lists too, NaN equal to NaN."""
    if isinstance(got, dict):
        assert got.keys() == expected.keys()
        for name in got:
            assert_same_values(got[name], expected[name])
    elif isinstance(got, list):
        assert len(got) == len(expected)
        for item, expected_item in zip(got, expected, strict=True):
            assert_same_values(item, expected_item)
    else:
        assert got == expected or (got != got and expected != expected), (got, expected)


def test_the_projected_reader_gives_fastavro_s_values_on_every_shared_packet():
    reference = shared_records()
    fast = [record for path in SHARED_FILES for record in fast_records(path)]
    assert len(fast) == len(reference) == 38
    for got, (path, expected) in zip(fast, reference, strict=True):
        assert_same_values(got, selected(expected, SELECT))
        assert got["candidate"].keys() == SELECT["candidate"].keys() & expected["candidate"].keys(), path
        np.testing.assert_equal(alert_from_record(got).meta, alert_from_record(expected).meta)
        np.testing.assert_array_equal(alert_from_record(got).stamps, alert_from_record(expected).stamps)


def test_the_cutouts_of_every_shared_packet_are_located():
    for path, expected in shared_records():
        with path.open("rb") as handle:
            header = fastavro.schemaless_reader(handle, HEADER)
            data = fastavro.schemaless_reader(handle, BLOCK)["data"]
        located = READER.schemas(header["meta"]["avro.schema"].decode()).locate(data)
        assert located is not None, path
        assert {field: located[field] for field in CUTOUT_FIELDS} == {field: expected[field] for field in CUTOUT_FIELDS}


def test_each_writer_schema_is_parsed_once(monkeypatch):
    parsed = []
    parse_schema = fastavro.parse_schema
    monkeypatch.setattr(fastavro, "parse_schema", lambda schema: parsed.append(schema) or parse_schema(schema))
    reader = ProjectedReader(SELECT, CUTOUT_TAIL)
    for path in SHARED_FILES:
        with path.open("rb") as handle:
            assert len(list(reader.open(handle).records)) == 1
    writer_schemas = {json.dumps(schema) for schema, _ in map(packet, SHARED_FILES)}
    assert len(writer_schemas) == 4 and len(parsed) == 4 * len(writer_schemas)  # writer, reader, head and its reader
    assert [field["name"] for field in parsed[1]["fields"]] == ["schemavsn", "objectId", "candidate", *CUTOUT_FIELDS]
    head = [field["name"] for field in parsed[2]["fields"]]
    assert head == ["schemavsn", "publisher", "objectId", "candid", "candidate"]  # the writer's, up to the last used
    assert [field["name"] for field in parsed[3]["fields"]] == ["schemavsn", "objectId", "candidate"]


RICH_SCHEMA = {
    "type": "record", "name": "rich", "namespace": "test", "fields": [
        {"name": "flag", "type": "boolean"}, {"name": "big", "type": "long"}, {"name": "f", "type": "float"},
        {"name": "d", "type": ["null", "double"]}, {"name": "text", "type": "string"},
        {"name": "blob", "type": ["bytes", "null"]},
        {"name": "inner", "type": {"type": "record", "name": "inner", "fields": [
            {"name": "a", "type": ["null", "float"]}, {"name": "s", "type": ["null", "string"]}]}},
        {"name": "again", "type": ["null", "inner"]},
        {"name": "history", "type": ["null", {"type": "array", "items": {"type": "record", "name": "past", "fields": [
            {"name": "a", "type": ["null", "float"]}, {"name": "s", "type": ["null", "string"]}]}}]},
        {"name": "numbers", "type": {"type": "array", "items": "long"}},
    ]}


def rich_record(rng: np.random.Generator) -> dict:
    def inner():
        return {"a": None if rng.random() < 0.3 else float(np.float32(rng.normal())),
                "s": None if rng.random() < 0.3 else "é" * int(rng.integers(0, 200))}
    return {"flag": bool(rng.random() < 0.5), "big": int(rng.integers(-2**63, 2**63 - 1)),
            "f": float(np.float32(rng.normal())), "d": None if rng.random() < 0.3 else float(rng.normal()),
            "text": "x" * int(rng.integers(0, 200)),
            "blob": None if rng.random() < 0.3 else rng.bytes(int(rng.integers(0, 300))), "inner": inner(),
            "again": None if rng.random() < 0.5 else inner(),
            "history": None if rng.random() < 0.2 else [inner() for _ in range(int(rng.integers(0, 5)))],
            "numbers": [int(n) for n in rng.integers(-10**12, 10**12, int(rng.integers(0, 4)))]}


@pytest.mark.parametrize("select", [
    {field["name"]: None for field in RICH_SCHEMA["fields"]},
    {"text": None, "big": None, "history": None, "numbers": None},
    {"inner": {"s": None}, "again": None, "history": {"a": None}, "f": None},  # "again" is the projected "inner"
])
def test_a_projection_gives_the_selected_part_of_fastavro_s_values(tmp_path, select):
    rng = np.random.default_rng(5)
    records = [rich_record(rng) for _ in range(50)]
    path = write_avro(tmp_path / "rich.avro", RICH_SCHEMA, records)
    for got, record in zip(fast_records(path, select), records, strict=True):
        expected = selected(record, select)
        if "again" in select and "inner" in select:
            expected["again"] = selected(record["again"], select["inner"])
        assert_same_values(got, expected)


@pytest.mark.parametrize(("field", "value"), [
    ({"type": "enum", "name": "e", "symbols": ["A", "B"]}, "B"), ({"type": "map", "values": "int"}, {"k": 3}),
    ({"type": "fixed", "name": "x", "size": 3}, b"abc"),
    ({"type": "long", "logicalType": "timestamp-millis"}, datetime.datetime(2020, 1, 2, tzinfo=datetime.UTC)),
    ({"type": "record", "name": "node", "fields": [{"name": "next", "type": ["null", "node"]}]},
     {"next": {"next": None}}),
])
def test_a_selected_field_of_any_type_is_read_as_fastavro_reads_it(tmp_path, field, value):
    schema = {"type": "record", "name": "r", "fields": [{"name": "v", "type": field}, {"name": "n", "type": "int"}]}
    path = write_avro(tmp_path / "other.avro", schema, [{"v": value, "n": n} for n in range(3)])
    assert fast_records(path, {"v": None}) == [{"v": value}] * 3
    assert fast_records(path, {"n": None}) == [{"n": n} for n in range(3)]


def test_a_type_defined_in_a_field_left_out_gets_every_field_read(tmp_path):
    schema = {"type": "record", "name": "r", "fields": [
        {"name": "first", "type": {"type": "record", "name": "t", "fields": [{"name": "x", "type": "int"}]}},
        {"name": "second", "type": "t"}]}
    records = [{"first": {"x": 1}, "second": {"x": 2}}]
    path = write_avro(tmp_path / "named.avro", schema, records)
    assert ProjectedReader({"second": None}).schemas(json.dumps(schema)).reader is None
    assert fast_records(path, {"second": None}) == records


def test_every_codec_gives_the_same_records(tmp_path):
    schema, first = packet(NEGATIVE)
    _, second = packet(POSITIVE)
    expected = [selected(record, SELECT) for record in (first, second)]
    for codec in ("null", "deflate", "snappy", "bzip2", "xz"):
        records = fast_records(write_avro(tmp_path / f"two.{codec}.avro", schema, [first, second], codec=codec))
        for got, want in zip(records, expected, strict=True):
            assert_same_values(got, want)


def test_damaged_block_data_is_an_alert_error_or_fastavro_s_record(tmp_path):
    data = POSITIVE.read_bytes()
    with POSITIVE.open("rb") as handle:
        header = len(data) - sum(block.size for block in fastavro.block_reader(handle))
    rng = np.random.default_rng(3)
    compared = 0
    for trial in range(60):
        damaged = bytearray(data)
        for position in rng.integers(header, header + 8000, int(rng.integers(1, 4))):  # candidate and history
            damaged[position] = int(rng.integers(0, 256))
        path = tmp_path / f"damaged{trial}.avro"
        path.write_bytes(bytes(damaged[:len(data) - int(rng.integers(0, 2)) * int(rng.integers(1, 5000))]))
        results = list(read_alert_file(path))
        assert len(results) == 1 and isinstance(results[0][1], Alert | AlertError), results
        try:
            reference = alert_from_record(packet(path)[1])
        except Exception:  # fastavro or the conversion rejects it too
            continue
        assert isinstance(results[0][1], Alert), results
        np.testing.assert_equal(results[0][1].meta, reference.meta)
        np.testing.assert_array_equal(results[0][1].stamps, reference.stamps)
        compared += 1
    assert compared >= 10, f"only {compared} of 60 damaged files were read by fastavro: too few compared"  # 13


def lure(size: int) -> float:
    """A double whose 8 bytes, after its union index (0x02, a cutout's branch index in schema 4.x), read as the head
    of a cutout with an empty name and ``size`` bytes starting with gzip's signature."""
    encoded = 2 * size
    varint = bytes([encoded & 0x7F | 0x80, encoded >> 7 & 0x7F | 0x80, encoded >> 14])
    assert encoded >> 21 == 0 and encoded >> 14
    return struct.unpack("<d", b"\x00" + varint + b"\x1f\x8b\x08\x40")[0]


def test_a_false_fit_of_the_cutouts_is_read_again_by_walking(tmp_path):
    schema, record = packet(POSITIVE)  # schema 4.01: the history's doubles are unions [null, double]
    encode = functools.partial(fastavro.schemaless_writer, schema=fastavro.parse_schema(schema))
    record["prv_candidates"][-1]["ra"] = lure(2**13)
    buffer = io.BytesIO()
    encode(buffer, record=record)
    data = buffer.getvalue()
    signature = data.index(b"\x1f\x8b\x08\x40")  # the lure's, before every cutout
    template = data.rindex(record["cutoutTemplate"]["fileName"].encode()) - 2  # branch and name length before it
    record["prv_candidates"][-1]["ra"] = lure(template - signature)  # the lure's bytes end where the template starts
    path = write_avro(tmp_path / "lure.avro", schema, [record])
    buffer = io.BytesIO()
    encode(buffer, record=record)
    located = READER.schemas(json.dumps(schema)).locate(buffer.getvalue())
    assert located["cutoutTemplate"] == record["cutoutTemplate"]
    assert located["cutoutScience"]["stampData"] != record["cutoutScience"]["stampData"]  # a false fit
    alert = only_alert(path)
    expected = alert_from_record(record)
    np.testing.assert_array_equal(alert.stamps, expected.stamps)
    np.testing.assert_equal(alert.meta, expected.meta)


def test_a_block_without_the_sync_marker_is_damaged_data(tmp_path):
    data = POSITIVE.read_bytes()
    path = tmp_path / "nosync.avro"
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    ((index, error),) = list(read_alert_file(path))
    assert index == 0 and isinstance(error, AlertError) and "sync marker" in str(error)


# --- Streaming into the store -----------------------------------------------------------------------------------

def reference_store(path: Path, files: list[Path]) -> None:
    """The store as the first slice wrote it: every alert (of fastavro's records) in memory, then one write_shard."""
    rows = [(alert_from_record(record), str(file), 0) for file, record in shared_records() if file in files]
    columns = {name: np.array([{**alert.meta, "source_file": source, "record_index": index}[name]
                               for alert, source, index in rows], dtype=dtype) for name, dtype in COLUMNS.items()}
    write_shard(path, np.stack([alert.stamps for alert, _, _ in rows]), CHANNELS, columns, ATTRS)


def assert_same_store(path: Path, reference: Path) -> None:
    got, want = read_shard(path), read_shard(reference)
    assert got.channels == want.channels and got.attrs == want.attrs
    np.testing.assert_array_equal(got.stamps.view(np.uint32), want.stamps.view(np.uint32))
    assert list(got.meta) == list(want.meta)
    for name in want.meta:
        assert got.meta[name].dtype == want.meta[name].dtype, name
        np.testing.assert_array_equal(got.meta[name], want.meta[name], err_msg=name)
    got_stamps, want_stamps = zarr.open_array(path / "stamps"), zarr.open_array(reference / "stamps")
    assert dict(got_stamps.attrs) == dict(want_stamps.attrs) and got_stamps.fill_value == want_stamps.fill_value


@pytest.mark.parametrize(("block_rows", "meta_blocks"), [(256, 64), (5, 2), (4, 3), (38, 1)])
def test_blockwise_writing_gives_the_store_of_the_first_slice(tmp_path, monkeypatch, block_rows, meta_blocks):
    monkeypatch.setattr(ingest, "BlockWriter", functools.partial(BlockWriter, block_rows=block_rows,
                                                                 meta_blocks=meta_blocks))
    summary = ingest_alerts([ALERTS], tmp_path / "blocks.zarr")
    reference_store(tmp_path / "reference.zarr", SHARED_FILES)
    assert summary.ingested == 38
    assert_same_store(tmp_path / "blocks.zarr", tmp_path / "reference.zarr")
    assert zarr.open_array(tmp_path / "blocks.zarr" / "stamps").chunks[0] == block_rows


def store_files(path: Path) -> list[tuple[Path, bytes]]:
    return sorted((file.relative_to(path), file.read_bytes()) for file in path.rglob("*") if file.is_file())


def test_a_failure_mid_stream_leaves_the_output_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "out.zarr"
    ingest_alerts([NEGATIVE], out)
    before = store_files(out)

    def failing_reader(path):
        if path == SHARED_FILES[20]:
            raise OSError("disk on fire")
        return read_alert_file(path)

    monkeypatch.setattr(ingest, "read_alerts", failing_reader)
    monkeypatch.setattr(ingest, "BlockWriter", functools.partial(BlockWriter, block_rows=4, meta_blocks=2))
    for target in (out, tmp_path / "new.zarr"):  # 20 alerts, 5 blocks, already written when it fails
        with pytest.raises(OSError, match="disk on fire"):
            ingest_alerts(SHARED_FILES, target)
        assert [path.name for path in tmp_path.iterdir()] == ["out.zarr"]
    assert store_files(out) == before


def test_the_writer_holds_one_block_of_stamps_whatever_their_number(tmp_path):
    writer = BlockWriter(tmp_path / "s.zarr", CHANNELS, COLUMNS, (63, 63), "DN", block_rows=16, meta_blocks=4)
    alert = only_alert(POSITIVE)
    row = {**alert.meta, "source_file": "x", "record_index": 0}
    tracemalloc.start()
    for _ in range(200):
        writer.append(alert.stamps, row)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert writer.close(ATTRS) == 200 and len(read_shard(tmp_path / "s.zarr")) == 200
    assert peak < 40 * alert.stamps.nbytes  # a block of 16 and its compressed copy, not the 200 appended
