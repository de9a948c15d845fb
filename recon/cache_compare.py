"""The cache leg's compare: Redis read in batches against what should be there.

Pure reads (no findings, no runs): recon.cache_check decides what to compare
and stores the outcome. Each batch is one pipelined round trip to Redis (HMGET
of the record's value, version, uuid and topic, plus GET of its tombstone, per
key) and one query of the publish ledger for the published hash of each cached
message, so a million keys cost a few hundred round trips, not millions.
"""

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import hiredis
import redis
from django.db import connection

from kafkacache.redis_keys import REC_PREFIX, TOMBSTONE_PREFIX
from recon.hashing import content_hash

# What the leg reports, and what a replay from the system of record does about each.
STALE = "stale"  # the cache holds an older version than the source
ABSENT = "absent"  # the source holds the record, the cache nothing
UNEXPECTED = "unexpected"  # the cache holds a record the source does not
DIFFERS = "differs"  # same version, but the cached bytes are not the ones published for it
AHEAD = "ahead"  # the cache holds a newer version than the source: a source set back
KINDS = (STALE, ABSENT, UNEXPECTED, DIFFERS, AHEAD)


class Cached(NamedTuple):
    """What Redis holds for one key (value None: no record)."""

    value: bytes | None
    version: int  # sv; 0: unordered, or no record
    uuid: str
    topic: str  # tp; "": written before records knew their topic
    tombstone: int  # version of the key's last delete; 0: none


class Expected(NamedTuple):
    """What should be cached for one key: a record of `version`, or (present False) nothing,
    the key deleted at `version` (0: not held by the source at all)."""

    key: str
    version: int
    present: bool = True


class Problem(NamedTuple):
    key: str
    kind: str
    expected: Expected
    cached: Cached
    published_hash: bytes | None = None  # differs: the hash published for the cached uuid


def cache_read(client: redis.Redis, keys: Sequence[str]) -> list[Cached]:
    """The record and tombstone of each key, in one pipelined round trip.

    Packed with hiredis and sent as one write: redis-py's per-command pipeline
    encoding costs more than Redis itself at 10,000 keys a batch."""
    if not keys:
        return []
    packed = b"".join(
        hiredis.pack_command(("HMGET", REC_PREFIX + key, "p", "sv", "u", "tp"))  # type: ignore[arg-type]  # stub: a 1-tuple
        + hiredis.pack_command(("GET", TOMBSTONE_PREFIX + key))  # type: ignore[arg-type]
        for key in keys
    )
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([packed])
        replies = [conn.read_response() for _ in range(2 * len(keys))]
    except BaseException:
        conn.disconnect()  # replies may still be on the way: never reuse it
        raise
    finally:
        pool.release(conn)
    out = []
    for i in range(len(keys)):
        value, version, message_uuid, topic = replies[2 * i]
        tombstone = replies[2 * i + 1]
        out.append(
            Cached(
                value,
                int(version or 0),
                _text(message_uuid),
                _text(topic),
                int(tombstone or 0),
            )
        )
    return out


def _text(raw: bytes | str | None) -> str:
    if isinstance(raw, str):
        return raw
    return raw.decode(errors="replace") if raw else ""


def published_hashes(uuids: Iterable[str]) -> dict[str, bytes]:
    """The published content hash of each of these message UUIDs the ledger holds."""
    valid = []
    for text in set(uuids):
        try:
            valid.append(uuid.UUID(text))
        except ValueError:
            continue  # a value written behind the feed's back: no published hash, it differs
    if not valid:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT uuid, content_hash FROM recon_publishedmessage WHERE uuid = ANY(%s::uuid[])",
            [valid],
        )
        return {str(u): bytes(h) for u, h in cursor.fetchall()}


def hash_matches(value: bytes, expected: bytes, preferred: str) -> bool:
    # The topic's algorithm first; a topic may have switched algorithms since.
    for algorithm in (preferred, "blake2b", "xxh3", "crc32"):
        if (
            algorithm
            and len(content_hash(b"", algorithm)) == len(expected)
            and content_hash(value, algorithm) == expected
        ):
            return True
    return False


def batch_compare(
    expected: Sequence[Expected], cached: Sequence[Cached], *, algorithm: str, newer_is_fine: bool = False
) -> list[Problem]:
    """The keys of a batch whose cache is not what the reference says.

    `newer_is_fine`: the reference is the publish ledger or one load, not the
    whole source: a newer cached version (or a newer delete's tombstone) is a
    later change that reached the cache, not a problem. Against the whole SQL
    source it is: the cache is ahead of the system of record.
    """
    problems: list[Problem] = []
    same: list[tuple[Expected, Cached]] = []
    for want, have in zip(expected, cached, strict=True):
        if not want.present:
            if have.value is not None and not (newer_is_fine and have.version > want.version):
                problems.append(Problem(want.key, UNEXPECTED, want, have))
        elif have.value is None:
            if not (newer_is_fine and have.tombstone > want.version):
                problems.append(Problem(want.key, ABSENT, want, have))
        elif have.version < want.version:
            problems.append(Problem(want.key, STALE, want, have))
        elif have.version > want.version:
            if not newer_is_fine:
                problems.append(Problem(want.key, AHEAD, want, have))
        else:
            same.append((want, have))
    if same:
        hashes = published_hashes(have.uuid for _, have in same)
        for want, have in same:
            published = hashes.get(have.uuid)
            assert have.value is not None
            if published is None or not hash_matches(have.value, published, algorithm):
                problems.append(Problem(want.key, DIFFERS, want, have, published))
    return problems


def rec_keys_scan(client: redis.Redis, *, count: int) -> Iterator[list[str]]:
    """Every record key Redis holds, in batches (SCAN: never blocks the server)."""
    cursor = 0
    prefix = len(REC_PREFIX)
    while True:
        cursor, found = client.scan(cursor, match=REC_PREFIX + "*", count=count)
        if found:
            yield [_text(raw)[prefix:] for raw in found]
        if cursor == 0:
            return


def in_flight(keys: Sequence[str], *, since: dt.datetime) -> dict[str, int]:
    """Keys with a message published since `since` (any topic): the newest such version per key.

    A fix already on its way (published, still in the consumer's lag) is not a
    finding yet; the publish-time bound keeps the lookup in the newest partition."""
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key, max(coalesce(source_version, 0)) FROM recon_publishedmessage"
            " WHERE key = ANY(%s) AND published_at >= %s GROUP BY key",
            [list(keys), since],
        )
        return dict(cursor.fetchall())


_LEDGER_LATEST = """
SELECT DISTINCT ON (key) key, event_type, coalesce(source_version, 0)
FROM recon_publishedmessage WHERE topic_id = %s AND {where}
ORDER BY key, source_version DESC NULLS LAST, published_at DESC
"""
LEDGER_SCOPES = {
    "range": "published_at >= %s AND published_at < %s",
    "load": "load_id = %s",
    "keys": "key = ANY(%s)",
    "topic": "TRUE",
}


def ledger_expected(*, topic_id: int, scope: str, params: Sequence, batch: int) -> Iterator[list[Expected]]:
    """The publish ledger's latest message of each key of the topic in the scope, as expectations:
    delivered or not, a put means the record at its version, a delete means nothing there."""
    sql = _LEDGER_LATEST.format(where=LEDGER_SCOPES[scope])
    # A server-side cursor: a million keys stream in batches instead of one list.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [topic_id, *params])
        while rows := cursor.fetchmany(batch):
            yield [Expected(key, version, event != "delete") for key, event, version in rows]
