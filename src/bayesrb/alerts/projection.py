"""Reading selected fields of the records of Avro object-container files with fastavro.

fastavro decodes a record through Avro schema resolution when it is given a reader schema: a field of the writer's
record that the reader's lacks is skipped, not decoded. :func:`project` makes, from a file's writer schema, the
reader schema of the selected fields only (:data:`Select`), and :class:`ProjectedReader` reads files with it. Each
distinct writer schema met is projected and parsed (:func:`fastavro.parse_schema`) once.

:func:`fastavro.reader` parses the writer schema of every file it opens, a large part of the cost of reading the
selected fields of a ZTF alert, and ZTF ships one alert per file. So a file of codec ``null`` (ZTF's) is read with
:func:`fastavro.schemaless_reader` and the parsed schemas: its header and blocks are Avro data of the schemas the
Avro specification gives them (:data:`HEADER`, :data:`BLOCK`), its records are of the writer schema. A file of any
other codec is read by :func:`fastavro.reader`, with the projected reader schema.
"""

import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import fastavro
import fastavro.schema

from bayesrb.alerts.trailing import TailLayout, TrailingBlobs

__all__ = ["BLOCK", "HEADER", "AvroFile", "Header", "ProjectedReader", "Schemas", "Select", "project", "read_header"]

#: Which fields of a record to read: for each field name, None (its whole value) or the selection within it (for a
#: record defined in place, also as a union's branch or an array's items). A name the writer schema lacks is left out.
Select = Mapping[str, "Select | None"]

#: The header of a container file: magic, metadata (``avro.schema``, ``avro.codec``, ...), sync marker.
HEADER: dict = fastavro.parse_schema({"type": "record", "name": "org.apache.avro.file.Header", "fields": [
    {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
    {"name": "meta", "type": {"type": "map", "values": "bytes"}},
    {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
]})
#: A block of a container file: record count, the records' data (encoded by the codec), the file's sync marker.
BLOCK: dict = fastavro.parse_schema({"type": "record", "name": "org.apache.avro.file.Block", "fields": [
    {"name": "count", "type": "long"},
    {"name": "data", "type": "bytes"},
    {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
]})


@dataclass(frozen=True)
class AvroFile:
    """An opened Avro container file.

    Attributes
    ----------
    schema : Any
        The writer schema, as its JSON decodes (a dict for a file of records).
    records : iterator of dict
        The records (their selected fields), read as they are iterated; iterating raises where the data are
        damaged.
    rewalk : callable
        ``rewalk()``: the record last read, read again by walking every field before the selected ones, if its
        trailing fields were located (:mod:`bayesrb.alerts.trailing`); else None. For a caller that finds the
        located values wrong (a false fit); it raises where the walk meets damaged data.
    """

    schema: Any
    records: Iterator[dict]
    rewalk: Callable[[], dict | None] = lambda: None


@dataclass(frozen=True)
class Header:
    """The header of a container file.

    Attributes
    ----------
    schema_json : str
        The writer schema's JSON text.
    codec : bytes
        The blocks' codec (``null``, ``deflate``, ``snappy``, ...).
    sync : bytes
        The 16-byte sync marker that ends each block.
    end : int
        The file's size in bytes.
    """

    schema_json: str
    codec: bytes
    sync: bytes
    end: int


def read_header(handle: BinaryIO) -> Header:
    """Read the header of a container file, leaving the handle at its first block.

    Parameters
    ----------
    handle : binary file
        The file, open for reading at its start, seekable.

    Returns
    -------
    Header

    Raises
    ------
    Exception
        If the file does not start with an Avro header: ``ValueError`` (``UnicodeDecodeError`` among them),
        ``EOFError``, ``KeyError`` or one of fastavro's errors.
    """
    end = handle.seek(0, io.SEEK_END)
    handle.seek(0)
    if not fastavro.is_avro(handle):
        raise ValueError("it does not start with Avro's magic bytes")
    handle.seek(0)
    header = fastavro.schemaless_reader(handle, HEADER)
    meta = header["meta"]
    return Header(meta["avro.schema"].decode(), meta.get("avro.codec", b"null"), header["sync"], end)


def project(schema: Any, select: Select) -> Any:
    """The reader schema of the selected fields of a writer schema.

    Parameters
    ----------
    schema : Any
        A writer schema as its JSON decodes; a record defined in place (also as a union's branch or an array's
        items) is projected, any other type is kept whole (a named type referred to by name stands for the type
        as projected where it is defined).
    select : Select
        The fields of the record to keep, and the fields within them.

    Returns
    -------
    Any
        The schema with only the selected fields, in the writer's order, as JSON decodes it.
    """
    if isinstance(schema, list):
        return [project(branch, select) for branch in schema]
    if isinstance(schema, dict) and schema.get("type") == "array":
        return {**schema, "items": project(schema["items"], select)}
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return schema
    fields = [_project_field(field, select[field["name"]]) for field in schema["fields"] if field["name"] in select]
    return {**schema, "fields": fields}


def _project_field(field: dict, select: Select | None) -> dict:
    """One field of a projected record: as it is, or of its type projected to ``select``."""
    return field if select is None else {**field, "type": project(field["type"], select)}


@dataclass(frozen=True)
class Schemas:
    """The parsed schemas for reading the records of one writer schema.

    Attributes
    ----------
    decoded : Any
        The writer schema as its JSON decodes.
    writer : Any
        The writer schema, parsed by :func:`fastavro.parse_schema`.
    reader : Any
        The projected reader schema, parsed; None (read every field) if it names a type defined only in a field
        left out.
    head : tuple or None
        With trailing fields to locate (:mod:`bayesrb.alerts.trailing`): the writer's fields up to the last selected
        one before them, as a writer schema and its projected reader schema, both parsed; else None.
    tail : bayesrb.alerts.trailing.TailLayout or None
        The trailing fields' encoding, where :attr:`head` is not None.
    """

    decoded: Any
    writer: Any
    reader: Any
    head: tuple[Any, Any] | None = None
    tail: TailLayout | None = None

    def locate(self, data: bytes) -> dict | None:
        """Read a record's head and locate its trailing fields, without reading the fields between.

        Parameters
        ----------
        data : bytes
            The data of one record, ending where it ends (a block of one record).

        Returns
        -------
        dict or None
            The record's selected fields; None if the schema has no trailing fields to locate or they are not found
            (then :meth:`walk`).
        """
        if self.head is None:
            return None
        buffer = io.BytesIO(data)
        record = fastavro.schemaless_reader(buffer, *self.head)
        trailing = self.tail.read(data, buffer.tell())
        return None if trailing is None else {**record, **trailing}

    def walk(self, data: bytes | BinaryIO) -> dict:
        """Read a record's selected fields by walking through every field.

        Parameters
        ----------
        data : bytes or binary file
            The record's data, or a stream positioned at its start (left at its end).

        Returns
        -------
        dict
        """
        return fastavro.schemaless_reader(io.BytesIO(data) if isinstance(data, bytes) else data,
                                          self.writer, self.reader)


class ProjectedReader:
    """Reads the selected fields of the records of Avro container files.

    Parameters
    ----------
    select : Select
        The fields of the top-level record to read, and the fields within them.
    trailing : bayesrb.alerts.trailing.TrailingBlobs, optional
        Selected last fields of the records to locate rather than walk to, where the writer schema has them.
    """

    def __init__(self, select: Select, trailing: TrailingBlobs | None = None):
        self.select, self.trailing = select, trailing
        self._schemas: dict[str, Schemas] = {}

    def open(self, handle: BinaryIO, header: Header | None = None) -> AvroFile:
        """Open a container file; its records are read as they are iterated.

        Parameters
        ----------
        handle : binary file
            The file, open for reading at its start, or just after its header if ``header`` is given; seekable.
        header : Header, optional
            The file's header, if :func:`read_header` has read it already.

        Returns
        -------
        AvroFile

        Raises
        ------
        Exception
            If the file does not start with an Avro header (:func:`read_header`), or fastavro cannot parse its
            schema.
        """
        if header is None:
            header = read_header(handle)
        schemas = self.schemas(header.schema_json)
        if header.codec != b"null":
            handle.seek(0)
            return AvroFile(schemas.decoded, iter(fastavro.reader(handle, reader_schema=schemas.reader)))
        blocks = _Blocks(handle, header.end, header.sync, schemas)
        return AvroFile(schemas.decoded, blocks.records, blocks.rewalk)

    def schemas(self, schema_json: str) -> Schemas:
        """The schemas for reading records of one writer schema; made once per schema text.

        Parameters
        ----------
        schema_json : str
            A writer schema's JSON text.

        Returns
        -------
        Schemas
        """
        if schema_json not in self._schemas:
            decoded = json.loads(schema_json)
            self._schemas[schema_json] = Schemas(decoded, fastavro.parse_schema(decoded),
                                                 self._reader(decoded), *self._head_and_tail(decoded))
        return self._schemas[schema_json]

    def _reader(self, schema: Any) -> Any:
        """The parsed projection of ``schema``; None if it names a type defined only in a field left out."""
        try:
            return fastavro.parse_schema(project(schema, self.select))
        except fastavro.schema.UnknownType:
            return None

    def _head_and_tail(self, schema: Any) -> tuple[tuple[Any, Any] | None, TailLayout | None]:
        """:attr:`Schemas.head` and :attr:`Schemas.tail` of a writer schema, or ``(None, None)``.

        ``(None, None)`` where there are no trailing fields to locate: none configured, not all selected whole, or
        not at the end of this schema.
        """
        if self.trailing is None or any(self.select.get(name, ()) is not None for name in self.trailing.fields):
            return None, None
        tail = self.trailing.layout(schema) if isinstance(schema, dict) else None
        if tail is None:
            return None, None
        before = schema["fields"][:-len(tail.fields)]
        selected = [i for i, field in enumerate(before) if field["name"] in self.select]
        head = {**schema, "fields": before[:max(selected, default=-1) + 1]}
        try:
            return (fastavro.parse_schema(head), fastavro.parse_schema(project(head, self.select))), tail
        except fastavro.schema.UnknownType:  # the head names a type defined after it
            return None, None


class _Blocks:
    """The records of a file's uncompressed blocks from the handle's position to ``end``, read as iterated.

    The one record of a block is located where its schema allows (see :attr:`AvroFile.rewalk`); others are walked.
    """

    def __init__(self, handle: BinaryIO, end: int, sync: bytes, schemas: Schemas):
        self.schemas = schemas
        self.records = self._records(handle, end, sync)
        self._located: bytes | None = None  # the data of the last record, if it was located

    def _records(self, handle: BinaryIO, end: int, sync: bytes) -> Iterator[dict]:
        while handle.tell() < end:
            block = fastavro.schemaless_reader(handle, BLOCK)
            if block["sync"] != sync:
                raise ValueError("a block does not end with the file's sync marker")
            record = self.schemas.locate(block["data"]) if block["count"] == 1 else None
            self._located = None if record is None else block["data"]
            if record is not None:
                yield record
                continue
            data = io.BytesIO(block["data"])
            for _ in range(block["count"]):
                yield self.schemas.walk(data)

    def rewalk(self) -> dict | None:
        """:attr:`AvroFile.rewalk`."""
        data, self._located = self._located, None
        return None if data is None else self.schemas.walk(data)
