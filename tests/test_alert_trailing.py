"""Locating a record's trailing cutouts (bayesrb.alerts.trailing) gives exactly the values the Avro encoding holds."""

import gzip
import io
import json

import fastavro
import numpy as np
import pytest

from bayesrb.alerts.projection import ProjectedReader
from bayesrb.alerts.trailing import TrailingBlobs, named_records

SIGNATURE = b"\x1f\x8b\x08"
CUTOUTS = ("first", "second", "third")
TAIL = TrailingBlobs(CUTOUTS, SIGNATURE)
SELECT = {"id": None, **dict.fromkeys(CUTOUTS)}
CUTOUT = {"type": "record", "name": "cutout", "fields": [{"name": "fileName", "type": "string"},
                                                         {"name": "stampData", "type": "bytes"}]}


def packet_schema(null_first: bool = True) -> dict:
    """A packet like ZTF's: an id, a history of earlier candidates, then three cutouts (the record defined once)."""
    def union(branch):
        return ["null", branch] if null_first else [branch, "null"]
    history = {"type": "array", "items": {"type": "record", "name": "past", "fields": [
        {"name": "a", "type": ["null", "double"]}, {"name": "s", "type": ["null", "string"]},
        {"name": "b", "type": ["null", "bytes"]}]}}
    return {"type": "record", "name": "packet", "namespace": "test", "fields": [
        {"name": "id", "type": "long"}, {"name": "note", "type": "string"}, {"name": "history", "type": union(history)},
        {"name": "first", "type": union(CUTOUT)}, {"name": "second", "type": union("cutout")},
        {"name": "third", "type": union("test.cutout")}]}


def random_packet(rng: np.random.Generator) -> dict:
    """A packet with gzip cutouts (or not) of random sizes and names (empty and one-character ones too), and a
    history whose bytes hold the signature now and then."""
    def blob():
        return gzip.compress(rng.bytes(int(rng.integers(0, 3000))), mtime=0)

    def past():
        b = None
        if rng.random() < 0.5:
            b = rng.bytes(int(rng.integers(0, 50))) + SIGNATURE + rng.bytes(int(rng.integers(0, 5)))
        return {"a": None if rng.random() < 0.3 else float(rng.normal()),
                "s": None if rng.random() < 0.3 else "".join(rng.choice(list("ab\x00\x02é"), int(rng.integers(0, 9)))),
                "b": b}

    def cutout():
        if rng.random() < 0.1:
            return None
        name = "" if rng.random() < 0.2 else "n" * int(rng.choice([1, 2, 63, 64, 200]))
        return {"fileName": name, "stampData": blob() if rng.random() < 0.9 else rng.bytes(40)}

    return {"id": int(rng.integers(-2**62, 2**62)), "note": "x" * int(rng.integers(0, 5)),
            "history": None if rng.random() < 0.1 else [past() for _ in range(int(rng.integers(0, 30)))],
            **{field: cutout() for field in CUTOUTS}}


def encode(schema: dict, record: dict) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


def selected(record: dict) -> dict:
    return {name: record[name] for name in SELECT}


FITS = b"SIMPLE  ="
PLAIN_TAIL = TrailingBlobs(CUTOUTS, FITS)


def plain_schema() -> dict:
    """A packet like Rubin's: the cutouts are ``["null", "bytes"]``, FITS files as they are."""
    schema = packet_schema()
    cutouts = [{"name": name, "type": ["null", "bytes"]} for name in CUTOUTS]
    return {**schema, "fields": [*schema["fields"][:3], *cutouts]}


def random_plain_packet(rng: np.random.Generator) -> dict:
    """A packet with FITS-like cutouts (or not, or null) of random sizes and a history holding the signature."""
    def cutout():
        if rng.random() < 0.1:
            return None
        return (FITS if rng.random() < 0.9 else b"") + rng.bytes(int(rng.integers(0, 3000)))

    packet = random_packet(rng)
    for past in packet["history"] or ():
        past["b"] = None if past["b"] is None else past["b"].replace(SIGNATURE, FITS)
    return {**packet, **{field: cutout() for field in CUTOUTS}}


#: Trailing-field layouts: the packet's schema, a random packet, the tail, whether a first cutout is signed, and
#: the union branch byte of the cutouts.
LAYOUTS = {
    "record, null first": (packet_schema, random_packet, TAIL, lambda c: c["stampData"][:3] == SIGNATURE, 2),
    "record, null last": (lambda: packet_schema(null_first=False), random_packet, TAIL,
                          lambda c: c["stampData"][:3] == SIGNATURE, 0),
    "bytes": (plain_schema, random_plain_packet, PLAIN_TAIL, lambda c: c.startswith(FITS), 2),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_located_cutouts_are_the_encoded_ones_and_the_rest_is_walked(layout):
    make_schema, make_packet, tail, signed, branch = LAYOUTS[layout]
    schema = make_schema()
    schemas = ProjectedReader(SELECT, tail).schemas(json.dumps(schema))
    assert schemas.tail is not None and schemas.tail.branches == bytes([branch] * 3)
    rng = np.random.default_rng(11 + branch)
    located = 0
    for _ in range(400):
        record = make_packet(rng)
        data = encode(schema, record)
        assert schemas.walk(data) == selected(record)
        got = schemas.locate(data)
        if all(record[field] is not None for field in CUTOUTS) and signed(record["first"]):
            assert got == selected(record)
            located += 1
        else:  # a null cutout, or the first without the signature: not found
            assert got is None
    assert located > 100


def test_the_history_is_not_read_once_the_cutouts_are_located():
    schema = packet_schema()
    schemas = ProjectedReader(SELECT, TAIL).schemas(json.dumps(schema))
    record = {"id": 7, "note": "", "history": [{"a": 1.0, "s": "s", "b": b"b"}] * 3,
              **{field: {"fileName": field, "stampData": gzip.compress(field.encode())} for field in CUTOUTS}}
    data = encode(schema, record)
    history = data.index(b"\x02\x02s")  # the first past candidate's string
    damaged = data[:history] + b"\xff" * 10 + data[history + 10:]
    with pytest.raises(Exception):  # noqa: B017 - fastavro walks into the damage, whatever it raises
        schemas.walk(damaged)
    assert schemas.locate(damaged) == selected(record)


def test_rewalk_reads_the_last_located_record_again(tmp_path):
    schema = packet_schema()
    records = [random_packet(np.random.default_rng(seed)) for seed in range(30)]
    path = tmp_path / "packets.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), records, sync_interval=1)  # a block per record
    with path.open("rb") as handle:
        avro_file = ProjectedReader(SELECT, TAIL).open(handle)
        schemas = ProjectedReader(SELECT, TAIL).schemas(json.dumps(schema))
        for record, got in zip(records, avro_file.records, strict=True):
            assert got == selected(record)
            located = schemas.locate(encode(schema, record)) is not None
            assert avro_file.rewalk() == (selected(record) if located else None)
            assert avro_file.rewalk() is None  # once


def test_records_of_a_block_of_several_are_walked(tmp_path):
    schema = packet_schema()
    records = [random_packet(np.random.default_rng(seed)) for seed in range(20)]
    path = tmp_path / "small.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), records, sync_interval=10**8)  # one block
    with path.open("rb") as handle:
        assert [block.num_records for block in fastavro.block_reader(handle)] == [20]
    with path.open("rb") as handle:
        assert list(ProjectedReader(SELECT, TAIL).open(handle).records) == [selected(record) for record in records]


def replace_field(schema: dict, name: str, field_type) -> dict:
    return {**schema, "fields": [{**field, "type": field_type} if field["name"] == name else field
                                 for field in schema["fields"]]}


@pytest.mark.parametrize("change", [
    lambda s: {**s, "fields": s["fields"][:-1]},  # the last cutout missing
    lambda s: {**s, "fields": [*s["fields"][:3], {**s["fields"][3], "name": "second"},
                               {**s["fields"][4], "name": "first"}, s["fields"][5]]},  # not in order
    lambda s: {**s, "fields": [*s["fields"], {"name": "after", "type": "int"}]},  # not the last fields
    lambda s: replace_field(s, "second", "test.cutout"),  # not a union with null
    lambda s: replace_field(s, "second", ["null", "cutout", "string"]),  # a union of three
    lambda s: replace_field(s, "third", ["null", {**CUTOUT, "name": "other"}]),  # another record type
    lambda s: replace_field(replace_field(s, "second", ["null", "string"]), "third", ["null", "string"]),
    lambda s: replace_field(s, "first", ["null", {**CUTOUT, "fields": CUTOUT["fields"][::-1]}]),  # bytes first
    lambda s: replace_field(s, "second", ["null", "bytes"]),  # bytes among records
])
def test_schemas_without_the_trailing_fields_are_walked(change):
    schema = change(packet_schema())
    assert TAIL.layout(schema) is None
    assert ProjectedReader(SELECT, TAIL).schemas(json.dumps(schema)).head is None


def test_a_trailing_field_selected_in_part_is_walked():
    schema = json.dumps(packet_schema())
    assert ProjectedReader(SELECT, TAIL).schemas(schema).head is not None
    assert ProjectedReader({**SELECT, "third": {"fileName": None}}, TAIL).schemas(schema).head is None
    assert ProjectedReader({"id": None, "first": None}, TAIL).schemas(schema).head is None


def test_named_records_are_found_by_name_and_full_name_anywhere():
    named = named_records(packet_schema())
    assert {"packet", "test.packet", "past", "test.past", "cutout", "test.cutout"} <= named.keys()
    assert named["cutout"] is named["test.cutout"]
