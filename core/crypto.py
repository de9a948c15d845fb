"""Field encryption of sensitive fields: AES-GCM per field, or NIST FF1 format-preserving.

Keys come from settings.FIELD_ENCRYPTION_KEYS ("id:base64key,..."): the first key
encrypts, every listed key decrypts, so keys rotate by putting a new key first
and dropping the old one once nothing encrypted with it is left in Kafka/Redis.

Each ciphertext names its own key id. The message header `key-id` says which key
a producer used, but the cache keeps only the value bytes (kc:rec:{key} field p),
so a reader of the cache must be able to find the key from the field alone.

Layout: b"\x02" | len(key id) (1 byte) | key id | 12-byte nonce | ciphertext+tag.
The associated data binds the ciphertext to where it belongs (field_binding): the
record key, the field's path (cards[1].card_number) and the field's identity (the
card's id and last 4 digits, the account's last 4), so a ciphertext copied into
another record, another card or another field does not decrypt there. Format 1
(associated data: the field name only) is read only by the re-encryption command
(`manage.py keys_reencrypt`, legacy=True), which rewrites it as format 2.

Re-encryption (Keyring.reencrypt) takes its nonce from the old ciphertext and its
binding (an HMAC under a key derived from the current key), not from os.urandom:
the same old ciphertext always becomes the same new one, so two copies of a field
that were equal (a published and a consumed audit payload, the cache and the audit
log) stay equal, and two that differed stay different. A nonce repeats only for the
same old ciphertext in the same place, that is for the same plaintext and
associated data, which gives the same ciphertext again and reveals nothing new.

Format-preserving mode (core.fpe, FF1 over AES): digits in, as many digits out, the
tweak being the same binding as AES-GCM's associated data. The key id cannot travel
inside a value that must stay a digit string, so the record carries it beside the
value (core.records: `<field>_fpe`, with the digit format). Each configured key gives
its FF1 key by HKDF-SHA256 (info "kc-field-ff1-v1", the key's own length: AES-128, -192
or -256), so one key id names one key in both modes, rotation is the same list, and
no AES key is ever used by two algorithms. FF1 is deterministic: a re-encryption of
the same number in the same place under the same key gives the same digits.
"""

import base64
import functools
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from core.fpe import FF1, DigitFormat, FpeError, digit_format, format_for, join, split

FORMAT_VERSION = 2
LEGACY_FORMAT = 1  # associated data: the field name only
NONCE_BYTES = 12


class CryptoError(ValueError):
    """A ciphertext that cannot be decrypted (unknown key, tampered, malformed)."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, AESGCM]
    current: str  # id of the key that encrypts
    rekey_nonce_key: bytes = b""  # derived from the current key: Keyring.reencrypt's nonces
    ff1: dict[str, FF1] | None = None  # per key id, the FF1 cipher of its derived key

    @classmethod
    def parse(cls, spec: str) -> "Keyring":
        keys: dict[str, AESGCM] = {}
        ff1: dict[str, FF1] = {}
        order: list[str] = []
        first_raw = b""
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
            ff1[key_id] = FF1(_ff1_key(raw), 10)
            order.append(key_id)
            first_raw = first_raw or raw
        if not order:
            raise ValueError("FIELD_ENCRYPTION_KEYS is empty: at least one key is needed")
        nonce_key = hmac.new(first_raw, b"kc-rekey-nonce-v1", hashlib.sha256).digest()
        return cls(keys=keys, current=order[0], rekey_nonce_key=nonce_key, ff1=ff1)

    def encrypt(self, plaintext: bytes, *, field: str, binding: bytes) -> bytes:
        """`field` names the field in errors; `binding` (field_binding) is where it belongs."""
        head, aead = self._encrypting
        nonce = os.urandom(NONCE_BYTES)
        return head + nonce + aead.encrypt(nonce, plaintext, binding)

    def encrypt_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """`encrypt` of each (plaintext, binding), the same format, with their nonces drawn
        from the OS in one call (a bulk load encrypts a dozen fields a record)."""
        head, aead = self._encrypting
        nonces = os.urandom(NONCE_BYTES * len(items))
        out = []
        for i, (plaintext, binding) in enumerate(items):
            nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            out.append(head + nonce + aead.encrypt(nonce, plaintext, binding))
        return out

    def is_current(self, blob: bytes) -> bool:
        """Whether a ciphertext is already in the current format under the current key."""
        return len(blob) >= 2 and blob[0] == FORMAT_VERSION and key_id_of(blob) == self.current

    def reencrypt(self, blob: bytes, *, field: str, binding: bytes) -> bytes:
        """`blob` (any configured key, format 1 or 2) under the current key in format 2, with a
        nonce derived from `blob` and `binding`: the same blob always gives the same bytes."""
        plaintext = self.decrypt(blob, field=field, binding=binding, legacy=True)
        return self.reencrypt_clear(plaintext, old=blob, binding=binding, field=field)

    def reencrypt_clear(self, plaintext: bytes, *, old: bytes, binding: bytes, field: str = "") -> bytes:
        """`plaintext` under the current key in format 2, its nonce derived from the ciphertext it
        replaces (`old`, any mode's bytes) and `binding`: one old ciphertext, one new one."""
        if not self.rekey_nonce_key:
            raise CryptoError(f"{field}: this keyring was not made by Keyring.parse (no re-encryption nonce key)")
        head, aead = self._encrypting
        nonce = hmac.new(
            self.rekey_nonce_key, len(binding).to_bytes(4, "big") + binding + old, hashlib.sha256
        ).digest()[:NONCE_BYTES]
        return head + nonce + aead.encrypt(nonce, plaintext, binding)

    @functools.cached_property
    def _encrypting(self) -> tuple[bytes, AESGCM]:
        """The ciphertext prefix (format, key id) and the cipher of the current key: a bulk
        load encrypts a dozen fields a record."""
        kid = self.current.encode()
        return bytes((FORMAT_VERSION, len(kid))) + kid, self.keys[self.current]

    def decrypt(self, blob: bytes, *, field: str, binding: bytes, legacy: bool = False) -> bytes:
        """The clear bytes; CryptoError when the key is unknown, the bytes were changed or the
        ciphertext belongs elsewhere. legacy=True also reads format 1 (for re-encryption only)."""
        if len(blob) < 2 or blob[0] not in ((FORMAT_VERSION, LEGACY_FORMAT) if legacy else (FORMAT_VERSION,)):
            raise CryptoError(f"{field}: not an encrypted field (unknown format)")
        aad = binding if blob[0] == FORMAT_VERSION else field.rpartition(".")[2].encode()
        kid_len = blob[1]
        kid = blob[2 : 2 + kid_len].decode(errors="replace")
        aead = self.keys.get(kid)
        if aead is None:
            raise CryptoError(f"{field}: encrypted with key {kid!r}, which is not configured")
        start = 2 + kid_len
        nonce, sealed = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise CryptoError(
                f"{field}: authentication failed (wrong key, tampered data, or a ciphertext from elsewhere)"
            ) from None

    # ------------------------------------------------------------ format-preserving (FF1)
    def fpe_encrypt_many(self, items: Sequence[tuple[str, bytes, DigitFormat, str]]) -> list[tuple[str, str]]:
        """Each (digits, binding, wanted format, field path) under the current key: (digits, format
        used), the format being `wanted` or its non-Luhn twin for a number failing the Luhn check
        (core.fpe). CryptoError when a number is too short for its format (FF1's minimum domain)."""
        cipher = self._ff1(self.current, field=items[0][3] if items else "")
        parts, used = [], []
        for digits, binding, wanted, path in items:
            fmt = format_for(wanted, digits)
            try:
                body, tail = split(fmt, digits, path)
            except FpeError as exc:
                raise CryptoError(str(exc)) from None
            parts.append((body, binding))
            used.append((fmt, tail))
        bodies = cipher.encrypt_many(parts)
        return [(join(fmt, body, tail), fmt.name) for body, (fmt, tail) in zip(bodies, used, strict=True)]

    def fpe_decrypt(self, digits: str, *, key_id: str, format_name: str, field: str, binding: bytes) -> str:
        """The clear digits of an FF1 field. CryptoError for an unknown key or format, or a value
        that is not digits of a length the format takes. Nothing can say whether the digits are the
        right ones: FF1 has no tag (docs/security.md)."""
        return self.fpe_decrypt_many([(digits, key_id, format_name, field, binding)])[0]

    def fpe_decrypt_many(self, items: Sequence[tuple[str, str, str, str, bytes]]) -> list[str]:
        """fpe_decrypt of each (digits, key id, format, field path, binding), the values of one
        key in step (a record's fields are usually under one)."""
        out: list[str] = [""] * len(items)
        by_key: dict[str, list[int]] = {}
        for i, (_, key_id, _, _, _) in enumerate(items):
            by_key.setdefault(key_id, []).append(i)
        for key_id, indexes in by_key.items():
            cipher = self._ff1(key_id, field=items[indexes[0]][3])
            parts = []
            try:
                for i in indexes:
                    digits, _, format_name, field, binding = items[i]
                    fmt = digit_format(format_name)
                    body, tail = split(fmt, digits, field)
                    parts.append((fmt, body, tail, binding))
                bodies = cipher.decrypt_many([(body, binding) for _, body, _, binding in parts])
            except FpeError as exc:
                raise CryptoError(str(exc)) from None
            for i, (fmt, _, tail, _), body in zip(indexes, parts, bodies, strict=True):
                out[i] = join(fmt, body, tail)
        return out

    def _ff1(self, key_id: str, *, field: str) -> FF1:
        cipher = (self.ff1 or {}).get(key_id)
        if cipher is None:
            if self.ff1 is None:
                raise CryptoError(f"{field}: this keyring was not made by Keyring.parse (no FF1 keys)")
            raise CryptoError(f"{field}: encrypted with key {key_id!r}, which is not configured")
        return cipher


def _ff1_key(raw: bytes) -> bytes:
    """The FF1 key of a configured field key: never the AES-GCM key itself."""
    return HKDF(algorithm=hashes.SHA256(), length=len(raw), salt=None, info=b"kc-field-ff1-v1").derive(raw)


def field_binding(*, record_key: str, path: str, identity: str) -> bytes:
    """The associated data of an encrypted field: its record key, path and identity,
    each length-prefixed so no two different triples give the same bytes."""
    return field_bindings(record_key, [(path, identity)])[0]


def field_bindings(record_key: str, places: Iterable[tuple[str, str]]) -> list[bytes]:
    """field_binding of each (path, identity) of one record, the record key's part made once."""
    head = _BINDING_PREFIX + _prefixed(record_key)
    return [head + _prefixed(path) + _prefixed(identity) for path, identity in places]


_BINDING_PREFIX = b"kc-field-v2"


def _prefixed(part: str) -> bytes:
    raw = part.encode()
    return len(raw).to_bytes(4, "big") + raw


def key_id_of(blob: bytes, *, legacy: bool = False) -> str:
    """The key id an encrypted field names (without decrypting it)."""
    if len(blob) < 2 or blob[0] not in ((FORMAT_VERSION, LEGACY_FORMAT) if legacy else (FORMAT_VERSION,)):
        raise CryptoError("not an encrypted field (unknown format)")
    return blob[2 : 2 + blob[1]].decode(errors="replace")


@functools.cache
def _keyring_for(spec: str) -> Keyring:
    return Keyring.parse(spec)


def keyring() -> Keyring:
    """The keyring of the current settings (parsed once per distinct value)."""
    return _keyring_for(settings.FIELD_ENCRYPTION_KEYS)
