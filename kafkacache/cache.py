"""Writes and reads of the Redis cache (layout in core/redis_keys.py).

The consumer hands a whole batch to `cache_apply`: one script call, one round
trip, applied atomically, so a reader never sees half a batch.

Every write is ordered by the record's source version (core.sources), never
by a clock: a record is replaced only by a message of an equal or newer version
(equal: the same source state again, a redelivery or a replay: idempotent), and
a delete leaves a tombstone holding its version, so a write older than the
delete cannot bring the record back. Kafka orders a key's messages within its
partition only; a renumbered client's old key lives in another partition, a bulk
record read before a change may be published after it, and a replay may be
published while a newer change is still in the consumer's lag: the version
decides in every case, whatever the arrival order.

A message without a version (version 0: an unordered source, or a message from
before versions existed) may fill a key that holds nothing ordered, never
replace or delete a versioned record.

Tombstones live CACHE_TOMBSTONE_SECONDS, at least as long as any replay can
reach back (the ledger's retention), and are dropped as soon as a newer record
is written.
"""

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import hiredis
import redis
from django.conf import settings
from redis.exceptions import NoScriptError

from core.redis_keys import REC_PREFIX, TOMBSTONE_PREFIX, load_key, rec_key

# One script call applies a whole batch, in order: Redis runs a script atomically
# (a reader never sees half a batch, as with MULTI/EXEC) and the client sends one
# command instead of one EVALSHA per message plus MULTI/EXEC framing, which was a
# quarter of the consumer's time. The version check is in the same call, so it
# costs no round trip. KEYS and ARGV are consumed op by op; ARGV[1] is the
# tombstone TTL; each op is
#   'p' (put):    KEYS rec, tombstone; ARGV 'p', version, value, uuid, schema version, created, topic
#   'd' (delete): KEYS rec, tombstone; ARGV 'd', version
#   's' (sadd):   KEYS load set;       ARGV 's', member
# It answers one verdict letter per put and delete (VERDICTS).
_APPLY = """
local ttl = ARGV[1]
local k, a, n = 1, 2, #ARGV
local verdicts = {}
while a <= n do
  local op = ARGV[a]
  if op == 'p' or op == 'd' then
    local v = tonumber(ARGV[a + 1])
    local held = redis.call('HMGET', KEYS[k], 'sv', 'u')
    local absent = not held[1] and not held[2]
    local cur = tonumber(held[1] or '0')
    local tomb = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
    local verdict
    if op == 'p' then
      if v > 0 then
        if (absent or v >= cur) and v > tomb then
          verdict = ((not absent) and v == cur) and 'e' or 'a'
        else
          verdict = 'o'
        end
      elseif (absent or cur == 0) and tomb == 0 then
        verdict = 'a'
      else
        verdict = 'u'
      end
      if verdict ~= 'o' and verdict ~= 'u' then
        redis.call('HSET', KEYS[k], 'p', ARGV[a + 2], 'u', ARGV[a + 3], 'v', ARGV[a + 4], 't', ARGV[a + 5],
          'sv', ARGV[a + 1], 'tp', ARGV[a + 6])
        if tomb > 0 then redis.call('DEL', KEYS[k + 1]) end
      end
      a = a + 7
    else
      if v > 0 then
        if absent or v > cur then
          redis.call('DEL', KEYS[k])
          if v > tomb then
            redis.call('SET', KEYS[k + 1], ARGV[a + 1], 'EX', ttl)
            verdict = 'a'
          else
            verdict = (v == tomb) and 'e' or 'o'
          end
        else
          verdict = 'o'
        end
      elseif absent or cur == 0 then
        redis.call('DEL', KEYS[k])
        verdict = 'a'
      else
        verdict = 'u'
      end
      a = a + 2
    end
    verdicts[#verdicts + 1] = verdict
    k = k + 2
  elseif op == 's' then
    redis.call('SADD', KEYS[k], ARGV[a + 1])
    k, a = k + 1, a + 2
  else
    return redis.error_reply('cache apply: unknown op ' .. tostring(op))
  end
end
return table.concat(verdicts)
"""
_APPLY_SHA = hashlib.sha1(_APPLY.encode(), usedforsecurity=False).hexdigest()

# One letter per put and delete, in op order (an update with a key change is two: the old key's delete, then the put).
APPLIED = "a"  # written
EQUAL = "e"  # the key already held this version: written again (put) or left as it was (delete), idempotent
OLDER = "o"  # refused: the key holds a newer version, or a newer delete's tombstone
UNORDERED = "u"  # refused: a message without a version may not replace or delete a versioned record
VERDICTS = {APPLIED: "applied", EQUAL: "same version", OLDER: "older than the cache", UNORDERED: "unordered"}


def put_verdict(version: int, *, held: int | None, tombstone: int | None) -> str:
    """What the script answers for a put of `version` (0: unordered) on a key holding a record
    of version `held` (None: no record; 0: an unordered one) and a tombstone (None or 0: none).

    The script's rule, for readers that must predict it (a replay's dry run and pre-check);
    tests/kafkacache/test_cache.py holds the two to the same answers on the real Redis.
    """
    tomb = tombstone or 0
    if version > 0:
        if (held is None or version >= held) and version > tomb:
            return EQUAL if held is not None and version == held else APPLIED
        return OLDER
    return APPLIED if (held is None or held == 0) and tomb == 0 else UNORDERED


class CacheOp(NamedTuple):
    """One message's effect on the cache."""

    event: str  # bulk | add | update | delete
    key: str
    version: int  # source version; 0: unordered
    value: bytes = b""
    uuid: str = ""
    schema_version: int = 0
    old_key: str = ""  # update whose key changed: this key is deleted first
    load: str = ""  # bulk: the retrieval key whose set gets the record key
    created_ms: int = 0  # publish time, kept for display only: it orders nothing
    topic: str = ""  # the topic that wrote the record (whose payload permission reads it)
    old_version: int = 0  # the old key's delete; 0: `version`


def _script_args(ops: Sequence[CacheOp]) -> list[str | bytes | int]:
    """EVALSHA's arguments after the SHA: number of keys, keys, ARGV."""
    keys: list[str] = []
    args: list[str | bytes | int] = [settings.CACHE_TOMBSTONE_SECONDS]
    for op in ops:
        if op.event == "delete":
            keys += (REC_PREFIX + op.key, TOMBSTONE_PREFIX + op.key)
            args += ("d", op.version)
            continue
        if op.old_key and op.old_key != op.key:
            keys += (REC_PREFIX + op.old_key, TOMBSTONE_PREFIX + op.old_key)
            args += ("d", op.old_version or op.version)
        keys += (REC_PREFIX + op.key, TOMBSTONE_PREFIX + op.key)
        args += ("p", op.version, op.value, op.uuid, op.schema_version, op.created_ms, op.topic)
        if op.load:
            keys.append(load_key(op.load))
            args += ("s", op.key)
    return [len(keys), *keys, *args]


def verdicts_per_op(ops: Sequence[CacheOp], reply: bytes | str | None) -> list[str]:
    """The script's reply as one verdict per op: a put with a key change gets its put's
    letter (its old key's delete is the letter before)."""
    letters = reply.decode() if isinstance(reply, bytes) else reply or ""
    out, i = [], 0
    for op in ops:
        if op.event != "delete" and op.old_key and op.old_key != op.key:
            i += 1
        out.append(letters[i] if i < len(letters) else "")
        i += 1
    return out


def _evalsha(client: redis.Redis, args: list) -> bytes:
    try:
        return client.evalsha(_APPLY_SHA, *args)
    except NoScriptError:  # first use on this server, or after a restart / SCRIPT FLUSH
        client.script_load(_APPLY)
        return client.evalsha(_APPLY_SHA, *args)


def cache_apply(client: redis.Redis, ops: Sequence[CacheOp]) -> list[str]:
    """Apply a batch of ops in order, atomically, in one round trip (one script call).

    Answers each op's verdict (APPLIED, EQUAL, OLDER, UNORDERED)."""
    if not ops:
        return []
    return verdicts_per_op(ops, _evalsha(client, _script_args(ops)))


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


def cache_apply_wait(client: redis.Redis, sent: SentApply | None) -> bytes:
    """The script's reply (a verdict letter per put and delete; verdicts_per_op reads it)."""
    if sent is None:
        return b""
    pool = client.connection_pool
    try:
        reply = sent.connection.read_response()
    except NoScriptError:  # a whole reply was read: the connection is fine
        pool.release(sent.connection)
        return _evalsha(client, sent.args)
    except BaseException:
        sent.connection.disconnect()  # the reply may still be on its way: never reuse
        pool.release(sent.connection)
        raise
    pool.release(sent.connection)
    return reply


class CachedRecord(NamedTuple):
    key: str
    value: bytes
    uuid: str
    schema_version: int
    created_ms: int
    version: int = 0  # source version; 0: unordered (or written before versions)
    topic: str = ""  # the topic that wrote it ("": written before topics were kept)


def cache_records_get(client: redis.Redis, keys: Iterable[str]) -> dict[str, CachedRecord]:
    """The cached records of these keys that exist (one round trip)."""
    keys = list(keys)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(rec_key(key))
    out = {}
    for key, fields in zip(keys, pipe.execute(), strict=True):
        if fields and b"p" in fields:
            out[key] = CachedRecord(
                key,
                fields[b"p"],
                _text(fields[b"u"]),
                int(fields[b"v"]),
                int(fields.get(b"t") or 0),
                int(fields.get(b"sv") or 0),
                _text(fields.get(b"tp") or b""),
            )
    return out


def load_keys(client: redis.Redis, retrieval_key: str) -> list[str]:
    """The record keys a bulk load delivered, in a stable order (client ids numerically)."""
    members = [_text(m) for m in client.smembers(load_key(retrieval_key))]
    return sorted(members, key=lambda k: (len(k), k))


def tombstones_get(client: redis.Redis, keys: Iterable[str]) -> dict[str, int]:
    """The delete version of each of these keys that has a tombstone (one round trip)."""
    keys = list(keys)
    found = client.mget([TOMBSTONE_PREFIX + key for key in keys]) if keys else []
    return {key: int(raw) for key, raw in zip(keys, found, strict=True) if raw is not None}


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
