"""Avro schemas from versioned .avsc files; malformed values are refused, not guessed."""

import datetime as dt

import pytest

from core import avro

RECORD = {
    "client_id": 42,
    "name": "Ada",
    "email": None,
    "segment": "retail",
    "status": "active",
    "country": "GB",
    "updated_at": dt.datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=dt.UTC),
    "accounts": [],
    "cards": [],
}


def test_schema_files_are_versioned_and_round_trip():
    assert 1 in avro.schema_versions()
    assert avro.current_version() == max(avro.schema_versions())
    value = avro.encode(RECORD)
    assert avro.decode(value, version=avro.current_version()) == RECORD


@pytest.mark.parametrize("value", [b"", b"\xff\xff\xff\xff", b"not avro at all, just text"])
def test_garbage_does_not_decode(value):
    with pytest.raises(avro.AvroError):
        avro.decode(value, version=1)


def test_truncated_or_padded_values_are_malformed():
    value = avro.encode(RECORD)
    with pytest.raises(avro.AvroError):
        avro.decode(value[:-1], version=1)
    with pytest.raises(avro.AvroError, match="left over"):
        avro.decode(value + b"\x00", version=1)


def test_unknown_version_and_misfit_records_are_refused():
    with pytest.raises(avro.UnknownSchemaVersion):
        avro.decode(avro.encode(RECORD), version=999)
    with pytest.raises(avro.AvroError, match="does not fit"):
        avro.encode({**RECORD, "client_id": "forty-two"})
