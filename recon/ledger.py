"""Writes to both ledgers, a batch at a time.

Each call is one transaction: rows go in with COPY, and each touched window's
counts and digest are bumped with one UPSERT per window. Callers hand over
whole batches; nothing here runs per message against the database. Inside a
caller's transaction no savepoint is taken (two round trips per batch saved):
a failure here fails the caller's transaction, which every caller lets
propagate anyway.

A window's digest adds up recon.hashing.message_digest(uuid, content hash) of its
messages, so equal digests on both sides mean the same messages with the same
content, not merely the same contents (empty delete values all hash alike).
"""

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from django.db import connection, transaction

from recon.hashing import MOD64, message_digest
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


class ConsumedRow(NamedTuple):
    uuid: uuid.UUID | None
    group: str
    partition: int
    offset: int
    key: str
    content_hash: bytes
    published_at: dt.datetime
    consumed_at: dt.datetime
    outcome: str


_PUBLISHED_COLUMNS = (
    'uuid, topic_id, partition, "offset", key, event_type, content_hash, size, published_at, load_id, replay_of'
)
_CONSUMED_COLUMNS = (
    'uuid, topic_id, "group", partition, "offset", key, content_hash, published_at, consumed_at, outcome'
)


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
                    )
                )
        _windows_bump(
            cursor, topic, "published", [(r.published_at, message_digest(r.uuid, r.content_hash), 0) for r in rows]
        )


def consumed_record(*, topic: Topic, rows: Sequence[ConsumedRow]) -> None:
    if not rows:
        return
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        with cursor.copy(f"COPY recon_consumedmessage ({_CONSUMED_COLUMNS}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(
                    (
                        r.uuid,
                        topic.pk,
                        r.group,
                        r.partition,
                        r.offset,
                        r.key,
                        r.content_hash,
                        r.published_at,
                        r.consumed_at,
                        r.outcome,
                    )
                )
        _windows_bump(
            cursor,
            topic,
            "consumed",
            [
                (
                    r.published_at,
                    message_digest(r.uuid, r.content_hash),
                    max(0, int((r.consumed_at - r.published_at).total_seconds() * 1000)),  # = _latency_ms
                )
                for r in rows
            ],
        )


def _latency_ms(row: ConsumedRow) -> int:
    return max(0, int((row.consumed_at - row.published_at).total_seconds() * 1000))


def _windows_bump(cursor, topic: Topic, side: str, items: list[tuple[dt.datetime, int, int]]) -> None:
    # Grouped on integer epoch seconds (window_start's arithmetic): a datetime per
    # window rather than per row.
    seconds = topic.window_seconds
    counts: dict[int, int] = defaultdict(int)
    sums: dict[int, int] = defaultdict(int)
    latencies: dict[int, int] = defaultdict(int)
    for at, digest, latency_ms in items:
        epoch = int(at.timestamp()) // seconds * seconds
        counts[epoch] += 1
        sums[epoch] += digest
        if latency_ms > latencies[epoch]:
            latencies[epoch] = latency_ms
    width = dt.timedelta(seconds=seconds)
    values = []
    for epoch in sorted(counts):
        start = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
        count, digest = counts[epoch], sums[epoch] % MOD64
        pub, con = ((count, digest), (0, 0)) if side == "published" else ((0, 0), (count, digest))
        values.append((topic.pk, start, start + width, pub[0], con[0], pub[1], con[1], latencies[epoch]))
    # A late row reopens a reconciled window, so the scheduler looks at it again.
    assert side in ("published", "consumed")  # column names below come from this literal
    sql = f"""
        INSERT INTO recon_window AS w (topic_id, start, "end", published_count, consumed_count,
                                       published_digest, consumed_digest, consumed_max_latency_ms, status, summary)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'open', '{{}}')
        ON CONFLICT (topic_id, start) DO UPDATE SET
            {side}_count = w.{side}_count + EXCLUDED.{side}_count,
            {side}_digest = mod(w.{side}_digest + EXCLUDED.{side}_digest, {MOD64}),
            consumed_max_latency_ms = GREATEST(w.consumed_max_latency_ms, EXCLUDED.consumed_max_latency_ms),
            status = 'open'
    """  # noqa: S608
    if len(values) == 1:  # the usual batch: one window, no executemany pipeline to set up
        cursor.execute(sql, values[0])
    else:
        cursor.executemany(sql, values)
