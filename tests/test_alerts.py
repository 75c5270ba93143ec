"""Ingesting real ZTF alert packets (../shared/data/ztf_alerts, see its PROVENANCE.md) into a stamp store."""

import gzip
import io
import logging
import shutil
import warnings
from pathlib import Path

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from bayesrb import cli
from bayesrb.alerts.ingest import ingest_alerts
from bayesrb.alerts.ztf import CHANNELS, Alert, read_alert_file
from bayesrb.errors import BadInputError
from bayesrb.model.data import check_compatible
from bayesrb.stamps.extract import FLAG_EDGE, FLAG_NAN
from bayesrb.stamps.shard import read_shard

ALERTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ztf_alerts"
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
    np.testing.assert_array_equal(shard.stamps[row, ..., 2], cutout(record, "cutoutDifference"))


def test_difference_is_positive_at_the_candidate_for_both_signs(store):
    _, shard, _ = store
    centre = np.median(shard.stamps[:, 29:34, 29:34, 2], axis=(1, 2))
    signs = shard.meta["sign"]
    assert np.sum(signs == -1) == 5 and np.sum(signs == 1) == 33
    assert np.all(centre[signs == -1] > 5) and np.all(centre[signs == 1] > 3)
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
                         ("not_fits", "record 0: cutoutTemplate is not a gzip-compressed FITS image"),
                         ("truncated", "record 0: truncated or damaged Avro data"),
                         ("non_alert", "is an Avro file but not of ZTF alerts"),
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
    assert capsys.readouterr().out.startswith(f"ingested 13 alerts from 13 file(s) -> {out}; skipped 0")
    assert len(read_shard(out)) == 13
    (tmp_path / "text.avro").write_text("no")
    assert cli.main(["ingest-alerts", str(tmp_path / "text.avro"), "--out", str(tmp_path / "none.zarr")]) == 1
    assert "no alert could be ingested" in capsys.readouterr().err and not (tmp_path / "none.zarr").exists()
