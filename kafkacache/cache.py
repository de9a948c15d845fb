"""The one writer of the Redis cache (layout: core.redis_keys; the one reader: core.cache_records).

Every write of a record, a tombstone or a load's set goes through a script here: the
consumer's batch (`cache_apply`: every load, change and replay reaches Redis through
it), the re-encryption's compare-and-set of a value (`record_value_swap`,
kafkacache.services.reencrypt) and the move of a key from the layout before hash tags
(`relayout_moves`, kafkacache.services.relayout). No other module writes these keys.

The consumer hands a whole batch to `cache_apply`: on a standalone Redis one
script call, one round trip, applied atomically, so a reader never sees half a
batch. On Redis Cluster (core.clients) a script may touch one hash slot only: the
batch is split per slot (a record and its tombstone share one: core.redis_keys),
each slot's share is one call of the same script, every node gets its calls in one
write, and the retrieval-set adds follow once every script succeeded. The version
check stays per key and atomic; the batch as a whole is not (a reader may see one
slot's share before another's).

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
import logging
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import hiredis
import redis
from django.conf import settings
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
)

from core.cache_records import Untagged
from core.clients import is_cluster
from core.hashing import content_hash, content_hashes
from core.redis_keys import (
    DIGEST_HEX,
    DIGESTS_COMPLETE,
    digest_key,
    digest_place,
    digest_share,
    load_key,
    rec_key,
    record_pack,
    tombstone_key,
)

logger = logging.getLogger(__name__)

# What a record key holds, for the scripts: held_version(key) is the record's source version
# (0: unordered or hand-written), nil when the key holds no record. It reads the record's head
# only (core.redis_keys: HEAD_BYTES), never the value; a record of the hash layout before
# answers WRONGTYPE to GETRANGE and is read by its field (a write then replaces it by one value).
_HELD = """
local function held_version(key)
  local head = redis.pcall('GETRANGE', key, 0, 17)
  if type(head) == 'table' then
    return tonumber(redis.call('HGET', key, 'sv') or '0') or 0
  end
  if head == '' then return nil end
  if string.sub(head, 1, 2) == 'K1' then return tonumber(string.sub(head, 3, 18)) or 0 end
  return 0
end
"""

# A record's share of its bucket's digest (core.redis_keys.digest_share: the same on both
# sides), and the one update of a bucket a write makes: plus the new share, minus the old.
_DIGEST = """
local function share(key, v)
  return tonumber(string.sub(redis.sha1hex(key .. '|' .. string.format('%d', v)), 1, DIGEST_HEX), 16)
end
local function digest_drop(dkey, field, key, old)
  if old ~= nil then redis.call('HINCRBY', dkey, field, string.format('%d', -share(key, old))) end
end
local function digest_put(dkey, field, key, old, new, new_share)
  if old == new then return end
  if old == nil then
    redis.call('HINCRBY', dkey, field, new_share)
  else
    redis.call('HINCRBY', dkey, field, string.format('%d', tonumber(new_share) - share(key, old)))
  end
end
""".replace("DIGEST_HEX", str(DIGEST_HEX))

# One script call applies a whole batch, in order: Redis runs a script atomically
# (a reader never sees half a batch, as with MULTI/EXEC) and the client sends one
# command instead of one EVALSHA per message plus MULTI/EXEC framing, which was a
# quarter of the consumer's time. The version check is in the same call, so it
# costs no round trip. KEYS and ARGV are consumed op by op; ARGV[1] is the
# tombstone TTL; each op is
#   'p' (put):    KEYS rec, tombstone, digest; ARGV 'p', version, field, share, packed record
#                 (core.redis_keys.record_pack)
#   'd' (delete): KEYS rec, tombstone, digest; ARGV 'd', version, field
#   's' (sadd):   KEYS load set;               ARGV 's', count, members
#   'r' (restore): KEYS rec, tombstone, digest; ARGV 'r', version, field, share, packed record
#   'x' (restore of a record the source no longer holds): KEYS rec, tombstone, digest; ARGV 'x', version, field
# Every op that adds, replaces or drops a record moves its bucket's digest (one HINCRBY, none
# when the version stays) in the same atomic call. A put brings the new record's share
# (core.redis_keys.digest_share, computed by the consumer): a new key adds it as it came,
# without a hash in the script; only the share of a replaced or dropped version is hashed here.
# A put reads the record's head and, only when the key holds no record, its tombstone (a
# key never holds both), then SETs one value: two or three calls a key. A load set's
# members come last, in one SADD per set and batch (unconditional, inside the same atomic
# call, so no reader can tell the order; a SADD a message was a tenth of the script's CPU).
# A restore writes whatever the key holds, a higher version or a tombstone: the way back from
# a bad version (replay.ways.restore). The consumer makes one only from a message this
# product's producer sealed as a restore (kafkacache.batch_plan).
# It answers one verdict letter per put, delete and restore (VERDICTS).
_APPLY = (
    _HELD
    + _DIGEST
    + """
local ttl = ARGV[1]
local k, a, n = 1, 2, #ARGV
local verdicts = {}
while a <= n do
  local op = ARGV[a]
  if op == 'p' or op == 'd' then
    local v = tonumber(ARGV[a + 1])
    local held = held_version(KEYS[k])
    local absent = held == nil
    local cur = held or 0
    local tomb = 0
    if absent then tomb = tonumber(redis.call('GET', KEYS[k + 1]) or '0') end
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
        redis.call('SET', KEYS[k], ARGV[a + 4])
        if tomb > 0 then redis.call('DEL', KEYS[k + 1]) end
        digest_put(KEYS[k + 2], ARGV[a + 2], KEYS[k], held, v, ARGV[a + 3])
      end
      a = a + 5
    else
      if v > 0 then
        if absent or v > cur then
          if not absent then
            redis.call('DEL', KEYS[k])
            digest_drop(KEYS[k + 2], ARGV[a + 2], KEYS[k], cur)
          end
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
        if not absent then
          redis.call('DEL', KEYS[k])
          digest_drop(KEYS[k + 2], ARGV[a + 2], KEYS[k], cur)
        end
        verdict = 'a'
      else
        verdict = 'u'
      end
      a = a + 3
    end
    verdicts[#verdicts + 1] = verdict
    k = k + 3
  elseif op == 'r' then
    local held = held_version(KEYS[k])
    redis.call('SET', KEYS[k], ARGV[a + 4])
    redis.call('DEL', KEYS[k + 1])
    digest_put(KEYS[k + 2], ARGV[a + 2], KEYS[k], held, tonumber(ARGV[a + 1]), ARGV[a + 3])
    verdicts[#verdicts + 1] = 'a'
    k, a = k + 3, a + 5
  elseif op == 'x' then
    local held = held_version(KEYS[k])
    redis.call('DEL', KEYS[k])
    digest_drop(KEYS[k + 2], ARGV[a + 2], KEYS[k], held)
    if tonumber(ARGV[a + 1]) > 0 then
      redis.call('SET', KEYS[k + 1], ARGV[a + 1], 'EX', ttl)
    else
      redis.call('DEL', KEYS[k + 1])
    end
    verdicts[#verdicts + 1] = 'a'
    k, a = k + 3, a + 3
  elseif op == 's' then
    local count = tonumber(ARGV[a + 1])
    redis.call('SADD', KEYS[k], unpack(ARGV, a + 2, a + 1 + count))
    k, a = k + 1, a + 2 + count
  else
    return redis.error_reply('cache apply: unknown op ' .. tostring(op))
  end
end
return table.concat(verdicts)
"""
)
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

    event: str  # bulk | add | update | delete | restore (over any version; no value: the source deleted it)
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


class _Step(NamedTuple):
    """One primitive of a batch: a put or delete (a verdict letter) or a retrieval-set add."""

    keys: tuple[str, ...]
    args: tuple[str | bytes | int, ...]


# Members per SADD: unpack() puts them all on Lua's C stack (LUAI_MAXCSTACK, 8,000).
_SADD_MAX = 1000


def _where(key: str) -> tuple[tuple[str, str, str], str]:
    """A put's or delete's KEYS (the record, its tombstone and its slot's digests: one slot)
    and its bucket's field in the digests."""
    digests, field = digest_place(key)
    return (rec_key(key), tombstone_key(key), digests), field


def _steps(ops: Sequence[CacheOp]) -> list[_Step]:
    """The batch as the script's primitives: the puts and deletes in op order (an update
    with a key change is the old key's delete, then the put), then each load set's adds."""
    steps: list[_Step] = []
    loads: dict[str, list[str]] = {}
    for op in ops:
        keys, field = _where(op.key)
        if op.event == "delete":
            steps.append(_Step(keys, ("d", op.version, field)))
            continue
        if op.event == "restore":
            if not op.value:
                steps.append(_Step(keys, ("x", op.version, field)))
            else:
                packed = record_pack(op.value, op.uuid, op.schema_version, op.created_ms, op.version, op.topic)
                steps.append(_Step(keys, ("r", op.version, field, digest_share(op.key, op.version), packed)))
            continue
        if op.old_key and op.old_key != op.key:
            old_keys, old_field = _where(op.old_key)
            steps.append(_Step(old_keys, ("d", op.old_version or op.version, old_field)))
        packed = record_pack(op.value, op.uuid, op.schema_version, op.created_ms, op.version, op.topic)
        steps.append(_Step(keys, ("p", op.version, field, digest_share(op.key, op.version), packed)))
        if op.load:
            loads.setdefault(op.load, []).append(op.key)
    for load, members in loads.items():
        for start in range(0, len(members), _SADD_MAX):
            chunk = members[start : start + _SADD_MAX]
            steps.append(_Step((load_key(load),), ("s", len(chunk), *chunk)))
    return steps


def _script_args(steps: Sequence[_Step]) -> list[str | bytes | int]:
    """EVALSHA's arguments after the SHA: number of keys, keys, ARGV."""
    keys: list[str] = []
    args: list[str | bytes | int] = [settings.CACHE_TOMBSTONE_SECONDS]
    for step in steps:
        keys += step.keys
        args += step.args
    return [len(keys), *keys, *args]


class _SlotPlan(NamedTuple):
    """A batch split for a cluster: per slot the script's arguments and which of the
    batch's verdict letters its reply holds; the retrieval-set adds for afterwards."""

    scripts: dict[int, list[str | bytes | int]]  # slot -> EVALSHA args
    letters: dict[int, list[int]]  # slot -> positions of its letters in the batch's reply
    total: int  # verdict letters in the batch
    sadds: list[tuple[str, tuple[str, ...]]]  # (load set, members)


def slot_plan(client: RedisCluster, ops: Sequence[CacheOp]) -> _SlotPlan:
    """Group the batch's puts and deletes by the hash slot of their key (a record and its
    tombstone share it: hash tags), keeping their order within a slot, so that each
    slot's script checks and writes its keys in the batch's order."""
    by_slot: dict[int, list[_Step]] = {}
    letters: dict[int, list[int]] = {}
    sadds: list[tuple[str, tuple[str, ...]]] = []
    total = 0
    for step in _steps(ops):
        if step.args[0] == "s":
            sadds.append((step.keys[0], tuple(str(m) for m in step.args[2:])))
            continue
        slot = client.keyslot(step.keys[0])
        by_slot.setdefault(slot, []).append(step)
        letters.setdefault(slot, []).append(total)
        total += 1
    scripts = {slot: _script_args(steps) for slot, steps in by_slot.items()}
    return _SlotPlan(scripts, letters, total, sadds)


def slot_letters(plan: _SlotPlan, replies: Mapping[int, bytes | str]) -> str:
    """The slots' replies put back into the batch's order: one letter per put and delete,
    as the one script of a standalone Redis answers it (verdicts_per_op reads it)."""
    out = [""] * plan.total
    for slot, positions in plan.letters.items():
        reply = replies[slot]
        text = reply.decode() if isinstance(reply, bytes) else reply
        for position, letter in zip(positions, text, strict=True):
            out[position] = letter
    return "".join(out)


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


class WaitShort(NamedTuple):
    """A node whose WAIT after the batch's scripts found fewer replicas than asked."""

    node: str
    wanted: int
    acknowledged: int


class Reply(NamedTuple):
    """What Redis answered a batch: a verdict letter per put and delete, in op order
    (verdicts_per_op reads it), and the WAIT shortfalls (a cluster with REDIS_CLUSTER_WAIT_REPLICAS)."""

    letters: bytes
    wait_short: list[WaitShort]


class Applied(NamedTuple):
    """A batch applied: each op's verdict (APPLIED, EQUAL, OLDER, UNORDERED) and the WAIT shortfalls."""

    verdicts: list[str]
    wait_short: list[WaitShort]


def cache_apply(client: redis.Redis, ops: Sequence[CacheOp]) -> Applied:
    """Apply a batch of ops in order, in one round trip (per node on a cluster).

    Standalone: one script call, atomic. Cluster: one script call per hash slot, each
    atomic for its keys. Answers each op's verdict and the WAIT shortfalls."""
    if not ops:
        return Applied([], [])
    if is_cluster(client):
        reply = cache_apply_wait(client, cache_apply_send(client, ops))
        return Applied(verdicts_per_op(ops, reply.letters), reply.wait_short)
    return Applied(verdicts_per_op(ops, _evalsha(client, _script_args(_steps(ops)))), [])


class _NodeCall(NamedTuple):
    """One node's share of a batch on the wire."""

    node: redis.Redis  # its client (NOSCRIPT: load and run again there)
    connection: redis.Connection
    slots: list[int]  # the scripts sent, in order (standalone: [0])
    waits: int  # WAIT numreplicas sent after them (0: none)


class SentApply(NamedTuple):
    """A cache_apply on the wire: per node the connection its replies will come on."""

    calls: list[_NodeCall]
    scripts: dict[int, list]  # slot (standalone: 0) -> EVALSHA args
    plan: _SlotPlan | None  # cluster only


def cache_apply_send(client: redis.Redis, ops: Sequence[CacheOp]) -> SentApply | None:
    """Send a batch's script calls without waiting for the replies: Redis runs them while
    the caller does other work; cache_apply_wait reads the replies (and raises their error).

    On a cluster every slot's call goes to its master, all of a node's calls (and the
    WAIT after them, REDIS_CLUSTER_WAIT_REPLICAS) in one write."""
    if not ops:
        return None
    if is_cluster(client):
        return _cluster_send(client, ops)  # type: ignore[arg-type]
    args = _script_args(_steps(ops))
    conn = _send(client.connection_pool, [_packed(args)])
    return SentApply([_NodeCall(client, conn, [0], 0)], {0: args}, None)


def _packed(args: list) -> bytes:
    # hiredis packs the ~700 arguments in C: redis-py's per-argument encoding was
    # a tenth of the consume loop.
    return hiredis.pack_command(("EVALSHA", _APPLY_SHA, *args))


def _send(pool: redis.ConnectionPool, packed: list[bytes]) -> redis.Connection:
    conn = pool.get_connection()
    try:
        conn.send_packed_command(packed)
    except BaseException:
        conn.disconnect()
        pool.release(conn)
        raise
    return conn


def _cluster_send(client: RedisCluster, ops: Sequence[CacheOp]) -> SentApply:
    plan = slot_plan(client, ops)
    per_node: dict[str, tuple[ClusterNode, list[int]]] = {}
    try:
        for slot in plan.scripts:
            node = client.nodes_manager.get_node_from_slot(slot)
            per_node.setdefault(node.name, (node, []))[1].append(slot)
    except RedisClusterException as exc:  # a slot without a master (mid fail-over): retried
        _topology_refresh(client)
        raise ClusterDownError(str(exc)) from exc
    waits = settings.REDIS_CLUSTER_WAIT_REPLICAS
    calls: list[_NodeCall] = []
    try:
        for node, slots in per_node.values():
            node_client = client.get_redis_connection(node)
            packed = [_packed(plan.scripts[slot]) for slot in slots]
            if waits:
                packed.append(hiredis.pack_command(("WAIT", waits, settings.REDIS_CLUSTER_WAIT_TIMEOUT_MS)))  # type: ignore[arg-type]  # stub: a 1-tuple
            calls.append(_NodeCall(node_client, _send(node_client.connection_pool, packed), slots, waits))
    except BaseException:
        cache_apply_discard(client, SentApply(calls, plan.scripts, plan))  # type: ignore[arg-type]
        _topology_refresh(client)
        raise
    return SentApply(calls, plan.scripts, plan)


def _topology_refresh(client: RedisCluster) -> None:
    """After a connection error or MOVED, learn the slot map again (a replica promoted);
    the caller's retry then goes to the new master."""
    try:
        client.nodes_manager.initialize()
    except (RedisError, RedisClusterException):  # still failing over: the next retry asks again
        logger.warning("redis cluster slot map not refreshed yet", exc_info=True)


def cache_apply_discard(client: redis.Redis, sent: SentApply | None) -> None:
    """Give up on a sent call without its reply (the caller applies the ops again)."""
    if sent is not None:
        for call in sent.calls:
            call.connection.disconnect()  # the reply would come on it: never reuse it
            call.node.connection_pool.release(call.connection)


def cache_apply_wait(client: redis.Redis, sent: SentApply | None) -> Reply:
    """The script's reply (a verdict letter per put and delete, in op order; verdicts_per_op
    reads it) and the WAIT shortfalls. On a cluster, the slots' replies in the batch's order,
    then the retrieval-set adds (pipelined, after every script succeeded)."""
    if sent is None:
        return Reply(b"", [])
    replies: dict[int, bytes] = {}
    short: list[WaitShort] = []
    failure: BaseException | None = None
    for index, call in enumerate(sent.calls):
        try:
            replies.update(_read_node(call, sent.scripts, short))
        except BaseException as exc:
            cache_apply_discard(client, SentApply(sent.calls[index + 1 :], sent.scripts, sent.plan))
            failure = exc
            break
    if failure is not None:
        if sent.plan is not None and isinstance(failure, ConnectionError | TimeoutError | AskError | ClusterDownError):
            _topology_refresh(client)  # type: ignore[arg-type]
        raise failure
    if sent.plan is None:
        return Reply(replies[0], short)
    if sent.plan.sadds:
        pipe = client.pipeline(transaction=False)
        for name, members in sent.plan.sadds:
            pipe.sadd(name, *members)
        pipe.execute()
    return Reply(slot_letters(sent.plan, replies).encode(), short)


def _read_node(call: _NodeCall, scripts: dict[int, list], short: list[WaitShort]) -> dict[int, bytes]:
    """One node's replies: its scripts' letters (a NOSCRIPT is loaded and run again
    there), then its WAIT's count of replicas (a shortfall is added to `short`, not an error)."""
    pool = call.node.connection_pool
    replies: dict[int, bytes] = {}
    unknown: list[int] = []
    error: ResponseError | None = None
    try:
        for slot in call.slots:
            try:
                replies[slot] = call.connection.read_response()
            except NoScriptError:  # a whole reply was read: the connection is fine
                unknown.append(slot)
            except ResponseError as exc:  # MOVED, CLUSTERDOWN, ...: read the rest, then raise
                error = error or exc
        if call.waits:
            try:
                acknowledged = call.connection.read_response()
            except ResponseError as exc:  # on a node that is no master any more: the MOVED above says why
                error = error or exc
                acknowledged = None
            if isinstance(acknowledged, int) and acknowledged < call.waits:
                where = call.node.connection_pool.connection_kwargs
                node = f"{where.get('host')}:{where.get('port')}"
                short.append(WaitShort(node, call.waits, acknowledged))
    except BaseException:
        call.connection.disconnect()  # the reply may still be on its way: never reuse
        pool.release(call.connection)
        raise
    pool.release(call.connection)
    if error is not None:
        raise error
    for slot in unknown:
        replies[slot] = _evalsha(call.node, scripts[slot])
    return replies


# --- the writes outside the consume loop -------------------------------------------------

# A packed record's fields, for the scripts that change one of them: record_fields(raw) is
# the six fields (core.redis_keys: uuid, schema, created, topic, rx, rn) and where the value
# starts, or nil for a value without the record's head. record_repack puts them back.
_FIELDS = """
local function record_fields(raw)
  if not raw or string.sub(raw, 1, 2) ~= 'K1' then return nil end
  local f, p = {}, 19
  for i = 1, 6 do
    local j = string.find(raw, '|', p, true)
    if not j then return nil end
    f[i] = string.sub(raw, p, j - 1)
    p = j + 1
  end
  return f, p
end
local function record_repack(raw, f, value)
  return string.sub(raw, 1, 18) .. table.concat(f, '|') .. '|' .. value
end
"""

# Replace the value only if it is still the one read: the consumer may have written since.
# The schema version moves from 1 to 2 when a field moves to FF1 (core.records). KEYS
# record; ARGV held value, fresh value, rx, rn, schema. A record of the hash layout before
# is swapped in that layout (cache_relayout makes it one value).
_SWAP = (
    _FIELDS
    + """
local raw = redis.pcall('GET', KEYS[1])
if type(raw) == 'table' then
  if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] then return 0 end
  redis.call('HSET', KEYS[1], 'p', ARGV[2], 'rx', ARGV[3], 'rn', ARGV[4], 'v', ARGV[5])
  return 1
end
local f, at = record_fields(raw)
if not f or string.sub(raw, at) ~= ARGV[1] then return 0 end
f[2], f[5], f[6] = ARGV[5], ARGV[3], ARGV[4]
redis.call('SET', KEYS[1], record_repack(raw, f, ARGV[2]))
return 1
"""
)


def record_value_swap(client: redis.Redis, key: str, *, held: bytes, fresh: bytes, schema_version: int) -> bool:
    """Replace a record's value `held` by `fresh` of `schema_version` (a re-encryption:
    kafkacache.services.reencrypt), unless it changed meanwhile (False). The record keeps what the cache
    leg needs to tell the new bytes from drift: rx, `held`'s hashes under every algorithm,
    and rn, `fresh`'s BLAKE2b."""
    swap = client.register_script(_SWAP)
    replaced, rewritten = content_hashes(held), content_hash(fresh, "blake2b").hex()
    return bool(swap(keys=[rec_key(key)], args=[held, fresh, replaced, rewritten, schema_version]))


# A record of the hash layout before made one value (core.redis_keys.record_pack's bytes),
# unless it is one already (0). KEYS record.
_RESTRING = """
local f = redis.pcall('HMGET', KEYS[1], 'p', 'u', 'v', 't', 'sv', 'tp', 'rx', 'rn')
if f.err or not f[1] then return 0 end
local function digits(text) return (text and string.match(text, '^%d+$')) and text or '0' end
local version = string.format('%016d', tonumber(digits(f[5])))
local fields = {f[2] or '', digits(f[3]), digits(f[4]), f[6] or '', f[7] or '', f[8] or ''}
redis.call('SET', KEYS[1], 'K1' .. version .. table.concat(fields, '|') .. '|' .. f[1])
return 1
"""


def records_restring(client: redis.Redis, keys: Sequence[str]) -> int:
    """Make each of these records of the hash layout one value (one pipelined round trip):
    answers how many were rewritten (a key written meanwhile is one value already)."""
    script = client.register_script(_RESTRING)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        script(keys=[rec_key(key)], client=pipe)
    return sum(pipe.execute())


# The move from the layout before hash tags (kafkacache.services.relayout), by the source version.
# KEYS old record, new record, new tombstone. 'm': moved (a tombstone older than the record
# is dropped: a key holds one or the other); 'k': the new layout held an equal or newer
# version (or a newer delete), the old record dropped.
_RELAYOUT_RECORD = (
    _HELD
    + """
local old = tonumber(redis.call('HGET', KEYS[1], 'sv') or '0')
local held = held_version(KEYS[2])
local present = held ~= nil
held = held or 0
local tomb = tonumber(redis.call('GET', KEYS[3]) or '0')
if (not present or old > held) and (old > tomb or (old == 0 and tomb == 0)) then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('DEL', KEYS[3])
  return 'm'
end
redis.call('DEL', KEYS[1])
return 'k'
"""
)
# KEYS old tombstone, new tombstone, new record.
_RELAYOUT_TOMBSTONE = (
    _HELD
    + """
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
local tomb = tonumber(redis.call('GET', KEYS[2]) or '0')
local held = held_version(KEYS[3]) or 0
if old > tomb and old > held then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('DEL', KEYS[3])  -- a record older than the delete
  return 'm'
end
redis.call('DEL', KEYS[1])
return 'k'
"""
)


def relayout_moves(client: redis.Redis, page: Sequence[Untagged]) -> list[bool]:
    """Move each key of the layout before hash tags to its tagged name (one pipelined round
    trip), unless the tagged one holds an equal or newer version: True for each moved
    (its fields, its tombstone's expiry, a re-encryption's rx/rn come along), False for
    each dropped. Standalone Redis only: an old name and its new one sit in different slots."""
    record, tombstone = client.register_script(_RELAYOUT_RECORD), client.register_script(_RELAYOUT_TOMBSTONE)
    pipe = client.pipeline(transaction=False)
    for old in page:
        if old.tombstone:
            tombstone(keys=[old.name, tombstone_key(old.key), rec_key(old.key)], client=pipe)
        else:
            record(keys=[old.name, rec_key(old.key), tombstone_key(old.key)], client=pipe)
    return [verdict == b"m" for verdict in pipe.execute()]


# A record written before records kept their topic gets it from the publish ledger
# (kafkacache.services.relayout.cache_topics_set), only while it is still the same message's record
# and no topic was set meanwhile. KEYS record; ARGV uuid, topic.
_TOPIC_SET = (
    _FIELDS
    + """
local raw = redis.pcall('GET', KEYS[1])
if type(raw) == 'table' then
  if redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then return 0 end
  local held = redis.call('HGET', KEYS[1], 'tp')
  if held and held ~= '' then return 0 end
  redis.call('HSET', KEYS[1], 'tp', ARGV[2])
  return 1
end
local f, at = record_fields(raw)
if not f or f[1] ~= ARGV[1] or f[4] ~= '' then return 0 end
f[4] = ARGV[2]
redis.call('SET', KEYS[1], record_repack(raw, f, string.sub(raw, at)))
return 1
"""
)


def record_topics_set(client: redis.Redis, records: Sequence[tuple[str, str, str]]) -> list[bool]:
    """Set the topic of each (key, uuid of the message that wrote it, topic) whose record is
    still that message's and has none (one pipelined round trip): True for each set."""
    script = client.register_script(_TOPIC_SET)
    pipe = client.pipeline(transaction=False)
    for key, message_uuid, topic in records:
        script(keys=[rec_key(key)], args=[message_uuid, topic], client=pipe)
    return [bool(done) for done in pipe.execute()]


# A slot's bucket digests replaced by the ones rebuilt from what Redis holds
# (kafkacache.services.cache_scrub), only if no write moved them since they were read: a
# write between the read and the rebuild is in the records read or in the digests, never
# in both. KEYS the slot's digests; ARGV the count of fields read, the HGETALL as read,
# then the rebuilt field, value pairs.
_DIGESTS_SWAP = """
local now = redis.call('HGETALL', KEYS[1])
local n = tonumber(ARGV[1])
if #now ~= n then return 0 end
for i = 1, n do
  if now[i] ~= ARGV[i + 1] then return 0 end
end
redis.call('DEL', KEYS[1])
if #ARGV > n + 1 then redis.call('HSET', KEYS[1], unpack(ARGV, n + 2)) end
return 1
"""


def digests_swap(client: redis.Redis, slot: int, *, read: Sequence[bytes], rebuilt: Mapping[int, int]) -> bool:
    """Replace the digests of one slot by `rebuilt` (sub -> sum) unless they moved since
    they were read as `read` (the flat HGETALL reply): False, the next pass tries again."""
    swap = client.register_script(_DIGESTS_SWAP)
    pairs = [item for sub, value in sorted(rebuilt.items()) if value for item in (sub, value)]
    return bool(swap(keys=[digest_key(slot)], args=[len(read), *read, *pairs]))


def digests_mark_complete(client: redis.Redis) -> None:
    """Say the digests cover every record: a scrub pass rebuilt every slot, or the cache
    held no record yet (from then on every record comes through the write script)."""
    client.set(DIGESTS_COMPLETE, "1")
