"""Reads of the reconciliation app: what the scheduler, the API and reports ask."""

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Count, DateTimeField, DurationField, ExpressionWrapper, F, Min, Q, QuerySet, Sum, Value

from recon.engine import ENGINE_CATEGORIES
from recon.models import Finding, ReconRun, Topic, Window


def windows_due(*, now: dt.datetime, limit: int = 500) -> QuerySet[Window]:
    """Open windows whose end + the topic's grace has passed, oldest first."""
    grace = ExpressionWrapper(F("topic__grace_seconds") * Value(dt.timedelta(seconds=1)), output_field=DurationField())
    return (
        Window.objects.filter(status=Window.Status.OPEN, ledger_dropped_at__isnull=True)
        .alias(due_at=ExpressionWrapper(F("end") + grace, output_field=DateTimeField()))
        .filter(due_at__lte=now)
        .select_related("topic")
        .order_by("end")[:limit]
    )


def runs_visible(topics: QuerySet[Topic]) -> QuerySet[ReconRun]:
    return ReconRun.objects.filter(topic__in=topics).select_related("topic", "requested_by")


def run_report(*, topic: Topic, start: dt.datetime, end: dt.datetime, window_ids: list[int], now: dt.datetime) -> dict:
    """A run's report: window states, totals, and the UUIDs of each category still standing."""
    windows = Window.objects.filter(pk__in=window_ids)
    states = dict(windows.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n"))
    totals = windows.aggregate(published=Sum("published_count"), consumed=Sum("consumed_count"))
    summaries = list(windows.values_list("summary", flat=True))
    cap = settings.RECON_REPORT_MAX_UUIDS
    findings: dict[str, dict] = {}
    classification: dict[str, int] = defaultdict(int)
    standing = (
        Finding.objects.filter(window_id__in=window_ids, category__in=ENGINE_CATEGORIES)
        .exclude(status=Finding.Status.RESOLVED)
        .order_by("category", "uuid")
        .values_list("category", "uuid", "classification")
    )
    for category, message_uuid, verdict in standing.iterator(chunk_size=5000):
        entry = findings.setdefault(category, {"count": 0, "uuids": [], "truncated": False})
        entry["count"] += 1
        classification[verdict] += 1
        if message_uuid is not None:
            if len(entry["uuids"]) < cap:
                entry["uuids"].append(str(message_uuid))
            else:
                entry["truncated"] = True
    n_windows = len(window_ids)
    return {
        "topic": topic.name,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "as_of": now.isoformat(),
        "windows": {
            "total": n_windows,
            "matched": states.get(Window.Status.MATCHED, 0),
            "discrepant": states.get(Window.Status.DISCREPANT, 0),
            "open": states.get(Window.Status.OPEN, 0),
        },
        "published": totals["published"] or 0,
        "consumed": totals["consumed"] or 0,
        "pending": sum(s.get("pending", 0) for s in summaries),
        "all_matched": states.get(Window.Status.MATCHED, 0) == n_windows and not findings,
        "findings": findings,
        "classification": dict(classification),
        "truncated": any(s.get("truncated") for s in summaries),
        "methods": {
            "counts": topic.method_counts,
            "uuid": topic.method_uuid,
            "hash": topic.method_hash,
            "audit": topic.method_audit,
        },
    }


# --- breaks: ageing, SLA, owners ------------------------------------------------------------

AGEING_BUCKETS = (
    ("lt_1h", "< 1 h", dt.timedelta(0), dt.timedelta(hours=1)),
    ("h1_24", "1-24 h", dt.timedelta(hours=1), dt.timedelta(hours=24)),
    ("d1_7", "1-7 days", dt.timedelta(hours=24), dt.timedelta(days=7)),
    ("gt_7d", "> 7 days", dt.timedelta(days=7), None),
)


def breaks_ageing(*, topics: QuerySet[Topic], now: dt.datetime) -> list[dict]:
    """Unresolved breaks per topic and severity in the four age buckets, with the oldest of each (a Finding).

    One grouped query (served by finding_topic_status_time) and one DISTINCT ON for the oldest."""
    counts = {
        name: Count("id", filter=Q(created_at__lte=now - low) & (Q(created_at__gt=now - high) if high else Q()))
        for name, _, low, high in AGEING_BUCKETS
    }
    rows = (
        Finding.objects.filter(topic__in=topics, status__in=Finding.UNRESOLVED)
        .values("topic_id", "topic__name", "severity")
        .annotate(total=Count("id"), oldest_at=Min("created_at"), **counts)
        .order_by("topic__name", "severity")
    )
    oldest = {
        (f.topic_id, f.severity): f
        for f in Finding.objects.filter(topic__in=topics, status__in=Finding.UNRESOLVED)
        .order_by("topic_id", "severity", "created_at", "id")
        .distinct("topic_id", "severity")
    }
    sla = settings.BREAK_SLA_HOURS
    out = []
    for values in rows:
        row: dict = dict(values)  # the bucket names are keys mypy cannot know
        limit = dt.timedelta(hours=sla.get(row["severity"], 0))
        out.append(
            {
                **row,
                "buckets": [(label, row[name]) for name, label, _, _ in AGEING_BUCKETS],
                "sla_hours": sla.get(row["severity"]),
                "over_sla": bool(limit) and now - row["oldest_at"] > limit,
                "oldest": oldest.get((row["topic_id"], row["severity"])),
            }
        )
    return out


def breaks_over_sla(
    *,
    now: dt.datetime,
    topic_id: int | None = None,
    severities: list[str] | None = None,
    categories: list[str] | None = None,
) -> dict[int, int]:
    """{topic_id: unresolved breaks older than the SLA of their severity} (BREAK_SLA_HOURS)."""
    late = Q()
    for severity, hours in settings.BREAK_SLA_HOURS.items():
        if severities is None or severity in severities:
            late |= Q(severity=severity, created_at__lt=now - dt.timedelta(hours=hours))
    if not late:
        return {}
    findings = Finding.objects.filter(late, status__in=Finding.UNRESOLVED)
    if topic_id:
        findings = findings.filter(topic_id=topic_id)
    if categories:
        findings = findings.filter(category__in=categories)
    return dict(findings.values("topic_id").annotate(n=Count("id")).values_list("topic_id", "n"))


def breaks_of(*, user, topics: QuerySet[Topic]) -> QuerySet[Finding]:
    """My breaks: assigned to me or to a team of mine, not yet resolved or accepted."""
    mine = Q(assigned_user=user) | Q(assigned_group__in=user.groups.all())
    return (
        Finding.objects.filter(mine, topic__in=topics, status__in=(*Finding.UNRESOLVED, Finding.Status.FIXED))
        .select_related("topic", "assigned_user", "assigned_group")
        .order_by("created_at", "id")
    )


class ReplayDelivery(NamedTuple):
    replay_id: uuid.UUID
    uuid: uuid.UUID  # the message that got through: the replay's new one, or the original itself


# A replay delivered the original when its item was processed into Redis here (Kafka and
# dead-letter ways), or when the new message it published (audit and source ways) shows
# in the consume ledger with an outcome other than dead. The first such item wins.
_DELIVERED_SQL = """
SELECT DISTINCT ON (i.original_uuid) i.original_uuid, i.replay_id, i.uuid
FROM recon_replayitem i
WHERE i.original_uuid = ANY(%(uuids)s) AND i.uuid IS NOT NULL AND (
    i.outcome IN ('stored', 'deleted', 'invalid')
    OR (i.outcome = 'published' AND EXISTS (
        SELECT 1 FROM recon_consumedmessage c WHERE c.uuid = i.uuid AND c.outcome <> 'dead'
    ))
)
ORDER BY i.original_uuid, i.id
"""


def replays_delivered(uuids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID | None, ReplayDelivery]:
    """For messages that reconciliation finds missing or altered: the replay that delivered each, if any."""
    wanted = list({u for u in uuids if u is not None})
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_DELIVERED_SQL, {"uuids": wanted})
        return {original: ReplayDelivery(replay_id, new) for original, replay_id, new in cursor.fetchall()}
