"""The per-UUID compare of one window, in set-based SQL.

`window_compare` answers what is wrong in a window as a list of finding drafts;
recon.services.windows.window_reconcile decides when to call it (only when the window's
counts, digests or slowest delivery say something is off), stores the findings
and moves the window's status.

One hash full join of the two sides over the window's partitions (indexed by
topic and publish time) returns only the rows that are not a clean pair, and
two aggregates name the UUIDs seen twice; PostgreSQL does the per-message work
and Python sees only what it must report.
"""

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection

from recon.models import Finding, Topic, Window

Cat = Finding.Category

# What the engine finds (and owns: window_reconcile syncs exactly these per window).
ENGINE_CATEGORIES = (Cat.MISSING, Cat.DELAYED, Cat.DUPLICATE, Cat.ALTERED, Cat.ORPHAN, Cat.COUNT, Cat.REPUBLISHED)

# Every published/consumed pair of the window that is not a clean match, and every
# row with no twin. A hash join over raw rows (no aggregation), so the cost is
# about one scan of each side; clean pairs never leave PostgreSQL. The cap sits
# outside a MATERIALIZED CTE on purpose: a LIMIT the planner can see makes it
# walk both uuid indexes in a merge join (10x slower on a 1M window).
_JOIN_SQL = """
WITH d AS MATERIALIZED (
SELECT coalesce(p.uuid, c.uuid), p.content_hash, p.published_at, p.key, p.event_type, p.partition, p."offset",
       c.content_hash, c.consumed_at, c.published_at, c.key, c."group", c.partition, c."offset", c.outcome
FROM (
    SELECT uuid, content_hash, published_at, key, event_type, partition, "offset" FROM recon_publishedmessage
    WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s
) p
FULL JOIN (
    SELECT uuid, content_hash, consumed_at, published_at, key, "group", partition, "offset", outcome
    FROM recon_consumedmessage
    WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s AND uuid IS NOT NULL
) c ON c.uuid = p.uuid
WHERE p.uuid IS NULL OR c.uuid IS NULL OR c.content_hash <> p.content_hash OR c.consumed_at - p.published_at > %(limit)s
)
SELECT * FROM d LIMIT %(cap)s
"""

# UUIDs with more than one consume row. A delivery is a (group, partition, offset) the
# subscriber took (a dead letter reprocessed later is one delivery); the same position
# read again (a consumer that died before committing its offset) is a redelivery,
# counted, not a duplicate. Listed: UUIDs delivered twice or more, and redelivered ones
# with a late consume row (their delay is their first delivery's). The last row (uuid
# NULL) is the window's number of redeliveries, exact whatever the cap.
_CONSUMED_TWICE_SQL = """
WITH g AS MATERIALIZED (
SELECT uuid,
       count(DISTINCT ("group", partition, "offset")) FILTER (WHERE outcome <> 'dead') AS deliveries,
       min(consumed_at) AS first,
       count(*) FILTER (WHERE outcome <> 'dead') AS taken,
       max(consumed_at - published_at) AS slowest
FROM recon_consumedmessage
WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s AND uuid IS NOT NULL
GROUP BY uuid HAVING count(*) > 1
), d AS MATERIALIZED (
SELECT uuid, deliveries, first FROM g WHERE deliveries > 1 OR slowest > %(limit)s LIMIT %(cap)s
)
SELECT uuid, deliveries, first FROM d
UNION ALL
SELECT NULL::uuid, coalesce(sum(taken - deliveries), 0)::bigint, NULL::timestamptz FROM g
"""

# UUIDs the publish ledger holds twice (a ledger batch written twice).
_PUBLISHED_TWICE_SQL = """
WITH d AS MATERIALIZED (
SELECT uuid, count(*) FROM recon_publishedmessage
WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s
GROUP BY uuid HAVING count(*) > 1
)
SELECT * FROM d LIMIT %(cap)s
"""

_PUBLISHED_OF_SQL = """
SELECT uuid, content_hash, published_at, key, event_type, partition, "offset" FROM recon_publishedmessage
WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s AND uuid = ANY(%(uuids)s)
"""

# Deliveries without a usable UUID cannot be matched: each is an orphan, unless the feed
# dead-lettered it (then it is one dead-lettered finding, not also an orphan).
_NO_UUID_SQL = """
SELECT key, "group", partition, "offset", published_at, consumed_at
FROM recon_consumedmessage
WHERE topic_id = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s AND uuid IS NULL
  AND outcome <> 'dead'
ORDER BY partition, "offset"
LIMIT %(cap)s
"""

# Deliveries an operator's replay made (Kafka re-read, dead-letter reprocess): a repair,
# never counted as the subscriber receiving a message twice or late.
_REPLAYED_SQL = """
SELECT i.uuid, count(*) FROM recon_replayitem i JOIN recon_replay r ON r.id = i.replay_id
WHERE r.topic_id = %(topic)s AND r.way IN ('kafka', 'dead-letter') AND i.uuid = ANY(%(uuids)s)
  AND i.outcome IN ('stored', 'deleted', 'invalid')
GROUP BY i.uuid
"""

# Published messages of the window with at least one consume row: what the window's consumed
# count is once another producer's messages, garbage and redeliveries are left out. One hash
# semi-join over the same rows as _JOIN_SQL.
_DELIVERED_SQL = """
SELECT count(*) FROM recon_publishedmessage p
WHERE p.topic_id = %(topic)s AND p.published_at >= %(start)s AND p.published_at < %(end)s
  AND EXISTS (
    SELECT 1 FROM recon_consumedmessage c
    WHERE c.topic_id = %(topic)s AND c.published_at >= %(start)s AND c.published_at < %(end)s AND c.uuid = p.uuid
  )
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
    redelivered: int = 0  # consume rows that re-read a (group, partition, offset) already taken
    delivered: int = 0  # published messages of the window consumed at least once (_DELIVERED_SQL)


def _iso(at: dt.datetime | None) -> str | None:
    return at.isoformat() if at else None


class _Published(NamedTuple):
    content_hash: bytes
    published_at: dt.datetime
    key: str
    event_type: str
    partition: int
    offset: int


@dataclass
class _Ledger:
    """What the two ledgers say of one window, read in a handful of set-based queries."""

    published: dict[uuid.UUID, _Published] = field(default_factory=dict)
    missing: list[uuid.UUID] = field(default_factory=list)
    orphans: dict[uuid.UUID, list[tuple]] = field(default_factory=dict)
    altered: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    late: dict[uuid.UUID, dt.datetime] = field(default_factory=dict)
    consumed_twice: dict[uuid.UUID, tuple[int, dt.datetime]] = field(default_factory=dict)
    published_twice: dict[uuid.UUID, int] = field(default_factory=dict)
    replayed: dict[uuid.UUID, int] = field(default_factory=dict)
    no_uuid: list[tuple] = field(default_factory=list)
    redelivered: int = 0
    delivered: int = 0
    truncated: bool = False

    def base(self, message_uuid: uuid.UUID) -> dict:
        p = self.published[message_uuid]
        return {
            "event_type": p.event_type,
            "published_at": _iso(p.published_at),
            "partition": p.partition,
            "offset": p.offset,
        }


def window_compare(*, window: Window, topic: Topic, now: dt.datetime, cap: int) -> Comparison:
    """Every discrepant UUID of the window, as drafts of the categories the topic has switched on."""
    closed = now >= window.end + dt.timedelta(seconds=topic.grace_seconds)
    ledger = _ledger_read(window=window, topic=topic, cap=cap)
    drafts: list[Draft] = []
    pending = 0
    if topic.method_uuid:
        drafts += _orphans(ledger)
        missing = _missing(ledger)
        if closed:
            drafts += missing
        else:
            pending = len(missing)
        drafts += _duplicates(ledger)
        drafts += _delays(ledger, topic)
    if topic.method_hash or topic.method_audit:
        drafts += _alterations(ledger, topic)
    if topic.method_uuid:
        drafts += _no_uuid(ledger, cap)
    if topic.method_counts and not topic.method_uuid and window.published_count != window.consumed_count and closed:
        detail = {"published": window.published_count, "consumed": window.consumed_count}
        drafts.append(Draft(Cat.COUNT, None, "", detail))
    return Comparison(
        _with_loads(drafts, topic, window), pending, ledger.truncated, ledger.redelivered, ledger.delivered
    )


def _ledger_read(*, window: Window, topic: Topic, cap: int) -> _Ledger:
    limit = dt.timedelta(seconds=topic.latency_limit_seconds)
    params: dict[str, Any] = {
        "topic": topic.pk,
        "start": window.start,
        "end": window.end,
        "limit": limit,
        "cap": cap + 1,
    }
    ledger = _Ledger()
    with connection.cursor() as cursor:
        # Hash joins and aggregates of a large window fit in memory instead of spilling.
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.RECON_WORK_MEM])
        cursor.execute(_JOIN_SQL, params)
        rows = cursor.fetchall()
        cursor.execute(_CONSUMED_TWICE_SQL, params)
        *twice_rows, (_, redelivered, _) = cursor.fetchall()
        ledger.redelivered = int(redelivered)
        ledger.consumed_twice = {u: (n, first) for u, n, first in twice_rows}
        cursor.execute(_PUBLISHED_TWICE_SQL, params)
        ledger.published_twice = dict(cursor.fetchall())
        cursor.execute(_NO_UUID_SQL, params)
        ledger.no_uuid = cursor.fetchall()
        cursor.execute(_DELIVERED_SQL, params)
        ledger.delivered = int(cursor.fetchone()[0])
        ledger.truncated = any(
            len(found) > cap for found in (rows, ledger.consumed_twice, ledger.published_twice, ledger.no_uuid)
        )
        for message_uuid, p_hash, p_at, p_key, event, p_part, p_off, c_hash, c_at, *consumed, outcome in rows[:cap]:
            if p_hash is None:
                if outcome != "dead":  # a dead letter is its dead-lettered finding, not also an orphan
                    ledger.orphans.setdefault(message_uuid, []).append((c_at, *consumed))
                continue
            ledger.published[message_uuid] = _Published(bytes(p_hash), p_at, p_key, event, p_part, p_off)
            if c_hash is None:
                ledger.missing.append(message_uuid)
                continue
            if bytes(c_hash) != bytes(p_hash):
                ledger.altered.setdefault(message_uuid, set()).add(bytes(c_hash).hex())
            if c_at - p_at > limit:
                ledger.late[message_uuid] = min(ledger.late.get(message_uuid, c_at), c_at)
        twice = (set(ledger.consumed_twice) | set(ledger.published_twice)) - set(ledger.published)
        twice -= set(ledger.orphans)
        if ledger.consumed_twice or ledger.late:
            uuids = list(set(ledger.consumed_twice) | set(ledger.late))
            cursor.execute(_REPLAYED_SQL, {**params, "uuids": uuids})
            ledger.replayed = dict(cursor.fetchall())
        if twice:
            cursor.execute(_PUBLISHED_OF_SQL, {**params, "uuids": list(twice)})
            for message_uuid, p_hash, *fields in cursor.fetchall():
                ledger.published.setdefault(message_uuid, _Published(bytes(p_hash), *fields))
    return ledger


def _orphans(ledger: _Ledger) -> list[Draft]:
    drafts = []
    for message_uuid, deliveries in ledger.orphans.items():
        consumed_at, pub_at, key, group, partition, offset = min(deliveries, key=lambda d: d[0])
        detail = {
            "published_at": _iso(pub_at),
            "consumed_at": _iso(consumed_at),
            "group": group,
            "partition": partition,
            "offset": offset,
            "deliveries": ledger.consumed_twice.get(message_uuid, (len(deliveries),))[0],
        }
        drafts.append(Draft(Cat.ORPHAN, message_uuid, key or "", detail))
    return drafts


def _missing(ledger: _Ledger) -> list[Draft]:
    return [
        Draft(Cat.MISSING, message_uuid, ledger.published[message_uuid].key, ledger.base(message_uuid))
        for message_uuid in ledger.missing
    ]


def _duplicates(ledger: _Ledger) -> list[Draft]:
    drafts = []
    for message_uuid in sorted(set(ledger.consumed_twice) | set(ledger.published_twice), key=str):
        if message_uuid not in ledger.published:
            continue  # an orphan delivered twice is reported once, as an orphan
        # Deliveries the subscriber took, less the ones a replay made on purpose.
        taken = ledger.consumed_twice.get(message_uuid, (1,))[0] - ledger.replayed.get(message_uuid, 0)
        if taken <= 1 and ledger.published_twice.get(message_uuid, 1) <= 1:
            continue  # dead-lettered then reprocessed, or re-read by a replay: delivered once
        detail = {
            **ledger.base(message_uuid),
            "deliveries": taken,
            "published": ledger.published_twice.get(message_uuid, 1),
        }
        drafts.append(Draft(Cat.DUPLICATE, message_uuid, ledger.published[message_uuid].key, detail))
    return drafts


def _delays(ledger: _Ledger, topic: Topic) -> list[Draft]:
    limit = dt.timedelta(seconds=topic.latency_limit_seconds)
    drafts = []
    for message_uuid, late_at in ledger.late.items():
        if ledger.replayed.get(message_uuid, 0) >= ledger.consumed_twice.get(message_uuid, (1,))[0]:
            continue  # only a replay delivered it: the repair of a missing message, not a delay
        # Delay is about the first delivery; a late redelivery is a duplicate, not a delay.
        first = ledger.consumed_twice[message_uuid][1] if message_uuid in ledger.consumed_twice else late_at
        delay = first - ledger.published[message_uuid].published_at
        if delay <= limit:
            continue
        detail = {
            **ledger.base(message_uuid),
            "consumed_at": _iso(first),
            "delay_seconds": round(delay.total_seconds(), 3),
            "limit_seconds": topic.latency_limit_seconds,
        }
        drafts.append(Draft(Cat.DELAYED, message_uuid, ledger.published[message_uuid].key, detail))
    return drafts


def _alterations(ledger: _Ledger, topic: Topic) -> list[Draft]:
    drafts = []
    for message_uuid, received in ledger.altered.items():
        detail = {
            **ledger.base(message_uuid),
            "algorithm": topic.hash_algorithm,
            "published_hash": ledger.published[message_uuid].content_hash.hex(),
            "consumed_hashes": sorted(received),
        }
        drafts.append(Draft(Cat.ALTERED, message_uuid, ledger.published[message_uuid].key, detail))
    return drafts


def _no_uuid(ledger: _Ledger, cap: int) -> list[Draft]:
    drafts = []
    for key, group, partition, offset, pub_at, consumed_at in ledger.no_uuid[:cap]:
        detail = {
            "reason": "no usable uuid header",
            "group": group,
            "partition": partition,
            "offset": offset,
            "published_at": _iso(pub_at),
            "consumed_at": _iso(consumed_at),
        }
        drafts.append(Draft(Cat.ORPHAN, None, key, detail))
    return drafts


def _with_loads(drafts: list[Draft], topic: Topic, window: Window) -> list[Draft]:
    """Missing messages of a bulk load point at it (the load page lists its gaps)."""
    missing = [d.uuid for d in drafts if d.category == Cat.MISSING and d.uuid]
    if not missing:
        return drafts
    with connection.cursor() as cursor:
        cursor.execute(_LOADS_SQL, {"topic": topic.pk, "start": window.start, "end": window.end, "uuids": missing})
        loads = dict(cursor.fetchall())
    return [d._replace(load_id=loads.get(d.uuid)) if d.category == Cat.MISSING else d for d in drafts]


# The same record version published again under a new UUID, not as a replay: a
# restarted bulk load or change feed. Both copies are in the ledger and both are
# delivered, so the transport legs see two clean messages; only the version says the
# second is a copy. Looked for in the window and one window length before it; the
# finding is the window's that holds the latest copy.
_REPUBLISHED_SQL = """
WITH r AS MATERIALIZED (
SELECT key, source_version, count(DISTINCT uuid) AS copies,
       array_agg(uuid::text ORDER BY published_at, id) AS uuids,
       array_agg(published_at ORDER BY published_at, id) AS ats,
       array_agg(load_id::text ORDER BY published_at, id) AS loads
FROM recon_publishedmessage
WHERE topic_id = %(topic)s AND published_at >= %(lookback)s AND published_at < %(end)s
  AND source_version IS NOT NULL AND replay_of IS NULL
GROUP BY key, source_version
HAVING count(DISTINCT uuid) > 1 AND max(published_at) >= %(start)s
)
SELECT * FROM r ORDER BY key LIMIT %(cap)s
"""


def window_republished(*, window: Window, topic: Topic, cap: int) -> tuple[list[Draft], bool]:
    """Record versions of the window published twice or more under different UUIDs, neither a
    replay: one `republished` draft each (on the latest copy); answers (drafts, truncated)."""
    if not topic.method_uuid:
        return [], False
    params: dict[str, Any] = {
        "topic": topic.pk,
        "start": window.start,
        "end": window.end,
        "lookback": window.start - (window.end - window.start),
        "cap": cap + 1,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.RECON_WORK_MEM])
        cursor.execute(_REPUBLISHED_SQL, params)
        rows = cursor.fetchall()
    drafts = []
    for key, version, copies, uuids, ats, loads in rows[:cap]:
        detail = {
            "source_version": version,
            "copies": copies,
            "uuids": uuids,
            "published_at": [_iso(at) for at in ats],
            "loads": sorted({load for load in loads if load}),
        }
        latest_load = loads[-1]
        drafts.append(
            Draft(Cat.REPUBLISHED, uuid.UUID(uuids[-1]), key, detail, uuid.UUID(latest_load) if latest_load else None)
        )
    return drafts, len(rows) > cap
