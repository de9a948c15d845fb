"""Re-encryption to the newest keys, so an old key can be retired.

Two stores hold ciphertexts under keys that rotate:

- the cache (each cached record's value): the card and account numbers inside each value,
  under FIELD_ENCRYPTION_KEYS. `records_reencrypt` rewrites every value whose fields
  are under an older key, in format 1 (core.crypto) or in another mode than
  FIELD_ENCRYPTION_MODES gives them (AES-GCM or FF1: the way a field moves from one to
  the other) with the first key, format 2 and the configured mode, record by record,
  with a compare-and-set (kafkacache.cache.record_value_swap): a value the consumer
  replaced meanwhile is left as the consumer wrote it. The new bytes no longer hash to
  the published hash, so the record keeps what the cache leg (recon.services.cache_check) needs
  to tell a re-encryption from drift: the old bytes' hashes and the new bytes' BLAKE2b
  (core.redis_keys: rx, rn). A later write by the consumer makes both moot.
- the audit log (recon.AuditPayload): each payload under AUDIT_ENCRYPTION_KEYS.
  `audit_reencrypt` re-wraps it under the first key and rewrites the card and account
  ciphertexts inside the value to the first field key (core.records.record_reencrypt:
  the same old ciphertext always gives the same new one, so a published and a consumed
  copy that were equal stay equal). The row keeps the evidence (recon.audit
  payload_reencrypted): the original bytes' hashes, the new bytes' hash, when, and from
  which keys; recon.audit.payload_hash compares it by the original hash, so the
  drill-down, the field diff and a replay from the audit log still vouch for it.

When both report done with nothing skipped, nothing in Redis or the audit log names an
older field key: the old key can be removed at once (a skipped item is named in the log
and in RekeyCounts.unreadable: no configured key reads it, so it cannot be rewritten).
Kafka's own retained messages are not rewritten (a log cannot be): once the old key is
gone, the consumer dead-letters a re-read old message (kafkacache.batch_plan) instead of
caching bytes its readers cannot decrypt.

Both walk in a fixed order and keep their position in Redis (kc:rekey:records: the
SCAN cursor; kc:rekey:audit: the last row id), so a run stopped midway resumes
where it stopped; `restart` starts over. No network inside a transaction: each
audit batch is one transaction, its position is written after the commit.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from core.avro import AvroError
from core.cache_records import cache_records_get, record_keys_scan
from core.clients import redis_client
from core.crypto import CryptoError
from core.records import record_decode, record_key, record_reencrypt
from kafkacache.cache import record_value_swap
from recon import audit
from recon.models import AuditPayload

logger = logging.getLogger(__name__)

RECORDS_POSITION = "kc:rekey:records"
AUDIT_POSITION = "kc:rekey:audit"
_AUDIT_FIELDS = [
    "key_id",
    "schema_version",
    "payload",
    "size",
    "original_hashes",
    "reencrypted_hash",
    "reencrypted_at",
    "reencrypted_from",
]


@dataclass
class RekeyCounts:
    seen: int = 0
    rewritten: int = 0
    current: int = 0  # already under the newest key and format
    skipped: int = 0  # changed meanwhile (cache), or unreadable: named in the log
    done: bool = False
    unreadable: list[str] = field(default_factory=list)  # what no configured key reads, by name


def records_reencrypt(
    *, batch: int = 500, restart: bool = False, progress: Callable[[RekeyCounts], None] | None = None
) -> RekeyCounts:
    """Rewrite every cached record not yet under the newest field key (resumable)."""
    client = redis_client()
    if restart:
        client.delete(RECORDS_POSITION)
    held = client.get(RECORDS_POSITION)
    resume = held.decode() if isinstance(held, bytes) else (held or "")
    counts = RekeyCounts()
    # Every master on a Redis Cluster; the position names the node and its cursor.
    for position, keys in record_keys_scan(client, count=batch, position=resume):
        cached = cache_records_get(client, keys)
        for key in keys:
            if key not in cached:
                continue
            counts.seen += 1
            value = cached[key].value
            try:
                version = cached[key].schema_version or 1
                if record_key(record_decode(value, schema_version=version, decrypt=False)["client_id"]) != key:
                    raise CryptoError("record of another client cached under this key")
                fresh, replaced, fresh_version = record_reencrypt(value, schema_version=version, key=key)
            except (AvroError, CryptoError, ValueError, KeyError) as exc:
                counts.skipped += 1
                counts.unreadable.append(f"cached record {key}")
                logger.warning("re-encryption skipped %r: %s", key, exc)
                continue
            if not replaced:
                counts.current += 1
                continue
            if record_value_swap(client, key, held=value, fresh=fresh, schema_version=fresh_version):
                counts.rewritten += 1
            else:
                counts.skipped += 1
                logger.info("re-encryption skipped %r: written by the consumer meanwhile", key)
        client.set(RECORDS_POSITION, position)
        if progress:
            progress(counts)
    client.delete(RECORDS_POSITION)
    counts.done = True
    return counts


def _audit_row_reencrypt(row: AuditPayload, newest: str, now) -> str:
    """Bring one audit row to the newest audit key and its value's fields to the newest field key:
    "rewritten", "current", or why it was skipped (the row then stays exactly as it was)."""
    try:
        plaintext = audit.unseal(row)
    except Exception as exc:  # a row that cannot be read stays as it is, and is named
        return f"audit key: {type(exc).__name__}: {exc}"
    fresh, replaced, version = plaintext, set[str](), row.schema_version
    if plaintext:  # a delete's payload is empty: no fields
        try:
            fresh, replaced, version = record_reencrypt(plaintext, schema_version=row.schema_version or 1)
        except (AvroError, CryptoError, ValueError, KeyError) as exc:
            return f"field keys: {type(exc).__name__}: {exc}"
    if replaced:
        row.schema_version = version
        audit.payload_reencrypted(row, value=plaintext, fresh=fresh, replaced=replaced, now=now)
        return "rewritten"
    if row.key_id != newest:
        row.key_id, row.payload = audit.seal(plaintext, topic_id=row.topic_id, message_uuid=row.uuid, side=row.side)
        return "rewritten"
    return "current"


def audit_reencrypt(
    *, batch: int = 500, restart: bool = False, progress: Callable[[RekeyCounts], None] | None = None
) -> RekeyCounts:
    """Every audit payload under the newest audit key, its inner field ciphertexts under the
    newest field key (resumable). Each row is unsealed to know: a second run rewrites 0."""
    client = redis_client()
    if restart:
        client.delete(AUDIT_POSITION)
    last = int(client.get(AUDIT_POSITION) or 0)
    newest = audit.current_key_id()
    counts = RekeyCounts()
    while True:
        now = timezone.now()
        with transaction.atomic():
            rows = list(AuditPayload.objects.select_for_update().filter(id__gt=last).order_by("id")[:batch])
            changed = []
            for row in rows:
                counts.seen += 1
                outcome = _audit_row_reencrypt(row, newest, now)
                if outcome == "rewritten":
                    changed.append(row)
                elif outcome == "current":
                    counts.current += 1
                else:
                    counts.skipped += 1
                    counts.unreadable.append(f"audit row {row.pk} ({row.side} {row.uuid})")
                    logger.warning(
                        "audit re-encryption skipped row %s (%s %s): %s", row.pk, row.side, row.uuid, outcome
                    )
            AuditPayload.objects.bulk_update(changed, _AUDIT_FIELDS)
        counts.rewritten += len(changed)
        if not rows:
            break
        last = rows[-1].pk
        client.set(AUDIT_POSITION, last)
        if progress:
            progress(counts)
    client.delete(AUDIT_POSITION)
    counts.done = True
    return counts
