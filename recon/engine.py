"""The per-UUID compare of one window, in set-based SQL.

`window_compare` answers what is wrong in a window as a list of finding drafts;
recon.services.window_reconcile decides when to call it (only when the window's
counts, digests or slowest delivery say something is off), stores the findings
and moves the window's status.

One statement aggregates each side by UUID over the window's partitions
(indexed by topic and publish time), full-joins the two and returns only the
discrepant UUIDs, so PostgreSQL does the per-message work and Python sees only
what it must report.
"""

import datetime as dt
import uuid
from typing import Any, NamedTuple

from django.db import connection

from recon.models import Finding, Topic, Window

Cat = Finding.Category

# What the engine finds (and owns: window_reconcile syncs exactly these per window).
ENGINE_CATEGORIES = (Cat.MISSING, Cat.DELAYED, Cat.DUPLICATE, Cat.ALTERED, Cat.ORPHAN, Cat.COUNT)

# Messages of one side, aggregated by UUID over one window of publish time. A
# published UUID should appear once; the consumed side may hold redeliveries.
# Hashes compare as their hex text ('\x...'): PostgreSQL has no min/max of bytea.
_COMPARE_SQL = """
WITH p AS (
    SELECT uuid, count(*) AS n, min(content_hash::text COLLATE "C") AS h, max(content_hash::text COLLATE "C") AS h_max,
           min(published_at) AS published_at, min(key COLLATE "C") AS key,
           min(event_type) AS event_type, min(partition) AS partition, min("offset") AS "offset"
    FROM recon_publishedmessage
    WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s
    GROUP BY uuid
), c AS (
    SELECT uuid, count(*) AS n, min(content_hash::text COLLATE "C") AS h_min,
           max(content_hash::text COLLATE "C") AS h_max,
           min(consumed_at) AS first_at, min(published_at) AS published_at, min(key COLLATE "C") AS key,
           min("group" COLLATE "C") AS "group", min(partition) AS partition, min("offset") AS "offset"
    FROM recon_consumedmessage
    WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s AND uuid IS NOT NULL
    GROUP BY uuid
)
SELECT coalesce(p.uuid, c.uuid), p.n, p.h, p.h_max, p.published_at, p.key, p.event_type, p.partition, p."offset",
       c.n, c.h_min, c.h_max, c.first_at, c.published_at, c.key, c."group", c.partition, c."offset"
FROM p FULL JOIN c ON c.uuid = p.uuid
WHERE p.uuid IS NULL OR c.uuid IS NULL OR p.n > 1 OR c.n > 1
   OR p.h <> p.h_max OR c.h_min <> p.h OR c.h_max <> p.h
   OR c.first_at - p.published_at > %(limit)s
LIMIT %(cap)s
"""

# Deliveries without a usable UUID cannot be matched: each is an orphan.
_NO_UUID_SQL = """
SELECT key, "group", partition, "offset", published_at, consumed_at
FROM recon_consumedmessage
WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s AND uuid IS NULL
ORDER BY partition, "offset"
LIMIT %(cap)s
"""

_LOADS_SQL = """
SELECT uuid, load_id FROM recon_publishedmessage
WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s
  AND uuid = ANY(%(uuids)s) AND load_id IS NOT NULL
"""


class Draft(NamedTuple):
    """A finding the compare wants to exist."""

    category: str
    uuid: uuid.UUID | None
    key: str
    detail: dict
    load_id: uuid.UUID | None = None

    @property
    def identity(self) -> tuple[str, str]:
        return draft_identity(self.category, self.uuid, self.detail)


def draft_identity(category: str, message_uuid: uuid.UUID | None, detail: dict) -> tuple[str, str]:
    """What makes a window's finding the same one on the next run."""
    if message_uuid is not None:
        return category, str(message_uuid)
    if category == Cat.ORPHAN:
        return category, f"{detail.get('group')}/{detail.get('partition')}@{detail.get('offset')}"
    return category, ""


class Comparison(NamedTuple):
    drafts: list[Draft]
    pending: int  # published, not consumed yet, window not closed: in flight, not missing
    truncated: bool  # more discrepant UUIDs than the cap; the first `cap` are reported


def _hex(pg_text: str) -> str:
    return pg_text.removeprefix("\\x")


def _iso(at: dt.datetime | None) -> str | None:
    return at.isoformat() if at else None


def window_compare(*, window: Window, topic: Topic, now: dt.datetime, cap: int) -> Comparison:
    """Every discrepant UUID of the window, as drafts of the categories the topic has switched on."""
    closed = now >= window.end + dt.timedelta(seconds=topic.grace_seconds)
    limit = dt.timedelta(seconds=topic.latency_limit_seconds)
    params: dict[str, Any] = {
        "topic": topic.pk,
        "start": window.start,
        "end": window.end,
        "limit": limit,
        "cap": cap + 1,
    }
    with connection.cursor() as cursor:
        cursor.execute(_COMPARE_SQL, params)
        rows = cursor.fetchall()
        cursor.execute(_NO_UUID_SQL, params)
        no_uuid = cursor.fetchall()
    truncated = len(rows) > cap or len(no_uuid) > cap
    rows, no_uuid = rows[:cap], no_uuid[:cap]

    drafts: list[Draft] = []
    pending = 0
    uuid_on, hash_on = topic.method_uuid, topic.method_hash or topic.method_audit
    for (
        message_uuid,
        p_n,
        p_h,
        p_h_max,
        p_at,
        p_key,
        event_type,
        p_partition,
        p_offset,
        c_n,
        c_h_min,
        c_h_max,
        c_first,
        c_pub_at,
        c_key,
        c_group,
        c_partition,
        c_offset,
    ) in rows:
        base = {"event_type": event_type} if event_type else {}
        key = p_key or c_key or ""
        if p_n is None:
            if uuid_on:
                detail = {
                    "published_at": _iso(c_pub_at),
                    "consumed_at": _iso(c_first),
                    "group": c_group,
                    "partition": c_partition,
                    "offset": c_offset,
                    "deliveries": c_n,
                }
                drafts.append(Draft(Cat.ORPHAN, message_uuid, key, detail))
            continue
        where = {"published_at": _iso(p_at), "partition": p_partition, "offset": p_offset}
        if c_n is None:
            if uuid_on:
                if closed:
                    drafts.append(Draft(Cat.MISSING, message_uuid, key, {**base, **where}))
                else:
                    pending += 1
            continue
        if uuid_on and (p_n > 1 or c_n > 1):
            detail = {**base, **where, "deliveries": c_n, "published": p_n}
            drafts.append(Draft(Cat.DUPLICATE, message_uuid, key, detail))
        if uuid_on and c_first - p_at > limit:
            delay = round((c_first - p_at).total_seconds(), 3)
            detail = {
                **base,
                **where,
                "consumed_at": _iso(c_first),
                "delay_seconds": delay,
                "limit_seconds": topic.latency_limit_seconds,
            }
            drafts.append(Draft(Cat.DELAYED, message_uuid, key, detail))
        if hash_on and (c_h_min != p_h or c_h_max != p_h or p_h != p_h_max):
            received = sorted({_hex(h) for h in (c_h_min, c_h_max) if h != p_h})
            detail = {
                **base,
                **where,
                "algorithm": topic.hash_algorithm,
                "published_hash": _hex(p_h),
                "consumed_hashes": received,
            }
            drafts.append(Draft(Cat.ALTERED, message_uuid, key, detail))

    if uuid_on:
        for key, group, partition, offset, pub_at, consumed_at in no_uuid:
            detail = {
                "reason": "no usable uuid header",
                "group": group,
                "partition": partition,
                "offset": offset,
                "published_at": _iso(pub_at),
                "consumed_at": _iso(consumed_at),
            }
            drafts.append(Draft(Cat.ORPHAN, None, key, detail))

    if topic.method_counts and not uuid_on and window.published_count != window.consumed_count and closed:
        detail = {"published": window.published_count, "consumed": window.consumed_count}
        drafts.append(Draft(Cat.COUNT, None, "", detail))

    return Comparison(_with_loads(drafts, topic, window), pending, truncated)


def _with_loads(drafts: list[Draft], topic: Topic, window: Window) -> list[Draft]:
    """Missing messages of a bulk load point at it (the load page lists its gaps)."""
    missing = [d.uuid for d in drafts if d.category == Cat.MISSING and d.uuid]
    if not missing:
        return drafts
    with connection.cursor() as cursor:
        cursor.execute(_LOADS_SQL, {"topic": topic.pk, "start": window.start, "end": window.end, "uuids": missing})
        loads = dict(cursor.fetchall())
    return [d._replace(load_id=loads.get(d.uuid)) if d.category == Cat.MISSING else d for d in drafts]
