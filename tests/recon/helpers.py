"""Ledger data for recon tests: a window's worth of messages with chosen faults."""

import datetime as dt
import uuid
from typing import NamedTuple

from core.hashing import content_hash
from recon.models import Topic
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def topic_make(name: str, **fields) -> Topic:
    fields.setdefault("window_seconds", 300)
    fields.setdefault("grace_seconds", 60)
    fields.setdefault("latency_limit_seconds", 30)
    return Topic.objects.create(name=name, consumer_group=f"{name}-group", **fields)


class Faults(NamedTuple):
    missing: set[uuid.UUID]
    altered: set[uuid.UUID]
    duplicate: set[uuid.UUID]
    delayed: set[uuid.UUID]
    orphan: set[uuid.UUID]
    redelivered: set[uuid.UUID]


def scenario_write(
    topic: Topic,
    *,
    n: int,
    missing: int = 0,
    altered: int = 0,
    duplicate: int = 0,
    delayed: int = 0,
    orphan: int = 0,
    redelivered: int = 0,
    at: dt.datetime = T0,
) -> Faults:
    """n published messages in one window; the first ones of each kind get a fault."""
    algorithm = topic.hash_algorithm
    published = [
        PublishedRow(
            uuid.uuid4(),
            i % 3,
            i,
            f"client:{i}",
            "bulk",
            content_hash(f"value-{i}".encode(), algorithm),
            100,
            at + dt.timedelta(milliseconds=i),
        )
        for i in range(n)
    ]
    published_record(topic=topic, rows=published)
    faults = Faults(set(), set(), set(), set(), set(), set())
    cursor = iter(published)
    for _ in range(missing):
        faults.missing.add(next(cursor).uuid)
    for _ in range(altered):
        faults.altered.add(next(cursor).uuid)
    for _ in range(duplicate):
        faults.duplicate.add(next(cursor).uuid)
    for _ in range(delayed):
        faults.delayed.add(next(cursor).uuid)
    for _ in range(redelivered):
        faults.redelivered.add(next(cursor).uuid)
    limit = dt.timedelta(seconds=topic.latency_limit_seconds)
    consumed = []
    for r in published:
        if r.uuid in faults.missing:
            continue
        value_hash = content_hash(b"tampered" + r.uuid.bytes, algorithm) if r.uuid in faults.altered else r.content_hash
        late = limit + dt.timedelta(seconds=5) if r.uuid in faults.delayed else dt.timedelta(milliseconds=20)
        row = ConsumedRow(
            r.uuid,
            topic.consumer_group,
            r.partition,
            r.offset,
            r.key,
            value_hash,
            r.published_at,
            r.published_at + late,
            "stored",
        )
        consumed.append(row)
        if r.uuid in faults.duplicate:
            # a second real copy (the same message again further on in the log), a little later
            consumed.append(
                row._replace(offset=r.offset + 1_000_000, consumed_at=row.consumed_at + dt.timedelta(seconds=1))
            )
        if r.uuid in faults.redelivered:
            # the same offset read again (a consumer that died before committing): redelivery
            consumed.append(row._replace(consumed_at=row.consumed_at + dt.timedelta(seconds=1)))
    for i in range(orphan):
        orphan_uuid = uuid.uuid4()
        faults.orphan.add(orphan_uuid)
        consumed.append(
            ConsumedRow(
                orphan_uuid,
                topic.consumer_group,
                0,
                10_000 + i,
                f"stray:{i}",
                content_hash(orphan_uuid.bytes, algorithm),
                at + dt.timedelta(seconds=1),
                at + dt.timedelta(seconds=1, milliseconds=5),
                "stored",
            )
        )
    consumed_record(topic=topic, rows=consumed)
    return faults


def report_uuids(report: dict) -> dict[str, set[str]]:
    return {category: set(entry["uuids"]) for category, entry in report["findings"].items()}


def expected_uuids(faults: Faults) -> dict[str, set[str]]:
    named = {
        "missing": faults.missing,
        "altered": faults.altered,
        "duplicate": faults.duplicate,
        "delayed": faults.delayed,
        "orphan": faults.orphan,
    }
    return {category: {str(u) for u in uuids} for category, uuids in named.items() if uuids}
