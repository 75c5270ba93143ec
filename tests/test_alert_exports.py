"""Brokers' Parquet and JSON exports of the shared ZTF alerts ingest exactly as the Avro packets do."""

import base64
import json
import logging
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bayesrb.alerts import exports
from bayesrb.alerts.ingest import expand_inputs, ingest_alerts
from bayesrb.bench.alerts import measure
from bayesrb.stamps.shard import read_shard

ALERTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ztf_alerts"
pytestmark = pytest.mark.skipif(not ALERTS.is_dir(), reason=f"the shared ZTF alert packets are not at {ALERTS}")
#: Columns that name where an alert came from, which differ between formats by design.
PROVENANCE = ("source_file", "record_index")


@pytest.fixture(scope="module")
def records() -> list[dict]:
    """Every shared alert, fully decoded, in ingest order."""
    out = []
    for path in expand_inputs([ALERTS]):
        with path.open("rb") as handle:
            out.extend(fastavro.reader(handle))
    return out


@pytest.fixture(scope="module")
def from_avro(tmp_path_factory):
    out = tmp_path_factory.mktemp("avro") / "alerts.zarr"
    ingest_alerts([ALERTS], out)
    return read_shard(out)


def as_json(record: dict) -> dict:
    """A record as JSON exports carry it: cutouts' bytes as base64 text."""
    return {key: ({**value, "stampData": base64.b64encode(value["stampData"]).decode()}
                  if key.startswith("cutout") else value) for key, value in record.items()}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(as_json(record)) + "\n" for record in records))
    return path


def assert_same_store(shard, reference) -> None:
    np.testing.assert_array_equal(shard.stamps[:], reference.stamps[:])
    for name, values in reference.meta.items():
        if name not in PROVENANCE:
            np.testing.assert_array_equal(shard.meta[name], values, err_msg=name)


def test_a_parquet_export_read_in_batches_gives_the_avro_store(tmp_path, records, from_avro, monkeypatch):
    monkeypatch.setattr(exports, "PARQUET_BATCH", 5)
    path = tmp_path / "night.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    summary = ingest_alerts([path], tmp_path / "out.zarr")
    assert (summary.ingested, summary.skipped_records) == (len(records), 0)
    shard = read_shard(tmp_path / "out.zarr")
    assert_same_store(shard, from_avro)
    assert shard.meta["record_index"].tolist() == list(range(len(records)))


@pytest.mark.parametrize("layout", ["lines", "array"])
def test_a_json_export_gives_the_avro_store(tmp_path, records, from_avro, layout):
    if layout == "lines":
        path = write_jsonl(tmp_path / "night.jsonl", records)
    else:
        path = tmp_path / "night.json"
        path.write_text(json.dumps([as_json(record) for record in records]))
    ingest_alerts([path], tmp_path / "out.zarr")
    assert_same_store(read_shard(tmp_path / "out.zarr"), from_avro)


def test_bad_json_lines_are_skipped_by_name_and_the_rest_ingested(tmp_path, records, caplog):
    path = write_jsonl(tmp_path / "night.jsonl", records[:3])
    lines = path.read_text().splitlines()
    no_cutout = json.loads(lines[2])
    del no_cutout["cutoutTemplate"]
    bad_base64 = json.loads(lines[0])
    bad_base64["cutoutScience"]["stampData"] = "not base64!"
    text_ra, list_fid = json.loads(lines[1]), json.loads(lines[1])
    text_ra["candidate"]["ra"], list_fid["candidate"]["fid"] = "x", [1]
    path.write_text("\n".join([lines[0], "{truncated", lines[1], json.dumps(no_cutout), json.dumps(bad_base64),
                               "[1, 2]", json.dumps(text_ra), json.dumps(list_fid)]) + "\n")
    with caplog.at_level(logging.WARNING, logger="bayesrb.alerts.ingest"):
        summary = ingest_alerts([path], tmp_path / "out.zarr")
    assert (summary.ingested, summary.skipped_records) == (2, 6)
    messages = [record.getMessage() for record in caplog.records]
    assert any(f"{path}: record 1: the line is not JSON" in message for message in messages)
    assert any(f"{path}: record 3: cutoutTemplate is missing" in message for message in messages)
    assert any(f"{path}: record 4: cutoutScience.stampData is not base64" in message for message in messages)
    assert any(f"{path}: record 5: the record is a JSON list, not an object" in message for message in messages)
    assert any(f"{path}: record 6: a field holds a value of the wrong type (could not convert string to float: 'x')"
               in message for message in messages)
    assert any(f"{path}: record 7: a field holds a value of the wrong type" in message for message in messages)


def test_files_that_are_not_alert_exports_are_skipped_by_name(tmp_path, records, caplog):
    good = write_jsonl(tmp_path / "good.jsonl", records[:1])
    no_cutouts = tmp_path / "no_cutouts.parquet"
    pq.write_table(pa.Table.from_pylist([{"objectId": "x", "candidate": {"candid": 1}}]), no_cutouts)
    not_parquet = tmp_path / "not.parquet"
    not_parquet.write_bytes(b"PAR1 this is not parquet")
    not_json = tmp_path / "broken.json"
    not_json.write_text('[{"objectId": ')
    with caplog.at_level(logging.WARNING, logger="bayesrb.alerts.ingest"):
        summary = ingest_alerts([good, no_cutouts, not_parquet, not_json], tmp_path / "out.zarr")
    assert (summary.ingested, summary.skipped_files) == (1, 3)
    text = caplog.text
    assert f"{no_cutouts}: is a Parquet file but not of ZTF alerts: it lacks column(s) cutoutScience" in text
    assert f"{not_parquet}: is not a readable Parquet file" in text
    assert f"{not_json}: is not valid JSON" in text


def test_directories_are_searched_for_every_format(tmp_path, records):
    (tmp_path / "a.avro").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.PARQUET").write_bytes(b"")
    write_jsonl(tmp_path / "sub" / "c.jsonl", records[:1])
    (tmp_path / "notes.txt").write_text("")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.avro", "b.PARQUET", "c.jsonl"]


@pytest.mark.parametrize(("options", "files"), [({}, 1), ({"file_per_alert": True}, 50), ({"parquet": True}, 1)])
def test_the_ingest_benchmark_prints_its_figures_for_each_layout(options, files):
    line = measure([str(ALERTS)], 50, **options)
    assert line.startswith(f"ingested 50 alerts from {files} file(s)") and "alerts/s per core; peak RSS" in line
