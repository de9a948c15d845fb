"""Writes and reads of the Redis cache (layout in kafkacache/redis_keys.py).

The consumer hands a whole batch to `cache_apply`: one script call, one round
trip, applied atomically, so a reader never sees half a batch.

Every write is guarded by the message's publish time (`t`): a record is only
replaced by a message at least as new, and a delete leaves a tombstone. Kafka
orders messages within a partition only; an update that changes a record's key
deletes the old key, which lives in another partition, so without the guard an
older add consumed late from that partition would resurrect the old record.
The guard also makes redelivery (at-least-once) harmless: the same message
writes the same fields again.
"""

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import hiredis
import redis
from django.conf import settings
from redis.exceptions import NoScriptError

from kafkacache.redis_keys import REC_PREFIX, TOMBSTONE_PREFIX, load_key, rec_key

# One script call applies a whole batch, in order: Redis runs a script atomically
# (a reader never sees half a batch, as with MULTI/EXEC) and the client sends one
# command instead of one EVALSHA per message plus MULTI/EXEC framing, which was a
# quarter of the consumer's time. The guard per op is the one described above.
# KEYS and ARGV are consumed op by op; ARGV[1] is the tombstone TTL; each op is
#   'p' (put):    KEYS rec, tombstone; ARGV 'p', created, value, uuid, schema version
#   'd' (delete): KEYS rec, tombstone; ARGV 'd', created
#   's' (sadd):   KEYS load set;       ARGV 's', member
_APPLY = """
local ttl = ARGV[1]
local k, a, n = 1, 2, #ARGV
while a <= n do
  local op = ARGV[a]
  if op == 'p' then
    local t = tonumber(ARGV[a + 1])
    local current = redis.call('HGET', KEYS[k], 't')
    if not (current and tonumber(current) > t) then
      local deleted = redis.call('GET', KEYS[k + 1])
      if not (deleted and tonumber(deleted) > t) then
        redis.call('HSET', KEYS[k], 'p', ARGV[a + 2], 'u', ARGV[a + 3], 'v', ARGV[a + 4], 't', ARGV[a + 1])
      end
    end
    k, a = k + 2, a + 5
  elseif op == 'd' then
    local t = tonumber(ARGV[a + 1])
    local current = redis.call('HGET', KEYS[k], 't')
    if not (current and tonumber(current) > t) then
      redis.call('DEL', KEYS[k])
      local deleted = redis.call('GET', KEYS[k + 1])
      if (not deleted) or tonumber(deleted) < t then redis.call('SET', KEYS[k + 1], ARGV[a + 1], 'EX', ttl) end
    end
    k, a = k + 2, a + 2
  elseif op == 's' then
    redis.call('SADD', KEYS[k], ARGV[a + 1])
    k, a = k + 1, a + 2
  else
    return redis.error_reply('cache apply: unknown op ' .. tostring(op))
  end
end
return 1
"""
_APPLY_SHA = hashlib.sha1(_APPLY.encode(), usedforsecurity=False).hexdigest()


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


def _script_args(ops: Sequence[CacheOp]) -> list[str | bytes | int]:
    """EVALSHA's arguments after the SHA: number of keys, keys, ARGV."""
    keys: list[str] = []
    args: list[str | bytes | int] = [settings.CACHE_TOMBSTONE_SECONDS]
    for op in ops:
        if op.event == "delete":
            keys += (REC_PREFIX + op.key, TOMBSTONE_PREFIX + op.key)
            args += ("d", op.created_ms)
            continue
        if op.old_key and op.old_key != op.key:
            keys += (REC_PREFIX + op.old_key, TOMBSTONE_PREFIX + op.old_key)
            args += ("d", op.created_ms)
        keys += (REC_PREFIX + op.key, TOMBSTONE_PREFIX + op.key)
        args += ("p", op.created_ms, op.value, op.uuid, op.schema_version)
        if op.load:
            keys.append(load_key(op.load))
            args += ("s", op.key)
    return [len(keys), *keys, *args]


def _evalsha(client: redis.Redis, args: list) -> None:
    try:
        client.evalsha(_APPLY_SHA, *args)
    except NoScriptError:  # first use on this server, or after a restart / SCRIPT FLUSH
        client.script_load(_APPLY)
        client.evalsha(_APPLY_SHA, *args)


def cache_apply(client: redis.Redis, ops: Sequence[CacheOp]) -> None:
    """Apply a batch of ops in order, atomically, in one round trip (one script call)."""
    if ops:
        _evalsha(client, _script_args(ops))


class SentApply(NamedTuple):
    """A cache_apply on the wire: the connection its reply will come on."""

    connection: redis.Connection
    args: list


def cache_apply_send(client: redis.Redis, ops: Sequence[CacheOp]) -> SentApply | None:
    """Send a batch's script call without waiting for the reply: Redis runs it while the
    caller does other work; cache_apply_wait reads the reply (and raises its error)."""
    if not ops:
        return None
    args = _script_args(ops)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        # hiredis packs the ~700 arguments in C: redis-py's per-argument encoding was
        # a tenth of the consume loop.
        packed = hiredis.pack_command(("EVALSHA", _APPLY_SHA, *args))  # type: ignore[arg-type]  # stub: a 1-tuple
        conn.send_packed_command([packed])
    except BaseException:
        conn.disconnect()
        pool.release(conn)
        raise
    return SentApply(conn, args)


def cache_apply_discard(client: redis.Redis, sent: SentApply | None) -> None:
    """Give up on a sent call without its reply (the caller applies the ops again)."""
    if sent is not None:
        sent.connection.disconnect()  # the reply would come on it: never reuse it
        client.connection_pool.release(sent.connection)


def cache_apply_wait(client: redis.Redis, sent: SentApply | None) -> None:
    if sent is None:
        return
    pool = client.connection_pool
    try:
        sent.connection.read_response()
    except NoScriptError:  # a whole reply was read: the connection is fine
        pool.release(sent.connection)
        _evalsha(client, sent.args)
        return
    except BaseException:
        sent.connection.disconnect()  # the reply may still be on its way: never reuse
        pool.release(sent.connection)
        raise
    pool.release(sent.connection)


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
