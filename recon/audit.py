"""The audit log (reconciliation phase 2, for replay): full payloads, encrypted at rest.

Opt-in per topic (Topic.method_audit). The feed hands over each batch once per
side with `payloads_record`; payloads are sealed with AES-GCM under the first
key of AUDIT_ENCRYPTION_KEYS (all keys decrypt, so keys can rotate), kept
`audit_retention_days` and removed by `audit_purge`. The engine uses them to
say which fields of an altered message changed.
"""

import base64
import binascii
import datetime as dt
import functools
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from core.hashing import content_hash, content_hash_in, content_hashes
from core.records import record_decode, record_key_ids
from recon.engine import Draft
from recon.models import AuditPayload, Finding, Topic

logger = logging.getLogger(__name__)

SIDES = (AuditPayload.Side.PUBLISHED, AuditPayload.Side.CONSUMED)
_NONCE = 12
# A diff is worked out for at most this many altered messages per window pass.
DIFF_LIMIT = 500


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
    payload still as re-encryption wrote it (kafkacache.rekey), else the value's own."""
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
    kafkacache.rekey re-encrypted its fields, one line saying when and to which field key."""
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


def payloads_record(*, topic: Topic, side: str, items: Sequence[tuple]) -> int:
    """Keep one batch of payloads: items are (uuid, value_bytes, at_datetime[, schema_version]).

    One bulk insert per call; nothing is kept when the topic's audit method is off.
    Answers how many payloads were stored.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if not topic.method_audit or not items:
        return 0
    now = timezone.now()
    expires = now + dt.timedelta(days=topic.audit_retention_days)
    rows = []
    for item in items:
        message_uuid, value, at = item[0], item[1], item[2]
        schema_version = item[3] if len(item) > 3 else None
        value = bytes(value or b"")
        key_id, blob = seal(value, topic_id=topic.pk, message_uuid=message_uuid, side=side)
        rows.append(
            AuditPayload(
                uuid=message_uuid,
                topic_id=topic.pk,
                side=side,
                key_id=key_id,
                payload=blob,
                size=len(value),
                schema_version=schema_version,
                at=at,
                stored_at=now,
                expires_at=expires,
            )
        )
    AuditPayload.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def audit_purge(*, now: dt.datetime | None = None, chunk: int = 10_000) -> int:
    """Delete payloads past their retention, a chunk per statement (short locks)."""
    now = now or timezone.now()
    total = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "DELETE FROM recon_auditpayload WHERE id IN "
                "(SELECT id FROM recon_auditpayload WHERE expires_at < %s LIMIT %s)",
                [now, chunk],
            )
            total += cursor.rowcount
            if cursor.rowcount < chunk:
                break
    if total:
        logger.info("audit purge removed %s payloads", total)
    return total


def payloads_of(*, topic: Topic, uuids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[AuditPayload]]:
    found: dict[uuid.UUID, list[AuditPayload]] = {}
    for row in AuditPayload.objects.filter(topic=topic, uuid__in=list(uuids)).order_by("at", "id"):
        found.setdefault(row.uuid, []).append(row)
    return found


# --- field-level difference ---------------------------------------------------------


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


def _decode(row: AuditPayload, value: bytes, *, decrypt: bool) -> dict:
    return record_decode(value, schema_version=row.schema_version or 1, decrypt=decrypt)


def message_diff(*, topic: Topic, message_uuid: uuid.UUID, decrypt: bool = False) -> dict:
    """Published vs consumed payloads of one message, field by field.

    With decrypt=False sensitive fields compare as ciphertext: a changed card
    number shows as a changed path without revealing it. Callers check
    recon.access.topic_for_payload before asking for values.
    """
    rows = payloads_of(topic=topic, uuids=[message_uuid]).get(message_uuid, [])
    published = [r for r in rows if r.side == AuditPayload.Side.PUBLISHED]
    consumed = [r for r in rows if r.side == AuditPayload.Side.CONSUMED]
    if not published or not consumed:
        return {"available": False, "reason": "no audit payload on " + ("both sides" if not rows else "one side")}
    pub_row = published[0]
    pub_value = unseal(pub_row)
    # Re-encrypted payloads compare by the original bytes' hash they keep (payload_hash).
    pub_hash = payload_hash(pub_row, pub_value, topic.hash_algorithm)
    # The delivery that differs, if any; else the first one.
    con_row, con_value = consumed[0], unseal(consumed[0])
    con_hash = payload_hash(con_row, con_value, topic.hash_algorithm)
    for row in consumed:
        value = unseal(row)
        if payload_hash(row, value, topic.hash_algorithm) != pub_hash:
            con_row, con_value, con_hash = row, value, payload_hash(row, value, topic.hash_algorithm)
            break
    result: dict[str, Any] = {"available": True, "bytes_equal": pub_value == con_value or pub_hash == con_hash}
    if result["bytes_equal"]:
        result["fields"] = []
        return result
    try:
        fields = field_diff(_decode(pub_row, pub_value, decrypt=decrypt), _decode(con_row, con_value, decrypt=decrypt))
    except LookupError as exc:
        result.update(fields=None, reason=str(exc))
    except Exception as exc:  # an undecodable (corrupted) payload is itself the answer
        result.update(fields=None, reason=f"payload does not decode: {exc.__class__.__name__}: {exc}")
    else:
        result["fields"] = fields
    return result


def altered_with_field_diff(*, topic: Topic, drafts: list[Draft]) -> list[Draft]:
    """Add the changed field paths (not values: findings are seen by viewers) to altered drafts."""
    altered = [d.uuid for d in drafts if d.category == Finding.Category.ALTERED and d.uuid][:DIFF_LIMIT]
    if not altered:
        return drafts
    have = set(AuditPayload.objects.filter(topic=topic, uuid__in=altered).values_list("uuid", flat=True))
    diffs: dict[uuid.UUID, dict] = {}
    for message_uuid in altered:
        if message_uuid not in have:
            continue
        try:
            diff = message_diff(topic=topic, message_uuid=message_uuid, decrypt=False)
        except Exception as exc:  # a bad row must not stop the reconcile
            logger.warning("audit diff of %s failed: %s", message_uuid, exc)
            diff = {"available": False, "reason": f"{exc.__class__.__name__}"}
        if diff.get("fields") is not None:
            diff["fields"] = [f["path"] for f in diff["fields"]]
        diffs[message_uuid] = diff
    return [
        d._replace(detail={**d.detail, "audit": diffs[d.uuid]})
        if d.category == Finding.Category.ALTERED and d.uuid in diffs
        else d
        for d in drafts
    ]
