"""Client records: build and validate, encrypt+encode, decode, mask."""

import datetime as dt

import pytest

from core.avro import AvroError
from core.crypto import key_id_of
from core.records import (
    RecordError,
    client_id_of,
    record_decode,
    record_encode,
    record_from_document,
    record_key,
    record_mask,
)

DOC = {
    "client_id": 42,
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "segment": "private",
    "status": "active",
    "country": "GB",
    "updated_at": "2026-11-25T10:00:00.123456+00:00",
    "accounts": [
        {
            "account_number": "0012345678",
            "product": "current",
            "currency": "GBP",
            "daily_limit_cents": 250000,
            "overdraft_enabled": True,
            "alerts_enabled": False,
            "statement_day": 3,
            "language": "en",
        }
    ],
    "cards": [
        {"card_id": 9, "card_number": "4111 1111 1111 1234", "brand": "visa", "expiry": "01/30", "status": "active"}
    ],
}


def test_document_becomes_a_plain_record_with_clear_last_digits():
    with pytest.raises(RecordError, match=r"accounts\[0\].account_number"):
        record_from_document({**DOC, "accounts": [{**DOC["accounts"][0], "account_number": "GB0012345678"}]})
    record = record_from_document(DOC)
    assert record["updated_at"] == dt.datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=dt.UTC)  # milliseconds
    assert record["cards"][0]["card_number"] == "4111111111111234"
    assert record["cards"][0]["card_last4"] == "1234"
    assert record["accounts"][0]["account_last4"] == "5678"


def _record():
    return record_from_document(DOC)


def test_encode_encrypts_numbers_and_decode_restores_them():
    plain = _record()
    encoded = record_encode(plain)
    assert b"4111111111111234" not in encoded.value and b"0012345678" not in encoded.value
    assert encoded.schema_version == 1 and encoded.key_id == "dev1"
    assert record_decode(encoded.value, schema_version=1, decrypt=True) == plain
    sealed = record_decode(encoded.value, schema_version=1, decrypt=False)
    assert key_id_of(sealed["cards"][0]["card_number"]) == "dev1"
    masked = record_mask(sealed)
    assert masked["cards"][0]["card_number"] == "**** **** **** 1234"
    assert masked["accounts"][0]["account_number"] == "****5678"
    assert masked["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"client_id": -1}, "client_id"),
        ({"client_id": True}, "client_id"),
        ({"name": 5}, "name: expected str"),
        ({"updated_at": "yesterday"}, "ISO-8601"),
        ({"cards": [{"card_id": 1, "card_number": "12", "brand": "v", "expiry": "x", "status": "a"}]}, "card_number"),
        ({"cards": "none"}, "must be lists"),
    ],
)
def test_bad_documents_name_the_field(change, message):
    with pytest.raises(RecordError, match=message):
        record_from_document({**DOC, **change})


def test_keys_and_decode_errors():
    assert record_key(42) == "client:42" and client_id_of("client:42") == 42
    assert client_id_of("account:42") is None and client_id_of("client:x") is None
    with pytest.raises(AvroError):
        record_decode(b"\x01\x02", schema_version=1, decrypt=True)


def test_a_ciphertext_copied_into_another_record_or_place_does_not_decrypt():
    """The issue's attack: a producer with no keys copies client 42's encrypted card into
    another record (or another card, or the account field) and publishes it."""
    from core import avro
    from core.crypto import CryptoError

    victim = record_decode(record_encode(_record()).value, schema_version=1, decrypt=False)
    stolen_card = victim["cards"][0]["card_number"]
    other = {**DOC, "client_id": 43, "cards": [{**DOC["cards"][0], "card_number": "5500000000000004"}]}
    attacker = record_decode(record_encode(record_from_document(other)).value, schema_version=1, decrypt=False)

    def forged(**changes) -> bytes:
        record = {**attacker, **changes}
        return avro.encode(record, version=1)

    into_other_client = forged(cards=[{**attacker["cards"][0], "card_number": stolen_card, "card_last4": "1234"}])
    with pytest.raises(CryptoError, match=r"cards\[0\].card_number: authentication failed"):
        record_decode(into_other_client, schema_version=1, decrypt=True)
    # under the victim's own key but with another card's identity
    victim_other_card = avro.encode({**victim, "cards": [{**victim["cards"][0], "card_id": 10}]}, version=1)
    with pytest.raises(CryptoError, match="authentication failed"):
        record_decode(victim_other_card, schema_version=1, decrypt=True)
    # the victim's whole value published under another key
    with pytest.raises(CryptoError, match="authentication failed"):
        record_decode(avro.encode(victim, version=1), schema_version=1, decrypt=True, key="client:43")
    assert record_decode(avro.encode(victim, version=1), schema_version=1, decrypt=True, key="client:42") == _record()
