"""Field encryption: round trip, rotation, tampering, key ids in the ciphertext."""

import base64

import pytest

from kafkacache.crypto import CryptoError, Keyring, key_id_of

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()


def test_round_trip_and_the_key_id_travels_in_the_ciphertext():
    ring = Keyring.parse(f"k1:{K1}")
    blob = ring.encrypt(b"4111111111111111", field="card_number")
    assert b"4111111111111111" not in blob
    assert key_id_of(blob) == "k1"
    assert ring.decrypt(blob, field="card_number") == b"4111111111111111"
    # a fresh nonce each time: equal plaintexts never give equal ciphertexts
    assert ring.encrypt(b"4111111111111111", field="card_number") != blob


def test_rotation_first_key_encrypts_all_keys_decrypt():
    old = Keyring.parse(f"k1:{K1}")
    rotated = Keyring.parse(f"k2:{K2},k1:{K1}")
    from_old = old.encrypt(b"123456", field="account_number")
    from_new = rotated.encrypt(b"654321", field="account_number")
    assert key_id_of(from_new) == "k2"
    assert rotated.decrypt(from_old, field="account_number") == b"123456"
    assert rotated.decrypt(from_new, field="account_number") == b"654321"
    with pytest.raises(CryptoError, match="'k2', which is not configured"):
        old.decrypt(from_new, field="account_number")


def test_tampered_or_swapped_fields_fail_authentication():
    ring = Keyring.parse(f"k1:{K1}")
    blob = bytearray(ring.encrypt(b"4111111111111111", field="card_number"))
    blob[-1] ^= 1
    with pytest.raises(CryptoError, match="authentication failed"):
        ring.decrypt(bytes(blob), field="card_number")
    # the field name is authenticated: a card number is not a valid account number
    card = ring.encrypt(b"4111111111111111", field="card_number")
    with pytest.raises(CryptoError, match="authentication failed"):
        ring.decrypt(card, field="account_number")
    with pytest.raises(CryptoError, match="unknown format"):
        ring.decrypt(b"\x07garbage", field="card_number")


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
