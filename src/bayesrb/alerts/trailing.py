"""Reading the last fields of an Avro record without walking the fields before them.

Avro's binary encoding has no field offsets: to reach a record's last field, a reader decodes or skips every value
before it. An alert packet's cutouts are its last three fields, and before them lies the detection history
(``prv_candidates``, and ``fp_hists`` from ZTF schema 4.x: tens of earlier candidates of ~60 fields each), which
costs most of the time of reading the fields ingest uses even when fastavro skips it. This module locates the
cutouts instead, from the end of the record's data:

Each trailing field (:class:`TrailingBlobs`) is a union of ``null`` and either ``bytes`` (Rubin) or a record of one
``string`` and one ``bytes`` field (ZTF: ``fileName``, ``stampData``), all of them the same, and the first field's
bytes start with a known signature (gzip's for ZTF, FITS's for Rubin). So the encoding of the trailing fields is:
the union's branch index, the string's length and text (in the record case), the bytes' length and data, for each
field, up to the end of the record. :meth:`TailLayout.read` finds the signature after the fields it
decoded, takes the nearest byte before it that encodes the branch index as the first field's start, and decodes
the trailing fields from there; the result stands only if the first field's bytes begin exactly at the signature
and the last field ends exactly at the end of the record's data. Where these checks fail (a null cutout, a cutout
that is not gzip-compressed, a name of one character whose length encodes as the branch index, bytes in the
history that look like a signature), the next candidate is tried, and if none fits, the record is read by walking.

A false fit needs the skipped bytes to hold, by chance, a whole cutout head (branch, name length, name, a length
pointing exactly at a later field's start) followed by the signature: with the history's bytes random, some
10^-13 per byte. The caller can still catch it, as the alert reader does
(:func:`bayesrb.alerts.packets.read_avro_alerts`):
a false first field's bytes are not a gzip stream, so where a located cutout does not decode, the record is read
again by walking (:attr:`bayesrb.alerts.projection.AvroFile.rewalk`): a false fit costs time, not the alert.

The end of a record's data is known only when a container block holds one record, as ZTF's files (one alert per
file) and fastavro's (a block is written when it passes 16 kB; an alert is ~60 kB) do; other blocks are walked.
The fields between the decoded ones and the trailing ones (the history) are not read at all, so damage there goes
unnoticed, as it does not matter to what is read.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TailLayout", "TrailingBlobs", "named_records"]

#: Candidates for the first trailing field's start tried before a signature match is given up.
MAX_STARTS = 4


@dataclass(frozen=True)
class TrailingBlobs:
    """The last fields of a record, to be located rather than reached by walking (see the module docstring).

    Attributes
    ----------
    fields : tuple of str
        The names of the record's last fields, in order; each a union of ``null`` and ``bytes``, or of ``null``
        and a record of a ``string`` field then a ``bytes`` field.
    signature : bytes
        How the first field's bytes start (gzip: ``1f 8b 08``; FITS: ``SIMPLE  =``).
    """

    fields: tuple[str, ...]
    signature: bytes

    def layout(self, schema: Mapping[str, Any]) -> "TailLayout | None":
        """How these fields are encoded in records of ``schema``.

        Parameters
        ----------
        schema : mapping
            A writer schema of records, as its JSON decodes.

        Returns
        -------
        TailLayout or None
            None if the schema's last fields are not :attr:`fields` of the expected types.
        """
        trailing = schema.get("fields", ())[-len(self.fields):]
        if tuple(field["name"] for field in trailing) != self.fields:
            return None
        named = named_records(schema)
        branches = [_blob_branch(field["type"], named) for field in trailing]
        if None in branches or any(kind != branches[0][1] for _, kind in branches):
            return None  # not all of them bytes or the same record type
        plain = branches[0][1] == "bytes"
        names = None if plain else _string_and_bytes(branches[0][1])
        if names is None and not plain:
            return None
        return TailLayout(self.fields, bytes(2 * index for index, _ in branches), names, self.signature)


@dataclass(frozen=True)
class TailLayout:
    """The encoding of the trailing fields in one writer schema.

    Attributes
    ----------
    fields : tuple of str
        The trailing fields' names.
    branches : bytes
        For each field, the one-byte encoding of its union's record branch (Avro's zigzag: twice the index).
    names : tuple of str or None
        The inner record's string and bytes field names; None where the fields are bytes.
    signature : bytes
        How the first field's bytes start.
    """

    fields: tuple[str, ...]
    branches: bytes
    names: tuple[str, str] | None
    signature: bytes

    def read(self, data: bytes, start: int) -> dict[str, dict] | None:
        """Locate and decode the trailing fields of one record (see the module docstring).

        Parameters
        ----------
        data : bytes
            The record's data, ending where the record ends.
        start : int
            Where the fields before the trailing ones that were decoded end: the search starts here.

        Returns
        -------
        dict or None
            ``{field: bytes}``, or ``{field: {string name: str, bytes name: bytes}}`` for record fields; None if no
            candidate fits (walk the record).
        """
        signature = data.find(self.signature, start)
        while signature != -1:
            values = self._read_before(data, start, signature)
            if values is not None:
                return values
            signature = data.find(self.signature, signature + 1)
        return None

    def _read_before(self, data: bytes, start: int, signature: int) -> dict[str, dict] | None:
        """Decode the trailing fields from the nearest starts before ``signature`` at which they fit."""
        position = signature
        for _ in range(MAX_STARTS):
            position = data.rfind(self.branches[:1], start, position)
            if position < 0:
                return None
            values = self._decode(data, position, signature)
            if values is not None:
                return values
        return None

    def _decode(self, data: bytes, position: int, signature: int) -> dict[str, dict] | None:
        """The trailing fields decoded from ``position``, or None.

        None unless the first field's bytes start at ``signature`` and the last field ends where ``data`` ends.
        """
        values = {}
        try:
            for field, branch in zip(self.fields, self.branches, strict=True):
                if data[position] != branch:
                    return None
                text_start, text_stop = (position + 1,) * 2 if self.names is None else _value_span(data, position + 1)
                blob_start, position = _value_span(data, text_stop)
                if not values and blob_start != signature:
                    return None
                blob = data[blob_start:position]
                values[field] = blob if self.names is None else {self.names[0]: data[text_start:text_stop].decode(),
                                                                 self.names[1]: blob}
        except (IndexError, ValueError):  # UnicodeDecodeError is a ValueError
            return None
        return values if position == len(data) else None


def named_records(schema: Any, namespace: str = "", named: dict[str, dict] | None = None) -> dict[str, dict]:
    """The records defined anywhere in a schema, by name and by full name (namespaces inherited as Avro's are).

    Parameters
    ----------
    schema : Any
        A schema as its JSON decodes.
    namespace : str
        The enclosing namespace (for the recursion).
    named : dict, optional
        Where to add them (for the recursion).

    Returns
    -------
    dict of str to dict
    """
    named = {} if named is None else named
    if isinstance(schema, list):
        for branch in schema:
            named_records(branch, namespace, named)
    elif isinstance(schema, dict) and schema.get("type") == "record":
        name = schema["name"]
        namespace = name.rpartition(".")[0] if "." in name else schema.get("namespace", namespace)
        short = name.rpartition(".")[2]
        named[short] = named[f"{namespace}.{short}" if namespace else short] = schema
        for field in schema.get("fields", ()):
            named_records(field["type"], namespace, named)
    elif isinstance(schema, dict):
        named_records(schema.get("items", schema.get("values")), namespace, named)
    return named


def _blob_branch(field_type: Any, named: Mapping[str, dict]) -> tuple[int, dict | str] | None:
    """``(index, "bytes" or record)`` if a field's type is a union of null and bytes or of null and one record."""
    if not isinstance(field_type, list) or len(field_type) != 2 or "null" not in field_type:
        return None
    index = 1 - field_type.index("null")
    branch = field_type[index]
    if branch == "bytes":
        return index, "bytes"
    record = named.get(branch) if isinstance(branch, str) else branch
    return (index, record) if isinstance(record, dict) and record.get("type") == "record" else None


def _string_and_bytes(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """The field names of a record of one string field then one bytes field; None for any other record."""
    fields = record.get("fields", ())
    if [field["type"] for field in fields] != ["string", "bytes"]:
        return None
    return fields[0]["name"], fields[1]["name"]


def _value_span(data: bytes, position: int) -> tuple[int, int]:
    """Start and stop of the string or bytes value encoded at ``position`` (a zigzag varint length, then it).

    Raises
    ------
    ValueError
        If the length is negative or the value runs past the end of ``data``.
    IndexError
        If the length runs past the end of ``data``.
    """
    encoded, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        encoded |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    length = (encoded >> 1) ^ -(encoded & 1)
    if length < 0 or position + length > len(data):
        raise ValueError("a length past the data")
    return position, position + length
