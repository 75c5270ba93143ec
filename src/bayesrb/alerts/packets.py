"""Alert packets of any survey: the alert, the survey's description, and reading a survey's Avro alert files.

A survey's packets (:mod:`bayesrb.alerts.ztf`, :mod:`bayesrb.alerts.rubin`) are Avro records of its own schema,
converted to an :class:`Alert`: stamps of the store's three channels and one metadata row. :class:`Survey` says
what a store of its alerts holds (stamp size, extra columns, attributes), how to recognise its files (the
top-level fields of its schema) and how to convert a record. :func:`read_avro_alerts` streams the records of one
Avro file of any of the surveys it is given, recognised by the file's schema.
"""

import functools
import json
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from isal import igzip, isal_zlib

from bayesrb.alerts.fitsimage import read_image
from bayesrb.alerts.projection import AvroFile, ProjectedReader, read_header
from bayesrb.errors import BadInputError
from bayesrb.stamps.extract import FLAG_NAN

__all__ = ["CHANNELS", "GZIP_MAGIC", "Alert", "AlertError", "Survey", "cutout_fits", "read_avro_alerts",
           "required_fields", "stack_stamps"]

#: Channel names of every alert store's stamps, in the order of their last axis.
CHANNELS: tuple[str, ...] = ("science", "template", "difference")
#: How a gzip stream starts.
GZIP_MAGIC = b"\x1f\x8b"


class AlertError(ValueError):
    """A malformed alert record or cutout; the message says what is wrong (the reader adds file and record)."""


@dataclass(frozen=True)
class Alert:
    """One alert as stamps and metadata.

    Attributes
    ----------
    candid : int
        The survey's id of the detection (ZTF's ``candid``, Rubin's ``diaSourceId``): ingest keeps each once.
    stamps : numpy.ndarray
        Native ``float32`` ``(S, S, 3)`` indexed ``[row, col, channel]`` (channels :data:`CHANNELS`, ``S`` the
        survey's :attr:`Survey.stamp_size`), candidate at ``[S // 2, S // 2]``, finite.
    stamp_flags : int
        Bitmask of :data:`~bayesrb.stamps.extract.FLAG_EDGE` and :data:`~bayesrb.stamps.extract.FLAG_NAN`.
    meta : dict
        One value per shard meta column (:data:`bayesrb.stamps.shard.SHARD_META_COLUMNS`) and per column of the
        survey's :attr:`Survey.columns` except ``source_file`` and ``record_index``.
    survey : str
        The :attr:`Survey.name` of the packet's survey.
    """

    candid: int
    stamps: np.ndarray
    stamp_flags: int
    meta: dict[str, Any]
    survey: str


@dataclass(frozen=True)
class Survey:
    """What reading one survey's alert packets needs, and what a store of its alerts holds.

    Attributes
    ----------
    name : str
        The survey's name (``ZTF``, ``Rubin``): the store's ``survey`` attribute.
    alert_fields : tuple of str
        Top-level fields a schema must have to be of this survey's alerts.
    reader : bayesrb.alerts.projection.ProjectedReader
        Reads the fields :attr:`convert` needs.
    convert : callable
        ``convert(record) -> Alert``; raises :class:`AlertError` for a malformed record.
    stamp_size : int
        Side of the stamps, pixels (odd).
    columns : dict of str to dtype
        The store's meta columns beyond the shard's required ones (``str``: text), ``source_file`` and
        ``record_index`` among them.
    attrs : dict
        The store's attributes: ``units``, ``pixel_scale_arcsec``, ``difference_sign``, ...
    """

    name: str
    alert_fields: tuple[str, ...]
    reader: ProjectedReader
    convert: Callable[[dict], Alert]
    stamp_size: int
    columns: Mapping[str, Any]
    attrs: Mapping[str, Any]


def required_fields(record: dict, name: str, required: Sequence[str]) -> dict:
    """The record's field ``name``, a record that must hold every one of ``required`` (not null).

    Raises
    ------
    AlertError
        If it is missing, not a record, or lacks one of ``required``.
    """
    inner = record.get(name)
    if not isinstance(inner, dict):
        raise AlertError(f"the record has no {name}")
    missing = [field for field in required if inner.get(field) is None]
    if missing:
        raise AlertError(f"the {name} lacks {', '.join(missing)}")
    return inner


def cutout_fits(data: bytes | None, field: str) -> tuple[np.ndarray | None, bytes]:
    """Decode a cutout's FITS file, gzip-compressed or not (gunzipped by isal, Intel's ISA-L).

    Parameters
    ----------
    data : bytes or None
        The cutout's bytes.
    field : str
        The cutout's field name, for the messages.

    Returns
    -------
    image : numpy.ndarray or None
        Native ``float32`` (:func:`bayesrb.alerts.fitsimage.read_image`); None if no HDU holds an image.
    raw : bytes
        The FITS file, uncompressed.

    Raises
    ------
    AlertError
        If the cutout is missing or empty, or is not a FITS file.
    """
    if not data:
        raise AlertError(f"{field} is missing")
    try:
        raw = igzip.decompress(data) if data[:2] == GZIP_MAGIC else data
        return read_image(raw), raw
    except (isal_zlib.error, OSError, EOFError, ValueError, TypeError, IndexError) as error:
        raise AlertError(f"{field} is not a FITS image, gzip-compressed or not ({error})") from error


def stack_stamps(planes: Sequence[tuple[np.ndarray, int]], blank_limit: float = np.inf) -> tuple[np.ndarray, int]:
    """Stack one stamp per channel and zero the pixels without data.

    Parameters
    ----------
    planes : sequence of (numpy.ndarray, int)
        Per channel, the stamp and its flags.
    blank_limit : float, optional
        Pixels of at least this magnitude are blanks (a survey's fill value), not data.

    Returns
    -------
    stamps : numpy.ndarray
        ``(S, S, channels)``, NaN, inf and blank pixels set to 0.
    flags : int
        The planes' flags, and :data:`~bayesrb.stamps.extract.FLAG_NAN` if a pixel was set to 0.
    """
    stamps = np.stack([plane for plane, _ in planes], axis=-1)
    flags = functools.reduce(operator.or_, (flag for _, flag in planes), 0)
    bad = ~np.isfinite(stamps) | (np.abs(stamps) >= blank_limit)
    if bad.any():
        stamps[bad] = 0.0
        flags |= FLAG_NAN
    return stamps, flags


def read_avro_alerts(path: str | Path, surveys: Sequence[Survey]) -> Iterator[tuple[int, Alert | AlertError]]:
    """Stream the alerts of one Avro file, one record at a time, read as the survey its schema is of.

    Parameters
    ----------
    path : str or pathlib.Path
        An alert file (Avro object container, any number of records).
    surveys : sequence of Survey
        The surveys whose files may be read: the first whose :attr:`Survey.alert_fields` the file's schema has reads
        it.

    Yields
    ------
    index : int
        The record's 0-based index in the file.
    alert : Alert or AlertError
        The alert, or what is wrong with the record. A truncated or damaged file yields one error at the first
        record that cannot be read and stops.

    Raises
    ------
    bayesrb.errors.BadInputError
        When iteration starts, if the file cannot be opened, is not an Avro object-container file, or its schema is
        not that of any survey's alerts.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise BadInputError(path, f"cannot be read ({error.strerror or error})") from error
    with handle:
        survey, avro_file = _open(handle, path, surveys)
        yield from _records(avro_file, survey.convert)


def _open(handle: BinaryIO, path: Path, surveys: Sequence[Survey]) -> tuple[Survey, AvroFile]:
    """The survey of the Avro file of ``handle`` and the file opened by its reader."""
    try:
        header = read_header(handle)
        fields = _top_level_fields(header.schema_json)
    except Exception as error:  # ValueError, EOFError, KeyError, or fastavro's errors on a bad header
        raise BadInputError(path, f"is not an Avro object-container file ({error})") from error
    survey = next((survey for survey in surveys if set(survey.alert_fields) <= fields), None)
    if survey is None:
        expected = " or ".join(f"{s.name} ({', '.join(s.alert_fields)})" for s in surveys)
        raise BadInputError(path, f"is an Avro file but not of alerts: its schema lacks the fields of {expected}")
    try:
        return survey, survey.reader.open(handle, header)
    except Exception as error:  # fastavro's errors on a schema it cannot parse
        raise BadInputError(path, f"has an Avro schema that cannot be read ({error})") from error


@functools.lru_cache(maxsize=64)
def _top_level_fields(schema_json: str) -> frozenset[str]:
    """The names of the top-level fields of a writer schema's JSON text (none if it is not of a record)."""
    schema = json.loads(schema_json)
    fields = schema.get("fields", ()) if isinstance(schema, dict) else ()
    return frozenset(field.get("name") for field in fields)


def _records(avro_file: AvroFile, convert: Callable[[dict], Alert]) -> Iterator[tuple[int, Alert | AlertError]]:
    """Yield ``(index, alert or error)`` per record; one error and stop where the Avro data is damaged."""
    records = avro_file.records
    index = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as error:  # damaged blocks raise EOFError, ValueError, zlib or cramjam (snappy) errors, ...
            yield index, AlertError(f"truncated or damaged Avro data, the rest of the file is lost ({error})")
            return
        yield index, _alert(record, avro_file, convert)
        index += 1


def _alert(record: dict, avro_file: AvroFile, convert: Callable[[dict], Alert]) -> Alert | AlertError:
    """The alert of a record, or of the record read again by walking if its located fields do not convert.

    A located record can be a false fit (:mod:`bayesrb.alerts.trailing`): read again, it costs time, not the alert.
    """
    try:
        return convert(record)
    except AlertError as error:
        try:
            walked = avro_file.rewalk()
        except Exception:  # the walk meets damaged data between: what the located record said stands
            return error
        if walked is None:
            return error
    try:
        return convert(walked)
    except AlertError as error:
        return error
