"""Rubin alert packets: Avro files of Rubin's alert schema (7.x and 11.x layouts) to a 29x29 stamp store, and scored.

No Rubin packet is among the development data, so the packets here are made as Rubin's pipeline makes them
(:mod:`bayesrb.bench.rubin`): the schema's field names and types as ``lsst/alert_packet`` defines them (a subset of
the fields), and cutouts written by astropy's ``CCDData`` (image, variance and PSF HDUs, a WCS whose reference pixel
is the source).
"""

import gzip
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, RUN_OPTIONS, TINY
from test_train import TINY_CONFIG, write_store

from bayesrb import cli
from bayesrb.alerts.ingest import ingest_alerts
from bayesrb.alerts.packets import CHANNELS, AlertError, read_avro_alerts
from bayesrb.alerts.rubin import RUBIN, STAMP_SIZE, alert_from_record, centred_stamp
from bayesrb.bench.rubin import measure, optional, packet, rubin_schema, write_packets
from bayesrb.errors import BadInputError
from bayesrb.figures.names import ALERT_GALLERIES
from bayesrb.model.data import check_compatible
from bayesrb.model.train import train
from bayesrb.pipeline import paths
from bayesrb.stamps.extract import FLAG_EDGE, FLAG_NAN
from bayesrb.stamps.shard import read_shard

ZTF_PACKET = Path(__file__).resolve().parents[2] / "shared" / "data" / "ztf_alerts" / "20231012" / \
    "2475433850015010009.avro"
HALF = STAMP_SIZE // 2


def read_one(path: Path):
    ((index, alert),) = list(read_avro_alerts(path, [RUBIN]))
    assert index == 0
    return alert


def marked_images(source_rc: tuple[float, float], shape=(30, 30)) -> list[np.ndarray]:
    """Science, template and difference images that differ, each with its channel number at the source's pixel."""
    rows, cols = np.indices(shape)
    pixel = tuple(int(np.floor(p + 0.5)) for p in source_rc)
    images = []
    for channel in range(3):
        image = (rows * 1000.0 + cols + channel * 1e5).astype(np.float32)
        image[pixel] = -channel - 1.0
        images.append(image)
    return images


@pytest.mark.parametrize("version", ["11_1", "7_4"])
@pytest.mark.parametrize(("shape", "source_rc"), [((30, 30), (14.6, 15.2)), ((30, 30), (14.4, 14.4)),
                                                  ((45, 45), (30.2, 20.7))])
def test_stamps_are_the_cutouts_centred_on_the_source_pixel(tmp_path, version, shape, source_rc):
    images = marked_images(source_rc, shape)
    alert = read_one(write_packets(tmp_path / "a.avro", [packet(7, images, source_rc, version)], version))
    row, col = (int(np.floor(p + 0.5)) for p in source_rc)
    assert alert.stamps.shape == (STAMP_SIZE, STAMP_SIZE, 3) and alert.stamps.dtype == np.float32
    for channel, image in enumerate(images):
        assert alert.stamps[HALF, HALF, channel] == -channel - 1.0
        np.testing.assert_array_equal(alert.stamps[..., channel],
                                      image[row - HALF:row + HALF + 1, col - HALF:col + HALF + 1])
    assert alert.stamp_flags == 0 and alert.survey == "Rubin" and alert.candid == 7


def test_metadata_maps_the_dia_source(tmp_path):
    alert = read_one(write_packets(tmp_path / "a.avro", [packet(7)]))
    meta = alert.meta
    assert meta["candidate_id"] == "7" and meta["visit"] == "rubin-2025120300123-42"
    assert (meta["x"], meta["y"], meta["ra"], meta["dec"]) == (1000.5, 2000.25, 150.0, 2.0)
    assert meta["mag"] == pytest.approx(31.4 - 2.5 * np.log10(5000.0))
    assert meta["mag_err"] == pytest.approx(2.5 / np.log(10) * 400.0 / 5000.0)
    assert meta["sign"] == 1 and meta["snr"] == 12.5 and np.isnan(meta["fwhm"])
    assert (meta["diaObjectId"], meta["ssObjectId"], meta["visit_id"], meta["detector"]) == (9_000_007, 0,
                                                                                             2025120300123, 42)
    assert meta["band"] == "r" and meta["midpointMjdTai"] == 61012.25 and meta["psfFlux"] == 5000.0
    assert meta["reliability"] == pytest.approx(0.93) and meta["extendedness"] == pytest.approx(0.1)
    assert np.isnan(meta["apFlux"]) and meta["label"] == -1 and meta["kind"] == ""


@pytest.mark.parametrize("version", ["11_1", "7_4"])
@pytest.mark.parametrize(("fields", "sign"), [({"psfFlux": -3000.0}, -1), ({"psfFlux": None, "isNegative": True}, -1),
                                              ({"psfFlux": None, "isNegative": False}, 1),
                                              ({"psfFlux": 3000.0, "isNegative": True}, 1)])
def test_a_negative_source_keeps_its_difference_as_it_comes(tmp_path, version, fields, sign):
    images = marked_images((14.6, 15.2))
    alert = read_one(write_packets(tmp_path / "a.avro", [packet(7, images, version=version, **fields)], version))
    assert alert.meta["sign"] == sign
    assert alert.stamps[HALF, HALF, 2] == -3.0  # the difference channel is science - template either way
    if fields["psfFlux"] == -3000.0:
        assert alert.meta["mag"] == pytest.approx(31.4 - 2.5 * np.log10(3000.0))


def test_a_cutout_clipped_at_the_detector_edge_is_padded_and_flagged(tmp_path):
    source_rc = (4.2, 15.0)  # 18 rows: the detector's edge cut the cutout 4 rows before the source's
    images = marked_images(source_rc, (18, 30))
    alert = read_one(write_packets(tmp_path / "a.avro", [packet(7, images, source_rc)]))
    assert alert.stamp_flags == FLAG_EDGE and alert.stamps[HALF, HALF, 0] == -1.0
    first = HALF - 4  # the stamp's row of the cutout's first row
    np.testing.assert_array_equal(alert.stamps[:first], 0.0)
    np.testing.assert_array_equal(alert.stamps[first + 18:], 0.0)
    np.testing.assert_array_equal(alert.stamps[first:first + 18, :, 1], images[1][:, 1:30])


def test_nan_pixels_are_zeroed_and_flagged(tmp_path):
    images = marked_images((14.6, 15.2))
    images[1][:3, :] = np.nan
    alert = read_one(write_packets(tmp_path / "a.avro", [packet(7, images)]))
    assert alert.stamp_flags == FLAG_NAN and np.isfinite(alert.stamps).all()
    assert (alert.stamps[:2, :, 1] == 0).all() and (alert.stamps[2:, :, 1] != 0).all()


def test_centred_stamp_refuses_a_source_off_its_cutout():
    with pytest.raises(AlertError, match="not on its"):
        centred_stamp(np.zeros((30, 30), np.float32), (31.0, 4.0), STAMP_SIZE)


def test_a_gzip_compressed_cutout_reads_as_the_plain_one(tmp_path):
    record = packet(7)
    plain = read_one(write_packets(tmp_path / "plain.avro", [record]))
    record["cutoutScience"] = gzip.compress(record["cutoutScience"])
    squeezed = read_one(write_packets(tmp_path / "gz.avro", [record]))
    np.testing.assert_array_equal(plain.stamps, squeezed.stamps)


@pytest.mark.parametrize("version", ["11_1", "7_4"])
def test_the_cutouts_are_located_without_reading_the_fields_before_them(version):
    schema = rubin_schema(version)
    schemas = RUBIN.reader.schemas(json.dumps(schema))
    record = packet(7, version=version, history=3)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    data = buffer.getvalue()
    cutouts = ("cutoutDifference", "cutoutScience", "cutoutTemplate")
    tail_start = len(data) - sum(len(record[name]) + 4 for name in cutouts)  # branch and 3-byte length each
    damaged = data[:tail_start - 30] + b"\xff" * 20 + data[tail_start - 10:]  # the history and object, not read
    located = schemas.locate(damaged)
    assert located is not None and {name: located[name] for name in cutouts} == {name: record[name] for name in cutouts}
    assert located["diaSource"]["diaSourceId"] == 7


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_multi_record_files_of_every_codec_read_as_fastavro_decodes_them(tmp_path, codec):
    records = [packet(k, history=k % 3) for k in range(1, 6)]
    path = write_packets(tmp_path / "a.avro", records, codec=codec)
    alerts = [alert for _, alert in read_avro_alerts(path, [RUBIN])]
    with path.open("rb") as handle:
        expected = [alert_from_record(record) for record in fastavro.reader(handle)]
    assert [a.candid for a in alerts] == [1, 2, 3, 4, 5]
    for alert, reference in zip(alerts, expected, strict=True):
        np.testing.assert_array_equal(alert.stamps, reference.stamps)
        np.testing.assert_equal(alert.meta, reference.meta)  # NaN equals NaN here, and only NaN


def test_bad_records_are_one_warning_each_and_the_rest_is_ingested(tmp_path, caplog):
    no_cutout = packet(2)
    no_cutout["cutoutTemplate"] = None
    not_fits = packet(3)
    not_fits["cutoutDifference"] = b"SIMPLE? no, this is not a FITS file at all" * 3
    no_time = packet(4)
    no_time["diaSource"]["midpointMjdTai"] = None
    schema = rubin_schema("11_1")
    schema["fields"][1]["type"]["fields"][5]["type"] = optional("double")  # a null time can be written
    path = tmp_path / "mixed.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), [packet(1), no_cutout, not_fits, no_time, packet(5)])
    truncated = write_packets(tmp_path / "truncated.avro", [packet(k) for k in range(10, 14)])
    truncated.write_bytes(truncated.read_bytes()[:-5000])
    with caplog.at_level(logging.WARNING, logger="bayesrb.alerts.ingest"):
        summary = ingest_alerts([path, truncated], tmp_path / "store.zarr")
    assert summary.ingested == 5 and summary.skipped_records == 4 and summary.survey == "Rubin"
    text = caplog.text
    assert f"{path}: record 1: cutoutTemplate is missing" in text
    assert f"{path}: record 2: cutoutDifference is not a FITS image" in text
    assert f"{path}: record 3: the diaSource lacks midpointMjdTai" in text
    assert f"{truncated}: record 3: truncated or damaged Avro data" in text
    assert list(read_shard(tmp_path / "store.zarr").meta["candidate_id"]) == ["1", "5", "10", "11", "12"]


def test_the_store_says_which_survey_it_holds(tmp_path):
    rubin = write_packets(tmp_path / "rubin.avro", [packet(k) for k in range(1, 4)])
    summary = ingest_alerts([rubin], tmp_path / "store.zarr")
    shard = read_shard(tmp_path / "store.zarr")
    assert summary.ingested == 3 and shard.stamps.shape == (3, STAMP_SIZE, STAMP_SIZE, 3)
    assert shard.attrs["survey"] == "Rubin" and shard.attrs["units"] == "nJy"
    assert shard.attrs["pixel_scale_arcsec"] == 0.2 and shard.attrs["stamp_size"] == STAMP_SIZE
    assert list(shard.channels) == list(CHANNELS) and list(shard.meta["source_file"]) == [str(rubin)] * 3
    alerts = [alert for _, alert in read_avro_alerts(rubin, [RUBIN])]
    np.testing.assert_array_equal(shard.stamps, np.stack([alert.stamps for alert in alerts]))
    with pytest.raises(BadInputError, match="the model expects 63x63 stamps but the store has 29x29"):
        check_compatible(tmp_path / "store.zarr", list(CHANNELS), 63)


@pytest.mark.skipif(not ZTF_PACKET.exists(), reason="the shared ZTF alert packets are not checked out")
def test_the_store_holds_one_survey_and_skips_the_files_of_another(tmp_path, caplog):
    rubin = write_packets(tmp_path / "rubin.avro", [packet(k) for k in range(1, 4)])
    with caplog.at_level(logging.WARNING, logger="bayesrb.alerts.ingest"):
        summary = ingest_alerts([rubin, ZTF_PACKET], tmp_path / "store.zarr")
    assert summary.ingested == 3 and summary.skipped_files == 1 and summary.survey == "Rubin"
    assert f"{ZTF_PACKET}: holds ZTF alerts but the store Rubin alerts" in caplog.text
    assert list(read_shard(tmp_path / "store.zarr").meta["source_file"]) == [str(rubin)] * 3


@pytest.mark.skipif(not ZTF_PACKET.exists(), reason="the shared ZTF alert packets are not checked out")
def test_a_store_of_the_survey_asked_for_skips_the_others(tmp_path, caplog):
    rubin = write_packets(tmp_path / "rubin.avro", [packet(1)])
    with caplog.at_level(logging.WARNING, logger="bayesrb.alerts.ingest"):
        summary = ingest_alerts([rubin, ZTF_PACKET], tmp_path / "store.zarr", survey="ZTF")
    assert (summary.survey, summary.ingested, summary.skipped_files) == ("ZTF", 1, 1)
    assert f"{rubin}: holds Rubin alerts but the store ZTF alerts" in caplog.text
    with pytest.raises(BadInputError, match="'LSST' is not one of ZTF, Rubin"):
        ingest_alerts([rubin], tmp_path / "other.zarr", survey="LSST")


def blob_images(real: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """30x30 noise images; a real alert's have a Gaussian source at the cutout's centre in every image."""
    rows, cols = np.indices((30, 30)) - np.array([14.6, 15.2])[:, None, None]
    blob = 1.5 * np.exp(-(rows**2 + cols**2) / (2 * 1.5**2))
    return [rng.normal(size=(30, 30)) + 100.0 + real * blob for _ in CHANNELS]


@pytest.fixture(scope="module")
def rubin_model(tmp_path_factory) -> Path:
    """The training directory of a small model of 29x29 science/template/difference stamps of blobs and noise."""
    tmp = tmp_path_factory.mktemp("rubin-model")
    rng = np.random.default_rng(3)
    labels = (rng.uniform(size=384) < 0.5).astype(np.int8)
    window = slice(15 - HALF, 15 + HALF + 1)
    training = np.stack([np.stack(blob_images(bool(label), rng), -1)[window, window] for label in labels])
    store = write_store(tmp / "train.zarr", training.astype(np.float32), labels, channels=CHANNELS,
                        split_ranges={"train": [0, 288], "val": [288, 384]})
    train(store, tmp / "training", TINY_CONFIG | {"epochs": 3})
    return tmp / "training"


def night_of_packets(path: Path, n: int = 40) -> tuple[Path, np.ndarray]:
    """``n`` packets, every other one with a source; Rubin's reliability agrees with which."""
    rng = np.random.default_rng(4)
    real = np.arange(n) % 2 == 1
    records = [packet(k + 1, blob_images(bool(is_real), rng), reliability=0.95 if is_real else 0.05)
               for k, is_real in enumerate(real)]
    return write_packets(path, records), real


def test_rubin_alerts_are_ingested_and_scored_end_to_end(rubin_model, tmp_path, capsys):
    alerts, real = night_of_packets(tmp_path / "night.avro")
    assert cli.main(["ingest-alerts", str(alerts), "--out", str(tmp_path / "night.zarr")]) == 0
    assert capsys.readouterr().out.startswith("ingested 40 Rubin alerts from 1 file(s)")
    assert cli.main(["score", "--model", str(rubin_model), "--stamps", str(tmp_path / "night.zarr"),
                     "--out", str(tmp_path / "scores.parquet"), "--samples", "8"]) == 0
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert list(scores["candidate_id"]) == [str(k + 1) for k in range(40)]
    assert scores["score_mean"][real].mean() > scores["score_mean"][~real].mean() + 0.2


def test_the_workflow_scores_rubin_alerts_with_a_model_of_rubin_stamps(rubin_model, tmp_path):
    (tmp_path / "packets").mkdir()
    alerts, real = night_of_packets(tmp_path / "packets" / "night.avro")
    results = tmp_path / "results"
    config = {"results": str(results), "stamps": {"size": STAMP_SIZE, "channels": list(CHANNELS)},
              "experiments": {"rubin": {"trained": str(rubin_model)}}, "context": {"enabled": False},
              "evaluation": {"comparisons": {}},
              "alerts": {"files": [str(alerts.parent)], "survey": "Rubin", "experiment": "rubin", "n_bootstrap": 50}}
    (tmp_path / "rubin.yaml").write_text(yaml.safe_dump(config))
    targets = [paths.alert_comparison(str(results), "json"),
               *(paths.alert_gallery(str(results), order) for order in ALERT_GALLERIES)]
    run = subprocess.run([sys.executable, "-m", "snakemake", *RUN_OPTIONS, "--configfile", str(TINY),
                          str(tmp_path / "rubin.yaml"), "--", *targets], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    comparison = json.loads(Path(targets[0]).read_text())
    assert comparison["survey"] == "Rubin" and comparison["n_alerts"] == 40
    assert comparison["auroc"]["score"] == "reliability" and comparison["auroc"]["value"] > 0.9
    scores = pd.read_parquet(paths.alert_scores(str(results)))
    assert (scores["reliability"] > 0.5).tolist() == real.tolist() and set(scores["band"]) == {"r"}
    for target in targets[1:]:
        assert Path(target).stat().st_size > 10_000


def test_the_rubin_benchmark_prints_its_figures():
    line = measure(20, history=5, extra_fields=10, repeats=1)
    assert line.startswith("20 Rubin-like packets (5 earlier sources, 32 diaSource fields")
    assert "alerts/s per core with the cutouts located" in line and "ingested" in line
