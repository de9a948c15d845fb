"""Format-preserving encryption: FF1 against NIST's samples, the digit formats, records in either
mode, both modes on one topic, re-encryption between modes and keys, and the consumer's rule."""

import random

import pytest
from confluent_kafka import Message

from core import avro
from core.cards import luhn_complete, luhn_valid
from core.crypto import CryptoError, Keyring
from core.fpe import FF1, FORMATS, FpeError, digit_format, join, split
from core.records import (
    AES_ONLY_SCHEMA,
    FPE_SCHEMA,
    RecordError,
    record_decode,
    record_encode,
    record_from_document,
    record_key_ids,
    record_mask,
    record_reencrypt,
)
from kafkacache.batch_plan import batch_plan
from kafkacache.messages import message_build
from kafkacache.producer import messages_seal
from recon.services.feed import feed_topics_ensure
from tests.documents import DOC

# Every FF1 sample of NIST's "Examples with intermediate values" for SP 800-38G
# (AES-128, -192, -256; radix 10 with and without a tweak, radix 36 with one).
K128 = "2B7E151628AED2A6ABF7158809CF4F3C"
K192 = K128 + "EF4359D8D580AA4F"
K256 = K192 + "7F036D6F04FC6A94"
NIST_FF1 = [
    (K128, "", 10, "0123456789", "2433477484"),
    (K128, "39383736353433323130", 10, "0123456789", "6124200773"),
    (K128, "3737373770717273373737", 36, "0123456789abcdefghi", "a9tv40mll9kdu509eum"),
    (K192, "", 10, "0123456789", "2830668132"),
    (K192, "39383736353433323130", 10, "0123456789", "2496655549"),
    (K192, "3737373770717273373737", 36, "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"),
    (K256, "", 10, "0123456789", "6657667009"),
    (K256, "39383736353433323130", 10, "0123456789", "1001623463"),
    (K256, "3737373770717273373737", 36, "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"),
]
OLD = "k1:" + "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE="
NEW = "k2:" + "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI="
ALL_FPE = {"cards.card_number": "ff1-luhn-last4", "accounts.account_number": "ff1"}


@pytest.mark.parametrize(("key", "tweak", "radix", "plain", "cipher"), NIST_FF1)
def test_ff1_gives_every_nist_sample_both_ways(key, tweak, radix, plain, cipher):
    ff1 = FF1(bytes.fromhex(key), radix)
    assert ff1.encrypt(plain, bytes.fromhex(tweak)) == cipher
    assert ff1.decrypt(cipher, bytes.fromhex(tweak)) == plain


def test_ff1_many_in_step_equals_one_by_one_and_round_trips():
    rng = random.Random(7)
    ff1 = FF1(bytes(range(32)))
    items = [
        (
            "".join(str(rng.randrange(10)) for _ in range(rng.randint(6, 34))),
            bytes(rng.randrange(256) for _ in range(n)),
        )
        for n in (0, 1, 15, 16, 17, 40, 90)
        for _ in range(5)
    ]
    many = ff1.encrypt_many(items)
    assert many == [ff1.encrypt(text, tweak) for text, tweak in items]
    assert all(len(c) == len(p) and c.isdigit() for c, (p, _) in zip(many, items, strict=True))
    assert ff1.decrypt_many([(c, t) for c, (_, t) in zip(many, items, strict=True)]) == [p for p, _ in items]
    # The tweak changes the permutation: the same digits elsewhere are other digits.
    assert ff1.encrypt("4111111111111111", b"a") != ff1.encrypt("4111111111111111", b"b")


def test_ff1_refuses_a_domain_below_a_million_and_what_is_not_numerals():
    ff1 = FF1(bytes(16))
    assert ff1.encrypt("123456") and ff1.min_length == 6
    with pytest.raises(FpeError, match="at least 6"):
        ff1.encrypt("12345")
    with pytest.raises(FpeError, match="numerals"):
        ff1.encrypt("12345a")
    assert FF1(bytes(16), 36).min_length == 4  # 36**4 = 1,679,616
    with pytest.raises(FpeError, match="at least 4"):
        FF1(bytes(16), 36).encrypt("abc")
    with pytest.raises(FpeError):
        FF1(bytes(15))


def test_card_formats_keep_length_last_four_and_luhn_and_decrypt_back():
    ff1 = FF1(bytes(range(16)))
    rng = random.Random(11)
    for _ in range(200):
        n = rng.choice((12, 15, 16, 19))
        pan = luhn_complete("".join(str(rng.randrange(10)) for _ in range(n - 1)))
        for fmt in FORMATS.values():
            body, tail = split(fmt, pan, "card")
            out = join(fmt, ff1.encrypt(body, b"t"), tail)
            assert len(out) == n and out.isdigit() and out != pan
            if fmt.clear_tail:
                assert out[-4:] == pan[-4:]
            if fmt.luhn:
                assert luhn_valid(out)
            c_body, c_tail = split(fmt, out, "card")
            assert join(fmt, ff1.decrypt(c_body, b"t"), c_tail) == pan
    # 5 digits to encrypt is below FF1's minimum: a 10-digit number keeping its last four and a Luhn digit.
    with pytest.raises(FpeError, match="FF1 needs 6"):
        split(digit_format("ff1-luhn-last4"), "1234567897", "accounts[0].account_number")


def _plain(client_id=42, **changes):
    return record_from_document({**DOC, "client_id": client_id, **changes})


def test_a_record_in_ff1_keeps_its_numbers_digit_strings_of_their_length(settings):
    settings.FIELD_ENCRYPTION_KEYS = OLD
    settings.FIELD_ENCRYPTION_MODES = ALL_FPE
    plain = _plain(cards=[{**DOC["cards"][0], "card_number": "4111111111111111"}])
    encoded = record_encode(plain)
    assert encoded.schema_version == FPE_SCHEMA
    sealed = record_decode(encoded.value, schema_version=FPE_SCHEMA, decrypt=False)
    card, account = sealed["cards"][0], sealed["accounts"][0]
    assert card["card_number"] != "4111111111111111" and len(card["card_number"]) == 16
    assert card["card_number"].endswith("1111") and luhn_valid(card["card_number"])
    assert card["card_number_fpe"] == {"key_id": "k1", "format": "ff1-luhn-last4"}
    assert account["account_number"].isdigit() and len(account["account_number"]) == 10
    assert account["account_number"] != "3000900001" and account["account_number_fpe"]["format"] == "ff1"
    assert record_key_ids(sealed) == ["k1", "k1"]
    assert record_decode(encoded.value, schema_version=FPE_SCHEMA, decrypt=True) == plain
    assert record_mask(sealed)["cards"][0]["card_number"] == "**** **** **** 1111"
    # Deterministic and bound to its place: the same number in another record is other digits,
    # and a ciphertext moved there decrypts to other digits, never to the number.
    assert record_encode(plain).value == encoded.value
    other = record_decode(record_encode(_plain(43)).value, schema_version=FPE_SCHEMA, decrypt=False)
    assert other["cards"][0]["card_number"] != card["card_number"]
    moved = {**other, "cards": [{**other["cards"][0], "card_number": card["card_number"]}]}
    stolen = record_decode(avro.encode(moved, version=FPE_SCHEMA), schema_version=FPE_SCHEMA, decrypt=True)
    assert stolen["cards"][0]["card_number"] != "4111111111111111"


def test_a_number_that_fails_luhn_is_encrypted_without_the_luhn_digit_and_comes_back(settings):
    settings.FIELD_ENCRYPTION_MODES = {"cards.card_number": "ff1-luhn-last4"}
    plain = _plain(cards=[{**DOC["cards"][0], "card_number": "4111111111111112"}])
    encoded = record_encode(plain)
    sealed = record_decode(encoded.value, schema_version=encoded.schema_version, decrypt=False)
    assert sealed["cards"][0]["card_number_fpe"]["format"] == "ff1-last4"
    assert record_decode(encoded.value, schema_version=encoded.schema_version, decrypt=True) == plain


def test_a_number_too_short_for_its_format_is_a_record_error_naming_the_field(settings):
    settings.FIELD_ENCRYPTION_MODES = {"accounts.account_number": "ff1-last4"}
    plain = _plain(accounts=[{**DOC["accounts"][0], "account_number": "123456789"}])
    with pytest.raises(RecordError, match=r"accounts\[0\].account_number: 5 digits"):
        record_encode(plain)


def test_both_modes_on_one_topic_and_in_one_record_decode(settings):
    settings.FIELD_ENCRYPTION_KEYS = OLD
    gcm = record_encode(_plain(1))
    assert gcm.schema_version == AES_ONLY_SCHEMA  # no FF1 field: the bytes a v1 reader reads
    settings.FIELD_ENCRYPTION_MODES = {"cards.card_number": "ff1-luhn-last4"}
    mixed = record_encode(_plain(2))
    sealed = record_decode(mixed.value, schema_version=mixed.schema_version, decrypt=False)
    assert isinstance(sealed["accounts"][0]["account_number"], bytes)
    assert sealed["accounts"][0]["account_number_fpe"] is None
    assert isinstance(sealed["cards"][0]["card_number"], str)
    for encoded, client_id in ((gcm, 1), (mixed, 2)):
        decoded = record_decode(encoded.value, schema_version=encoded.schema_version, decrypt=True)
        assert decoded == _plain(client_id)


def test_a_field_tagged_wrong_does_not_decrypt(settings):
    settings.FIELD_ENCRYPTION_MODES = ALL_FPE
    sealed = record_decode(record_encode(_plain()).value, schema_version=FPE_SCHEMA, decrypt=False)
    untagged = {**sealed, "cards": [{**sealed["cards"][0], "card_number_fpe": None}]}
    with pytest.raises(CryptoError, match="without a format-preserving key id"):
        record_decode(avro.encode(untagged, version=FPE_SCHEMA), schema_version=FPE_SCHEMA, decrypt=True)
    unknown = {**sealed, "cards": [{**sealed["cards"][0], "card_number_fpe": {"key_id": "k9", "format": "ff1"}}]}
    with pytest.raises(CryptoError, match="'k9', which is not configured"):
        record_decode(avro.encode(unknown, version=FPE_SCHEMA), schema_version=FPE_SCHEMA, decrypt=True)


def test_reencryption_moves_fields_between_modes_and_rotates_each(settings):
    settings.FIELD_ENCRYPTION_KEYS = OLD
    plain = _plain()
    v1 = record_encode(plain)
    settings.FIELD_ENCRYPTION_KEYS = f"{NEW},{OLD}"
    settings.FIELD_ENCRYPTION_MODES = ALL_FPE
    moved = record_reencrypt(v1.value, schema_version=1)
    assert moved.replaced == {"k1"} and moved.schema_version == FPE_SCHEMA  # AES-GCM under k1 -> FF1 under k2
    assert record_key_ids(record_decode(moved.value, schema_version=FPE_SCHEMA, decrypt=False)) == ["k2", "k2"]
    assert record_decode(moved.value, schema_version=FPE_SCHEMA, decrypt=True) == plain
    assert record_reencrypt(v1.value, schema_version=1) == moved  # the same old bytes, the same new ones
    assert record_reencrypt(moved.value, schema_version=FPE_SCHEMA).replaced == set()  # current: untouched

    settings.FIELD_ENCRYPTION_KEYS = f"{OLD},{NEW}"  # rotate the FF1 fields back to k1
    rotated = record_reencrypt(moved.value, schema_version=FPE_SCHEMA)
    assert rotated.replaced == {"k2"}
    assert record_decode(rotated.value, schema_version=FPE_SCHEMA, decrypt=True) == plain
    settings.FIELD_ENCRYPTION_MODES = {}  # and from FF1 back to AES-GCM
    back = record_reencrypt(rotated.value, schema_version=FPE_SCHEMA)
    sealed = record_decode(back.value, schema_version=back.schema_version, decrypt=False)
    assert all(
        isinstance(sealed[n][0][f], bytes) for n, f in (("cards", "card_number"), ("accounts", "account_number"))
    )
    assert record_decode(back.value, schema_version=back.schema_version, decrypt=True) == plain
    assert record_reencrypt(rotated.value, schema_version=FPE_SCHEMA) == back


def test_the_ff1_key_is_derived_per_key_id_never_the_aes_key(settings):
    ring = Keyring.parse(OLD)
    [(digits, fmt)] = ring.fpe_encrypt_many([("4111111111111111", b"b", digit_format("ff1"), "p")])
    raw = bytes(32 * [ord("1")])
    assert FF1(raw).encrypt("4111111111111111", b"b") != digits  # not FF1 under the AES-GCM key
    assert ring.fpe_decrypt(digits, key_id="k1", format_name=fmt, field="p", binding=b"b") == "4111111111111111"


def _consumer_message(topic: str, plain: dict, *, sealed: bool) -> Message:
    encoded = record_encode(plain)
    key = f"client:{plain['client_id']}"
    out = message_build(
        key=key,
        event="add",
        value=encoded.value,
        source="test",
        schema_version=encoded.schema_version,
        hash_algorithm="blake2b",
        key_id=encoded.key_id,
        problems=[] if sealed else None,
    )
    if sealed:
        [out] = messages_seal([out], topic=topic)
    return Message(topic=topic, partition=0, offset=0, key=key.encode(), value=out.value, headers=out.headers)


@pytest.mark.django_db
def test_the_consumer_takes_ff1_fields_only_under_a_verified_seal(feed, settings):
    settings.FIELD_ENCRYPTION_MODES = {"cards.card_number": "ff1-luhn-last4"}
    change = feed_topics_ensure()["change"]
    topics = {change.name: change}
    sealed = batch_plan([_consumer_message(change.name, _plain(1), sealed=True)], topics=topics, group="g")
    assert not sealed.dead and [op.key for op in sealed.ops] == ["client:1"]
    # Unsealed, on a topic that takes no unsealed producer: a dead letter, before any other check.
    closed = batch_plan([_consumer_message(change.name, _plain(2), sealed=False)], topics=topics, group="g")
    assert not closed.ops and closed.dead[0][1] == "unsealed"
    # On one that does, FF1 digits cannot be told from a number in clear: a dead letter, whatever key id they name.
    change.accepts_unsealed = True
    unsealed = batch_plan([_consumer_message(change.name, _plain(2), sealed=False)], topics=topics, group="g")
    assert not unsealed.ops
    [(_, reason, _, key)] = unsealed.dead
    assert key == "client:2" and "cards[0].card_number is format-preserving (FF1)" in reason
    # The same record with both fields in AES-GCM is checked in full and taken, unsealed, as before.
    settings.FIELD_ENCRYPTION_MODES = {}
    plain = batch_plan([_consumer_message(change.name, _plain(3), sealed=False)], topics=topics, group="g")
    assert not plain.dead and [op.key for op in plain.ops] == ["client:3"]
