"""Reading selected fields of the records of Avro object-container files with fastavro.

fastavro decodes a record through Avro schema resolution when it is given a reader schema: a field of the writer's
record that the reader's lacks is skipped, not decoded. :func:`project` makes, from a file's writer schema, the
reader schema of the selected fields only (:data:`Select`), and :class:`ProjectedReader` reads files with it. Each
distinct writer schema met is projected and parsed (:func:`fastavro.parse_schema`) once.

:func:`fastavro.reader` parses the writer schema of every file it opens, which adds about half to the cost of reading
the selected fields of a ZTF alert, and ZTF ships one alert per file. So a file of codec ``null`` (ZTF's) is read with
:func:`fastavro.schemaless_reader` and the parsed schemas: its header and blocks are Avro data of the schemas the
Avro specification gives them (:data:`HEADER`, :data:`BLOCK`), its records are of the writer schema. A file of any
other codec is read by :func:`fastavro.reader`, with the projected reader schema.
"""

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import fastavro
import fastavro.schema

__all__ = ["BLOCK", "HEADER", "AvroFile", "ProjectedReader", "Select", "project"]

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
    """

    schema: Any
    records: Iterator[dict]


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


class ProjectedReader:
    """Reads the selected fields of the records of Avro container files.

    Parameters
    ----------
    select : Select
        The fields of the top-level record to read, and the fields within them.
    """

    def __init__(self, select: Select):
        self.select = select
        self._schemas: dict[str, tuple[Any, Any, Any]] = {}

    def open(self, handle: BinaryIO) -> AvroFile:
        """Read the header of a container file; its records are read as they are iterated.

        Parameters
        ----------
        handle : binary file
            The file, open for reading at its start, seekable.

        Returns
        -------
        AvroFile

        Raises
        ------
        Exception
            If the file does not start with an Avro header: ``ValueError`` (``json.JSONDecodeError`` among them),
            ``EOFError``, ``KeyError`` or one of fastavro's schema errors.
        """
        end = handle.seek(0, io.SEEK_END)
        handle.seek(0)
        if not fastavro.is_avro(handle):
            raise ValueError("it does not start with Avro's magic bytes")
        handle.seek(0)
        header = fastavro.schemaless_reader(handle, HEADER)
        decoded, writer, reader = self.schemas(header["meta"]["avro.schema"].decode())
        if header["meta"].get("avro.codec", b"null") != b"null":
            handle.seek(0)
            return AvroFile(decoded, iter(fastavro.reader(handle, reader_schema=reader)))
        return AvroFile(decoded, _blocks(handle, end, header["sync"], writer, reader))

    def schemas(self, schema_json: str) -> tuple[Any, Any, Any]:
        """The writer schema decoded and parsed, and the parsed reader schema; made once per schema text.

        Parameters
        ----------
        schema_json : str
            A writer schema's JSON text.

        Returns
        -------
        decoded : Any
            The writer schema as its JSON decodes.
        writer : Any
            The writer schema parsed by :func:`fastavro.parse_schema`.
        reader : Any
            The projected reader schema, parsed; None (read every field) if it names a type defined only in a
            field left out.
        """
        if schema_json not in self._schemas:
            decoded = json.loads(schema_json)
            writer = fastavro.parse_schema(decoded)
            try:
                reader = fastavro.parse_schema(project(decoded, self.select))
            except fastavro.schema.UnknownType:
                reader = None
            self._schemas[schema_json] = decoded, writer, reader
        return self._schemas[schema_json]


def _blocks(handle: BinaryIO, end: int, sync: bytes, writer: Any, reader: Any) -> Iterator[dict]:
    """Yield the records of the uncompressed blocks from the handle's position to ``end``."""
    while handle.tell() < end:
        block = fastavro.schemaless_reader(handle, BLOCK)
        if block["sync"] != sync:
            raise ValueError("a block does not end with the file's sync marker")
        data = io.BytesIO(block["data"])
        for _ in range(block["count"]):
            yield fastavro.schemaless_reader(data, writer, reader)
