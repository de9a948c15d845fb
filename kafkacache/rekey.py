"""Re-encryption to the newest keys, so an old key can be retired.

Two stores hold ciphertexts under keys that rotate:

- the cache (kc:rec:{<key>}, field p): the card and account numbers inside each value,
  under FIELD_ENCRYPTION_KEYS. `records_reencrypt` rewrites every value whose fields
  are under an older key or in format 1 (core.crypto) with the first key and
  format 2, record by record, with a compare-and-set: a value the consumer replaced
  meanwhile is left as the consumer wrote it. The new bytes no longer hash to the
  published hash, so the record keeps what the cache leg (recon.cache_check) needs to
  tell a re-encryption from drift: `rx`, the old bytes' hashes, and `rn`, the new
  bytes' BLAKE2b. A later write by the consumer makes both moot.
- the audit log (recon.AuditPayload): each payload under AUDIT_ENCRYPTION_KEYS.
  `audit_reencrypt` re-wraps it under the first key. The payload itself (the
  message bytes, the audit evidence) stays byte for byte what was published; its
  inner field ciphertexts are retired by the audit retention, not rewritten.

Both walk in a fixed order and keep their position in Redis (kc:rekey:records: the
SCAN cursor; kc:rekey:audit: the last row id), so a run stopped midway resumes
where it stopped; `restart` starts over. No network inside a transaction: each
audit batch is one transaction, its position is written after the commit.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from core.avro import AvroError
from core.clients import redis_client
from core.crypto import FORMAT_VERSION, CryptoError, key_id_of, keyring
from core.hashing import content_hash
from core.records import SENSITIVE, record_decode, record_encode, record_key
from core.redis_keys import REC_MATCH, record_key_of
from core.redis_scan import scan_pages
from recon import audit
from recon.models import AuditPayload

logger = logging.getLogger(__name__)

RECORDS_POSITION = "kc:rekey:records"
AUDIT_POSITION = "kc:rekey:audit"
HASH_ALGORITHMS = ("blake2b", "xxh3", "crc32")
# Replace p only if it is still the value read: the consumer may have written since.
_CAS = """
if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[2], 'rx', ARGV[3], 'rn', ARGV[4])
return 1
"""


@dataclass
class RekeyCounts:
    seen: int = 0
    rewritten: int = 0
    current: int = 0  # already under the newest key and format
    skipped: int = 0  # changed meanwhile (cache), or unreadable: named in the log
    done: bool = False


def old_hashes(value: bytes) -> str:
    """The `rx` field: the replaced bytes' hash under each algorithm a topic may use."""
    return ",".join(f"{alg}:{content_hash(value, alg).hex()}" for alg in HASH_ALGORITHMS)


def _is_current(value: bytes, schema_version: int, current: str) -> bool:
    record = record_decode(value, schema_version=schema_version, decrypt=False)
    for list_name, field, _ in SENSITIVE:
        for item in record[list_name]:
            blob = item[field]
            if not blob or blob[0] != FORMAT_VERSION or key_id_of(blob) != current:
                return False
    return True


def records_reencrypt(
    *, batch: int = 500, restart: bool = False, progress: Callable[[RekeyCounts], None] | None = None
) -> RekeyCounts:
    """Rewrite every cached record not yet under the newest field key (resumable)."""
    client = redis_client()
    cas = client.register_script(_CAS)
    if restart:
        client.delete(RECORDS_POSITION)
    held = client.get(RECORDS_POSITION)
    resume = held.decode() if isinstance(held, bytes) else (held or "")
    current = keyring().current
    counts = RekeyCounts()
    # Every master on a Redis Cluster; the position names the node and its cursor.
    for position, names in scan_pages(client, match=REC_MATCH, count=batch, position=resume):
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(name, "p", "v")
        for name, (value, raw_version) in zip(names, pipe.execute(), strict=True):
            if value is None:
                continue
            counts.seen += 1
            key = record_key_of(name)
            try:
                version = int(raw_version or 1)
                if _is_current(value, version, current):
                    counts.current += 1
                    continue
                plain = record_decode(value, schema_version=version, decrypt=True, key=key, legacy=True)
                if record_key(plain["client_id"]) != key:
                    raise CryptoError(f"record of client {plain['client_id']} cached under another key")
                fresh = record_encode(plain).value
            except (AvroError, CryptoError, ValueError, KeyError) as exc:
                counts.skipped += 1
                logger.warning("re-encryption skipped %r: %s", key, exc)
                continue
            if cas(keys=[name], args=[value, fresh, old_hashes(value), content_hash(fresh, "blake2b").hex()]):
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


def audit_reencrypt(
    *, batch: int = 500, restart: bool = False, progress: Callable[[RekeyCounts], None] | None = None
) -> RekeyCounts:
    """Re-wrap every audit payload not under the newest audit key (resumable)."""
    client = redis_client()
    if restart:
        client.delete(AUDIT_POSITION)
    last = int(client.get(AUDIT_POSITION) or 0)
    newest = audit.current_key_id()
    counts = RekeyCounts()
    while True:
        with transaction.atomic():
            rows = list(
                AuditPayload.objects.select_for_update()
                .filter(id__gt=last)
                .exclude(key_id=newest)
                .order_by("id")[:batch]
            )
            changed = []
            for row in rows:
                counts.seen += 1
                try:
                    plaintext = audit.unseal(row)
                except Exception as exc:  # a row that cannot be read stays as it is, and is named
                    counts.skipped += 1
                    logger.warning("audit re-encryption skipped row %s: %s", row.pk, type(exc).__name__)
                    continue
                row.key_id, row.payload = audit.seal(
                    plaintext, topic_id=row.topic_id, message_uuid=row.uuid, side=row.side
                )
                changed.append(row)
            AuditPayload.objects.bulk_update(changed, ["key_id", "payload"])
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
