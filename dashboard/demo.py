"""Demo ledger traffic for screenshots and local trials (never run against production).

Writes through the real ledger writers (recon.services.ledger) and reconciles with the real
engine (recon.services.windows.range_reconcile), so the windows, findings and charts are
what the product would show for the same traffic: a steady flow with a few
messages lost, duplicated, altered and delayed.
"""

import datetime as dt
import math
import random
import uuid

from django.contrib.auth.models import User

from core.hashing import content_hash
from monitoring.models import AlertRule
from recon.models import Finding, Load, Topic
from recon.services import finding_lifecycle
from recon.services.actions import operator_action_record
from recon.services.feed import rebalance_record
from recon.services.finding_lifecycle import finding_acknowledge
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record, window_start
from recon.services.windows import due_windows_reconcile


def demo_traffic_seed(*, topic: Topic, now: dt.datetime, hours: int = 6, per_window: int = 40, seed: int = 7) -> dict:
    """Publish and consume `hours` of traffic on `topic`; answers what was written."""
    rnd = random.Random(f"{seed}:{topic.name}")
    width = dt.timedelta(seconds=topic.window_seconds)
    first = window_start(topic, now - dt.timedelta(hours=hours))
    published: list[PublishedRow] = []
    consumed: list[ConsumedRow] = []
    counts = {"missing": 0, "duplicate": 0, "altered": 0, "delayed": 0}
    values: dict[uuid.UUID, bytes] = {}
    offset = 0
    start = first
    while start < now:
        # A daily-looking wave with noise, so the chart has a shape.
        n = max(1, int(per_window * (1 + 0.5 * math.sin(start.timestamp() / 3600)) + rnd.randint(-5, 5)))
        # Windows still inside their grace period are being consumed as we speak.
        in_flight = start + width + dt.timedelta(seconds=topic.grace_seconds) > now
        span = min(width, now - start).total_seconds()
        for i in range(n):
            at = start + dt.timedelta(seconds=rnd.uniform(0, max(span - 1, 0)))
            value = f"{topic.name}:{offset}:{rnd.random()}".encode()
            row = PublishedRow(
                uuid=uuid.uuid4(),
                partition=offset % 2,
                offset=offset // 2,
                key=f"client:{rnd.randint(1, 5000)}",
                event_type="bulk" if topic.kind == Topic.Kind.BULK else rnd.choice(["add", "update", "delete"]),
                content_hash=content_hash(value, topic.hash_algorithm),
                size=len(value) + 520,
                published_at=at,
            )
            published.append(row)
            values[row.uuid] = value
            offset += 1
            roll = rnd.random()
            if in_flight and i > n // 2:
                continue
            if roll < 0.004:
                counts["missing"] += 1
                continue
            delay = rnd.uniform(0.05, 0.8)
            if roll > 0.997:
                delay, counts["delayed"] = topic.latency_limit_seconds * 3, counts["delayed"] + 1
            digest = row.content_hash
            if 0.5 < roll < 0.502:
                digest, counts["altered"] = content_hash(value + b"!", topic.hash_algorithm), counts["altered"] + 1
            deliveries = 2 if 0.3 < roll < 0.305 else 1
            counts["duplicate"] += deliveries - 1
            for d in range(deliveries):
                consumed.append(
                    ConsumedRow(
                        uuid=row.uuid,
                        group=topic.consumer_group,
                        partition=row.partition,
                        offset=row.offset,
                        key=row.key,
                        content_hash=digest,
                        published_at=at,
                        consumed_at=at + dt.timedelta(seconds=delay + d * 2),
                        outcome="stored",
                    )
                )
        start += width
    for i in range(0, len(published), 5000):
        published_record(topic=topic, rows=published[i : i + 5000])
    for i in range(0, len(consumed), 5000):
        consumed_record(topic=topic, rows=consumed[i : i + 5000])
    return {"published": len(published), "consumed": len(consumed), **counts, "rows": published, "values": values}


def demo_seed(*, topics: list[Topic], operator: User, now: dt.datetime, hours: int = 6) -> dict:
    """Traffic on every topic, reconciled; rebalances, loads and a few acknowledged findings."""
    written = {}
    for topic in topics:
        written[topic.name] = demo_traffic_seed(topic=topic, now=now, hours=hours)
        member = f"kafkacache-{topic.kind}-1"
        parts = [{"topic": topic.name, "partition": p} for p in (0, 1)]
        rebalance_record(group=topic.consumer_group, member=member, kind="assigned", partitions=parts)
        rebalance_record(group=topic.consumer_group, member=member, kind="revoked", partitions=parts[1:])
    # Windows whose grace has passed are reconciled the way the scheduler does it.
    due_windows_reconcile(now=now, limit=10_000)
    bulk = next((t for t in topics if t.kind == Topic.Kind.BULK), topics[0])
    rebalance_record(
        group=bulk.consumer_group,
        member="kafkacache-bulk-2",
        kind="error",
        partitions=[{"topic": bulk.name, "partition": 1}],
        error="commit failed: REBALANCE_IN_PROGRESS",
        topic=bulk,
    )
    for status, published, total in (("done", 1200, 1200), ("running", 340, 900), ("failed", 10, 500)):
        load = Load.objects.create(
            topic=bulk,
            source="ods",
            status=status,
            total=total,
            built=published,
            published=published,
            exceptions=1 if status == "failed" else 0,
            error="source connection reset" if status == "failed" else "",
            requested_by=operator,
        )
        operator_action_record(user=operator, action="load.start", topic=bulk, target=f"load:{load.pk}")
    for finding in Finding.objects.filter(topic=bulk, status=Finding.Status.OPEN, category="duplicate")[:2]:
        finding_acknowledge(finding=finding, user=operator, comment="redelivery after a rebalance, expected")
    # A few findings along their lifecycle: owned and under investigation, accepted with a reason.
    others = Finding.objects.filter(topic=bulk, status=Finding.Status.OPEN).exclude(category="duplicate")
    for n, finding in enumerate(others.order_by("created_at")[:3]):
        finding_lifecycle.finding_assign(finding=finding, user=operator, assignee=operator, comment="taking this one")
        if n == 0:
            finding_lifecycle.finding_investigate(finding=finding, user=operator, comment="asked the ODS team")
        elif n == 1:
            finding_lifecycle.finding_accept(
                finding=finding, user=operator, reason_code="timing", comment="within tolerance"
            )
    # A starting rule, shown on the Alerts pages (no channel: people add theirs).
    AlertRule.objects.get_or_create(
        name="Standing exceptions",
        defaults={"measure": AlertRule.Measure.OPEN, "threshold": 1, "grace_minutes": 15, "min_severity": "warning"},
    )
    return written
