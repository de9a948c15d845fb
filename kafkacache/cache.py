"""Writes and reads of the Redis cache (layout in kafkacache/redis_keys.py).

The consumer hands a whole batch to `cache_apply`: one pipeline, one round trip,
applied as one MULTI/EXEC, so a reader never sees half a batch.

Every write is guarded by the message's publish time (`t`): a record is only
replaced by a message at least as new, and a delete leaves a tombstone. Kafka
orders messages within a partition only; an update that changes a record's key
deletes the old key, which lives in another partition, so without the guard an
older add consumed late from that partition would resurrect the old record.
The guard also makes redelivery (at-least-once) harmless: the same message
writes the same fields again.
"""

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import redis
from django.conf import settings

from kafkacache.redis_keys import load_key, rec_key, tombstone_key

_PUT = """
local t = tonumber(ARGV[1])
local current = redis.call('HGET', KEYS[1], 't')
if current and tonumber(current) > t then return 0 end
local deleted = redis.call('GET', KEYS[2])
if deleted and tonumber(deleted) > t then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[2], 'u', ARGV[3], 'v', ARGV[4], 't', ARGV[1])
return 1
"""

_DELETE = """
local t = tonumber(ARGV[1])
local current = redis.call('HGET', KEYS[1], 't')
if current and tonumber(current) > t then return 0 end
redis.call('DEL', KEYS[1])
local deleted = redis.call('GET', KEYS[2])
if (not deleted) or tonumber(deleted) < t then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2]) end
return 1
"""


class CacheOp(NamedTuple):
    """One message's effect on the cache."""

    event: str  # bulk | add | update | delete
    key: str
    created_ms: int
    value: bytes = b""
    uuid: str = ""
    schema_version: int = 0
    old_key: str = ""  # update whose key changed: this key is deleted first
    load: str = ""  # bulk: the retrieval key whose set gets the record key


def cache_apply(client: redis.Redis, ops: Sequence[CacheOp]) -> None:
    """Apply a batch of ops in order, in one pipeline (MULTI/EXEC)."""
    if not ops:
        return
    put, delete = client.register_script(_PUT), client.register_script(_DELETE)
    ttl = settings.CACHE_TOMBSTONE_SECONDS
    pipe = client.pipeline(transaction=True)
    for op in ops:
        if op.event == "delete":
            delete(keys=[rec_key(op.key), tombstone_key(op.key)], args=[op.created_ms, ttl], client=pipe)
            continue
        if op.old_key and op.old_key != op.key:
            delete(keys=[rec_key(op.old_key), tombstone_key(op.old_key)], args=[op.created_ms, ttl], client=pipe)
        put(
            keys=[rec_key(op.key), tombstone_key(op.key)],
            args=[op.created_ms, op.value, op.uuid, op.schema_version],
            client=pipe,
        )
        if op.load:
            pipe.sadd(load_key(op.load), op.key)
    pipe.execute()


class CachedRecord(NamedTuple):
    key: str
    value: bytes
    uuid: str
    schema_version: int
    created_ms: int


def cache_records_get(client: redis.Redis, keys: Iterable[str]) -> dict[str, CachedRecord]:
    """The cached records of these keys that exist (one round trip)."""
    keys = list(keys)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(rec_key(key))
    out = {}
    for key, fields in zip(keys, pipe.execute(), strict=True):
        if fields and b"p" in fields:
            out[key] = CachedRecord(key, fields[b"p"], _text(fields[b"u"]), int(fields[b"v"]), int(fields[b"t"]))
    return out


def load_keys(client: redis.Redis, retrieval_key: str) -> list[str]:
    """The record keys a bulk load delivered, in a stable order (client ids numerically)."""
    members = [_text(m) for m in client.smembers(load_key(retrieval_key))]
    return sorted(members, key=lambda k: (len(k), k))


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
