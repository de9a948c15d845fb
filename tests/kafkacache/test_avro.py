"""Avro schemas from versioned .avsc files; malformed values are refused, not guessed."""

import datetime as dt
import io
import random

import fastavro
import pytest

from core import avro, avro_writer

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


def _fastavro(record: dict, version: int) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, avro.parsed_schema(version), record)
    return out.getvalue()


def _random_record(rng: random.Random, version: int) -> dict:
    def text() -> str:
        return "".join(rng.choice("ab9 é€😀") for _ in range(rng.randrange(0, 90)))  # lengths past one varint byte

    def number() -> int:
        return rng.choice([0, 1, 63, 64, -1, -64, -65, 8191, 8192, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)])

    def account() -> dict:
        item = {
            "account_number": rng.randbytes(rng.randrange(0, 200)),
            "account_last4": text(),
            "product": text(),
            "currency": text(),
            "daily_limit_cents": rng.choice([number(), rng.randrange(-(10**12), 10**12)]),
            "overdraft_enabled": rng.random() < 0.5,
            "alerts_enabled": rng.random() < 0.5,
            "statement_day": rng.randrange(-(2**31), 2**31),
            "language": text(),
        }
        if version == 2 and rng.random() < 0.5:
            item["account_number"] = "".join(rng.choice("0123456789") for _ in range(rng.randrange(6, 35)))
            item["account_number_fpe"] = {"key_id": text(), "format": text()}
        elif version == 2 and rng.random() < 0.5:
            item["account_number_fpe"] = None  # else absent: the schema's default
        return item

    def card() -> dict:
        item = {
            "card_id": number(),
            "card_number": rng.randbytes(rng.randrange(0, 100)),
            "card_last4": text(),
            "brand": text(),
            "expiry": text(),
            "status": text(),
        }
        if version == 2 and rng.random() < 0.5:
            item["card_number"], item["card_number_fpe"] = text(), {"key_id": text(), "format": text()}
        return item

    record = {
        "client_id": number(),
        "name": text(),
        "email": rng.choice([None, text()]),
        "segment": text(),
        "status": text(),
        "country": text(),
        "updated_at": rng.choice(
            [
                dt.datetime(1900 + rng.randrange(300), 1, 1, tzinfo=dt.UTC)
                + dt.timedelta(microseconds=rng.randrange(10**15)),
                dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
                rng.randrange(-(10**13), 10**13),
            ]
        ),
        "accounts": [account() for _ in range(rng.choice([0, 1, 6, 70]))],  # 70: a count past one varint byte
        "cards": [card() for _ in range(rng.randrange(0, 8))],
    }
    if rng.random() < 0.1:
        del record["email"]  # the schema's default
    return record


@pytest.mark.parametrize("version", [1, 2])
def test_the_compiled_writer_writes_what_fastavro_writes(version):
    """core.avro_writer is an optimisation only: on every record it takes, fastavro's bytes."""
    rng = random.Random(version)
    for _ in range(400):
        record = _random_record(rng, version)
        assert avro.encode(record, version=version) == _fastavro(record, version)
    assert avro._writer(version, avro.RECORD_SCHEMA) is not None  # the compiled one ran, not the fallback


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": 1.0},  # fastavro: the float's integer
        {"client_id": True},
        {"accounts": ({"bad": 1},)},
        {"email": b"bytes"},
        {"updated_at": dt.datetime(2026, 1, 1)},  # naive: fastavro reads it as local time
        {"client_id": 2**64},
        {"name": None},
    ],
)
def test_values_the_compiled_writer_does_not_take_get_fastavros_answer(change):
    record = {**RECORD, **change}
    try:
        expected: bytes | type[Exception] = _fastavro(record, 1)
    except Exception:
        expected = avro.AvroError
    if isinstance(expected, bytes):
        assert avro.encode(record, version=1) == expected
    else:
        with pytest.raises(avro.AvroError, match="does not fit"):
            avro.encode(record, version=1)


def test_a_schema_the_compiler_does_not_cover_is_written_by_fastavro():
    with pytest.raises(avro_writer.Unsupported):
        avro_writer.compile_writer(
            fastavro.parse_schema(
                {"type": "record", "name": "M", "fields": [{"name": "m", "type": {"type": "map", "values": "string"}}]}
            )
        )
