"""Demo ledger traffic for screenshots and local trials (never run against production).

Writes through the real ledger writers (recon.services.ledger) and reconciles with the real
engine (recon.services.windows.range_reconcile), so the windows, findings and charts are
what the product would show for the same traffic: a steady flow with a few
messages lost, duplicated, altered, delayed and dead-lettered. demo_scene_seed adds
what the rest of the pages show (a cache divergence, a replay fixed and verified, one
awaiting a second operator, alerts), through the same services an operator's clicks call.
"""

import datetime as dt
import math
import random
import uuid
from dataclasses import dataclass

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, OuterRef, Subquery, Value
from django.utils import timezone

from core.hashing import content_hash
from kafkacache.cache import CacheOp, cache_apply
from monitoring import services as alerting
from monitoring.models import AlertRule, Silence
from recon.models import ConsumedMessage, Finding, Load, ReconRun, Replay, ReplayItem, Topic, Window
from recon.services import finding_lifecycle
from recon.services.actions import operator_action_record
from recon.services.cache_check import cache_check
from recon.services.feed import rebalance_record
from recon.services.finding_lifecycle import finding_acknowledge
from recon.services.findings import finding_record
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record, window_start
from recon.services.runs import replay_verify, run_execute
from recon.services.windows import due_windows_reconcile
from replay.services.requests import replay_request

DEAD_LETTER_REASON = "malformed Avro: value has 3 bytes left over"


def demo_traffic_seed(*, topic: Topic, now: dt.datetime, hours: int = 6, per_window: int = 40, seed: int = 7) -> dict:
    """Publish and consume `hours` of traffic on `topic`; answers what was written."""
    rnd = random.Random(f"{seed}:{topic.name}")
    width = dt.timedelta(seconds=topic.window_seconds)
    first = window_start(topic, now - dt.timedelta(hours=hours))
    published: list[PublishedRow] = []
    consumed: list[ConsumedRow] = []
    counts = {"missing": 0, "duplicate": 0, "altered": 0, "delayed": 0, "dead": 0}
    dead: list[ConsumedRow] = []
    twice: list[uuid.UUID] = []  # delivered twice (a redelivery after a rebalance)
    values: dict[uuid.UUID, bytes] = {}
    offset, start = 0, first
    while start < now:
        # A daily-looking wave with noise, so the chart has a shape.
        n = max(1, int(per_window * (1 + 0.5 * math.sin(start.timestamp() / 3600)) + rnd.randint(-5, 5)))
        # Windows still inside their grace period are being consumed as we speak.
        in_flight = start + width + dt.timedelta(seconds=topic.grace_seconds) > now
        span = min(width, now - start).total_seconds()
        for i in range(n):
            at = start + dt.timedelta(seconds=rnd.uniform(0, max(span - 1, 0)))
            row, value = _published(topic, rnd, offset=offset, at=at)
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
            if 0.7 < roll < 0.7015:  # the feed could not store it: dead-lettered
                counts["dead"] += 1
                dead.append(_delivery(topic, row, digest, at + dt.timedelta(seconds=delay), DEAD_LETTERED))
                continue
            deliveries = 2 if 0.3 < roll < 0.305 else 1
            counts["duplicate"] += deliveries - 1
            if deliveries > 1:
                twice.append(row.uuid)
            for d in range(deliveries):
                consumed.append(_delivery(topic, row, digest, at + dt.timedelta(seconds=delay + d * 2), "stored"))
        start += width
    for i in range(0, len(published), 5000):
        published_record(topic=topic, rows=published[i : i + 5000])
    for i in range(0, len(consumed), 5000):
        consumed_record(topic=topic, rows=consumed[i : i + 5000])
    _dead_letters_record(topic, dead)
    return {
        "published": len(published),
        "consumed": len(consumed) + len(dead),
        **counts,
        "rows": published,
        "values": values,
        "twice": twice,
    }


DEAD_LETTERED = ConsumedMessage.Outcome.DEAD_LETTERED


def _published(topic: Topic, rnd: random.Random, *, offset: int, at: dt.datetime) -> tuple[PublishedRow, bytes]:
    """The `offset`-th message of the demo traffic (two partitions), and its value."""
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
    return row, value


def _delivery(topic: Topic, row: PublishedRow, digest: bytes, consumed_at: dt.datetime, outcome: str) -> ConsumedRow:
    """One delivery of a published row, with the content hash the subscriber saw."""
    return ConsumedRow(
        uuid=row.uuid,
        group=topic.consumer_group,
        partition=row.partition,
        offset=row.offset,
        key=row.key,
        content_hash=digest,
        published_at=row.published_at,
        consumed_at=consumed_at,
        outcome=outcome,
    )


def _dead_letters_record(topic: Topic, dead: list[ConsumedRow]) -> None:
    """Dead letters as the feed's consumer records them: the ledger rows and their findings, together."""
    with transaction.atomic():
        consumed_record(topic=topic, rows=dead)
        for letter in dead:
            finding = finding_record(
                topic=topic,
                category=Finding.Category.DEAD_LETTERED,
                uuid=letter.uuid,
                key=letter.key,
                detail={
                    "reason": DEAD_LETTER_REASON,
                    "partition": letter.partition,
                    "offset": letter.offset,
                    "group": letter.group,
                    "dead_letter_topic": settings.KAFKA_TOPIC_DEAD_LETTER,
                },
            )
            Finding.objects.filter(pk=finding.pk).update(created_at=letter.consumed_at)


def demo_seed(*, topics: list[Topic], operator: User, now: dt.datetime, hours: int = 6) -> dict:
    """Traffic on every topic, reconciled; rebalances, loads and a few acknowledged findings."""
    written = {}
    for topic in topics:
        written[topic.name] = demo_traffic_seed(topic=topic, now=now, hours=hours)
        member = f"kafkacache-{topic.kind}-1"
        parts = [{"topic": topic.name, "partition": p} for p in (0, 1)]
        rebalance_record(group=topic.consumer_group, member=member, kind="assigned", partitions=parts)
        rebalance_record(group=topic.consumer_group, member=member, kind="revoked", partitions=parts[1:])
    # Windows whose grace has passed are reconciled the way the scheduler does it; each
    # finding is dated when the scheduler would have found it (its window's end + grace).
    due_windows_reconcile(now=now, limit=10_000)
    for topic in topics:
        found_at = Subquery(Window.objects.filter(pk=OuterRef("window_id")).values("end")[:1])
        Finding.objects.filter(topic=topic, window__isnull=False).update(
            created_at=ExpressionWrapper(
                found_at + Value(dt.timedelta(seconds=topic.grace_seconds)), output_field=DateTimeField()
            )
        )
    bulk = next((t for t in topics if t.kind == Topic.Kind.BULK), topics[0])
    rebalance_record(
        group=bulk.consumer_group,
        member="kafkacache-bulk-2",
        kind="error",
        partitions=[{"topic": bulk.name, "partition": 1}],
        error="commit failed: REBALANCE_IN_PROGRESS",
        topic=bulk,
    )
    _loads_seed(bulk, operator)
    _findings_worked(bulk, operator)
    # A starting rule, shown on the Alerts pages (no channel: people add theirs).
    AlertRule.objects.get_or_create(
        name="Standing exceptions",
        defaults={"measure": AlertRule.Measure.OPEN, "threshold": 1, "grace_minutes": 15, "min_severity": "warning"},
    )
    AlertRule.objects.get_or_create(
        name="Keys not re-proved in a day",
        defaults={"kind": AlertRule.Kind.NOT_REPROVED, "threshold": settings.CACHE_REPROVED_HOURS},
    )
    return written


def _loads_seed(bulk: Topic, operator: User) -> None:
    """Three loads, done, running and failed, each started by the operator."""
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


def _findings_worked(bulk: Topic, operator: User) -> None:
    """Findings people have worked on: two acknowledged, and a few along their lifecycle:
    owned (still open), under investigation, accepted with a reason."""
    for finding in Finding.objects.filter(topic=bulk, status=Finding.Status.OPEN, category="delayed")[:2]:
        finding_acknowledge(finding=finding, user=operator, comment="a slow batch after the broker restart")
    standing = Finding.objects.filter(topic=bulk, status=Finding.Status.OPEN).order_by("created_at")
    worked: list[int] = []
    for category, step in (("missing", "own"), ("altered", "investigate"), ("delayed", "accept")):
        # Another one where the traffic made none of the category, never one already worked
        # (it is still open once owned: taken twice, the demo would show one break fewer).
        left = standing.exclude(pk__in=worked)
        picked = left.filter(category=category).first() or left.exclude(category="duplicate").first()
        if picked is None:
            continue
        worked.append(picked.pk)
        finding_lifecycle.finding_assign(finding=picked, user=operator, assignee=operator, comment="taking this one")
        if step == "investigate":
            finding_lifecycle.finding_investigate(finding=picked, user=operator, comment="asked the ODS team")
        elif step == "accept":
            finding_lifecycle.finding_accept(
                finding=picked, user=operator, reason_code="timing", comment="within tolerance"
            )


@dataclass
class DemoScene:
    """The demo objects the pages show (scripts/screenshots.py's table picks them)."""

    bulk: Topic
    message: PublishedRow  # delivered twice, held by the cache as published (the message page)
    owned: Finding | None  # an open break with an owner, a comment and an age
    accepted: Finding | None  # accepted as-is with a reason code
    divergence: ReconRun  # the cache leg that found a key differing and one absent
    window: Window | None  # a discrepant window
    load: Load | None  # a load still running
    replay: Replay  # done; the finding it fixed verified by a run
    pending: Replay  # awaiting a second operator's approval
    verify_run: ReconRun | None
    rule: AlertRule


def _latest(rows: list[PublishedRow]) -> dict[str, PublishedRow]:
    latest: dict[str, PublishedRow] = {}
    for row in sorted(rows, key=lambda r: r.published_at):
        latest[row.key] = row
    return latest


def _cache_divergence(
    *, written: dict, bulk: Topic, standing, operator: User, client: redis.Redis, now: dt.datetime
) -> tuple[PublishedRow, ReconRun]:
    """The cache: one message held as published (the message page), one key with other bytes,
    one absent, judged by a cache leg; answers (the message, the run)."""
    rows, values = written["rows"], written["values"]
    latest = _latest(rows)
    settled = now - dt.timedelta(hours=1)  # long consumed: the cache leg judges it, not "in flight"
    flagged = set(standing.values_list("key", flat=True))
    clean = [r for r in latest.values() if r.published_at < settled and r.key not in flagged]
    twice = set(written["twice"])
    message = next(r for r in clean if r.uuid in twice)
    differs, absent = [r for r in clean if r is not message][:2]
    ops = [
        CacheOp(
            "bulk", r.key, 0, value, str(r.uuid), 1, created_ms=int(r.published_at.timestamp() * 1000), topic=bulk.name
        )
        for r, value in ((message, values[message.uuid]), (differs, values[differs.uuid] + b" (edited)"))
    ]
    cache_apply(client, ops)
    divergence = cache_check(
        topic=bulk, keys=[message.key, differs.key, absent.key], trigger="dashboard", requested_by=operator
    )
    return message, divergence


def _alerts_seed(*, operator: User, now: dt.datetime) -> AlertRule:
    """Alerts: open breaks standing, and critical ones past their SLA; one rule silenced for a change."""
    rule = AlertRule.objects.get(name="Standing exceptions")
    AlertRule.objects.get_or_create(
        name="Critical breaks past SLA", defaults={"kind": AlertRule.Kind.BREAK_SLA, "min_severity": "critical"}
    )
    alerting.alerts_evaluate(now=now + dt.timedelta(minutes=30))
    Silence.objects.create(
        rule=rule,
        starts_at=now,
        ends_at=now + dt.timedelta(hours=2),
        reason="broker upgrade CHG-1042",
        created_by=operator,
    )
    return rule


def _replay_done(replay: Replay, *, original: PublishedRow, bulk: Topic, now: dt.datetime) -> None:
    """The replay's run as a worker's Kafka way leaves it (the original consumed again, the
    request done), then verified by the runs its finding names."""
    consumed_record(topic=bulk, rows=[_delivery(bulk, original, original.content_hash, now, "stored")])
    ReplayItem.objects.create(
        replay=replay,
        original_uuid=original.uuid,
        uuid=original.uuid,
        key=original.key,
        partition=original.partition,
        offset=original.offset,
        outcome=ReplayItem.Outcome.STORED,
    )
    Replay.objects.filter(pk=replay.pk).update(
        status=Replay.Status.DONE, total=1, processed=1, outcome={"stored": 1}, started_at=now, finished_at=now
    )
    runs = replay_verify(replay_id=replay.pk, force=True) or []
    for run in runs:
        run_execute(run_id=run.pk)


def demo_scene_seed(*, written: dict, bulk: Topic, operator: User, client: redis.Redis) -> DemoScene:
    """On top of demo_seed's traffic: what the cache, replay, approval and alert pages show.

    The cache leg, the replay request, its verification and the alerts run through their
    real services. A replay's run itself is what a worker's Kafka way does, written
    directly: the demo's messages live in the ledger only, not in Kafka."""
    now = timezone.now()
    rows = written[bulk.name]["rows"]
    standing = Finding.objects.filter(topic=bulk).order_by("created_at")
    message, divergence = _cache_divergence(
        written=written[bulk.name], bulk=bulk, standing=standing, operator=operator, client=client, now=now
    )
    # A missing message replayed by an operator, then verified by the runs its finding names.
    lost = standing.filter(category="missing", status=Finding.Status.OPEN, assigned_user__isnull=True).last()
    assert lost is not None and lost.uuid is not None, "the demo traffic lost no message"
    replay, _ = replay_request(
        topic=bulk,
        way=Replay.Way.KAFKA,
        scope=Replay.Scope.MESSAGES,
        target={"uuids": [str(lost.uuid)]},
        reason="lost when the consumer was killed during the 10:40 deploy",
        requested_by=operator,
        queue=False,
    )
    _replay_done(replay, original=next(r for r in rows if r.uuid == lost.uuid), bulk=bulk, now=now)
    # Four eyes: past 20 messages a second operator approves; the operator asks for a whole window.
    Topic.objects.filter(pk=bulk.pk).update(approval_threshold=20)
    bulk.refresh_from_db()
    window = Window.objects.filter(topic=bulk, status=Window.Status.DISCREPANT).order_by("-start").first()
    assert window is not None, "the demo traffic made no discrepant window"
    pending, _ = replay_request(
        topic=bulk,
        way=Replay.Way.KAFKA,
        scope=Replay.Scope.WINDOW,
        target={"window": window.pk},
        reason="re-read the 40 minutes the consumer group lagged",
        requested_by=operator,
        queue=False,
    )
    rule = _alerts_seed(operator=operator, now=now)
    owned = standing.filter(assigned_user=operator, status=Finding.Status.OPEN).first()
    return DemoScene(
        bulk=bulk,
        message=message,
        owned=owned,
        accepted=standing.filter(status=Finding.Status.ACCEPTED).first(),
        divergence=divergence,
        window=window,
        load=Load.objects.filter(topic=bulk, status=Load.Status.RUNNING).first()
        or Load.objects.filter(topic=bulk).first(),
        replay=replay,
        pending=pending,
        verify_run=next((r for r in ReconRun.objects.filter(replay=replay, kind=ReconRun.Kind.TRANSPORT)), None),
        rule=rule,
    )
