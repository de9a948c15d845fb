"""The cache leg's compare: Redis read in batches against what should be there.

Pure reads (no findings, no runs): recon.services.cache_check decides what to compare
and stores the outcome. Redis is read through core.cache_records (one pipelined round
trip per batch: a million keys cost a few hundred round trips, not millions); this
module judges what it holds.
"""

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from django.conf import settings
from django.db import connection

from core.cache_records import Cached, cache_records_get
from core.clients import redis_client
from core.hashing import content_hash

# What the leg reports, and what a replay from the system of record does about each.
STALE = "stale"  # the cache holds an older version than the source
ABSENT = "absent"  # the source holds the record, the cache nothing
UNEXPECTED = "unexpected"  # the cache holds a record the source does not
DIFFERS = "differs"  # same version, but the cached bytes are not the ones published for it
AHEAD = "ahead"  # the cache holds a newer version than the source: a source set back
KINDS = (STALE, ABSENT, UNEXPECTED, DIFFERS, AHEAD)


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
    """A value kafkacache.services.reencrypt re-encrypted to a newer field key: it replaced bytes that
    hashed to the published hash and is still the value it wrote. Anything else is drift.
    Only asked of the few keys whose hash did not match."""
    held = cache_records_get(redis_client(), [key]).get(key)
    if held is None or not held.replaced_hashes or not held.rewritten_hash:
        return False
    if content_hash(value, "blake2b").hex() != held.rewritten_hash:
        return False
    return any(h.partition(":")[2] == expected.hex() for h in held.replaced_hashes.split(","))


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


def in_flight(keys: Sequence[str], *, since: dt.datetime, topic_ids: Sequence[int]) -> dict[str, int]:
    """Keys with a message published since `since` (any topic) and not consumed yet: the newest
    such version per key.

    A fix already on its way (published, still in the consumer's lag) is not a
    finding yet; one the feed has consumed is no longer on its way (so a check run
    once the feed has consumed a replay or a load, recon.services.runs, judges its keys at
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
