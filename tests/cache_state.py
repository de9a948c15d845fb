"""The cache as tests and benches see it and damage it.

Reads go through the one reader (core.cache_records). Damage is written behind the
writer's back (a flush, a fail-over, a bad hand: what the legs must find), so it cannot
go through kafkacache.cache: this is the one place outside the reader and the writer
that writes the layout (core.redis_keys) by hand.
"""

from collections.abc import Iterable

import redis

from core.cache_records import CachedRecord, cache_records_get, record_keys_scan
from core.redis_keys import DIGEST_PREFIX, LOAD_PREFIX, REC_PREFIX, TOMBSTONE_PREFIX, Packed, rec_key, record_pack


def cached(client: redis.Redis, key: str) -> CachedRecord | None:
    """The record the cache holds for `key` (None: none)."""
    return cache_records_get(client, [key]).get(key)


def cached_keys(client: redis.Redis) -> set[str]:
    """Every record key the cache holds (SCAN over every master)."""
    return {key for _position, keys in record_keys_scan(client, count=1000) for key in keys}


def records_drop(client: redis.Redis, keys: Iterable[str]) -> None:
    """Records lost behind the feed's back (no tombstone left)."""
    names = [rec_key(key) for key in keys]
    if names:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.unlink(name)
        pipe.execute()


def record_forge(client: redis.Redis, keys: str | Iterable[str], **fields: bytes | str | int) -> None:
    """Set these fields of each key's record as given, the writer's version rule not applied:
    a value changed in place, a version set back, a record some other hand wrote (only the
    fields named: value, uuid, schema_version, created_ms, version, topic; the others kept)."""
    names = [keys] if isinstance(keys, str) else list(keys)
    held = cache_records_get(client, names)
    pipe = client.pipeline(transaction=False)
    for key in names:
        record = held.get(key)
        packed = Packed(*record[1:]) if record is not None else Packed(b"", "", 0, 0, 0, "")
        forged = packed._replace(**{name: _typed(name, value) for name, value in fields.items()})
        pipe.set(rec_key(key), record_pack(*forged))
    pipe.execute()


def _typed(name: str, value: bytes | str | int) -> bytes | str | int:
    if name == "value":
        return value.encode() if isinstance(value, str) else value
    if name in ("uuid", "topic"):
        return value.decode() if isinstance(value, bytes) else str(value)
    return int(value)


def cache_clear(client: redis.Redis) -> None:
    """Every record, tombstone, load set and digest of this Redis database (a bench's own)."""
    for prefix in (REC_PREFIX, TOMBSTONE_PREFIX, LOAD_PREFIX, DIGEST_PREFIX):
        batch = []
        for name in client.scan_iter(prefix + "*", count=10_000):
            batch.append(name)
            if len(batch) >= 10_000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)


def record_topic_drop(client: redis.Redis, key: str) -> None:
    """The record as one written before records kept their topic (no topic)."""
    record_forge(client, key, topic="")
