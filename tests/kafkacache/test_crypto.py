"""Field encryption: round trip, rotation, tampering, key ids in the ciphertext."""

import base64

import pytest

from core.crypto import CryptoError, Keyring, field_binding, field_bindings, key_id_of

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()
HERE = field_binding(record_key="client:1", path="cards[0].card_number", identity="card_id=7;last4=1111")


def test_round_trip_and_the_key_id_travels_in_the_ciphertext():
    ring = Keyring.parse(f"k1:{K1}")
    blob = ring.encrypt(b"4111111111111111", field="card_number", binding=HERE)
    assert b"4111111111111111" not in blob
    assert key_id_of(blob) == "k1"
    assert ring.decrypt(blob, field="card_number", binding=HERE) == b"4111111111111111"
    # a fresh nonce each time: equal plaintexts never give equal ciphertexts
    assert ring.encrypt(b"4111111111111111", field="card_number", binding=HERE) != blob


def test_rotation_first_key_encrypts_all_keys_decrypt():
    old = Keyring.parse(f"k1:{K1}")
    rotated = Keyring.parse(f"k2:{K2},k1:{K1}")
    from_old = old.encrypt(b"123456", field="account_number", binding=HERE)
    from_new = rotated.encrypt(b"654321", field="account_number", binding=HERE)
    assert key_id_of(from_new) == "k2"
    assert rotated.decrypt(from_old, field="account_number", binding=HERE) == b"123456"
    assert rotated.decrypt(from_new, field="account_number", binding=HERE) == b"654321"
    with pytest.raises(CryptoError, match="'k2', which is not configured"):
        old.decrypt(from_new, field="account_number", binding=HERE)


def test_tampered_or_swapped_fields_fail_authentication():
    ring = Keyring.parse(f"k1:{K1}")
    blob = bytearray(ring.encrypt(b"4111111111111111", field="card_number", binding=HERE))
    blob[-1] ^= 1
    with pytest.raises(CryptoError, match="authentication failed"):
        ring.decrypt(bytes(blob), field="card_number", binding=HERE)
    # where it belongs is authenticated: not in another record, path, card or field
    card = ring.encrypt(b"4111111111111111", field="card_number", binding=HERE)
    for elsewhere in (
        field_binding(record_key="client:2", path="cards[0].card_number", identity="card_id=7;last4=1111"),
        field_binding(record_key="client:1", path="cards[1].card_number", identity="card_id=7;last4=1111"),
        field_binding(record_key="client:1", path="cards[0].card_number", identity="card_id=8;last4=1111"),
        field_binding(record_key="client:1", path="accounts[0].account_number", identity="last4=1111"),
    ):
        with pytest.raises(CryptoError, match="authentication failed"):
            ring.decrypt(card, field="x", binding=elsewhere)
    # length-prefixed parts: moving a character from one part to the next is another binding
    assert field_binding(record_key="a", path="bc", identity="") != field_binding(
        record_key="ab", path="c", identity=""
    )
    with pytest.raises(CryptoError, match="unknown format"):
        ring.decrypt(b"\x07garbage", field="card_number", binding=HERE)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty"),
        ("nokey", "id:base64key"),
        ("k1:not-base64!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "16, 24 or 32 bytes"),
        (f"k1:{K1},k1:{K2}", "appears twice"),
    ],
)
def test_bad_key_specs_are_refused_with_the_reason(spec, message):
    with pytest.raises(ValueError, match=message):
        Keyring.parse(spec)


def test_format_1_is_read_only_by_the_re_encryption_and_only_under_its_field_name():
    aead_ring = Keyring.parse(f"k1:{K1}")
    import os

    nonce = os.urandom(12)
    legacy = b"\x01\x02k1" + nonce + aead_ring.keys["k1"].encrypt(nonce, b"4111111111111111", b"card_number")
    with pytest.raises(CryptoError, match="unknown format"):
        aead_ring.decrypt(legacy, field="cards[0].card_number", binding=HERE)
    assert aead_ring.decrypt(legacy, field="cards[0].card_number", binding=HERE, legacy=True) == b"4111111111111111"
    with pytest.raises(CryptoError, match="unknown format"):
        key_id_of(legacy)
    assert key_id_of(legacy, legacy=True) == "k1"


def test_a_record_s_bindings_and_batch_encryption_are_the_per_field_ones():
    """record_encode's per-record path (field_bindings, encrypt_many) makes what the per-field
    functions make: the same associated data bytes, the same format, a fresh nonce each."""
    places = [("cards[0].card_number", "card_id=1;last4=1111"), ("accounts[1].account_number", "last4=0042")]
    bindings = field_bindings("client:7", places)
    assert bindings == [field_binding(record_key="client:7", path=p, identity=i) for p, i in places]
    assert bindings[0] == (
        b"kc-field-v2" + b"\0\0\0\x08client:7" + b"\0\0\0\x14cards[0].card_number" + b"\0\0\0\x14card_id=1;last4=1111"
    )
    ring = Keyring.parse(f"k2:{K2},k1:{K1}")
    blobs = ring.encrypt_many([(b"4111111111111111", bindings[0]), (b"30000001", bindings[1])])
    assert [key_id_of(b) for b in blobs] == ["k2", "k2"]
    assert blobs[0][:4] == bytes((2, 2)) + b"k2"
    assert blobs[0][4:16] != blobs[1][4:16]  # each its own nonce
    assert ring.decrypt(blobs[0], field=places[0][0], binding=bindings[0]) == b"4111111111111111"
    assert ring.decrypt(blobs[1], field=places[1][0], binding=bindings[1]) == b"30000001"
    with pytest.raises(CryptoError):
        ring.decrypt(blobs[0], field=places[0][0], binding=bindings[1])  # another place: refused
