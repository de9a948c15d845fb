"""The audit log's sealing: full payloads kept per topic (Topic.method_audit), encrypted at rest.

Payloads are sealed with AES-GCM under the first key of AUDIT_ENCRYPTION_KEYS (every key
decrypts, so keys can rotate), bound to their topic, message and side. Here: the keyring,
seal and unseal, the hash a kept payload stands for, and the field diff of two records.
The writes (a batch kept, the purge after `audit_retention_days`) are
recon.services.audit; the reads (a message's payloads, its published/consumed diff, the
changed fields of an altered finding) recon.selectors.audit.
"""

import base64
import binascii
import datetime as dt
import functools
import os
import uuid
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.hashing import content_hash, content_hash_in, content_hashes
from core.records import record_decode, record_key_ids
from recon.models import AuditPayload

SIDES = (AuditPayload.Side.PUBLISHED, AuditPayload.Side.CONSUMED)
_NONCE = 12


@functools.cache
def _keyring(raw: str) -> tuple[str, dict[str, AESGCM]]:
    keys: dict[str, AESGCM] = {}
    first = ""
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not sep or not key_id or len(key) not in (16, 24, 32):
            raise ImproperlyConfigured(
                "AUDIT_ENCRYPTION_KEYS must be 'id:base64key,...' with 16, 24 or 32-byte keys; "
                f"bad entry {key_id or item[:8]!r}"
            )
        keys[key_id] = AESGCM(key)
        first = first or key_id
    if not keys:
        raise ImproperlyConfigured("AUDIT_ENCRYPTION_KEYS is empty")
    return first, keys


def keyring_check() -> None:
    """Fail at start-up, with the setting's name, when the keys are malformed."""
    _keyring(settings.AUDIT_ENCRYPTION_KEYS)


def current_key_id() -> str:
    """The key id new payloads are sealed under (the first of AUDIT_ENCRYPTION_KEYS)."""
    return _keyring(settings.AUDIT_ENCRYPTION_KEYS)[0]


def _aad(topic_id: int, message_uuid: uuid.UUID, side: str) -> bytes:
    return f"{topic_id}:{message_uuid}:{side}".encode()


def seal(plaintext: bytes, *, topic_id: int, message_uuid: uuid.UUID, side: str) -> tuple[str, bytes]:
    key_id, keys = _keyring(settings.AUDIT_ENCRYPTION_KEYS)
    nonce = os.urandom(_NONCE)
    return key_id, nonce + keys[key_id].encrypt(nonce, plaintext, _aad(topic_id, message_uuid, side))


def unseal(row: AuditPayload) -> bytes:
    _, keys = _keyring(settings.AUDIT_ENCRYPTION_KEYS)
    if row.key_id not in keys:
        raise ImproperlyConfigured(f"AUDIT_ENCRYPTION_KEYS has no key {row.key_id!r} (needed for audit row {row.pk})")
    blob = bytes(row.payload)
    return keys[row.key_id].decrypt(blob[:_NONCE], blob[_NONCE:], _aad(row.topic_id, row.uuid, row.side))


def payload_hash(row: AuditPayload, value: bytes, algorithm: str) -> bytes:
    """The hash `value` (row's unsealed bytes) stands for: the original published bytes' for a
    payload still as re-encryption wrote it (kafkacache.services.reencrypt), else the value's own."""
    if row.reencrypted_hash and content_hash(value, "blake2b").hex() == row.reencrypted_hash:
        original = content_hash_in(row.original_hashes, algorithm)
        if original is not None:
            return original
    return content_hash(value, algorithm)


def payload_reencrypted(row: AuditPayload, *, value: bytes, fresh: bytes, replaced: set[str], now: dt.datetime) -> None:
    """Put re-encrypted bytes on the row (sealed under the newest audit key), keeping the evidence:
    the original bytes' hashes (from the first re-encryption on), the new bytes' hash, when and
    which field keys it replaced. The caller saves the row."""
    row.original_hashes = row.original_hashes or content_hashes(value)
    row.reencrypted_hash = content_hash(fresh, "blake2b").hex()
    row.reencrypted_at = now
    row.reencrypted_from = ",".join(sorted(replaced))
    row.size = len(fresh)
    row.key_id, row.payload = seal(fresh, topic_id=row.topic_id, message_uuid=row.uuid, side=row.side)


def payload_evidence(row: AuditPayload, value: bytes, algorithm: str) -> dict:
    """What the drill-down and the evidence pack show of one kept payload (`value`, unsealed):
    its hash as recorded (the original bytes' for a re-encrypted one, payload_hash) and, when
    kafkacache.services.reencrypt re-encrypted its fields, one line saying when and to which field key."""
    shown = {"side": row.side, "hash_algorithm": algorithm, "hash": payload_hash(row, value, algorithm).hex()}
    if row.reencrypted_at:
        to = ""
        try:
            record = record_decode(value, schema_version=row.schema_version or 1, decrypt=False)
            to = next(iter(record_key_ids(record)), "")
        except Exception:  # noqa: S110  (the note names no key rather than fail the page)
            pass
        shown["reencrypted"] = (
            f"re-encrypted on {row.reencrypted_at.date().isoformat()} to field key {to or '?'}"
            f" (from {row.reencrypted_from or '?'}); hash as recorded"
        )
    return shown


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list | tuple):
        out = {f"{path}#": len(value)}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{path}[{i}]"))
        return out
    return {path: value}


def field_diff(published: dict, consumed: dict) -> list[dict]:
    """Fields whose values differ, as [{path, published, consumed}] (absent is None)."""
    a, b = _flatten(published), _flatten(consumed)
    return [
        {"path": path, "published": a.get(path), "consumed": b.get(path)}
        for path in sorted(set(a) | set(b))
        if a.get(path) != b.get(path)
    ]
