"""Field encryption (the design note's "voltage encrypted"): AES-256-GCM per field.

Keys come from settings.FIELD_ENCRYPTION_KEYS ("id:base64key,..."): the first key
encrypts, every listed key decrypts, so keys rotate by putting a new key first
and dropping the old one once nothing encrypted with it is left in Kafka/Redis.

Each ciphertext names its own key id. The message header `key-id` says which key
a producer used, but the cache keeps only the value bytes (kc:rec:{key} field p),
so a reader of the cache must be able to find the key from the field alone.

Layout: b"\x01" | len(key id) (1 byte) | key id | 12-byte nonce | ciphertext+tag.
The field name is authenticated data, so a card number cannot be swapped into
an account-number field without the decryption failing.
"""

import base64
import functools
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

FORMAT_VERSION = 1
NONCE_BYTES = 12


class CryptoError(ValueError):
    """A ciphertext that cannot be decrypted (unknown key, tampered, malformed)."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, AESGCM]
    current: str  # id of the key that encrypts
    # Per key id, a MAC key derived from the field key (kafkacache.seal): the seal
    # rotates with the keyring and needs no secret of its own.
    seal_keys: dict[str, bytes]

    @classmethod
    def parse(cls, spec: str) -> "Keyring":
        keys: dict[str, AESGCM] = {}
        seal_keys: dict[str, bytes] = {}
        order: list[str] = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            if not sep or not key_id or len(key_id.encode()) > 255:
                raise ValueError(f"FIELD_ENCRYPTION_KEYS: entry {key_id!r} must look like id:base64key")
            try:
                raw = base64.b64decode(encoded, validate=True)
            except ValueError:
                raise ValueError(f"FIELD_ENCRYPTION_KEYS: key {key_id!r} is not valid base64") from None
            if len(raw) not in (16, 24, 32):
                raise ValueError(f"FIELD_ENCRYPTION_KEYS: key {key_id!r} must be 16, 24 or 32 bytes, got {len(raw)}")
            if key_id in keys:
                raise ValueError(f"FIELD_ENCRYPTION_KEYS: key id {key_id!r} appears twice")
            keys[key_id] = AESGCM(raw)
            seal_keys[key_id] = hashlib.blake2b(b"kafkacache message seal v1", key=raw, digest_size=32).digest()
            order.append(key_id)
        if not order:
            raise ValueError("FIELD_ENCRYPTION_KEYS is empty: at least one key is needed")
        return cls(keys=keys, current=order[0], seal_keys=seal_keys)

    def encrypt(self, plaintext: bytes, *, field: str) -> bytes:
        head, aead = self._encrypting
        nonce = os.urandom(NONCE_BYTES)
        return head + nonce + aead.encrypt(nonce, plaintext, field.encode())

    @functools.cached_property
    def _encrypting(self) -> tuple[bytes, AESGCM]:
        """The ciphertext prefix (format, key id) and the cipher of the current key: a bulk
        load encrypts a dozen fields a record."""
        kid = self.current.encode()
        return bytes((FORMAT_VERSION, len(kid))) + kid, self.keys[self.current]

    def decrypt(self, blob: bytes, *, field: str) -> bytes:
        if len(blob) < 2 or blob[0] != FORMAT_VERSION:
            raise CryptoError(f"{field}: not an encrypted field (unknown format)")
        kid_len = blob[1]
        kid = blob[2 : 2 + kid_len].decode(errors="replace")
        aead = self.keys.get(kid)
        if aead is None:
            raise CryptoError(f"{field}: encrypted with key {kid!r}, which is not configured")
        start = 2 + kid_len
        nonce, sealed = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, sealed, field.encode())
        except InvalidTag:
            raise CryptoError(f"{field}: authentication failed (wrong key or tampered data)") from None


def key_id_of(blob: bytes) -> str:
    """The key id an encrypted field names (without decrypting it)."""
    if len(blob) < 2 or blob[0] != FORMAT_VERSION:
        raise CryptoError("not an encrypted field (unknown format)")
    return blob[2 : 2 + blob[1]].decode(errors="replace")


@functools.cache
def _keyring_for(spec: str) -> Keyring:
    return Keyring.parse(spec)


def keyring() -> Keyring:
    """The keyring of the current settings (parsed once per distinct value)."""
    return _keyring_for(settings.FIELD_ENCRYPTION_KEYS)
