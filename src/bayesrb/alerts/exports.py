"""Alert files in the formats they circulate in: ZTF's and Rubin's Avro, brokers' Parquet and JSON exports of ZTF's.

:func:`read_alerts` picks the reader by the file's name:

``*.parquet``
    A table with one alert per row and the packet's top-level fields as columns: ``objectId``, ``candidate`` (a
    struct of the candidate's fields), ``cutoutScience``, ``cutoutTemplate``, ``cutoutDifference`` (structs
    ``{fileName, stampData}``, ``stampData`` binary) and optionally ``schemavsn``, as brokers export ZTF alerts
    (other columns, such as ``prv_candidates``, are not read). Rows are read in batches of :data:`PARQUET_BATCH`.
``*.json``, ``*.jsonl``, ``*.ndjson``
    JSON Lines (one alert object per line) or one JSON array of alert objects, with the same fields; JSON has no
    bytes, so each ``stampData`` is the base64 text of the cutout's bytes. A line that is not JSON is one bad
    record; the other lines are read.
anything else
    An Avro object-container file of ZTF's or Rubin's alerts, recognised by its schema
    (:func:`bayesrb.alerts.packets.read_avro_alerts` with :data:`SURVEYS`).

Every reader yields ``(record index, Alert or AlertError)``. ZTF records of every format are converted by
:func:`bayesrb.alerts.ztf.alert_from_record`, so every format gives the same stamps and metadata for the same alert.
"""

import base64
import binascii
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bayesrb.alerts.packets import Alert, AlertError, Survey, read_avro_alerts
from bayesrb.alerts.rubin import RUBIN
from bayesrb.alerts.ztf import ALERT_FIELDS, CUTOUT_FIELDS, ZTF, alert_from_record
from bayesrb.errors import BadInputError

__all__ = ["ALERT_SUFFIXES", "JSON_SUFFIXES", "PARQUET_BATCH", "SURVEYS", "read_alerts"]

#: The surveys whose Avro alert files are read, by name.
SURVEYS: dict[str, Survey] = {survey.name: survey for survey in (ZTF, RUBIN)}

#: File name endings of JSON exports.
JSON_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson")
#: File name endings of alert files, searched for in directories.
ALERT_SUFFIXES: tuple[str, ...] = (".avro", ".parquet", *JSON_SUFFIXES)
#: Rows of a Parquet export decoded at once.
PARQUET_BATCH: int = 256
_OPTIONAL_COLUMNS = ("schemavsn",)


def read_alerts(path: str | Path) -> Iterator[tuple[int, Alert | AlertError]]:
    """Stream the alerts of one file of any supported format (see the module docstring).

    Parameters
    ----------
    path : str or pathlib.Path

    Yields
    ------
    index : int
        The record's 0-based index in the file (row or line of an export).
    alert : Alert or AlertError

    Raises
    ------
    bayesrb.errors.BadInputError
        When iteration starts, if the file cannot be read as its format, or lacks the fields of alerts.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_alerts(path)
    if suffix in JSON_SUFFIXES:
        return _json_alerts(path)
    return read_avro_alerts(path, tuple(SURVEYS.values()))


def _parquet_alerts(path: Path) -> Iterator[tuple[int, Alert | AlertError]]:
    """Yield the alerts of a Parquet export, a batch of rows at a time."""
    try:
        table = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise BadInputError(path, f"is not a readable Parquet file ({error})") from error
    names = set(table.schema_arrow.names)
    missing = [name for name in ALERT_FIELDS if name not in names]
    if missing:
        raise BadInputError(path, f"is a Parquet file but not of ZTF alerts: it lacks column(s) {', '.join(missing)}")
    columns = [*ALERT_FIELDS, *(name for name in _OPTIONAL_COLUMNS if name in names)]
    index = 0
    for batch in table.iter_batches(batch_size=PARQUET_BATCH, columns=columns):
        for record in batch.to_pylist():
            yield index, _converted(record)
            index += 1


def _json_alerts(path: Path) -> Iterator[tuple[int, Alert | AlertError]]:
    """Yield the alerts of a JSON Lines file or of a file holding one JSON array of alerts."""
    try:
        with path.open("rb") as handle:
            first = handle.read(1024).lstrip()[:1]
            handle.seek(0)
            if first == b"[":
                yield from _json_array(path, handle)
                return
            for index, line in enumerate(handle):
                yield index, _json_record(line)
    except OSError as error:
        raise BadInputError(path, f"cannot be read ({error.strerror or error})") from error


def _json_array(path: Path, handle) -> Iterator[tuple[int, Alert | AlertError]]:
    """Yield the alerts of a JSON array (the whole file is parsed at once)."""
    try:
        records = json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInputError(path, f"is not valid JSON ({error})") from error
    for index, record in enumerate(records):
        yield index, _from_json(record)


def _json_record(line: bytes) -> Alert | AlertError:
    """One line of JSON Lines as an alert, or what is wrong with it."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        return AlertError(f"the line is not JSON ({error})")
    return _from_json(record)


def _from_json(record) -> Alert | AlertError:
    """An alert from a decoded JSON object, its cutouts' base64 ``stampData`` decoded to bytes first."""
    if not isinstance(record, dict):
        return AlertError(f"the record is a JSON {type(record).__name__}, not an object")
    for field in CUTOUT_FIELDS:
        cutout = record.get(field)
        if isinstance(cutout, dict) and isinstance(cutout.get("stampData"), str):
            try:
                record[field] = {**cutout, "stampData": base64.b64decode(cutout["stampData"], validate=True)}
            except binascii.Error as error:
                return AlertError(f"{field}.stampData is not base64 ({error})")
    return _converted(record)


def _converted(record: dict) -> Alert | AlertError:
    """The alert of an export's record, or the AlertError that says why it is not one.

    Unlike Avro, whose schema types every field, JSON and Parquet can hold text or lists where the packet has
    numbers: the conversion's TypeError or ValueError is then the record's error too.
    """
    try:
        return alert_from_record(record)
    except AlertError as error:
        return error
    except (TypeError, ValueError) as error:
        return AlertError(f"a field holds a value of the wrong type ({error})")
