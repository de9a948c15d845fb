"""The cache leg's compare: Redis read in batches against what should be there.

Pure reads (no findings, no runs): recon.cache_check decides what to compare
and stores the outcome. Each batch is one pipelined round trip to Redis (HMGET of
the record's value, version, uuid, topic and time per key; an MGET of the
tombstones of the keys without a record), so a million keys cost a few hundred
round trips, not millions.
"""

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import hiredis
import redis
from django.conf import settings
from django.db import connection

from core.clients import is_cluster, mget_across_slots, redis_client
from core.hashing import content_hash
from core.redis_keys import REC_MATCH, rec_key, record_key_of, tombstone_key
from core.redis_scan import scan_pages

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
    created_ms: int = 0  # t: the message's created header (finds its ledger partition)


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


# A batch is one pipelined write of an HMGET per key (plain commands: Redis serves
# other clients between them, where a script reading 10,000 keys held the server for
# a quarter of a second on a busy machine, and cost seven times the commands' own
# time), then one MGET of the tombstones of the keys without a record (a put drops
# the tombstone, so only those can have one).
_FIELDS = ("p", "sv", "u", "tp", "t")


class SentRead(NamedTuple):
    """A cache_read on the wire: the connection its replies will come on (a cluster's
    read is done at once, by node: `replies`)."""

    connection: redis.Connection | None
    keys: Sequence[str]
    replies: list | None = None


def cache_read_send(client: redis.Redis, keys: Sequence[str]) -> SentRead:
    """Send a batch's reads without waiting for the replies: Redis serves them while the
    caller compares the previous batch (cache_read_wait reads them).

    On Redis Cluster the batch goes as a cluster pipeline (one write per master) and is
    read back here: the overlap is a standalone optimisation, the answers are the same."""
    if is_cluster(client):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(rec_key(key), _FIELDS)
        return SentRead(None, keys, pipe.execute())
    packed = b"".join(hiredis.pack_command(("HMGET", rec_key(key), *_FIELDS)) for key in keys)  # type: ignore[arg-type]  # stub: a 1-tuple
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


def cache_read_wait(client: redis.Redis, sent: SentRead) -> list[Cached]:
    """The replies of a cache_read_send, one Cached per key in order."""
    conn = sent.connection
    if conn is None:
        replies = sent.replies or []
    else:
        try:
            replies = [conn.read_response() for _ in sent.keys]
        except BaseException:
            cache_read_discard(client, sent)  # replies may still be on the way
            raise
        client.connection_pool.release(conn)
    unheld = [key for key, (value, *_) in zip(sent.keys, replies, strict=True) if value is None]
    found = mget_across_slots(client, [tombstone_key(k) for k in unheld]) if unheld else []
    tombstones = dict(zip(unheld, found, strict=True))
    out = []
    for key, (value, version, message_uuid, topic, created) in zip(sent.keys, replies, strict=True):
        tombstone = tombstones.get(key)
        out.append(
            Cached(
                value,
                int(version) if version else 0,
                message_uuid.decode(errors="replace") if message_uuid else "",
                topic.decode(errors="replace") if topic else "",
                int(tombstone) if tombstone else 0,
                int(created) if created and created.isdigit() else 0,
            )
        )
    return out


def cache_read(client: redis.Redis, keys: Sequence[str]) -> list[Cached]:
    """The record and tombstone of each key (one round trip)."""
    if not keys:
        return []
    return cache_read_wait(client, cache_read_send(client, keys))


# One index lookup per message (a nested loop, whatever the batch size: with thousands
# of UUIDs the planner would otherwise scan the whole partition), in the partitions
# of the publish-time bounds only.
_HASHES_SQL = """
SELECT u.id::text, p.content_hash
FROM unnest(%s::uuid[]) AS u(id)
CROSS JOIN LATERAL (
    SELECT content_hash FROM recon_publishedmessage
    WHERE uuid = u.id AND published_at >= %s AND published_at < %s
    LIMIT 1
) p
"""
_DAY_MS = 86_400_000
_PLAIN = re.compile(r"[!-\[\]-~]+")  # printable ASCII without backslash or space: safe in COPY text
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def published_hashes(messages: Iterable[tuple[str, int]]) -> dict[str, bytes]:
    """The published content hash of each of these (message UUID, created ms) the ledger holds.

    A message is ledgered at its created time, or the broker's when the producer's
    clock strayed beyond CLOCK_SKEW_MAX_MS (kafkacache.clock): looked up in the days
    around its created time first, then (the few not found) in every partition."""
    # A value written behind the feed's back may carry any uuid: no published hash, it differs.
    by_day: dict[int, set[str]] = {}
    for text, created_ms in messages:
        if _UUID.fullmatch(text):
            by_day.setdefault(created_ms // _DAY_MS if created_ms > 0 else -1, set()).add(text.lower())
    skew = dt.timedelta(milliseconds=settings.CLOCK_SKEW_MAX_MS)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    found: dict[str, bytes] = {}
    rest: set[str] = set(by_day.pop(-1, set()))
    with connection.cursor() as cursor:
        for day, uuids in sorted(by_day.items()):
            start = epoch + dt.timedelta(days=day)
            cursor.execute(
                _HASHES_SQL, ["{" + ",".join(uuids) + "}", start - skew, start + dt.timedelta(days=1) + skew]
            )
            found.update((u, bytes(h)) for u, h in cursor.fetchall())
            rest |= uuids - found.keys()
        if rest:
            cursor.execute(_HASHES_SQL, ["{" + ",".join(rest) + "}", epoch, dt.datetime.max.replace(tzinfo=dt.UTC)])
            found.update((u, bytes(h)) for u, h in cursor.fetchall())
    return found


def hash_matches(value: bytes, expected: bytes, preferred: str) -> bool:
    if preferred and content_hash(value, preferred) == expected:
        return True
    # A topic may have switched algorithms since: any other whose digest has this length.
    for algorithm in ("blake2b", "xxh3", "crc32"):
        if (
            algorithm != preferred
            and len(content_hash(b"", algorithm)) == len(expected)
            and content_hash(value, algorithm) == expected
        ):
            return True
    return False


def batch_compare(
    expected: Sequence[Expected],
    cached: Sequence[Cached],
    *,
    algorithm: str,
    newer_is_fine: bool = False,
    deferred: "DeferredHashes | None" = None,
) -> list[Problem]:
    """The keys of a batch whose cache is not what the reference says.

    `newer_is_fine`: the reference is the publish ledger or one load, not the
    whole source: a newer cached version (or a newer delete's tombstone) is a
    later change that reached the cache, not a problem. Against the whole SQL
    source it is: the cache is ahead of the system of record.
    `deferred`: keys of equal versions go there, for one set-based hash compare at
    the end, instead of a ledger lookup per batch.
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
    if same and deferred is not None:
        deferred.add(same)
    elif same:
        hashes = published_hashes((have.uuid, have.created_ms) for _, have in same)
        for want, have in same:
            published = hashes.get(have.uuid)
            assert have.value is not None
            if published is None or not hash_matches(have.value, published, algorithm):
                if published is not None and reencrypted(want.key, have.value, published):
                    continue
                problems.append(Problem(want.key, DIFFERS, want, have, published))
    return problems


def reencrypted(key: str, value: bytes, expected: bytes) -> bool:
    """A value kafkacache.rekey re-encrypted to a newer field key: it replaced bytes that
    hashed to the published hash (rx) and is still the value it wrote (rn). Anything else
    is drift. Only asked of the few keys whose hash did not match."""
    fields: list[bytes | None] = redis_client().hmget(rec_key(key), ["rx", "rn"])  # type: ignore[assignment]
    replaced, rewritten = fields
    if not replaced or not rewritten or content_hash(value, "blake2b").hex().encode() != rewritten:
        return False
    return any(h.partition(b":")[2] == expected.hex().encode() for h in replaced.split(b","))


class DeferredHashes:
    """Equal-version keys of a whole-source run, compared with the published hashes in one
    hash join: the cached value's hash per key goes into a temporary table (COPY, per
    batch), PostgreSQL joins it with the ledger once and answers only the keys that do
    not match. A million index lookups, one per key, cost several times more."""

    def __init__(self, *, algorithm: str):
        self.algorithm = algorithm
        self.table = f"cache_leg_{uuid.uuid4().hex[:12]}"
        self.low = self.high = 0  # created ms bounds: the ledger partitions to read
        self.unmatched: list[str] = []  # keys whose cached uuid is not a UUID at all
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE {self.table} (key text, uuid uuid, hash bytea)")

    def add(self, pairs: Sequence[tuple[Expected, Cached]]) -> None:
        lines, odd = [], []
        algorithm = self.algorithm
        for want, have in pairs:
            if not _UUID.fullmatch(have.uuid):
                self.unmatched.append(want.key)
                continue
            assert have.value is not None
            digest = content_hash(have.value, algorithm)
            if _PLAIN.fullmatch(want.key):
                lines.append(f"{want.key}\t{have.uuid}\t\\\\x{digest.hex()}\n")
            else:
                odd.append((want.key, have.uuid, digest))  # COPY escaping: psycopg's
            if have.created_ms > 0:
                self.low = min(self.low or have.created_ms, have.created_ms)
                self.high = max(self.high, have.created_ms)
        # One text block per batch: psycopg's per-row writer cost more than the copy itself.
        with connection.cursor() as cursor, cursor.copy(f"COPY {self.table} (key, uuid, hash) FROM STDIN") as copy:
            copy.write("".join(lines))
            for row in odd:
                copy.write_row(row)

    def mismatched(self) -> list[str]:
        """Keys whose cached hash is not the published hash of their cached uuid (or whose uuid
        the ledger does not hold): candidates, the caller checks each against Redis again."""
        skew = dt.timedelta(milliseconds=settings.CLOCK_SKEW_MAX_MS)
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        low = epoch + dt.timedelta(milliseconds=self.low) - skew
        high = epoch + dt.timedelta(milliseconds=self.high) + skew
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, false)", [settings.RECON_WORK_MEM])
            # Ledgered at their created time unless the producer's clock strayed (then the
            # broker's): the partitions of the created-time span first, then the rest.
            cursor.execute(
                f"SELECT t.key, p.uuid IS NULL FROM {self.table} t LEFT JOIN recon_publishedmessage p"  # noqa: S608
                " ON p.uuid = t.uuid AND p.published_at >= %s AND p.published_at < %s"
                " WHERE p.uuid IS NULL OR p.content_hash <> t.hash",
                [low, high],
            )
            rows = cursor.fetchall()
            out = [key for key, unknown in rows if not unknown]
            unknown = [key for key, missing in rows if missing]
            if unknown:
                cursor.execute(
                    f"SELECT t.key FROM {self.table} t WHERE t.key = ANY(%s) AND NOT EXISTS ("  # noqa: S608
                    " SELECT 1 FROM recon_publishedmessage p WHERE p.uuid = t.uuid AND p.content_hash = t.hash)",
                    [unknown],
                )
                out += [row[0] for row in cursor.fetchall()]
            cursor.execute("RESET work_mem")
        return out + self.unmatched

    def close(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")


def rec_keys_scan(client: redis.Redis, *, count: int) -> Iterator[list[str]]:
    """Every record key Redis holds, in batches (SCAN: never blocks the server; every
    master of a cluster)."""
    for _position, found in scan_pages(client, match=REC_MATCH, count=count):
        if found:
            yield [record_key_of(raw) for raw in found]


def in_flight(keys: Sequence[str], *, since: dt.datetime, topic_ids: Sequence[int]) -> dict[str, int]:
    """Keys with a message published since `since` (any topic) and not consumed yet: the newest
    such version per key.

    A fix already on its way (published, still in the consumer's lag) is not a
    finding yet; one the feed has consumed is no longer on its way (so a check run
    once the feed has consumed a replay or a load, recon.runs, judges its keys at
    once). The publish-time bound keeps the lookup in the newest partition; the
    consume ledger is asked by UUID (its hash index)."""
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            # topic and time first: the (topic, published_at) index, in the newest partition
            "SELECT p.key, max(coalesce(p.source_version, 0)) FROM recon_publishedmessage p"
            " WHERE p.topic_id = ANY(%s) AND p.published_at >= %s AND p.key = ANY(%s)"
            " AND NOT EXISTS (SELECT 1 FROM recon_consumedmessage c WHERE c.uuid = p.uuid)"
            " GROUP BY p.key",
            [list(topic_ids), since, list(keys)],
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
