"""The one reader of the Redis cache: records, tombstones, a load's keys, every record key.

The layout (keys, fields) is core.redis_keys; the one writer is kafkacache.cache. Every
app reads the cache through these functions, none by field or key name, so a change of
the layout changes this module and the writer only. Reads are batched: one pipelined
round trip per batch (per node on a Redis Cluster, multi-key reads split per slot),
SCAN over every master.

A record is one value (core.redis_keys.record_pack). A value without the record's head
(written behind the writer's back) reads as a record of version 0 holding those bytes, and
a record of the hash layout before is read field by field (one more round trip, for those
keys only) until it is rewritten: a bad hand is read, not a crash. A number field that is
absent or not an integer reads as 0 (unordered, unknown).
"""

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import hiredis
import redis
from redis.exceptions import ResponseError

from core.clients import is_cluster, mget_across_slots

# The digests' arithmetic, for the digest leg and the scrub (where a key's share goes and what
# it is), named here so that no other module imports the layout.
from core.redis_keys import BUCKETS_PER_SLOT as BUCKETS_PER_SLOT
from core.redis_keys import DIGEST_MOD as DIGEST_MOD
from core.redis_keys import (
    DIGESTS_COMPLETE,
    LEGACY_FIELDS,
    REC_MATCH,
    REC_PREFIX,
    TOMBSTONE_PREFIX,
    Packed,
    digest_key,
    load_key,
    rec_key,
    record_key_of,
    record_unpack,
    slot_of,
    tombstone_key,
    untagged_record_key,
)
from core.redis_keys import SLOTS as SLOTS
from core.redis_keys import bucket_of as bucket_of
from core.redis_keys import digest_share as digest_share
from core.redis_scan import scan_pages


class CachedRecord(NamedTuple):
    key: str
    value: bytes  # the published Kafka value bytes (Avro, numbers still encrypted)
    uuid: str  # the message that wrote it
    schema_version: int  # of `value`'s Avro; 0: not recorded
    created_ms: int  # the message's created header (epoch ms; orders nothing)
    version: int = 0  # source version; 0: unordered (or written before versions)
    topic: str = ""  # the topic that wrote it ("": written before topics were kept)
    replaced_hashes: str = ""  # after a re-encryption: the replaced bytes' hashes ("alg:hex,...")
    rewritten_hash: str = ""  # with it: the BLAKE2b hex of the bytes the re-encryption wrote


def cache_records_get(client: redis.Redis, keys: Iterable[str]) -> dict[str, CachedRecord]:
    """The cached records of these keys that exist (one round trip)."""
    keys = list(keys)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(rec_key(key))
    out = {}
    for key, packed in zip(keys, _records(client, keys, pipe.execute(raise_on_error=False)), strict=True):
        if packed is not None:
            out[key] = CachedRecord(key, *packed)
    return out


def _records(client: redis.Redis, keys: Sequence[str], replies: list) -> list[Packed | None]:
    """Each GET reply as its record (None: no record); a record of the hash layout (WRONGTYPE)
    is read with HMGET, all such keys in one more round trip."""
    legacy = [i for i, reply in enumerate(replies) if isinstance(reply, ResponseError)]
    fields: dict[int, list] = {}
    if legacy:
        pipe = client.pipeline(transaction=False)
        for i in legacy:
            pipe.hmget(rec_key(keys[i]), LEGACY_FIELDS)
        fields = dict(zip(legacy, pipe.execute(), strict=True))
    out: list[Packed | None] = []
    for i, reply in enumerate(replies):
        if i in fields:
            value, message_uuid, schema, created, version, topic, replaced, rewritten = fields[i]
            out.append(
                None
                if value is None
                else Packed(
                    value,
                    _text(message_uuid),
                    _number(schema),
                    _number(created),
                    _number(version),
                    _text(topic),
                    _text(replaced),
                    _text(rewritten),
                )
            )
        elif isinstance(reply, ResponseError):
            raise reply
        else:
            out.append(None if reply is None else record_unpack(reply))
    return out


def tombstones_get(client: redis.Redis, keys: Iterable[str]) -> dict[str, int]:
    """The delete version of each of these keys that has a tombstone (one round trip)."""
    keys = list(keys)
    found = mget_across_slots(client, [tombstone_key(key) for key in keys])
    return {key: int(raw) for key, raw in zip(keys, found, strict=True) if raw is not None}


def load_keys(client: redis.Redis, retrieval_key: str) -> list[str]:
    """The record keys a bulk load delivered, in a stable order (client ids numerically)."""
    members = [_text(m) for m in client.smembers(load_key(retrieval_key))]
    return sorted(members, key=lambda k: (len(k), k))


def record_keys_scan(client: redis.Redis, *, count: int, position: str = "") -> Iterator[tuple[str, list[str]]]:
    """Every record key Redis holds, a SCAN page at a time (never blocks the server; every
    master of a cluster), each page with the position to resume after it (core.redis_scan)."""
    for after, names in scan_pages(client, match=REC_MATCH, count=count, position=position):
        yield after, [record_key_of(name) for name in names]


def legacy_records_scan(client: redis.Redis, *, count: int) -> Iterator[list[str]]:
    """The record keys still held in the hash layout before one-value records, a SCAN page
    at a time (the server filters by type; kafkacache.services.relayout rewrites them)."""
    for _position, names in scan_pages(client, match=REC_MATCH, count=count, kind="hash"):
        yield [record_key_of(name) for name in names]


def bucket_digests(client: redis.Redis) -> dict[int, int]:
    """The digest the cache keeps of each bucket (core.redis_keys), zeros left out: every
    slot's digests, read a thousand slots a pipeline."""
    out: dict[int, int] = {}
    for start in range(0, SLOTS, 1000):
        for slot, flat in slot_digests_read(client, range(start, min(start + 1000, SLOTS))).items():
            out.update((slot * BUCKETS_PER_SLOT + sub, value) for sub, value in slot_digest_values(flat).items())
    return out


def slot_digests_read(client: redis.Redis, slots: Sequence[int]) -> dict[int, list[bytes]]:
    """Each slot's digests as Redis holds them, flat (field, value, ...) in the server's order:
    what kafkacache.cache.digests_swap compares before it replaces them."""
    pipe = client.pipeline(transaction=False)
    for slot in slots:
        pipe.hgetall(digest_key(slot))
    out = {}
    for slot, fields in zip(slots, pipe.execute(), strict=True):
        out[slot] = [item for pair in fields.items() for item in pair]
    return out


def slot_digest_values(flat: Sequence[bytes]) -> dict[int, int]:
    """A slot's digests read flat, as sub -> sum modulo DIGEST_MOD, zeros left out."""
    values = {int(flat[i]): int(flat[i + 1]) % DIGEST_MOD for i in range(0, len(flat), 2)}
    return {sub: value for sub, value in values.items() if value}


def slot_record_keys(client: redis.Redis, slots: set[int], *, count: int) -> dict[int, list[str]]:
    """The record keys Redis holds in these slots, each once: one SCAN of every record name
    (names only), kept by slot (SCAN may answer a key twice)."""
    found: dict[int, set[str]] = {}
    for _position, names in scan_pages(client, match=REC_MATCH, count=count):
        for name in names:
            key = record_key_of(name)
            slot = slot_of(key)
            if slot in slots:
                found.setdefault(slot, set()).add(key)
    return {slot: sorted(keys) for slot, keys in found.items()}


def digests_complete(client: redis.Redis) -> bool:
    """Whether the bucket digests cover every record (kafkacache.cache marks it)."""
    return bool(client.exists(DIGESTS_COMPLETE))


class Untagged(NamedTuple):
    """A key of the layout before hash tags (kc:rec:<key>, kc:dv:<key>), still to be moved."""

    name: str | bytes  # its name in that layout
    key: str  # the record key
    tombstone: bool  # a tombstone (else a record)


def untagged_scan(client: redis.Redis, *, count: int) -> Iterator[list[Untagged]]:
    """The records, then the tombstones, of the layout before hash tags, a SCAN page at a
    time (kafkacache.services.relayout moves them; the tagged names of the same prefixes are skipped)."""
    for prefix, tombstone in ((REC_PREFIX, False), (TOMBSTONE_PREFIX, True)):
        for _position, names in scan_pages(client, match=prefix + "*", count=count):
            page = []
            for name in names:
                key = untagged_record_key(name, prefix)
                if key is not None:
                    page.append(Untagged(name, key, tombstone))
            yield page


# --- the batch read of what a key holds (the cache leg reads a million keys with it) ---


class Cached(NamedTuple):
    """What Redis holds for one key (value None: no record)."""

    value: bytes | None
    version: int  # source version; 0: unordered, or no record
    uuid: str
    topic: str  # "": written before records knew their topic
    tombstone: int  # version of the key's last delete; 0: none
    created_ms: int = 0  # the message's created header (finds its ledger partition)


# A batch is one pipelined write of a GET per key (plain commands: Redis serves other
# clients between them, where a script reading 10,000 keys held the server for a quarter
# of a second on a busy machine), then one MGET of the tombstones of the keys without a
# record (a put drops the tombstone, so only those can have one).


class SentRead(NamedTuple):
    """A cache_read on the wire: the connection its replies will come on (a cluster's
    read is done at once, by node: `replies`)."""

    connection: redis.Connection | None
    keys: Sequence[str]
    replies: list | None = None


def cache_read_send(client: redis.Redis, keys: Sequence[str]) -> SentRead:
    """Send a batch's reads without waiting for the replies: Redis serves them while the
    caller works on the previous batch (cache_read_wait reads them).

    On Redis Cluster the batch goes as a cluster pipeline (one write per master) and is
    read back here: the overlap is a standalone optimisation, the answers are the same."""
    if is_cluster(client):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.get(rec_key(key))
        return SentRead(None, keys, pipe.execute(raise_on_error=False))
    # hiredis packs the commands in C: redis-py's per-argument encoding cost more than the read.
    packed = b"".join(hiredis.pack_command(("GET", rec_key(key))) for key in keys)  # type: ignore[arg-type]  # stub: a 1-tuple
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([packed])
    except BaseException:
        conn.disconnect()
        pool.release(conn)
        raise
    return SentRead(conn, keys)


def cache_read_discard(client: redis.Redis, sent: SentRead) -> None:
    """Give up on a sent read: its replies would come on the connection, so it is never reused."""
    if sent.connection is None:
        return
    sent.connection.disconnect()
    client.connection_pool.release(sent.connection)


def _reply(conn: redis.Connection):
    try:
        return conn.read_response()
    except ResponseError as exc:  # WRONGTYPE: a record of the hash layout (_records reads it)
        return exc


def cache_read_wait(client: redis.Redis, sent: SentRead) -> list[Cached]:
    """The replies of a cache_read_send, one Cached per key in order."""
    conn = sent.connection
    if conn is None:
        replies = sent.replies or []
    else:
        try:
            replies = [_reply(conn) for _ in sent.keys]
        except BaseException:
            cache_read_discard(client, sent)  # replies may still be on the way
            raise
        client.connection_pool.release(conn)
    records = _records(client, sent.keys, replies)
    unheld = [key for key, record in zip(sent.keys, records, strict=True) if record is None]
    found = mget_across_slots(client, [tombstone_key(k) for k in unheld]) if unheld else []
    tombstones = dict(zip(unheld, found, strict=True))
    out = []
    for key, record in zip(sent.keys, records, strict=True):
        if record is None:
            tombstone = tombstones.get(key)
            out.append(Cached(None, 0, "", "", int(tombstone) if tombstone else 0, 0))
        else:
            out.append(Cached(record.value, record.version, record.uuid, record.topic, 0, record.created_ms))
    return out


def cache_read(client: redis.Redis, keys: Sequence[str]) -> list[Cached]:
    """The record and tombstone of each key (one round trip, two when some hold no record)."""
    if not keys:
        return []
    return cache_read_wait(client, cache_read_send(client, keys))


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def _number(raw: bytes | str | None) -> int:
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0
