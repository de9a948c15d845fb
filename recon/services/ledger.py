"""Writes to both ledgers, a batch at a time.

Callers hand over whole batches; nothing here runs per message against the
database, and each touched window's counts and digest are bumped in the same
write. The publish side (a few thousand messages a second) COPYs the rows and
then upserts the windows. The consume side is one statement per batch: the rows
as arrays (binary, server-side binding; not prepared, as Django's connections run
with prepare_threshold None: preparing it measured no cheaper, the rows dominate),
inserted and counted in one INSERT ... SELECT FROM unnest with a data-modifying
CTE, so it is atomic with no BEGIN/COMMIT round trips, and it can be sent in
pipeline mode without waiting (kafkacache.consumer). Inside a caller's
transaction no savepoint is taken: a failure here fails the caller's
transaction, which every caller lets propagate anyway.

A window's digest adds up core.hashing.message_digest(uuid, content hash) of its
messages, so equal digests on both sides mean the same messages with the same
content, not merely the same contents (empty delete values all hash alike).
"""

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import psycopg
from django.db import connection, transaction

from core.hashing import MOD64, message_digest
from recon.models import Topic


class PublishedRow(NamedTuple):
    uuid: uuid.UUID
    partition: int
    offset: int
    key: str
    event_type: str
    content_hash: bytes
    size: int
    published_at: dt.datetime
    load_id: uuid.UUID | None = None
    replay_of: uuid.UUID | None = None
    source_version: int | None = None
    seal_leaf: bytes | None = None  # kafkacache.seal.seal_leaf: what reprocess holds a dead letter to


class ConsumedRow(NamedTuple):
    uuid: uuid.UUID | str | None  # str: canonical text, as the consumer keeps it (no UUID object per message)
    group: str
    partition: int
    offset: int
    key: str
    content_hash: bytes
    published_at: dt.datetime
    consumed_at: dt.datetime
    outcome: str


_PUBLISHED_COLUMNS = (
    'uuid, topic_id, partition, "offset", key, event_type, content_hash, size, published_at, load_id, replay_of,'
    " source_version, seal_leaf"
)
# ConsumedRow's fields, in order, as _CONSUMED_INSERT's array parameters.
_CONSUMED_ARRAYS = ("uuids", "groups", "partitions", "offsets", "keys", "hashes", "published", "consumed", "outcomes")


def window_start(topic: Topic, at: dt.datetime) -> dt.datetime:
    seconds = int(at.timestamp()) // topic.window_seconds * topic.window_seconds
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def published_record(*, topic: Topic, rows: Sequence[PublishedRow]) -> None:
    if not rows:
        return
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        with cursor.copy(f"COPY recon_publishedmessage ({_PUBLISHED_COLUMNS}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(
                    (
                        r.uuid,
                        topic.pk,
                        r.partition,
                        r.offset,
                        r.key,
                        r.event_type,
                        r.content_hash,
                        r.size,
                        r.published_at,
                        r.load_id,
                        r.replay_of,
                        r.source_version,
                        r.seal_leaf,
                    )
                )
        _published_windows_bump(cursor, topic, rows)


class _WindowSums(NamedTuple):
    starts: list[dt.datetime]
    counts: list[int]
    digests: list[int]  # mod 2**64
    latencies: list[int]  # slowest delivery, ms


def _published_sums(seconds: int, rows: Sequence[PublishedRow]) -> _WindowSums:
    """Published rows per window, oldest first (no latencies: those are the consumed side's).

    Grouped on integer epoch seconds (window_start's arithmetic): a datetime per
    window rather than per row.
    """
    counts: dict[int, int] = defaultdict(int)
    sums: dict[int, int] = defaultdict(int)
    for r in rows:
        epoch = int(r.published_at.timestamp()) // seconds * seconds
        counts[epoch] += 1
        sums[epoch] += message_digest(r.uuid, r.content_hash)
    return _sums_listed(counts, sums, {})


def _sums_listed(counts: dict[int, int], sums: dict[int, int], latencies: dict[int, int]) -> _WindowSums:
    epochs = sorted(counts)
    return _WindowSums(
        [dt.datetime.fromtimestamp(e, tz=dt.UTC) for e in epochs],
        [counts[e] for e in epochs],
        [sums[e] % MOD64 for e in epochs],
        [latencies.get(e, 0) for e in epochs],
    )


def _published_windows_bump(cursor, topic: Topic, rows: Sequence[PublishedRow]) -> None:
    """Each touched window's publish count, digest and per-second counts, one UPSERT per window.

    The per-second counts are added element by element to the window's (the row lock of the
    UPSERT orders concurrent writers, as for the counts), and the window's peak is the largest
    of the sums: exact, whatever batches a second's messages came in.
    """
    sums = _published_sums(topic.window_seconds, rows)
    seconds = _second_counts(topic.window_seconds, [r.published_at for r in rows])
    width = dt.timedelta(seconds=topic.window_seconds)
    values = [
        (topic.pk, start, start + width, count, digest, seconds[start])
        for start, count, digest, _ in zip(*sums, strict=True)
    ]
    # A late row reopens a reconciled window, so the scheduler looks at it again.
    sql = f"""
        INSERT INTO recon_window AS w (topic_id, start, "end", published_count, consumed_count, published_digest,
                                       consumed_digest, consumed_max_latency_ms, published_seconds, published_peak,
                                       status, summary)
        SELECT %s, %s, %s, %s, 0, %s, 0, 0, n, (SELECT max(x) FROM unnest(n) AS x), 'open', '{{}}'
        FROM (SELECT %s::int[] AS n) AS batch
        ON CONFLICT (topic_id, start) DO UPDATE SET
            published_count = w.published_count + EXCLUDED.published_count,
            published_digest = mod(w.published_digest + EXCLUDED.published_digest, {MOD64}),
            published_seconds = ARRAY(
                SELECT coalesce(a, 0) + coalesce(b, 0)
                FROM unnest(w.published_seconds, EXCLUDED.published_seconds) WITH ORDINALITY AS s(a, b, i)
                ORDER BY i
            ),
            published_peak = (
                SELECT max(coalesce(a, 0) + coalesce(b, 0))
                FROM unnest(w.published_seconds, EXCLUDED.published_seconds) AS s(a, b)
            ),
            status = 'open'
    """  # noqa: S608
    if len(values) == 1:  # the usual batch: one window, no executemany pipeline to set up
        cursor.execute(sql, values[0])
    else:
        cursor.executemany(sql, values)


def _second_counts(seconds: int, published: Iterable[dt.datetime]) -> dict[dt.datetime, list[int]]:
    """Per window start: the messages published in each of its seconds, up to its last busy one."""
    counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for at in published:
        epoch = int(at.timestamp())
        counts[epoch // seconds * seconds][epoch % seconds] += 1
    out = {}
    for start, by_second in counts.items():
        dense = [0] * (max(by_second) + 1)
        for i, n in by_second.items():
            dense[i] = n
        out[dt.datetime.fromtimestamp(start, tz=dt.UTC)] = dense
    return out


# The consumed rows and their windows in one statement (see the module docstring);
# a late row reopens a reconciled window, as above. A column the whole batch shares (the
# group, the partition, the batch's consumed_at, its outcome, as in a consumer's batch)
# goes as one value and an empty array: unnest pads the shorter arrays with NULLs, and
# each array parameter costs the client a Python step per element.
_CONSUMED_INSERT = """
WITH rows AS (
    INSERT INTO recon_consumedmessage (uuid, topic_id, "group", partition, "offset", key, content_hash,
                                       published_at, consumed_at, outcome)
    SELECT u, %(topic)s, coalesce(g, %(group)s), coalesce(p, %(partition)s), o, k, h, pa,
           coalesce(ca, %(consumed_at)s), coalesce(oc, %(outcome)s)
    FROM unnest(%(uuids)b::uuid[], %(groups)b::text[], %(partitions)b::int[], %(offsets)b::bigint[],
                %(keys)b::text[], %(hashes)b::bytea[], %(published)b::timestamptz[], %(consumed)b::timestamptz[],
                %(outcomes)b::text[]) AS r(u, g, p, o, k, h, pa, ca, oc)
    RETURNING 1
)
INSERT INTO recon_window AS w (topic_id, start, "end", published_count, consumed_count,
                               published_digest, consumed_digest, consumed_max_latency_ms, status, summary)
SELECT %(topic)s, s, s + %(width)s * interval '1 second', 0, n, 0, d, l, 'open', '{}'
FROM unnest(%(starts)b::timestamptz[], %(counts)b::bigint[], %(digests)b::numeric[], %(latencies)b::bigint[])
     AS x(s, n, d, l)
ON CONFLICT (topic_id, start) DO UPDATE SET
    consumed_count = w.consumed_count + EXCLUDED.consumed_count,
    consumed_digest = mod(w.consumed_digest + EXCLUDED.consumed_digest, %(mod)s),
    consumed_max_latency_ms = GREATEST(w.consumed_max_latency_ms, EXCLUDED.consumed_max_latency_ms),
    status = 'open'
"""
# ConsumedRow's columns that may go as one value for the batch (_CONSUMED_INSERT).
_SHARED = {"groups": "group", "partitions": "partition", "consumed": "consumed_at", "outcomes": "outcome"}


def _consumed_sums(seconds: int, rows: Sequence[ConsumedRow]) -> _WindowSums:
    """Consumed rows per window, oldest first. A window's slowest delivery is, among rows consumed at
    one time, the one published first: one latency per (window, consumed_at), not per row."""
    counts: dict[int, int] = defaultdict(int)
    sums: dict[int, int] = defaultdict(int)
    first: dict[tuple[int, dt.datetime], dt.datetime] = {}
    for r in rows:
        at = r.published_at
        epoch = int(at.timestamp()) // seconds * seconds
        counts[epoch] += 1
        sums[epoch] += message_digest(r.uuid, r.content_hash)
        slot = (epoch, r.consumed_at)
        earliest = first.get(slot)
        if earliest is None or at < earliest:
            first[slot] = at
    latencies: dict[int, int] = defaultdict(int)
    for (epoch, consumed_at), at in first.items():
        latencies[epoch] = max(latencies[epoch], int((consumed_at - at).total_seconds() * 1000))
    return _sums_listed(counts, sums, latencies)


def consumed_record(*, topic: Topic, rows: Sequence[ConsumedRow]) -> None:
    if not rows:
        return
    sums = _consumed_sums(topic.window_seconds, rows)
    params: dict = {"topic": topic.pk}
    for name, column in zip(_CONSUMED_ARRAYS, zip(*rows, strict=True), strict=True):
        scalar = _SHARED.get(name)
        if scalar is None:
            params[name] = list(column)
        elif column.count(column[0]) == len(column):
            params[name], params[scalar] = [], column[0]
        else:
            params[name], params[scalar] = list(column), None
    connection.ensure_connection()
    # A psycopg cursor, not Django's: Django binds parameters client-side, as SQL text,
    # which for these arrays cost more than the whole statement.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _CONSUMED_INSERT,
            {
                **params,
                "width": topic.window_seconds,
                "starts": sums.starts,
                "counts": sums.counts,
                "digests": [str(d) for d in sums.digests],  # numeric: above bigint's range
                "latencies": sums.latencies,
                "mod": MOD64,
            },
        )


# What the cache did, for the rows of a pipelined batch written before Redis answered
# (kafkacache.consumer): only the refused ones change, one statement for the batch. A
# delivery is its (uuid, group, partition, offset) and its batch's consumed_at (a
# redelivery of the same message is another row, left as it is).
_OUTCOMES_SET = """
UPDATE recon_consumedmessage AS c SET outcome = v.oc
FROM unnest(%(uuids)s::uuid[], %(partitions)s::int[], %(offsets)s::bigint[], %(published)s::timestamptz[],
            %(outcomes)s::text[]) AS v(u, p, o, pa, oc)
WHERE c.uuid = v.u AND c.topic_id = %(topic)s AND c."group" = %(group)s AND c.partition = v.p
  AND c."offset" = v.o AND c.published_at = v.pa AND c.consumed_at = %(consumed)s
"""


def consumed_outcomes_set(*, topic: Topic, rows: Sequence[ConsumedRow]) -> None:
    """Set the outcome of rows consumed_record wrote before the cache's verdict was known."""
    if not rows:
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _OUTCOMES_SET,
            {
                "uuids": [r.uuid for r in rows],
                "partitions": [r.partition for r in rows],
                "offsets": [r.offset for r in rows],
                "published": [r.published_at for r in rows],
                "outcomes": [r.outcome for r in rows],
                "topic": topic.pk,
                "group": rows[0].group,
                "consumed": rows[0].consumed_at,
            },
        )
